//! [`WebTracerProvider`]: the OpenTelemetry `TracerProvider` of a Rust
//! wasm app, exporting through tracelink's pipeline.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use js_sys::Reflect;
use opentelemetry::InstrumentationScope;
use wasm_bindgen::JsValue;

use super::registry::{self, FetchPolicy};
use super::tracer::Tracer;
use super::{convert, Error};
use crate::core::otlp::Encoding;
use crate::core::pipeline::PipelineConfig;
use crate::web::driver::{Driver, DriverConfig, StartError};

/// How long `force_flush` and `shutdown` wait at most.
const FLUSH_TIMEOUT_MS: f64 = 30_000.0;

/// The query parameters whose values `url.full` hides by default (signed
/// URLs of S3, Azure and Google Cloud Storage).
pub const DEFAULT_REDACTED_QUERY_PARAMS: [&str; 4] = ["AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature"];

/// The OTLP/HTTP body format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `http/protobuf` (the OTLP default; smaller).
    #[default]
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
}

impl std::str::FromStr for Protocol {
    type Err = Error;

    /// `http/protobuf` or `http/json` (the `OTEL_EXPORTER_OTLP_PROTOCOL` values).
    fn from_str(s: &str) -> Result<Protocol, Error> {
        match s {
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => Ok(Protocol::HttpJson),
            _ => Err(Error::InvalidProtocol(s.to_owned())),
        }
    }
}

/// The OpenTelemetry `TracerProvider` for Rust wasm apps (feature
/// `opentelemetry`).
///
/// A cheap-to-clone handle (`Send + Sync`, so it can be installed with
/// `opentelemetry::global::set_tracer_provider`): clones share one
/// pipeline, so an app installs one clone globally and keeps another to
/// flush. The most recently built provider is the one
/// [`tracelink::fetch`](crate::fetch) records its spans with. When the last
/// clone is dropped, the provider shuts down in the background.
///
/// Spans export under one instrumentation scope, `tracelink`: the name
/// given to `tracer(..)` is not kept.
#[derive(Clone)]
pub struct WebTracerProvider {
    inner: Arc<Inner>,
}

struct Inner {
    id: u32,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(driver) = registry::remove(self.id) {
            let shutdown = driver.shutdown(FLUSH_TIMEOUT_MS);
            wasm_bindgen_futures::spawn_local(async move {
                let _ = shutdown.await;
            });
        }
    }
}

impl fmt::Debug for WebTracerProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebTracerProvider").field("id", &self.inner.id).finish()
    }
}

impl WebTracerProvider {
    /// A builder; `with_endpoint` is the one required setting.
    pub fn builder() -> WebTracerProviderBuilder {
        WebTracerProviderBuilder::default()
    }

    pub(crate) fn id(&self) -> u32 {
        self.inner.id
    }

    /// Exports every span ended so far. Resolves once nothing is queued or
    /// in flight; `Err(Error::FlushTimeout)` after 30 s (what was not sent
    /// stays counted in [`stats`](Self::stats)). Nothing blocks: await it,
    /// e.g. in `wasm_bindgen_futures::spawn_local`.
    pub fn force_flush(&self) -> impl Future<Output = Result<(), Error>> + 'static {
        let flush = registry::driver(self.id()).map(|d| d.flush(FLUSH_TIMEOUT_MS));
        async move {
            match flush {
                Some(flush) => flush.await.map_err(|_| Error::FlushTimeout),
                None => Err(Error::ShutDown),
            }
        }
    }

    /// Flushes, then stops: later spans are dropped (and counted), the
    /// timer and the page listeners are removed, and `tracelink::fetch`
    /// stops using this provider.
    pub fn shutdown(&self) -> impl Future<Output = Result<(), Error>> + 'static {
        let id = self.id();
        let shutdown = registry::driver(id).map(|d| d.shutdown(FLUSH_TIMEOUT_MS));
        registry::retire(id);
        async move {
            match shutdown {
                Some(shutdown) => shutdown.await.map_err(|_| Error::FlushTimeout),
                None => Err(Error::ShutDown),
            }
        }
    }

    /// The counters: spans started, ended, exported, dropped by reason, and
    /// so on. Nothing is dropped without a count.
    pub fn stats(&self) -> Stats {
        let mut stats = Stats::default();
        let fields = registry::driver(self.id()).map(|d| d.stats()).unwrap_or_default();
        for (name, value) in fields {
            let slot = match name {
                "started" => &mut stats.started,
                "unsampled" => &mut stats.unsampled,
                "ended" => &mut stats.ended,
                "live" => &mut stats.live,
                "queued" => &mut stats.queued,
                "inFlight" => &mut stats.in_flight,
                "exported" => &mut stats.exported,
                "dropped" => &mut stats.dropped,
                "droppedQueueFull" => &mut stats.dropped_queue_full,
                "droppedTooLarge" => &mut stats.dropped_too_large,
                "droppedRejected" => &mut stats.dropped_rejected,
                "droppedFailed" => &mut stats.dropped_failed,
                "droppedShutdown" => &mut stats.dropped_shutdown,
                "droppedLiveLimit" => &mut stats.dropped_live_limit,
                "droppedRetriesExhausted" => &mut stats.dropped_retries_exhausted,
                "retried" => &mut stats.retried,
                "requests" => &mut stats.requests,
                "beaconsRefused" => &mut stats.beacons_refused,
                "failedRequests" => &mut stats.failed_requests,
                "staleHandleUses" => &mut stats.stale_handle_uses,
                "internalErrors" => &mut stats.internal_errors,
                _ => continue,
            };
            *slot = value;
        }
        stats
    }
}

