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
use super::clock_skew::{self, ClockSample, ClockSkew, TraceOffsets};
use super::export::{ExportConfig, ExportPolicy, Outcome, Transport};
use super::id::IdGenerator;
use super::otlp::{self, Encoding};
use super::sampler::Sampler;
use super::span::{KeyValue, Resource, Scope};
use super::span_log::{self, Staged};
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
    /// Spans in it (a store keeps the count with the body).
    pub spans: usize,
}

/// What became of a fetch-transported request.
#[derive(Clone, Copy, Debug)]
pub enum Response<'a> {
    /// Any HTTP status; `body` is read for 2xx (partial success).
    /// `retry_after_ms`: the `Retry-After` header as a delay, read by the
    /// host (with [`parse_retry_after`](super::export::parse_retry_after), or
    /// its own HTTP-date parser: a page has one in `Date.parse`).
    Http { status: u16, retry_after_ms: Option<u64>, body: Option<&'a [u8]> },
    /// No HTTP response (offline, DNS, CORS refusal, connection reset).
    NetworkError,
    /// Aborted after the export timeout.
    Timeout,
}

/// The counters' names, in the order of [`Pipeline::stats_values`] (the JS
/// ABI hands over the values alone; pkg/core.js keeps the same list).
pub const STAT_NAMES: [&str; 22] = [
    "started",
    "unsampled",
    "ended",
    "live",
    "queued",
    "inFlight",
    "exported",
    "dropped",
    "droppedQueueFull",
    "droppedTooLarge",
    "droppedRejected",
    "droppedFailed",
    "droppedShutdown",
    "droppedLiveLimit",
    "droppedRetriesExhausted",
    "retried",
    "requests",
    "beaconsRefused",
    "failedRequests",
    "staleHandleUses",
    "persisted",
    "droppedPersistFailed",
];

/// See the module docs.
pub struct Pipeline {
    /// Live spans; the platform starts and records spans through it directly.
    pub tracer: Tracer,
    policy: ExportPolicy,
    encoding: Encoding,
    resource: Resource,
    scope: Scope,
    baggage: Baggage,
    /// Capacity to give the next span record (the last one's size, rounded up).
    record_capacity: usize,
    clock: ClockSkew,
    trace_offsets: TraceOffsets,
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
            record_capacity: 256,
            clock: ClockSkew::new(),
            trace_offsets: TraceOffsets::default(),
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

    /// Whether a span ended now would be dropped (queue full, or shut down):
    /// its log need not cross, unless it carries a clock sample.
    pub fn is_full(&self) -> bool {
        self.policy.is_full()
    }

