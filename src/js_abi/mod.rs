//! The npm package's wasm ABI: plain exported functions over numbers and one
//! shared byte buffer, driven by `pkg/tracelink.js`. No wasm-bindgen and no
//! generated JS glue: every byte of glue is bytes a page downloads.
//!
//! - Strings and byte strings cross through the *io buffer*: JS asks for room
//!   with `tl_io(len)` (a pointer into linear memory), writes its inputs there
//!   and calls a function with their lengths; functions that answer with
//!   bytes write them at the start of the io buffer and return their length.
//!   The buffer always has room for any answer, so answers never move it.
//! - A span crosses twice: `tl_start` (→ a handle) and `tl_end` with its
//!   staged span log ([`crate::core::span_log`]): attributes, events, status
//!   and HTTP outcome in one buffer.
//! - Span times come from JS (unix milliseconds, its drift-corrected clock);
//!   the export policy's clock is the imported `now` (monotonic milliseconds).
//! - Out: the imports `send(id, ptr, len, transport, spans)` and `timer(ms)`.
//!
//! One instance holds one tracing setup: JS instantiates the module once per
//! `setupTracing`. wasm32 here is single-threaded and JS never re-enters an
//! export from an import, so the global state is only ever borrowed once.

use core::cell::UnsafeCell;

mod alloc;

#[global_allocator]
static ALLOCATOR: alloc::SizeClasses = alloc::SizeClasses::new();

#[cfg(feature = "full")]
use crate::core::baggage::Baggage;
use crate::core::export::Transport;
use crate::core::id::IdGenerator;
use crate::core::otlp::Encoding;
use crate::core::pipeline::{Pipeline, PipelineConfig, Response};
use crate::core::span::{KeyValue, SpanKind};
use crate::core::span_log::ms_to_nanos;
use crate::core::trace_context;
use crate::core::tracer::{Parent, SpanHandle};

#[link(wasm_import_module = "tl")]
extern "C" {
    /// Monotonic milliseconds (`performance.now()`).
    fn now() -> f64;
    /// Sends request `id` of `spans` spans: `len` bytes at `ptr`, transport 0
    /// fetch | 1 keepalive | 2 beacon | 3 store it (answer with `tl_persisted`),
    /// plus 8 when the body is gzip'd (send `Content-Encoding: gzip`).
    /// Returns 1 when handed over (a beacon: accepted), else 0.
    fn send(id: f64, ptr: *const u8, len: usize, transport: u32, spans: u32) -> u32;
    /// Wake `tl_timer` in `ms` milliseconds; -1 cancels.
    fn timer(ms: f64);
    /// Console export: one span as OTLP JSON (`len` bytes at `ptr`).
    #[cfg(feature = "json")]
    fn console(ptr: *const u8, len: usize);
}

/// The io buffer always holds at least this much: enough for every answer
/// (a traceparent and tracestate, a baggage header, the counters).
const IO_MIN: usize = 16 * 1024;

struct State {
    pipeline: Pipeline,
    console: bool,
    timer_at: Option<u64>,
}

struct Global {
    io: UnsafeCell<Vec<u8>>,
    state: UnsafeCell<Option<State>>,
}

// SAFETY: wasm32 without threads: one thread, and no export runs while
// another is on the stack (imports never call back into exports).
unsafe impl Sync for Global {}

static GLOBAL: Global = Global { io: UnsafeCell::new(Vec::new()), state: UnsafeCell::new(None) };

fn io() -> &'static mut Vec<u8> {
    // SAFETY: see `Global`.
    unsafe { &mut *GLOBAL.io.get() }
}

fn state() -> Option<&'static mut State> {
    // SAFETY: see `Global`.
    unsafe { (*GLOBAL.state.get()).as_mut() }
}

/// The io buffer's first `len` bytes.
fn input(len: usize) -> &'static [u8] {
    let io = io();
    &io[..len.min(io.len())]
}

/// `len` bytes of the io buffer from `at`, as UTF-8 ('' if not).
fn text(at: usize, len: usize) -> &'static str {
    let io = io();
    let end = at.saturating_add(len).min(io.len());
    core::str::from_utf8(&io[at.min(end)..end]).unwrap_or("")
}

/// Writes an answer at the start of the io buffer; returns its length.
fn answer(bytes: &[u8]) -> usize {
    let io = io();
    let n = bytes.len().min(io.len());
    io[..n].copy_from_slice(&bytes[..n]);
    n
}

fn mono() -> u64 {
    // SAFETY: an imported JS function without memory effects.
    let ms = unsafe { now() };
    if ms > 0.0 { ms as u64 } else { 0 }
}