impl opentelemetry::trace::TracerProvider for WebTracerProvider {
    type Tracer = Tracer;

    fn tracer_with_scope(&self, _scope: InstrumentationScope) -> Tracer {
        Tracer::new(self.clone())
    }
}

/// What a provider has done, as `stats()` in the JS API reports it: every
/// span started ends up exported, dropped (counted by reason) or unsampled;
/// until then it is live, queued or in flight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    pub started: u64,
    pub unsampled: u64,
    pub ended: u64,
    pub live: u64,
    pub queued: u64,
    pub in_flight: u64,
    pub exported: u64,
    /// All drops, whatever the reason (the sum of the `dropped_*` fields).
    pub dropped: u64,
    pub dropped_queue_full: u64,
    pub dropped_too_large: u64,
    pub dropped_rejected: u64,
    pub dropped_failed: u64,
    pub dropped_shutdown: u64,
    pub dropped_live_limit: u64,
    pub dropped_retries_exhausted: u64,
    pub retried: u64,
    pub requests: u64,
    pub beacons_refused: u64,
    pub failed_requests: u64,
    pub stale_handle_uses: u64,
    /// Calls refused because tracelink was busy (a re-entrant call).
    pub internal_errors: u64,
}

/// Configures a [`WebTracerProvider`]; see [`WebTracerProvider::builder`].
#[derive(Clone, Debug)]
#[must_use = "call .build() to get the provider"]
pub struct WebTracerProviderBuilder {
    service_name: String,
    service_version: Option<String>,
    endpoint: Option<String>,
    protocol: Protocol,
    propagate_to: Vec<String>,
    headers: Vec<(String, String)>,
    sample_ratio: f64,
    resource: Vec<opentelemetry::KeyValue>,
    redact_query_params: Vec<String>,
    schedule_delay: Option<Duration>,
    max_queue_size: Option<usize>,
    max_export_batch_size: Option<usize>,
    export_timeout: Duration,
}

impl Default for WebTracerProviderBuilder {
    fn default() -> WebTracerProviderBuilder {
        WebTracerProviderBuilder {
            service_name: "unknown_service".into(),
            service_version: None,
            endpoint: None,
            protocol: Protocol::default(),
            propagate_to: Vec::new(),
            headers: Vec::new(),
            sample_ratio: 1.0,
            resource: Vec::new(),
            redact_query_params: DEFAULT_REDACTED_QUERY_PARAMS.iter().map(|s| s.to_string()).collect(),
            schedule_delay: None,
            max_queue_size: None,
            max_export_batch_size: None,
            export_timeout: Duration::from_secs(30),
        }
    }
}

impl WebTracerProviderBuilder {
    /// `service.name` (default `unknown_service`).
    pub fn with_service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// `service.version`.
    pub fn with_service_version(mut self, version: impl Into<String>) -> Self {
        self.service_version = Some(version.into());
        self
    }

