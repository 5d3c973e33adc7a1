//! The `Agent` class: the JS entry's handle on the core.
//!
//! JS calls in with span operations (handles are `u32`, 0 = none); the agent
//! calls out through two host callbacks given at construction:
//! `send(id, body: Uint8Array, transport: 0 fetch | 1 keepalive | 2 beacon,
//! gzip: boolean)` (returns whether a beacon was queued; a `gzip` body goes
//! with `Content-Encoding: gzip`, and beacons never are) and `setTimer(ms)`
//! (-1 = cancel).
//! The JS side reports each request's result with `onOutcome`.

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

use super::clock::Clock;
use crate::core::export::Transport;
use crate::core::id::IdGenerator;
use crate::core::otlp::Encoding;
use crate::core::pipeline::{Pipeline, PipelineConfig, Response};
use crate::core::span::{Array as ArrayValue, KeyValue, SpanKind, Status, Value};
use crate::core::trace_context;
use crate::core::tracer::{Parent, SpanHandle};

/// One tracing setup's state (see the module docs).
#[wasm_bindgen]
pub struct Agent {
    pipeline: Pipeline,
    clock: Clock,
    send: Function,
    set_timer: Function,
    on_span_json: Option<Function>,
    /// Attributes staged with handle 0, consumed by the next `event`.
    staged: Vec<KeyValue>,
    timer_at: Option<u64>,
}

