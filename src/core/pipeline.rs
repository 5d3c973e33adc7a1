//! The whole client as one sans-IO object: spans in, OTLP requests out.
//!
//! [`Pipeline`] joins the [`Tracer`] (live spans), the OTLP encoder and the
//! export policy. A span is encoded once, when it ends, into a record; the
//! policy queues records and decides when to send which; the pipeline frames
//! the chosen records into a request body, gzip'd when that is on and smaller
//! (`core::body`; the policy's byte limits count the bytes actually sent).
//! The platform layer only moves those bodies over the network, reports what
//! happened, and keeps a timer for [`Pipeline::poll_timeout`]. Everything
//! here is driven by times passed in, so host tests replay any scenario
//! deterministically.

use super::baggage::Baggage;
use super::body::BodyBuilder;
use super::export::{ExportConfig, ExportPolicy, Outcome, Transport};
use super::id::IdGenerator;
use super::otlp::{self, Encoding};
use super::span::{KeyValue, Resource, Scope};
use super::sampler::Sampler;
use super::tracer::{SpanHandle, Tracer, TracerConfig};

/// Everything a pipeline is configured with.
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    pub tracer: TracerConfig,
    pub export: ExportConfig,
    pub encoding: Encoding,
    /// gzip fetch bodies (`Content-Encoding: gzip`) when that is smaller.
    pub compress: bool,
    pub resource: Resource,
    pub scope: Scope,
}

impl PipelineConfig {
    /// Defaults for a service: protobuf, gzip'd, sample everything, OTel-like limits.
    pub fn new(service_name: &str, service_version: Option<&str>, sdk_language: &str) -> PipelineConfig {
        PipelineConfig {
            tracer: TracerConfig::default(),
            export: ExportConfig::default(),
            encoding: Encoding::Protobuf,
            compress: true,
            resource: Resource::new(service_name, service_version, sdk_language),
            scope: Scope { name: "tracelink".into(), version: env!("CARGO_PKG_VERSION").into() },
        }
    }

    /// Samples new traces with probability `ratio` (children follow parents).
    pub fn set_sample_ratio(&mut self, ratio: f64) {
        self.tracer.sampler = Sampler::ratio(ratio);
    }
}

/// A request the platform must send.
#[derive(Debug)]
pub struct Request {
    /// Report the result under this id.
    pub id: u64,
    /// The complete OTLP request body.
    pub body: Vec<u8>,
    /// The body is gzip'd: send it with `Content-Encoding: gzip`. Never
    /// for beacons.
    pub gzip: bool,
    pub transport: Transport,
}

/// What became of a fetch-transported request.
#[derive(Clone, Copy, Debug)]
pub enum Response<'a> {
    /// Any HTTP status; `body` is read for 2xx (partial success).
    Http { status: u16, retry_after: Option<&'a str>, body: Option<&'a [u8]> },
    /// No HTTP response (offline, DNS, CORS refusal, connection reset).
    NetworkError,
    /// Aborted after the export timeout.
    Timeout,
}

/// See the module docs.
pub struct Pipeline {
    /// Live spans; the platform starts and records spans through it directly.
    pub tracer: Tracer,
    policy: ExportPolicy,
    encoding: Encoding,
    resource: Resource,
    scope: Scope,
    baggage: Baggage,
    record: Vec<u8>,
    bodies: BodyBuilder,
}

impl Pipeline {
    /// A pipeline with `config`, drawing ids from `ids`.
    pub fn new(mut config: PipelineConfig, mut ids: IdGenerator) -> Pipeline {
        // Each client jitters its retries differently (no thundering herd).
        config.export.jitter_seed = ids.next_u64();
        let mut p = Pipeline {
            tracer: Tracer::new(config.tracer, ids),
            policy: ExportPolicy::new(config.export),
            encoding: config.encoding,
            resource: config.resource,
            scope: config.scope,
            baggage: Baggage::default(),
            record: Vec::with_capacity(256),
            bodies: BodyBuilder::new(config.encoding, config.compress),
        };
        p.update_overhead();
        p
    }

    fn update_overhead(&mut self) {
        // JSON puts a comma between records; protobuf records carry their own
        // framing, and the envelope's varint lengths are bounded from above.
        let one = otlp::request_overhead(self.encoding, &self.resource, &self.scope, 1);
        let two = otlp::request_overhead(self.encoding, &self.resource, &self.scope, 2);
        let per_record = two.saturating_sub(one);
        self.policy.set_request_overhead(one.saturating_sub(per_record), per_record);
        self.bodies.set_envelope(&self.resource, &self.scope);
    }

    /// The wire encoding.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Adds or replaces a resource attribute.
    pub fn set_resource_attribute(&mut self, kv: KeyValue) {
        self.resource.set(kv);
        self.update_overhead();
    }

    /// Ends span `h` at `end_unix_nano`, encodes it and queues it. With
    /// `want_json`, also returns the span as OTLP JSON (console export).
    pub fn end_span(&mut self, h: SpanHandle, end_unix_nano: u64, now_ms: u64, want_json: bool) -> Option<String> {
        let span = self.tracer.end_span(h, end_unix_nano)?;
        if self.policy.drop_if_full() {
            return None; // counted; not worth encoding
        }
        self.record.clear();
        otlp::encode_span(self.encoding, &span, &mut self.record);
        self.policy.push(self.record.clone(), now_ms);
        if !want_json {
            return None;
        }
        let mut json = Vec::new();
        otlp::encode_span(Encoding::Json, &span, &mut json);
        String::from_utf8(json).ok()
    }