    /// Whether fetch bodies are gzip'd (when smaller): `compress` was set and
    /// this build has the `gzip` feature.
    pub fn compresses(&self) -> bool {
        self.bodies.compresses()
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
    /// Its times are moved onto the server's clock (see [`Pipeline::clock_sample`]).
    pub fn end_span(&mut self, h: SpanHandle, end_unix_nano: u64, now_ms: u64, want_json: bool) -> Option<String> {
        let mut span = self.tracer.end_span(h, end_unix_nano)?;
        if self.policy.drop_if_full() {
            return None; // counted; not worth encoding
        }
        let offset = self.trace_offsets.offset_for(span.span_context.trace_id, self.clock.offset_nano());
        clock_skew::apply_offset(&mut span, offset, &self.tracer.config().limits);
        let mut record = Vec::with_capacity(self.record_capacity);
        otlp::encode_span(self.encoding, &span, &mut record);
        // The next record starts with room for one like this (no regrowth).
        self.record_capacity = record.len().next_power_of_two().max(64);
        self.policy.push(record, now_ms);
        #[cfg(feature = "json")]
        if want_json {
            let mut json = Vec::new();
            otlp::encode_span(Encoding::Json, &span, &mut json);
            return String::from_utf8(json).ok();
        }
        let _ = want_json;
        None
    }

    /// Ends span `h` at `end_unix_nano` with what its span log recorded
    /// (`log`, see [`span_log`]), and queues it. The span is encoded straight
    /// from the log ([`span_log::stage`], no value copied); a traced HTTP
    /// response in the log is a clock sample first. With `want_json` (console
    /// export), also returns the span as OTLP JSON.
    pub fn end_span_with_log(&mut self, h: SpanHandle, log: &[u8], end_unix_nano: u64, now_ms: u64, want_json: bool) -> Option<String> {
        let Some(trace_id) = self.tracer.context(h).map(|c| c.trace_id) else {
            self.tracer.end_span(h, end_unix_nano); // not live: counted as a stale handle use
            return None;
        };
        let limits = self.tracer.config().limits;
        let (mut staged, _) = span_log::stage(log, trace_id, &limits);
        if let Some(r) = staged.response {
            self.clock_sample_from_response(h, r.at_unix_nano, r.server_timing, r.date_unix_s);
        }
        let span = self.tracer.end_span(h, end_unix_nano)?;
        if self.policy.drop_if_full() {
            return None; // counted; not worth encoding
        }
        let offset = self.trace_offsets.offset_for(trace_id, self.clock.offset_nano());
        if offset != 0 {
            staged.set_attribute((clock_skew::OFFSET_ATTRIBUTE, Staged::I64(clock_skew::offset_ms(offset))), &limits);
        }
        let mut record = Vec::with_capacity(self.record_capacity);
        otlp::encode_staged(self.encoding, &span, &staged, offset, &limits, &mut record);
        self.record_capacity = record.len().next_power_of_two().max(64);
        self.policy.push(record, now_ms);
        #[cfg(feature = "json")]
        if want_json {
            let mut json = Vec::new();
            otlp::encode_staged(Encoding::Json, &span, &staged, offset, &limits, &mut json);
            return String::from_utf8(json).ok();
        }
        let _ = want_json;
        None
    }

    /// Feeds the clock-skew estimator one traced round trip (e.g.
    /// `ClockSample::from_headers(span start, now, server_timing, date_unix_s)` for a
    /// fetch); true when the sample was kept. Spans ended from then on get the
    /// estimated offset (0 until two samples agree), one offset per trace.
    pub fn clock_sample(&mut self, sample: ClockSample) -> bool {
        self.clock.add_sample(sample)
    }

    /// [`Pipeline::clock_sample`] for the response to the request of live span
    /// `h` (a fetch span: it started when the request left); call it when the
    /// response headers arrived, before ending `h`, with its `Server-Timing`
    /// header ('' when absent or unreadable) and its `Date` header as unix
    /// seconds ([`parse_http_date`](super::export::parse_http_date)).
    pub fn clock_sample_from_response(&mut self, h: SpanHandle, response_unix_nano: u64, server_timing: &str, date_unix_s: Option<u64>) -> bool {
        let sample = self
            .tracer
            .start_time(h)
            .and_then(|start| ClockSample::from_headers(start, response_unix_nano, server_timing, date_unix_s));
        sample.is_some_and(|s| self.clock.add_sample(s))
    }

    /// The offset (ns) added to client span times now (0: none).
    pub fn clock_offset_nano(&self) -> i64 {
        self.clock.offset_nano()
    }

    /// The next request to send now, if any (call until `None`).
    pub fn poll_request(&mut self, now_ms: u64) -> Option<Request> {
        self.bodies.forget();
        let t = self.policy.poll_transmit_sized(now_ms, &mut self.bodies)?;
        let (body, gzip) = self.bodies.build(&t, self.policy.records(t.id), &self.resource, &self.scope);
        debug_assert_eq!(body.len(), t.bytes);
        Some(Request { id: t.id, body, gzip, transport: t.transport, spans: t.spans })
    }

    /// Reports what became of request `id`.
    pub fn on_response(&mut self, id: u64, response: Response<'_>, now_ms: u64) {
        let outcome = match response {
            Response::Http { status: 200..=299, body, .. } => {
                let rejected = body
                    .and_then(|b| otlp::parse_partial_success(self.encoding, b))
                    .map_or(0, |(rejected, _)| rejected.max(0) as u64);
                Outcome::Success { rejected_spans: rejected }
            }
            Response::Http { status, retry_after_ms, .. } => Outcome::Http { status, retry_after_ms },
            Response::NetworkError => Outcome::NetworkError,
            Response::Timeout => Outcome::Timeout,
        };
        self.policy.on_outcome(id, outcome, now_ms);
    }

    /// Reports whether the beacon for request `id` was queued by the browser.
    pub fn on_beacon(&mut self, id: u64, accepted: bool, now_ms: u64) {
        self.policy.on_outcome(id, Outcome::BeaconAccepted(accepted), now_ms);
    }

    /// Reports whether the store kept request `id` ([`Transport::Persist`]).
    pub fn on_persisted(&mut self, id: u64, stored: bool, now_ms: u64) {
        self.policy.on_outcome(id, Outcome::Stored(stored), now_ms);
    }

    /// The network went offline or came back (see `ExportPolicy::set_online`).
    pub fn set_online(&mut self, online: bool, now_ms: u64) {
        self.policy.set_online(online, now_ms);
    }

    /// Whether the platform can store requests now (IndexedDB opened).
    pub fn set_persist(&mut self, available: bool) {
        self.policy.set_persist(available);
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
        STAT_NAMES.iter().copied().zip(self.stats_values()).collect()
    }

    /// The counters' values, in the order of [`STAT_NAMES`].
    pub fn stats_values(&self) -> [u64; STAT_NAMES.len()] {
        let t = self.tracer.stats();
        let e = self.policy.stats();
        let dropped = e.dropped_total() + t.dropped_live_limit;
        [
            t.started,
            t.unsampled,
            t.ended,
            self.tracer.live_spans() as u64,
            e.queued,
            e.in_flight,
            e.exported,
            dropped,
            e.dropped_queue_full,
            e.dropped_too_large,
            e.dropped_rejected,
            e.dropped_failed,
            e.dropped_shutdown,
            t.dropped_live_limit,
            e.dropped_retries_exhausted,
            e.retried,
            e.requests,
            e.beacons_refused,
            e.failed_requests,
            t.stale_handle_uses,
            e.persisted,
            e.dropped_persist_failed,
        ]
    }
}