fn kind_from(k: u8) -> SpanKind {
    match k {
        1 => SpanKind::Server,
        2 => SpanKind::Client,
        3 => SpanKind::Producer,
        4 => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

fn get(cfg: &JsValue, key: &str) -> JsValue {
    Reflect::get(cfg, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

#[wasm_bindgen]
impl Agent {
    /// `cfg`: `{ serviceName, serviceVersion, sampleRate, json, sdkLanguage,
    /// compress?, scheduleDelayMs?, maxQueueSize?, maxExportBatchSize? }`
    /// (validated by JS; `compress`, default true, gzips fetch bodies).
    #[wasm_bindgen(constructor)]
    pub fn new(cfg: JsValue, send: Function, set_timer: Function, on_span_json: Option<Function>) -> Result<Agent, JsError> {
        let service_name = get(&cfg, "serviceName").as_string().unwrap_or_else(|| "unknown_service".into());
        let service_version = get(&cfg, "serviceVersion").as_string().filter(|v| !v.is_empty());
        let language = get(&cfg, "sdkLanguage").as_string().unwrap_or_else(|| "webjs".into());
        let mut config = PipelineConfig::new(&service_name, service_version.as_deref(), &language);
        config.encoding = if get(&cfg, "json").as_bool() == Some(true) { Encoding::Json } else { Encoding::Protobuf };
        config.compress = get(&cfg, "compress").as_bool() != Some(false);
        config.set_sample_ratio(get(&cfg, "sampleRate").as_f64().unwrap_or(1.0));
        if let Some(ms) = get(&cfg, "scheduleDelayMs").as_f64() {
            config.export.schedule_delay_ms = ms.max(0.0) as u64;
        }
        if let Some(n) = get(&cfg, "maxQueueSize").as_f64() {
            config.export.max_queue_spans = n.max(1.0) as usize;
        }
        if let Some(n) = get(&cfg, "maxExportBatchSize").as_f64() {
            config.export.max_batch_spans = n.max(1.0) as usize;
        }
        let ids = IdGenerator::from_entropy()
            .map_err(|_| JsError::new("tracelink: this runtime has no crypto.getRandomValues"))?;
        Ok(Agent {
            pipeline: Pipeline::new(config, ids),
            clock: Clock::new(),
            send,
            set_timer,
            on_span_json,
            staged: Vec::new(),
            timer_at: None,
        })
    }

    /// Adds a resource attribute (before any span is exported).
    #[wasm_bindgen(js_name = resourceAttr)]
    pub fn resource_attr(&mut self, key: &str, value: &str) {
        self.pipeline.set_resource_attribute(KeyValue::new(key, value));
    }

    /// Starts a span under `parent` (0 = a new trace).
    pub fn start(&mut self, name: &str, kind: u8, parent: u32) -> u32 {
        let now = self.clock.unix_nanos();
        let parent = if parent == 0 { Parent::Root } else { Parent::Local(SpanHandle(parent)) };
        self.pipeline.tracer.start_span(name, kind_from(kind), parent, now).0
    }

    /// Starts a span whose parent is a W3C context from another process.
    #[wasm_bindgen(js_name = startRemote)]
    pub fn start_remote(&mut self, name: &str, kind: u8, traceparent: &str, tracestate: &str) -> u32 {
        let now = self.clock.unix_nanos();
        let remote = trace_context::extract(Some(traceparent), &[tracestate]);
        let parent = remote.as_ref().map_or(Parent::Root, Parent::Remote);
        self.pipeline.tracer.start_span(name, kind_from(kind), parent, now).0
    }

    fn set(&mut self, h: u32, kv: KeyValue) {
        if h == 0 {
            self.staged.push(kv);
        } else {
            self.pipeline.tracer.set_attribute(SpanHandle(h), kv);
        }
    }

    /// Sets a string attribute (h = 0 stages it for the next event).
    #[wasm_bindgen(js_name = attrStr)]
    pub fn attr_str(&mut self, h: u32, key: &str, value: &str) {
        self.set(h, KeyValue::new(key, value));
    }

    /// Sets an integer attribute (a JS safe integer).
    #[wasm_bindgen(js_name = attrInt)]
    pub fn attr_int(&mut self, h: u32, key: &str, value: f64) {
        self.set(h, KeyValue::new(key, value as i64));
    }

    /// Sets an integer attribute from a BigInt within i64.
    #[wasm_bindgen(js_name = attrBigInt)]
    pub fn attr_big_int(&mut self, h: u32, key: &str, value: i64) {
        self.set(h, KeyValue::new(key, value));
    }

    /// Sets a double attribute.
    #[wasm_bindgen(js_name = attrF64)]
    pub fn attr_f64(&mut self, h: u32, key: &str, value: f64) {
        self.set(h, KeyValue::new(key, value));
    }

    /// Sets a boolean attribute.
    #[wasm_bindgen(js_name = attrBool)]
    pub fn attr_bool(&mut self, h: u32, key: &str, value: bool) {
        self.set(h, KeyValue::new(key, value));
    }

    /// Sets an array attribute; the element type is taken from the first
    /// defined element and others of another type are skipped (OTel rule:
    /// arrays are homogeneous).
    #[wasm_bindgen(js_name = attrArray)]
    pub fn attr_array(&mut self, h: u32, key: &str, values: Array) {
        let items: Vec<JsValue> = values.iter().filter(|v| !v.is_undefined() && !v.is_null()).collect();
        let array = match items.first() {
            None => ArrayValue::String(Vec::new()),
            Some(v) if v.as_bool().is_some() => ArrayValue::Bool(items.iter().filter_map(|v| v.as_bool()).collect()),
            Some(v) if v.as_string().is_some() => {
                ArrayValue::String(items.iter().filter_map(|v| v.as_string()).collect())
            }
            Some(v) if v.as_f64().is_some() => {
                let nums: Vec<f64> = items.iter().filter_map(|v| v.as_f64()).collect();
                if nums.iter().all(|n| n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0) {
                    ArrayValue::I64(nums.into_iter().map(|n| n as i64).collect())
                } else {
                    ArrayValue::F64(nums)
                }
            }
            Some(_) => return,
        };
        self.set(h, KeyValue { key: key.to_owned(), value: Value::Array(array) });
    }

    /// Adds an event with the staged attributes.
    pub fn event(&mut self, h: u32, name: &str) {
        let now = self.clock.unix_nanos();
        let attributes = std::mem::take(&mut self.staged);
        self.pipeline.tracer.add_event(SpanHandle(h), name, now, attributes);
    }

    /// Records an exception event (semantic conventions `exception.*`).
    pub fn exception(&mut self, h: u32, type_: &str, message: &str, stack: &str) {
        let now = self.clock.unix_nanos();
        self.pipeline.tracer.record_exception(SpanHandle(h), type_, message, stack, now);
    }

    /// Sets the status: 0 unset, 1 ok, 2 error (with `message`).
    pub fn status(&mut self, h: u32, code: u8, message: &str) {
        let status = match code {
            1 => Status::Ok,
            2 => Status::Error(message.to_owned()),
            _ => Status::Unset,
        };
        self.pipeline.tracer.set_status(SpanHandle(h), status);
    }

    /// Renames a span.
    pub fn rename(&mut self, h: u32, name: &str) {
        self.pipeline.tracer.update_name(SpanHandle(h), name);
    }

    /// Ends a span and queues it for export.
    pub fn end(&mut self, h: u32) {
        let end = self.clock.unix_nanos();
        let now = self.clock.mono_ms() as u64;
        let json = self.pipeline.end_span(SpanHandle(h), end, now, self.on_span_json.is_some());
        if let (Some(console), Some(json)) = (&self.on_span_json, json) {
            let _ = console.call1(&JsValue::NULL, &JsValue::from_str(&json));
        }
        self.drive(now);
    }

    /// Whether `h` is live and sampled.
    #[wasm_bindgen(js_name = isRecording)]
    pub fn is_recording(&self, h: u32) -> bool {
        self.pipeline.tracer.is_recording(SpanHandle(h))
    }

    /// The span's trace id as 32 hex digits ('' if `h` is not live).
    #[wasm_bindgen(js_name = traceId)]
    pub fn trace_id(&self, h: u32) -> String {
        self.pipeline.tracer.context(SpanHandle(h)).map(|c| c.trace_id.to_hex()).unwrap_or_default()
    }

    /// The span id as 16 hex digits ('' if `h` is not live).
    #[wasm_bindgen(js_name = spanId)]
    pub fn span_id(&self, h: u32) -> String {
        self.pipeline.tracer.context(SpanHandle(h)).map(|c| c.span_id.to_hex()).unwrap_or_default()
    }

    /// The `traceparent` header for `h` ('' if not live).
    pub fn traceparent(&self, h: u32) -> String {
        self.pipeline.tracer.context(SpanHandle(h)).map(trace_context::format_traceparent).unwrap_or_default()
    }

    /// The `tracestate` header for `h` ('' if none).
    pub fn tracestate(&self, h: u32) -> String {
        self.pipeline.tracer.context(SpanHandle(h)).map(|c| c.trace_state.clone()).unwrap_or_default()
    }

    /// The `baggage` header to send ('' when there is none).
    pub fn baggage(&self) -> String {
        self.pipeline.baggage_header()
    }

    /// Sets a baggage entry (propagated only where allowed); false if invalid.
    #[wasm_bindgen(js_name = setBaggage)]
    pub fn set_baggage(&mut self, key: &str, value: &str) -> bool {
        self.pipeline.set_baggage(key, value)
    }

    /// Validates a received `traceparent` (+ `tracestate`): returns
    /// `"<traceparent>\n<tracestate>"` normalised, or '' when invalid.
    #[wasm_bindgen(js_name = normalizeTraceparent)]
    pub fn normalize_traceparent(&self, traceparent: &str, tracestate: &str) -> String {
        match trace_context::extract(Some(traceparent), &[tracestate]) {
            Some(ctx) => {
                let mut out = trace_context::format_traceparent(&ctx);
                out.push('\n');
                out.push_str(&ctx.trace_state);
                out
            }
            None => String::new(),
        }
    }

    /// Starts a CLIENT span for an HTTP request (semantic conventions).
    #[wasm_bindgen(js_name = fetchStart)]
    pub fn fetch_start(&mut self, method: &str, url_full: &str, host: &str, port: u16, parent: u32) -> u32 {
        let known = matches!(method, "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS" | "CONNECT" | "TRACE");
        let h = self.start(if known { method } else { "HTTP" }, 2, parent);
        let t = &mut self.pipeline.tracer;
        let h2 = SpanHandle(h);
        t.set_attribute(h2, KeyValue::new("http.request.method", if known { method } else { "_OTHER" }));
        if !known {
            t.set_attribute(h2, KeyValue::new("http.request.method_original", method));
        }
        t.set_attribute(h2, KeyValue::new("url.full", url_full));
        t.set_attribute(h2, KeyValue::new("server.address", host));
        t.set_attribute(h2, KeyValue::new("server.port", i64::from(port)));
        h
    }

    /// Ends a fetch span when the response headers arrived: status code,
    /// `error.type` for 4xx/5xx, and the server's span read back from
    /// `traceresponse` or `Server-Timing: traceparent|trace;desc=…`.
    #[wasm_bindgen(js_name = fetchEnd)]
    pub fn fetch_end(&mut self, h: u32, status: u16, traceresponse: &str, server_timing: &str) {
        let handle = SpanHandle(h);
        let t = &mut self.pipeline.tracer;
        t.set_attribute(handle, KeyValue::new("http.response.status_code", i64::from(status)));
        if status >= 400 {
            let mut digits = Vec::with_capacity(3);
            crate::core::otlp::push_decimal(&mut digits, status.into());
            t.set_attribute(handle, KeyValue::new("error.type", String::from_utf8(digits).unwrap_or_default()));
            t.set_status(handle, Status::Error(String::new()));
        }
        let server = trace_context::parse_traceparent(traceresponse.trim())
            .or_else(|| server_timing_traceparent(server_timing).and_then(|v| trace_context::parse_traceparent(&v)));
        if let Some(server) = server {
            t.set_attribute(handle, KeyValue::new("tracelink.response.trace_id", server.trace_id.to_hex()));
            t.set_attribute(handle, KeyValue::new("tracelink.response.span_id", server.span_id.to_hex()));
            let ours = t.context(handle).map(|c| c.trace_id);
            if ours.is_some_and(|ours| ours != server.trace_id) {
                // The server did not continue our trace: link to where it went.
                t.add_link(handle, server, Vec::new());
            }
        }
        self.end(h);
    }

    /// Ends a fetch span whose request failed (network error, abort).
    #[wasm_bindgen(js_name = fetchFail)]
    pub fn fetch_fail(&mut self, h: u32, error_type: &str, message: &str) {
        let handle = SpanHandle(h);
        self.pipeline.tracer.set_attribute(handle, KeyValue::new("error.type", error_type));
        self.exception(h, error_type, message, "");
        self.pipeline.tracer.set_status(handle, Status::Error(message.to_owned()));
        self.end(h);
    }

    /// The export timer fired.
    #[wasm_bindgen(js_name = onTimer)]
    pub fn on_timer(&mut self) {
        self.timer_at = None;
        let now = self.clock.mono_ms() as u64;
        self.pipeline.handle_timeout(now);
        self.drive(now);
    }

    /// A request finished: `status` is the HTTP status, 0 for a network
    /// error, 1 for a timeout; `body` is the 2xx response body.
    #[wasm_bindgen(js_name = onOutcome)]
    pub fn on_outcome(&mut self, id: f64, status: u16, retry_after: Option<String>, body: Option<Vec<u8>>) {
        let now = self.clock.mono_ms() as u64;
        let unix_ms = self.clock.unix_ms() as u64;
        let response = match status {
            0 => Response::NetworkError,
            1 => Response::Timeout,
            s => Response::Http { status: s, retry_after: retry_after.as_deref(), body: body.as_deref() },
        };
        self.pipeline.on_response(id as u64, response, now, unix_ms);
        self.drive(now);
    }

    /// Exports everything queued now (`idle()` turns true when done).
    pub fn flush(&mut self) {
        self.at_now(Pipeline::flush);
    }

    /// Nothing queued and nothing in flight.
    pub fn idle(&self) -> bool {
        self.pipeline.is_idle()
    }

    /// The page is being hidden or unloaded: send everything with keepalive.
    #[wasm_bindgen(js_name = pageHidden)]
    pub fn page_hidden(&mut self) {
        self.at_now(Pipeline::page_hidden);
    }

    /// The page is visible again.
    #[wasm_bindgen(js_name = pageVisible)]
    pub fn page_visible(&mut self) {
        self.at_now(Pipeline::page_visible);
    }

    /// Stops accepting spans (later ones are dropped and counted).
    pub fn shutdown(&mut self) {
        self.at_now(Pipeline::shutdown);
    }

    /// Counters as a plain object (see `Tracing.stats()` in the JS docs).
    pub fn stats(&self) -> Object {
        let out = Object::new();
        for (k, v) in self.pipeline.stats_fields() {
            let _ = Reflect::set(&out, &JsValue::from_str(k), &JsValue::from_f64(v as f64));
        }
        out
    }

    /// Feeds the pipeline an event at the current time, then sends what it
    /// asks for.
    fn at_now(&mut self, event: impl FnOnce(&mut Pipeline, u64)) {
        let now = self.clock.mono_ms() as u64;
        event(&mut self.pipeline, now);
        self.drive(now);
    }

    /// Sends what the policy wants sent and re-arms the timer.
    fn drive(&mut self, now: u64) {
        while let Some(req) = self.pipeline.poll_request(now) {
            let transport = match req.transport {
                Transport::Fetch => 0,
                Transport::FetchKeepalive => 1,
                Transport::Beacon => 2,
            };
            let body = Uint8Array::from(req.body.as_slice());
            let queued = self.send.call4(
                &JsValue::NULL,
                &JsValue::from_f64(req.id as f64),
                &body,
                &JsValue::from_f64(transport as f64),
                &JsValue::from_bool(req.gzip),
            );
            if req.transport == Transport::Beacon {
                let accepted = queued.ok().and_then(|v| v.as_bool()).unwrap_or(false);
                self.pipeline.on_beacon(req.id, accepted, now);
            } else if queued.is_err() {
                self.pipeline.on_response(req.id, Response::NetworkError, now, 0);
            }
        }
        let next = self.pipeline.poll_timeout();
        if next != self.timer_at {
            self.timer_at = next;
            let ms = next.map_or(-1.0, |t| t.saturating_sub(now) as f64);
            let _ = self.set_timer.call1(&JsValue::NULL, &JsValue::from_f64(ms));
        }
    }
}

#[cfg(feature = "bench-hooks")]
#[wasm_bindgen]
impl Agent {
    /// Bench only (`--features bench-hooks`): nanoseconds to encode a batch
    /// of `n` spans of the bench's shape (8 attributes, 1 event) into one OTLP
    /// request, averaged over `iterations`.
    #[wasm_bindgen(js_name = encodeBench)]
    pub fn encode_bench(&mut self, n: u32, iterations: u32) -> f64 {
        let mut spans = Vec::with_capacity(n as usize);
        for i in 0..n {
            let t0 = self.clock.unix_nanos();
            let h = self.pipeline.tracer.start_span("bench.span", SpanKind::Internal, Parent::Root, t0);
            let tr = &mut self.pipeline.tracer;
            for (k, v) in [("a1", "value-1"), ("a2", "value-2"), ("a3", "value-3")] {
                tr.set_attribute(h, KeyValue::new(k, v));
            }
            tr.set_attribute(h, KeyValue::new("a4", i64::from(i)));
            tr.set_attribute(h, KeyValue::new("a5", true));
            for (k, v) in [("s1", "x"), ("s2", "y"), ("s3", "z")] {
                tr.set_attribute(h, KeyValue::new(k, v));
            }
            tr.add_event(h, "bench.event", t0, vec![KeyValue::new("k", "v")]);
            if let Some(span) = tr.end_span(h, t0 + 1000) {
                spans.push(span);
            }
        }
        let mut out = Vec::new();
        let start = self.clock.mono_ms();
        for _ in 0..iterations.max(1) {
            self.pipeline.encode_batch(&spans, &mut out);
        }
        (self.clock.mono_ms() - start) * 1e6 / f64::from(iterations.max(1))
    }
}

/// The `desc` of a `traceparent` or `trace` entry in a Server-Timing header.
fn server_timing_traceparent(header: &str) -> Option<String> {
    header.split(',').find_map(|entry| {
        let mut parts = entry.split(';');
        let name = parts.next()?.trim();
        if !name.eq_ignore_ascii_case("traceparent") && !name.eq_ignore_ascii_case("trace") {
            return None;
        }
        parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("desc").then(|| v.trim().trim_matches('"').to_owned())
        })
    })
}