/// Room for `len` bytes of input; returns where to write them.
#[no_mangle]
pub extern "C" fn tl_io(len: usize) -> *mut u8 {
    let io = io();
    let want = len.max(IO_MIN);
    if io.len() < want {
        io.resize(want, 0);
    }
    io.as_mut_ptr()
}

/// Sets up tracing. io: 32 seed bytes, then the service name, version and
/// SDK language (lengths given). `flags`: 1 JSON encoding, 2 console export,
/// 8 gzip request bodies (where smaller; never beacons or stored bodies).
/// Returns 0 when this build lacks what `flags` asks for (JSON, console),
/// else 1, plus 2 when bodies are gzip'd (flag 8 in a build with the `gzip`
/// feature; without it, flag 8 is ignored).
#[no_mangle]
pub extern "C" fn tl_init(
    name_len: usize, version_len: usize, language_len: usize, sample_ratio: f64, flags: u32, schedule_ms: f64,
    max_queue: f64, max_batch: f64,
) -> u32 {
    let mut seed = [0u8; 32];
    seed.copy_from_slice(input(32).get(..32).unwrap_or(&[0; 32]));
    let name = text(32, name_len);
    let version = text(32 + name_len, version_len);
    let language = text(32 + name_len + version_len, language_len);
    let mut config = PipelineConfig::new(name, Some(version).filter(|v| !v.is_empty()), language);
    if flags & 3 != 0 {
        #[cfg(not(feature = "json"))]
        return 0;
        #[cfg(feature = "json")]
        if flags & 1 != 0 {
            config.encoding = Encoding::Json;
        }
    }
    let _ = Encoding::Protobuf;
    config.compress = flags & 8 != 0;
    config.set_sample_ratio(sample_ratio);
    if schedule_ms >= 0.0 {
        config.export.schedule_delay_ms = schedule_ms as u64;
    }
    if max_queue >= 1.0 {
        config.export.max_queue_spans = max_queue as usize;
    }
    if max_batch >= 1.0 {
        config.export.max_batch_spans = max_batch as usize;
    }
    let pipeline = Pipeline::new(config, IdGenerator::from_seed(seed));
    let gzip = pipeline.compresses();
    // SAFETY: see `Global`.
    unsafe { *GLOBAL.state.get() = Some(State { pipeline, console: flags & 2 != 0, timer_at: None }) };
    1 | if gzip { 2 } else { 0 }
}

/// Adds a resource attribute. io: key, then value.
#[no_mangle]
pub extern "C" fn tl_resource(key_len: usize, value_len: usize) {
    if let Some(s) = state() {
        s.pipeline.set_resource_attribute(KeyValue::new(text(0, key_len), text(key_len, value_len)));
    }
}

fn kind_from(k: u32) -> SpanKind {
    match k {
        1 => SpanKind::Server,
        2 => SpanKind::Client,
        3 => SpanKind::Producer,
        4 => SpanKind::Consumer,
        _ => SpanKind::Internal,
    }
}

/// Bit 31 of a handle `tl_start` returns: the span is recording.
const RECORDING: u32 = 1 << 31;

/// Starts a span at `at_ms` (unix ms) → its handle | RECORDING, or 0. io: the
/// name, then a parent traceparent and tracestate (lengths may be 0). The
/// parent is span `parent` while it is live, else that W3C context (`remote`:
/// from another process; else a span of this one that has ended), else none.
#[no_mangle]
pub extern "C" fn tl_start(kind: u32, parent: u32, name_len: usize, tp_len: usize, ts_len: usize, remote: u32, at_ms: f64) -> u32 {
    let Some(s) = state() else { return 0 };
    let tracer = &mut s.pipeline.tracer;
    let name = text(0, name_len);
    let start = ms_to_nanos(at_ms);
    let local = SpanHandle(parent & !RECORDING);
    let h = if parent != 0 && tracer.context(local).is_some() {
        tracer.start_span(name, kind_from(kind), Parent::Local(local), start)
    } else {
        let mut ctx = if tp_len == 0 {
            None
        } else {
            trace_context::extract(Some(text(name_len, tp_len)), &[text(name_len + tp_len, ts_len)])
        };
        if let Some(c) = ctx.as_mut() {
            c.is_remote = remote != 0;
        }
        tracer.start_span(name, kind_from(kind), ctx.as_ref().map_or(Parent::Root, Parent::Remote), start)
    };
    if h == SpanHandle::NONE {
        return 0;
    }
    if tracer.is_recording(h) { h.0 | RECORDING } else { h.0 }
}