    /// The OTLP/HTTP traces URL, absolute or relative to the page (a
    /// same-origin relay such as `/otlp/v1/traces` avoids CORS preflights
    /// and ad blockers). `/v1/traces` is appended to a URL that does not
    /// end with it. Required.
    pub fn with_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// `http/protobuf` (default) or `http/json`.
    pub fn with_protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// URL prefixes that may receive `traceparent` from
    /// [`tracelink::fetch`](crate::fetch), besides the page's own origin
    /// (always). A prefix matches itself, paths under it, and the origin it
    /// names: `https://api.example.com` or `https://cdn.example.com/api`.
    pub fn with_propagate_to<I, S>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.propagate_to.extend(prefixes.into_iter().map(Into::into));
        self
    }

    /// A header sent with every export request (e.g. authorization).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Samples new traces with probability `ratio` (0..=1, default 1);
    /// children follow their parent's decision.
    pub fn with_sample_ratio(mut self, ratio: f64) -> Self {
        self.sample_ratio = ratio;
        self
    }

    /// Adds a resource attribute (e.g. `deployment.environment.name`).
    pub fn with_resource_attribute(mut self, kv: opentelemetry::KeyValue) -> Self {
        self.resource.push(kv);
        self
    }

    /// Query parameters whose values `url.full` shows as `REDACTED` (any
    /// case); replaces the default list ([`DEFAULT_REDACTED_QUERY_PARAMS`]).
    pub fn with_redact_query_params<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redact_query_params = names.into_iter().map(Into::into).collect();
        self
    }

    /// How long a partial batch waits for more spans (default 1 s).
    pub fn with_schedule_delay(mut self, delay: Duration) -> Self {
        self.schedule_delay = Some(delay);
        self
    }

    /// Most spans held for export at once (default 2048; more are dropped
    /// and counted).
    pub fn with_max_queue_size(mut self, spans: usize) -> Self {
        self.max_queue_size = Some(spans);
        self
    }

    /// Most spans in one request (default 512).
    pub fn with_max_export_batch_size(mut self, spans: usize) -> Self {
        self.max_export_batch_size = Some(spans);
        self
    }

    /// An export request unanswered after this long is aborted and retried
    /// (default 30 s).
    pub fn with_export_timeout(mut self, timeout: Duration) -> Self {
        self.export_timeout = timeout;
        self
    }

    /// Starts the provider: validates the settings, then installs its export
    /// timer and page hide / visibility listeners. It becomes the provider
    /// [`tracelink::fetch`](crate::fetch) uses.
    pub fn build(self) -> Result<WebTracerProvider, Error> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(Error::InvalidSampleRatio);
        }
        let endpoint = traces_url(self.endpoint.as_deref().ok_or(Error::MissingEndpoint)?)?;
        let mut pipeline = PipelineConfig::new(&self.service_name, self.service_version.as_deref(), "rust");
        pipeline.encoding = match self.protocol {
            Protocol::HttpProtobuf => Encoding::Protobuf,
            Protocol::HttpJson => Encoding::Json,
        };
        pipeline.set_sample_ratio(self.sample_ratio);
        for kv in convert::key_values(self.resource) {
            pipeline.resource.set(kv);
        }
        if let Some(delay) = self.schedule_delay {
            pipeline.export.schedule_delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        }
        if let Some(n) = self.max_queue_size {
            pipeline.export.max_queue_spans = n.max(1);
        }
        if let Some(n) = self.max_export_batch_size {
            pipeline.export.max_batch_spans = n.max(1);
        }
        let driver = Driver::start(DriverConfig {
            pipeline,
            endpoint: endpoint.clone(),
            headers: self.headers,
            export_timeout_ms: self.export_timeout.as_secs_f64() * 1000.0,
        })
        .map_err(|e| match e {
            StartError::NoRandomSource => Error::NoRandomSource,
            StartError::InvalidHeader(name) => Error::InvalidHeader(name),
        })?;
        let policy = FetchPolicy {
            endpoint,
            propagate_to: self.propagate_to,
            redact: self.redact_query_params.iter().map(|s| s.to_ascii_lowercase()).collect(),
        };
        let id = registry::register(driver, policy);
        Ok(WebTracerProvider { inner: Arc::new(Inner { id }) })
    }
}

/// The page's URL (`location.href`), where there is one.
pub(crate) fn page_href() -> Option<String> {
    let location = Reflect::get(&js_sys::global(), &JsValue::from_str("location")).ok()?;
    Reflect::get(&location, &JsValue::from_str("href")).ok()?.as_string()
}

/// Resolves the traces URL: relative to the page, `http(s)` only, ending in
/// `/v1/traces`.
fn traces_url(endpoint: &str) -> Result<String, Error> {
    let invalid = || Error::InvalidEndpoint(endpoint.to_owned());
    let url = match page_href() {
        Some(base) => web_sys::Url::new_with_base(endpoint, &base),
        None => web_sys::Url::new(endpoint),
    }
    .map_err(|_| invalid())?;
    if url.protocol() != "http:" && url.protocol() != "https:" {
        return Err(invalid());
    }
    let path = url.pathname();
    if !(path.ends_with("/v1/traces") || path.ends_with("/v1/traces/")) {
        let mut with_suffix = path.trim_end_matches('/').to_owned();
        with_suffix.push_str("/v1/traces");
        url.set_pathname(&with_suffix);
    }
    Ok(url.href())
}