    /// The next request to send now, if any (call until `None`).
    pub fn poll_request(&mut self, now_ms: u64) -> Option<Request> {
        self.bodies.forget();
        let t = self.policy.poll_transmit_sized(now_ms, &mut self.bodies)?;
        let (body, gzip) = self.bodies.build(&t, self.policy.records(t.id), &self.resource, &self.scope);
        debug_assert_eq!(body.len(), t.bytes);
        Some(Request { id: t.id, body, gzip, transport: t.transport })
    }

    /// Reports what became of request `id` (`now_unix_ms` resolves
    /// HTTP-date `Retry-After` values).
    pub fn on_response(&mut self, id: u64, response: Response<'_>, now_ms: u64, now_unix_ms: u64) {
        let outcome = match response {
            Response::Http { status: 200..=299, body, .. } => {
                let rejected = body
                    .and_then(|b| otlp::parse_partial_success(self.encoding, b))
                    .map_or(0, |(rejected, _)| rejected.max(0) as u64);
                Outcome::Success { rejected_spans: rejected }
            }
            Response::Http { status, retry_after, .. } => Outcome::Http {
                status,
                retry_after_ms: retry_after.and_then(|v| super::export::parse_retry_after(v, now_unix_ms)),
            },
            Response::NetworkError => Outcome::NetworkError,
            Response::Timeout => Outcome::Timeout,
        };
        self.policy.on_outcome(id, outcome, now_ms);
    }

    /// Reports whether the beacon for request `id` was queued by the browser.
    pub fn on_beacon(&mut self, id: u64, accepted: bool, now_ms: u64) {
        self.policy.on_outcome(id, Outcome::BeaconAccepted(accepted), now_ms);
    }

    /// When the platform should call [`Pipeline::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.policy.poll_timeout()
    }

    /// The time from `poll_timeout` has come.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.policy.handle_timeout(now_ms);
    }

    /// Sends everything queued as soon as the policy allows.
    pub fn flush(&mut self, now_ms: u64) {
        self.policy.flush(now_ms);
    }

    /// The page is hidden or unloading: keepalive requests within budget.
    pub fn page_hidden(&mut self, now_ms: u64) {
        self.policy.page_hidden(now_ms);
    }

    /// The page is visible again.
    pub fn page_visible(&mut self, now_ms: u64) {
        self.policy.page_visible(now_ms);
    }

    /// Flushes and refuses later spans (counted).
    pub fn shutdown(&mut self, now_ms: u64) {
        self.policy.shutdown(now_ms);
    }

    /// Nothing queued, nothing in flight.
    pub fn is_idle(&self) -> bool {
        self.policy.is_idle()
    }

    /// The `baggage` header for outgoing requests ('' when empty).
    pub fn baggage_header(&self) -> String {
        self.baggage.header()
    }

    /// Sets a baggage entry; false when key or value is invalid.
    pub fn set_baggage(&mut self, key: &str, value: &str) -> bool {
        self.baggage.insert(key, value, "").is_ok()
    }

    /// Encodes `spans` as one request the way export does (a record per span,
    /// then the framing): what a 512-span batch costs, for the bench.
    #[cfg(feature = "bench-hooks")]
    pub fn encode_batch(&self, spans: &[super::span::SpanData], out: &mut Vec<u8>) {
        let mut records = Vec::with_capacity(spans.len());
        for span in spans {
            let mut r = Vec::with_capacity(256);
            otlp::encode_span(self.encoding, span, &mut r);
            records.push(r);
        }
        out.clear();
        otlp::encode_request(self.encoding, &self.resource, &self.scope, records.iter().map(Vec::as_slice), out);
    }

    /// Every counter, named as `stats()` shows them in JS.
    pub fn stats_fields(&self) -> Vec<(&'static str, u64)> {
        let t = self.tracer.stats();
        let e = self.policy.stats();
        let dropped = e.dropped_total() + t.dropped_live_limit;
        vec![
            ("started", t.started),
            ("unsampled", t.unsampled),
            ("ended", t.ended),
            ("live", self.tracer.live_spans() as u64),
            ("queued", e.queued),
            ("inFlight", e.in_flight),
            ("exported", e.exported),
            ("dropped", dropped),
            ("droppedQueueFull", e.dropped_queue_full),
            ("droppedTooLarge", e.dropped_too_large),
            ("droppedRejected", e.dropped_rejected),
            ("droppedFailed", e.dropped_failed),
            ("droppedShutdown", e.dropped_shutdown),
            ("droppedLiveLimit", t.dropped_live_limit),
            ("droppedRetriesExhausted", e.dropped_retries_exhausted),
            ("retried", e.retried),
            ("requests", e.requests),
            ("beaconsRefused", e.beacons_refused),
            ("failedRequests", e.failed_requests),
            ("staleHandleUses", t.stale_handle_uses),
        ]
    }
}