/// Ends span `h` at `at_ms` (unix ms) with its span log (io, `log_len`
/// bytes; staged and encoded, see `Pipeline::end_span_with_log`), and queues
/// it for export. Answers the span's context as
/// it was: 16 trace id bytes, 8 span id bytes, the flags byte, then its
/// tracestate; returns that length (0 when `h` was not live). `now_ms`:
/// the monotonic clock (as the `now` import reads it) at `at_ms`, or -1.
#[no_mangle]
pub extern "C" fn tl_end(h: u32, log_len: usize, at_ms: f64, now_ms: f64) -> usize {
    let Some(s) = state() else { return 0 };
    let h = SpanHandle(h & !RECORDING);
    // The context as it was, answered once the log (at the same place) is read.
    let ctx = s.pipeline.tracer.context(h).map(|c| (c.trace_id, c.span_id, c.flags.known(), c.trace_state.clone()));
    // JS passes the monotonic reading it just took for `at_ms` (-1: none).
    let now = if now_ms >= 0.0 { now_ms as u64 } else { mono() };
    let json = s.pipeline.end_span_with_log(h, input(log_len), ms_to_nanos(at_ms), now, s.console);
    let mut written = 0;
    if let Some((trace_id, span_id, flags, trace_state)) = ctx {
        let io = io();
        io[..16].copy_from_slice(&trace_id.0);
        io[16..24].copy_from_slice(&span_id.0);
        io[24] = flags.0;
        let n = trace_state.len().min(io.len() - 25);
        io[25..25 + n].copy_from_slice(&trace_state.as_bytes()[..n]);
        written = 25 + n;
    }
    #[cfg(feature = "json")]
    if let Some(json) = json {
        // SAFETY: JS copies the bytes before returning.
        unsafe { console(json.as_ptr(), json.len()) };
    }
    let _ = json;
    drive(s, now);
    written
}

/// 1 when a span ended now would be dropped (queue full, or shut down): JS
/// then ends it without its log, unless the log holds an HTTP response.
#[no_mangle]
pub extern "C" fn tl_full() -> u32 {
    state().map_or(0, |s| u32::from(s.pipeline.is_full()))
}

/// The W3C context of live span `h`: writes its traceparent (55 bytes), then
/// its tracestate; returns the total length (0 when `h` is not live).
#[no_mangle]
pub extern "C" fn tl_context(h: u32) -> usize {
    let Some(s) = state() else { return 0 };
    let Some(ctx) = s.pipeline.tracer.context(SpanHandle(h & !RECORDING)) else { return 0 };
    let mut out = String::with_capacity(64);
    trace_context::write_traceparent(ctx, &mut out);
    out.push_str(&ctx.trace_state);
    answer(out.as_bytes())
}

/// Validates a received traceparent + tracestate (io). Answers them
/// normalised (traceparent 55 bytes, then tracestate); 0 when invalid.
#[no_mangle]
pub extern "C" fn tl_extract(tp_len: usize, ts_len: usize) -> usize {
    match trace_context::extract(Some(text(0, tp_len)), &[text(tp_len, ts_len)]) {
        Some(ctx) => {
            let mut out = String::with_capacity(64);
            trace_context::write_traceparent(&ctx, &mut out);
            out.push_str(&ctx.trace_state);
            answer(out.as_bytes())
        }
        None => 0,
    }
}

/// (Full build.) A baggage header (io: header, key, value) with `key` set to `value`
/// within the W3C limits; -1 when the key or value is invalid. With
/// `key_len` 0: the header validated and re-serialised.
#[cfg(feature = "full")]
#[no_mangle]
pub extern "C" fn tl_baggage(header_len: usize, key_len: usize, value_len: usize) -> isize {
    let mut baggage = Baggage::parse(text(0, header_len));
    if key_len > 0 && baggage.insert(text(header_len, key_len), text(header_len + key_len, value_len), "").is_err() {
        return -1;
    }
    answer(baggage.header().as_bytes()) as isize
}

/// The export timer fired.
#[no_mangle]
pub extern "C" fn tl_timer() {
    if let Some(s) = state() {
        s.timer_at = None;
    }
    at_now(Pipeline::handle_timeout);
}

/// Request `id` finished: `status` is the HTTP status, 0 a network error, 1 a
/// timeout; `retry_after_ms` its Retry-After as a delay (JS reads the header:
/// no date parser in wasm), NaN or below 0 for none. io: the 2xx response body.
#[no_mangle]
pub extern "C" fn tl_outcome(id: f64, status: u32, retry_after_ms: f64, body_len: usize) {
    let Some(s) = state() else { return };
    let response = match status {
        0 => Response::NetworkError,
        1 => Response::Timeout,
        s => Response::Http {
            status: u16::try_from(s).unwrap_or(0),
            retry_after_ms: (retry_after_ms >= 0.0).then_some(retry_after_ms as u64),
            body: (body_len > 0).then(|| input(body_len)),
        },
    };
    let now = mono();
    s.pipeline.on_response(id as u64, response, now);
    drive(s, now);
}

/// Whether the store kept request `id` (transport 3).
#[no_mangle]
pub extern "C" fn tl_persisted(id: f64, stored: u32) {
    let Some(s) = state() else { return };
    let now = mono();
    s.pipeline.on_persisted(id as u64, stored != 0, now);
    drive(s, now);
}

/// The network went offline (0) or came back (1).
#[no_mangle]
pub extern "C" fn tl_online(online: u32) {
    at_now(|p, now| p.set_online(online != 0, now));
}

/// Whether JS can store requests (1: its IndexedDB store is open).
#[no_mangle]
pub extern "C" fn tl_persist(available: u32) {
    at_now(|p, _| p.set_persist(available != 0));
}

/// Exports everything queued now (`tl_idle` turns 1 when done).
#[no_mangle]
pub extern "C" fn tl_flush() {
    at_now(Pipeline::flush);
}

/// 1 when nothing is queued or in flight.
#[no_mangle]
pub extern "C" fn tl_idle() -> u32 {
    state().map_or(1, |s| u32::from(s.pipeline.is_idle()))
}

/// The page is being hidden or unloaded: everything goes with keepalive.
#[no_mangle]
pub extern "C" fn tl_page_hidden() {
    at_now(Pipeline::page_hidden);
}

/// The page is visible again.
#[no_mangle]
pub extern "C" fn tl_page_visible() {
    at_now(Pipeline::page_visible);
}

/// Stops accepting spans (later ones are dropped and counted).
#[no_mangle]
pub extern "C" fn tl_shutdown() {
    at_now(Pipeline::shutdown);
}

/// Writes every counter as an f64, in the order of `pipeline::STAT_NAMES`
/// (`STAT_NAMES` in pkg/tracelink.js); returns their number.
#[no_mangle]
pub extern "C" fn tl_stats() -> usize {
    let Some(s) = state() else { return 0 };
    let values = s.pipeline.stats_values();
    let io = io();
    for (i, v) in values.iter().enumerate() {
        io[i * 8..i * 8 + 8].copy_from_slice(&(*v as f64).to_le_bytes());
    }
    values.len()
}

fn at_now(event: impl FnOnce(&mut Pipeline, u64)) {
    let Some(s) = state() else { return };
    let now = mono();
    event(&mut s.pipeline, now);
    drive(s, now);
}

/// Sends what the policy wants sent and re-arms the timer.
fn drive(s: &mut State, now: u64) {
    while let Some(req) = s.pipeline.poll_request(now) {
        let transport = match req.transport {
            Transport::Fetch => 0,
            Transport::FetchKeepalive => 1,
            Transport::Beacon => 2,
            Transport::Persist => 3,
        };
        let transport = transport | if req.gzip { 8 } else { 0 };
        let spans = u32::try_from(req.spans).unwrap_or(u32::MAX);
        // SAFETY: JS copies the body out of linear memory before returning.
        let handed = unsafe { send(req.id as f64, req.body.as_ptr(), req.body.len(), transport, spans) } != 0;
        if req.transport == Transport::Beacon {
            s.pipeline.on_beacon(req.id, handed, now);
        } else if req.transport == Transport::Persist && !handed {
            s.pipeline.on_persisted(req.id, false, now);
        } else if !handed {
            s.pipeline.on_response(req.id, Response::NetworkError, now);
        }
    }
    let next = s.pipeline.poll_timeout();
    if next != s.timer_at {
        s.timer_at = next;
        // SAFETY: an imported JS function without memory effects.
        unsafe { timer(next.map_or(-1.0, |t| t.saturating_sub(now) as f64)) };
    }
}

/// Bench only (`--features bench-hooks`): nanoseconds to encode a batch of `n`
/// spans of the bench's shape (8 attributes, 1 event) into one OTLP request,
/// averaged over `iterations`.
#[cfg(feature = "bench-hooks")]
#[no_mangle]
pub extern "C" fn tl_encode_bench(n: u32, iterations: u32) -> f64 {
    let Some(s) = state() else { return 0.0 };
    let t0 = 1_700_000_000_000_000_000u64;
    let mut spans = Vec::with_capacity(n as usize);
    for i in 0..n {
        let h = s.pipeline.tracer.start_span("bench.span", SpanKind::Internal, Parent::Root, t0);
        let tr = &mut s.pipeline.tracer;
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
    let start = unsafe { now() };
    for _ in 0..iterations.max(1) {
        s.pipeline.encode_batch(&spans, &mut out);
    }
    (unsafe { now() } - start) * 1e6 / f64::from(iterations.max(1))
}
