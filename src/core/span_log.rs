//! The span log: everything recorded on a live span, in one buffer.
//!
//! A host that crosses a costly boundary (JS → wasm) stages a span's
//! attributes, events, status and HTTP outcome on its side and hands them over
//! once, when the span ends: one crossing per span instead of one per call.
//! [`apply`] replays such a log onto a live span of the [`Tracer`], with the
//! same limits and drop counts as direct calls.
//!
//! Format (all integers little-endian; `str` = LEB128 byte length + UTF-8):
//!
//! ```text
//! log    := op*
//! op     := 1 key:str value                       attribute
//!         | 2 time_ms:f64 name:str n:leb (key:str value)*n   event
//!         | 3 code:u8 message:str                 status (0 unset, 1 ok, 2 error)
//!         | 4 name:str                            rename
//!         | 5 status:leb traceresponse:str server_timing:str date_ms:f64 time_ms:f64
//!                                                 HTTP response (headers arrived at time_ms; its
//!                                                 Date header as unix ms, the host's parse: NaN if none)
//!         | 6 time_ms:f64 error_type:str message:str           HTTP request failed
//!         | 7 time_ms:f64 type:str message:str stack:str       exception (+ ERROR status)
//! value  := 0 str | 1 i64 | 2 f64 | 3 u8 | 4 elem:u8 n:leb elem_value*n
//! ```
//!
//! A malformed log applies what parsed before the fault and reports it;
//! nothing panics.
//!
//! Two ways to read a log. [`stage`], what the pipeline uses, reads it into a
//! [`StagedSpan`] that borrows every string from the log, so the encoders
//! write the span without copying a single attribute (`otlp::encode_staged`).
//! [`apply`] replays it onto a [`Tracer`] span through the tracer's own calls
//! (owned values): a second, deliberately independent reading, kept as the
//! reference a property test compares `stage` with. Both give the same span:
//! same limits, replacement by key, drop counts and status rules (the test
//! checks the encoded bytes).

use super::id::TraceId;
use super::span::{Array, KeyValue, Link, SpanLimits, Status, Value};
use super::text;
use super::trace_context;
use super::tracer::{SpanHandle, Tracer};

/// Op codes of the span log (see the module docs).
pub mod op {
    pub const ATTRIBUTE: u8 = 1;
    pub const EVENT: u8 = 2;
    pub const STATUS: u8 = 3;
    pub const RENAME: u8 = 4;
    pub const HTTP_RESPONSE: u8 = 5;
    pub const HTTP_FAILURE: u8 = 6;
    pub const EXCEPTION: u8 = 7;
}

/// Why a log stopped being applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, Malformed> {
        let b = *self.buf.get(self.pos).ok_or(Malformed)?;
        self.pos += 1;
        Ok(b)
    }
    fn leb(&mut self) -> Result<u64, Malformed> {
        let mut v = 0u64;
        let mut shift = 0;
        while shift < 64 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
        }
        Err(Malformed)
    }
    fn bytes8(&mut self) -> Result<[u8; 8], Malformed> {
        let s = self.buf.get(self.pos..self.pos + 8).ok_or(Malformed)?;
        self.pos += 8;
        let mut b = [0; 8];
        b.copy_from_slice(s);
        Ok(b)
    }
    fn f64(&mut self) -> Result<f64, Malformed> {
        Ok(f64::from_le_bytes(self.bytes8()?))
    }
    fn str(&mut self) -> Result<&'a str, Malformed> {
        let len = usize::try_from(self.leb()?).map_err(|_| Malformed)?;
        let end = self.pos.checked_add(len).ok_or(Malformed)?;
        let s = self.buf.get(self.pos..end).ok_or(Malformed)?;
        self.pos = end;
        core::str::from_utf8(s).map_err(|_| Malformed)
    }
    fn scalar(&mut self, tag: u8) -> Result<Value, Malformed> {
        Ok(match tag {
            0 => Value::String(self.str()?.to_owned()),
            1 => Value::I64(i64::from_le_bytes(self.bytes8()?)),
            2 => Value::F64(self.f64()?),
            3 => Value::Bool(self.u8()? != 0),
            _ => return Err(Malformed),
        })
    }
    fn value(&mut self) -> Result<Value, Malformed> {
        let tag = self.u8()?;
        if tag != 4 {
            return self.scalar(tag);
        }
        let elem = self.u8()?;
        let n = self.leb()?;
        // Bounded by what the buffer can hold: never allocate on a lie.
        let cap = usize::try_from(n).unwrap_or(0).min(self.buf.len() - self.pos);
        macro_rules! collect {
            ($variant:ident, $pat:pat => $out:expr) => {{
                let mut v = Vec::with_capacity(cap);
                for _ in 0..n {
                    match self.scalar(elem)? {
                        $pat => v.push($out),
                        _ => return Err(Malformed),
                    }
                }
                Array::$variant(v)
            }};
        }
        Ok(Value::Array(match elem {
            0 => collect!(String, Value::String(s) => s),
            1 => collect!(I64, Value::I64(i) => i),
            2 => collect!(F64, Value::F64(f) => f),
            3 => collect!(Bool, Value::Bool(b) => b),
            _ => return Err(Malformed),
        }))
    }
    fn key_value(&mut self) -> Result<KeyValue, Malformed> {
        let key = self.str()?.to_owned();
        Ok(KeyValue { key, value: self.value()? })
    }
    /// A scalar, borrowed. Arrays are checked element by element and kept as
    /// their raw bytes.
    fn staged_scalar(&mut self, tag: u8) -> Result<Staged<'a>, Malformed> {
        Ok(match tag {
            0 => Staged::Str(self.str()?),
            1 => Staged::I64(i64::from_le_bytes(self.bytes8()?)),
            2 => Staged::F64(self.f64()?),
            3 => Staged::Bool(self.u8()? != 0),
            _ => return Err(Malformed),
        })
    }
    fn staged_value(&mut self) -> Result<Staged<'a>, Malformed> {
        let tag = self.u8()?;
        if tag != 4 {
            return self.staged_scalar(tag);
        }
        let elem = self.u8()?;
        if elem > 3 {
            return Err(Malformed);
        }
        let n = self.leb()?;
        let start = self.pos;
        for _ in 0..n {
            self.staged_scalar(elem)?;
        }
        Ok(Staged::Array { elem, n: n as usize, raw: &self.buf[start..self.pos] })
    }
    fn staged_key_value(&mut self) -> Result<(&'a str, Staged<'a>), Malformed> {
        let key = self.str()?;
        Ok((key, self.staged_value()?))
    }
}

/// An attribute value as a log holds it, borrowed (see [`stage`]); the last
/// three are values tracelink adds from an HTTP response.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Staged<'a> {
    Str(&'a str),
    I64(i64),
    F64(f64),
    Bool(bool),
    /// A homogeneous array: its element tag (the `value` tags 0..=3), count,
    /// and the elements as the log wrote them (already checked).
    Array { elem: u8, n: usize, raw: &'a [u8] },
    /// A trace id, sent as 32 hex digits.
    TraceIdHex([u8; 16]),
    /// A span id, sent as 16 hex digits.
    SpanIdHex([u8; 8]),
    /// An HTTP status, sent as its 3 digits (`error.type`).
    StatusDigits(u16),
}

impl<'a> Staged<'a> {
    /// Calls `each` on every element of an array value, in order (a no-op
    /// for other values).
    pub fn for_each_element(&self, mut each: impl FnMut(Staged<'a>)) {
        if let Staged::Array { elem, n, raw } = *self {
            let mut r = Reader { buf: raw, pos: 0 };
            for _ in 0..n {
                match r.staged_scalar(elem) {
                    Ok(v) => each(v),
                    Err(Malformed) => return,
                }
            }
        }
    }
}

/// One key/value of a [`StagedSpan`].
pub type StagedAttribute<'a> = (&'a str, Staged<'a>);

/// An event of a [`StagedSpan`]; its attributes are
/// `event_attributes[attributes.0..attributes.1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct StagedEvent<'a> {
    pub time_unix_nano: u64,
    pub name: &'a str,
    pub attributes: (usize, usize),
    pub dropped_attributes_count: u32,
}

/// Everything a span log recorded, limited as [`apply`] would, borrowing
/// from the log (see [`stage`]).
#[derive(Debug, Default)]
pub struct StagedSpan<'a> {
    /// The last rename, if any.
    pub name: Option<&'a str>,
    pub attributes: Vec<StagedAttribute<'a>>,
    pub dropped_attributes_count: u32,
    pub events: Vec<StagedEvent<'a>>,
    pub event_attributes: Vec<StagedAttribute<'a>>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    /// Status code (0 unset, 1 ok, 2 error) and error message.
    pub status: (u8, &'a str),
    /// The HTTP response the log recorded, if any.
    pub response: Option<HttpResponse<'a>>,
}

/// [`set_limited`](super::span) for staged lists: replaces by key within
/// `list[from..]`, else appends under `max`; returns 1 when dropped.
fn set_staged<'a>(list: &mut Vec<StagedAttribute<'a>>, from: usize, kv: StagedAttribute<'a>, max: u32) -> u32 {
    if let Some(existing) = list[from..].iter_mut().find(|(k, _)| *k == kv.0) {
        existing.1 = kv.1;
        return 0;
    }
    if (list.len() - from) as u32 >= max {
        return 1;
    }
    list.push(kv);
    0
}

impl<'a> StagedSpan<'a> {
    /// Sets an attribute within `limits` (replacing one with the same key).
    pub fn set_attribute(&mut self, kv: StagedAttribute<'a>, limits: &SpanLimits) {
        self.dropped_attributes_count += set_staged(&mut self.attributes, 0, kv, limits.max_attributes);
    }

    fn set_status(&mut self, code: u8, message: &'a str) {
        // `Ok` is final; `Unset` never overrides (Tracer::set_status).
        if self.status.0 != 1 && code != 0 {
            self.status = (code, if code == 2 { message } else { "" });
        }
    }

    /// Adds an event whose attributes were pushed onto `event_attributes`
    /// from `from` on (limited here, as `SpanData::add_event` does).
    fn add_event(&mut self, time_unix_nano: u64, name: &'a str, from: usize, limits: &SpanLimits) {
        if self.events.len() as u32 >= limits.max_events {
            self.event_attributes.truncate(from);
            self.dropped_events_count = self.dropped_events_count.saturating_add(1);
            return;
        }
        // Re-insert one by one: replacement by key and the per-event limit.
        let mut dropped = 0u32;
        let end = self.event_attributes.len();
        let mut kept = from;
        for i in from..end {
            let kv = self.event_attributes[i];
            if let Some(j) = (from..kept).find(|&j| self.event_attributes[j].0 == kv.0) {
                self.event_attributes[j].1 = kv.1;
            } else if (kept - from) as u32 >= limits.max_attributes_per_event {
                dropped = dropped.saturating_add(1);
            } else {
                self.event_attributes[kept] = kv;
                kept += 1;
            }
        }
        self.event_attributes.truncate(kept);
        self.events.push(StagedEvent { time_unix_nano, name, attributes: (from, kept), dropped_attributes_count: dropped });
    }

    fn record_exception(&mut self, type_: &'a str, message: &'a str, stack: &'a str, time: u64, limits: &SpanLimits) {
        let from = self.event_attributes.len();
        if !type_.is_empty() {
            self.event_attributes.push(("exception.type", Staged::Str(type_)));
        }
        self.event_attributes.push(("exception.message", Staged::Str(message)));
        if !stack.is_empty() {
            self.event_attributes.push(("exception.stacktrace", Staged::Str(stack)));
        }
        self.add_event(time, "exception", from, limits);
    }
}

/// Reads `log` into a [`StagedSpan`] for a span of trace `trace_id`, within
/// `limits`, exactly as [`apply`] would record it. A malformed log keeps what
/// parsed before the fault (the error is returned with it).
pub fn stage<'a>(log: &'a [u8], trace_id: TraceId, limits: &SpanLimits) -> (StagedSpan<'a>, Result<(), Malformed>) {
    let mut span = StagedSpan { attributes: Vec::with_capacity(16), ..StagedSpan::default() };
    let result = stage_into(&mut span, log, trace_id, limits);
    (span, result)
}

fn stage_into<'a>(span: &mut StagedSpan<'a>, log: &'a [u8], trace_id: TraceId, limits: &SpanLimits) -> Result<(), Malformed> {
    let mut r = Reader { buf: log, pos: 0 };
    while r.pos < log.len() {
        match r.u8()? {
            op::ATTRIBUTE => {
                let kv = r.staged_key_value()?;
                span.set_attribute(kv, limits);
            }
            op::EVENT => {
                let time = ms_to_nanos(r.f64()?);
                let name = r.str()?;
                let n = r.leb()?;
                let from = span.event_attributes.len();
                for _ in 0..n {
                    match r.staged_key_value() {
                        Ok(kv) => span.event_attributes.push(kv),
                        Err(e) => {
                            span.event_attributes.truncate(from);
                            return Err(e);
                        }
                    }
                }
                span.add_event(time, name, from, limits);
            }
            op::STATUS => {
                let code = r.u8()?;
                let message = r.str()?;
                span.set_status(if code > 2 { 0 } else { code }, message);
            }
            op::RENAME => span.name = Some(r.str()?),
            op::HTTP_RESPONSE => {
                let status = u16::try_from(r.leb()?).unwrap_or(0);
                let traceresponse = r.str()?;
                let server_timing = r.str()?;
                let date_unix_s = date_seconds(r.f64()?);
                let at_unix_nano = ms_to_nanos(r.f64()?);
                span.set_attribute(("http.response.status_code", Staged::I64(i64::from(status))), limits);
                if status >= 400 {
                    span.set_attribute(("error.type", Staged::StatusDigits(status)), limits);
                    span.set_status(2, "");
                }
                let server = trace_context::parse_traceparent(text::trim(traceresponse))
                    .or_else(|| server_timing_traceparent(server_timing).and_then(trace_context::parse_traceparent));
                if let Some(server) = server {
                    span.set_attribute(("tracelink.response.trace_id", Staged::TraceIdHex(server.trace_id.0)), limits);
                    span.set_attribute(("tracelink.response.span_id", Staged::SpanIdHex(server.span_id.0)), limits);
                    if server.trace_id != trace_id {
                        if span.links.len() as u32 >= limits.max_links {
                            span.dropped_links_count = span.dropped_links_count.saturating_add(1);
                        } else {
                            span.links.push(Link { span_context: server, attributes: Vec::new(), dropped_attributes_count: 0 });
                        }
                    }
                }
                span.response = Some(HttpResponse { at_unix_nano, server_timing, date_unix_s });
            }
            op::HTTP_FAILURE => {
                let time = ms_to_nanos(r.f64()?);
                let error_type = r.str()?;
                let message = r.str()?;
                span.set_attribute(("error.type", Staged::Str(error_type)), limits);
                span.record_exception(error_type, message, "", time, limits);
                span.set_status(2, message);
            }
            op::EXCEPTION => {
                let time = ms_to_nanos(r.f64()?);
                let type_ = r.str()?;
                let message = r.str()?;
                let stack = r.str()?;
                span.record_exception(type_, message, stack, time, limits);
                span.set_status(2, message);
            }
            _ => return Err(Malformed),
        }
    }
    Ok(())
}

/// Milliseconds (f64) to nanoseconds, rounded to whole microseconds (the
/// finest resolution hosts give; finer digits would be noise on the wire).
pub fn ms_to_nanos(ms: f64) -> u64 {
    // NaN and negatives saturate to 0 in the cast, far futures to the largest time.
    ((ms * 1000.0).round() as u64).saturating_mul(1000)
}

/// An HTTP response the log recorded, for clock-skew estimation
/// (`Pipeline::clock_sample_from_response`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HttpResponse<'a> {
    /// When the response headers arrived, unix nanoseconds.
    pub at_unix_nano: u64,
    pub server_timing: &'a str,
    /// The `Date` header, unix seconds (`None`: absent or not an HTTP-date).
    pub date_unix_s: Option<u64>,
}

/// A `Date` header's unix ms as the host parsed it → unix seconds (`None`
/// for NaN, 0 or less: absent, unparsed, or before 1970).
fn date_seconds(ms: f64) -> Option<u64> {
    (ms > 0.0).then(|| (ms / 1000.0) as u64)
}

/// Replays `log` onto live span `h` (see the module docs). Ops on a span that
/// is not live or not recording are skipped, as direct calls would be.
/// Returns the HTTP response it recorded, if any.
pub fn apply<'a>(tracer: &mut Tracer, h: SpanHandle, log: &'a [u8]) -> Result<Option<HttpResponse<'a>>, Malformed> {
    let mut response = None;
    let mut r = Reader { buf: log, pos: 0 };
    while r.pos < log.len() {
        match r.u8()? {
            op::ATTRIBUTE => {
                let kv = r.key_value()?;
                tracer.set_attribute(h, kv);
            }
            op::EVENT => {
                let time = ms_to_nanos(r.f64()?);
                let name = r.str()?;
                let n = r.leb()?;
                let mut attributes = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(64));
                for _ in 0..n {
                    attributes.push(r.key_value()?);
                }
                tracer.add_event(h, name, time, attributes);
            }
            op::STATUS => {
                let code = r.u8()?;
                let message = r.str()?;
                tracer.set_status(h, match code {
                    1 => Status::Ok,
                    2 => Status::Error(message.to_owned()),
                    _ => Status::Unset,
                });
            }
            op::RENAME => {
                let name = r.str()?;
                tracer.update_name(h, name);
            }
            op::HTTP_RESPONSE => {
                let status = u16::try_from(r.leb()?).unwrap_or(0);
                let traceresponse = r.str()?;
                let server_timing = r.str()?;
                let date_unix_s = date_seconds(r.f64()?);
                let at_unix_nano = ms_to_nanos(r.f64()?);
                http_response(tracer, h, status, traceresponse, server_timing);
                response = Some(HttpResponse { at_unix_nano, server_timing, date_unix_s });
            }
            op::HTTP_FAILURE => {
                let time = ms_to_nanos(r.f64()?);
                let error_type = r.str()?;
                let message = r.str()?;
                tracer.set_attribute(h, KeyValue::new("error.type", error_type));
                tracer.record_exception(h, error_type, message, "", time);
                tracer.set_status(h, Status::Error(message.to_owned()));
            }
            op::EXCEPTION => {
                let time = ms_to_nanos(r.f64()?);
                let type_ = r.str()?;
                let message = r.str()?;
                let stack = r.str()?;
                tracer.record_exception(h, type_, message, stack, time);
                tracer.set_status(h, Status::Error(message.to_owned()));
            }
            _ => return Err(Malformed),
        }
    }
    Ok(response)
}

/// An HTTP CLIENT span's outcome: status code, `error.type` for 4xx/5xx, and
/// the server's span read back from `traceresponse` or
/// `Server-Timing: traceparent|trace;desc=…`. A server that did not continue
/// our trace gets a link instead.
pub fn http_response(tracer: &mut Tracer, h: SpanHandle, status: u16, traceresponse: &str, server_timing: &str) {
    tracer.set_attribute(h, KeyValue::new("http.response.status_code", i64::from(status)));
    if status >= 400 {
        let mut digits = String::with_capacity(3);
        for d in [status / 100 % 10, status / 10 % 10, status % 10] {
            digits.push(char::from(b'0' + d as u8));
        }
        tracer.set_attribute(h, KeyValue::new("error.type", digits));
        tracer.set_status(h, Status::Error(String::new()));
    }
    let server = trace_context::parse_traceparent(text::trim(traceresponse))
        .or_else(|| server_timing_traceparent(server_timing).and_then(trace_context::parse_traceparent));
    if let Some(server) = server {
        tracer.set_attribute(h, KeyValue::new("tracelink.response.trace_id", server.trace_id.to_hex()));
        tracer.set_attribute(h, KeyValue::new("tracelink.response.span_id", server.span_id.to_hex()));
        let ours = tracer.context(h).map(|c| c.trace_id);
        if ours.is_some_and(|ours| ours != server.trace_id) {
            tracer.add_link(h, server, Vec::new());
        }
    }
}

/// The `desc` of a `traceparent` or `trace` entry in a Server-Timing header.
pub fn server_timing_traceparent(header: &str) -> Option<&str> {
    text::split(header, b',').find_map(|entry| {
        let mut parts = text::split(entry, b';');
        let name = text::trim(parts.next()?);
        if !name.eq_ignore_ascii_case("traceparent") && !name.eq_ignore_ascii_case("trace") {
            return None;
        }
        parts.find_map(|p| {
            let (k, v) = text::split_once(p, b'=')?;
            text::trim(k).eq_ignore_ascii_case("desc").then(|| text::trim_by(text::trim(v), |c| c == b'"'))
        })
    })
}

/// Writes span logs (the host side of the format, in Rust: for tests and for
/// Rust hosts that stage too).
#[derive(Default)]
pub struct LogWriter {
    pub buf: Vec<u8>,
}

impl LogWriter {
    fn leb(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.buf.push(b);
                return;
            }
            self.buf.push(b | 0x80);
        }
    }
    fn str(&mut self, s: &str) {
        self.leb(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }
    fn value(&mut self, v: &Value) {
        match v {
            Value::String(s) => {
                self.buf.push(0);
                self.str(s);
            }
            Value::I64(i) => {
                self.buf.push(1);
                self.buf.extend_from_slice(&i.to_le_bytes());
            }
            Value::F64(f) => {
                self.buf.push(2);
                self.buf.extend_from_slice(&f.to_le_bytes());
            }
            Value::Bool(b) => {
                self.buf.push(3);
                self.buf.push(u8::from(*b));
            }
            Value::Array(a) => {
                self.buf.push(4);
                match a {
                    Array::String(v) => {
                        self.buf.push(0);
                        self.leb(v.len() as u64);
                        v.iter().for_each(|s| self.str(s));
                    }
                    Array::I64(v) => {
                        self.buf.push(1);
                        self.leb(v.len() as u64);
                        v.iter().for_each(|i| self.buf.extend_from_slice(&i.to_le_bytes()));
                    }
                    Array::F64(v) => {
                        self.buf.push(2);
                        self.leb(v.len() as u64);
                        v.iter().for_each(|f| self.buf.extend_from_slice(&f.to_le_bytes()));
                    }
                    Array::Bool(v) => {
                        self.buf.push(3);
                        self.leb(v.len() as u64);
                        v.iter().for_each(|b| self.buf.push(u8::from(*b)));
                    }
                }
            }
        }
    }
    /// Stages an attribute.
    pub fn attribute(&mut self, kv: &KeyValue) -> &mut Self {
        self.buf.push(op::ATTRIBUTE);
        self.str(&kv.key);
        self.value(&kv.value);
        self
    }
    /// Stages an event at `time_ms` (unix milliseconds).
    pub fn event(&mut self, time_ms: f64, name: &str, attributes: &[KeyValue]) -> &mut Self {
        self.buf.push(op::EVENT);
        self.buf.extend_from_slice(&time_ms.to_le_bytes());
        self.str(name);
        self.leb(attributes.len() as u64);
        for kv in attributes {
            self.str(&kv.key);
            self.value(&kv.value);
        }
        self
    }
    /// Stages a status.
    pub fn status(&mut self, code: u8, message: &str) -> &mut Self {
        self.buf.push(op::STATUS);
        self.buf.push(code);
        self.str(message);
        self
    }
    /// Stages a rename.
    pub fn rename(&mut self, name: &str) -> &mut Self {
        self.buf.push(op::RENAME);
        self.str(name);
        self
    }
    /// Stages a failed HTTP request at `time_ms` (unix ms).
    pub fn http_failure(&mut self, time_ms: f64, error_type: &str, message: &str) -> &mut Self {
        self.buf.push(op::HTTP_FAILURE);
        self.buf.extend_from_slice(&time_ms.to_le_bytes());
        self.str(error_type);
        self.str(message);
        self
    }
    /// Stages an exception at `time_ms` (unix ms).
    pub fn exception(&mut self, time_ms: f64, type_: &str, message: &str, stack: &str) -> &mut Self {
        self.buf.push(op::EXCEPTION);
        self.buf.extend_from_slice(&time_ms.to_le_bytes());
        self.str(type_);
        self.str(message);
        self.str(stack);
        self
    }
    /// Stages an HTTP response whose headers arrived at `time_ms` (unix ms),
    /// with its `Date` header as unix ms (`date_ms`; NaN when none).
    pub fn http_response(&mut self, status: u16, traceresponse: &str, server_timing: &str, date_ms: f64, time_ms: f64) -> &mut Self {
        self.buf.push(op::HTTP_RESPONSE);
        self.leb(u64::from(status));
        self.str(traceresponse);
        self.str(server_timing);
        self.buf.extend_from_slice(&date_ms.to_le_bytes());
        self.buf.extend_from_slice(&time_ms.to_le_bytes());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::id::IdGenerator;
    use crate::core::span::SpanKind;
    use crate::core::tracer::{Parent, TracerConfig};

    fn tracer() -> Tracer {
        Tracer::new(TracerConfig::default(), IdGenerator::from_seed([7; 32]))
    }

    #[test]
    fn a_log_applies_like_direct_calls() {
        let mut t = tracer();
        let h = t.start_span("s", SpanKind::Client, Parent::Root, 1_000);
        let mut w = LogWriter::default();
        w.attribute(&KeyValue::new("a", "x"))
            .attribute(&KeyValue::new("n", 42i64))
            .attribute(&KeyValue { key: "arr".into(), value: Value::Array(Array::Bool(vec![true, false])) })
            .event(1.5, "e", &[KeyValue::new("k", 1.25f64)])
            .http_response(503, "", "traceparent;desc=\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"", f64::NAN, 1.75);
        let response = apply(&mut t, h, &w.buf).unwrap().expect("the response is reported");
        assert_eq!(response.at_unix_nano, 1_750_000);
        let span = t.end_span(h, 2_000).unwrap();
        let get = |k: &str| span.attributes.iter().find(|kv| kv.key == k).map(|kv| kv.value.clone());
        assert_eq!(get("a"), Some(Value::String("x".into())));
        assert_eq!(get("n"), Some(Value::I64(42)));
        assert_eq!(get("http.response.status_code"), Some(Value::I64(503)));
        assert_eq!(get("error.type"), Some(Value::String("503".into())));
        assert_eq!(get("tracelink.response.span_id"), Some(Value::String("b7ad6b7169203331".into())));
        assert_eq!(span.events.len(), 1);
        assert_eq!(span.events[0].time_unix_nano, 1_500_000);
        assert_eq!(span.links.len(), 1, "the server answered in another trace: linked");
        assert!(matches!(span.status, Status::Error(_)));
    }

    #[test]
    fn malformed_logs_stop_cleanly() {
        let mut t = tracer();
        let h = t.start_span("s", SpanKind::Internal, Parent::Root, 1);
        let mut w = LogWriter::default();
        w.attribute(&KeyValue::new("kept", true));
        let good = w.buf.len();
        for bad in [&[9u8][..], &[1, 5, b'a'], &[1, 1, b'k', 4, 0, 0xff, 0xff, 0xff, 0xff, 0x0f], &[1, 1, 0xff, 0, 0]] {
            let mut log = w.buf[..good].to_vec();
            log.extend_from_slice(bad);
            assert_eq!(apply(&mut t, h, &log).err(), Some(Malformed));
        }
        let span = t.end_span(h, 2).unwrap();
        assert!(span.attributes.iter().any(|kv| kv.key == "kept"));
    }

    /// The protobuf bytes of a span given `log`: (replayed onto the tracer
    /// and encoded, staged and encoded straight from the log).
    fn both_paths(ops: &[TestOp], cut: usize, limits: SpanLimits, offset: i64, enc: crate::core::otlp::Encoding) -> (Vec<u8>, Vec<u8>) {
        use crate::core::clock_skew::{apply_offset, offset_ms, OFFSET_ATTRIBUTE};
        use crate::core::otlp::{encode_span, encode_staged};
        let config = TracerConfig { limits, ..TracerConfig::default() };
        let mut old = Tracer::new(config, IdGenerator::from_seed([3; 32]));
        let h = old.start_span("s", SpanKind::Client, Parent::Root, 1_000_000_000);
        let trace_id = old.context(h).unwrap().trace_id;
        let log = write_ops(ops, trace_id);
        let log = &log[..cut.min(log.len())];
        let _ = apply(&mut old, h, log);
        let mut span = old.end_span(h, 5_000_000_000).unwrap();
        apply_offset(&mut span, offset, &limits);
        let mut a = Vec::new();
        encode_span(enc, &span, &mut a);

        let mut new = Tracer::new(config, IdGenerator::from_seed([3; 32]));
        let h = new.start_span("s", SpanKind::Client, Parent::Root, 1_000_000_000);
        let (mut staged, _) = stage(log, trace_id, &limits);
        let span = new.end_span(h, 5_000_000_000).unwrap();
        if offset != 0 {
            staged.set_attribute((OFFSET_ATTRIBUTE, Staged::I64(offset_ms(offset))), &limits);
        }
        let mut b = Vec::new();
        encode_staged(enc, &span, &staged, offset, &limits, &mut b);
        (a, b)
    }

    #[derive(Clone, Debug)]
    enum TestOp {
        Attr(u8, Value),
        Event(f64, String, Vec<(u8, Value)>),
        Status(u8, String),
        Rename(String),
        /// status, traceresponse choice (0 none, 1 same trace, 2 another), in Server-Timing instead
        Response(u16, u8, bool),
        Failure(f64, String, String),
        Exception(f64, String, String, String),
    }

    const KEYS: [&str; 6] = ["a", "b", "error.type", "http.response.status_code", "é€", "tracelink.clock_offset_ms"];

    fn write_ops(ops: &[TestOp], trace_id: crate::core::id::TraceId) -> Vec<u8> {
        let mut w = LogWriter::default();
        for op in ops {
            match op {
                TestOp::Attr(k, v) => {
                    w.attribute(&KeyValue { key: KEYS[*k as usize].into(), value: v.clone() });
                }
                TestOp::Event(t, name, kvs) => {
                    let kvs: Vec<KeyValue> =
                        kvs.iter().map(|(k, v)| KeyValue { key: KEYS[*k as usize].into(), value: v.clone() }).collect();
                    w.event(*t, name, &kvs);
                }
                TestOp::Status(code, m) => {
                    w.status(*code, m);
                }
                TestOp::Rename(n) => {
                    w.rename(n);
                }
                TestOp::Response(status, which, in_timing) => {
                    let tp = match which {
                        1 => format!("00-{}-b7ad6b7169203331-01", trace_id.to_hex()),
                        2 => "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
                        _ => String::new(),
                    };
                    if *in_timing {
                        w.http_response(*status, "", &format!("traceparent;desc=\"{tp}\""), f64::NAN, 1_500.25);
                    } else {
                        w.http_response(*status, &tp, "", f64::NAN, 1_500.25);
                    }
                }
                TestOp::Failure(t, ty, m) => {
                    w.http_failure(*t, ty, m);
                }
                TestOp::Exception(t, ty, m, st) => {
                    w.exception(*t, ty, m, st);
                }
            }
        }
        w.buf
    }

    mod staged_equals_applied {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![Just(String::new()), "[a-z]{1,6}", "[aé€😀]{1,5}"]
        }
        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                text().prop_map(Value::String),
                any::<i64>().prop_map(Value::I64),
                any::<f64>().prop_map(Value::F64),
                any::<bool>().prop_map(Value::Bool),
                prop::collection::vec(text(), 0..4).prop_map(|v| Value::Array(Array::String(v))),
                prop::collection::vec(any::<i64>(), 0..4).prop_map(|v| Value::Array(Array::I64(v))),
                prop::collection::vec(any::<f64>(), 0..3).prop_map(|v| Value::Array(Array::F64(v))),
                prop::collection::vec(any::<bool>(), 0..3).prop_map(|v| Value::Array(Array::Bool(v))),
            ]
        }
        fn op() -> impl Strategy<Value = TestOp> {
            prop_oneof![
                4 => (0u8..6, value()).prop_map(|(k, v)| TestOp::Attr(k, v)),
                2 => (0.0f64..3e12, text(), prop::collection::vec((0u8..6, value()), 0..5))
                    .prop_map(|(t, n, kv)| TestOp::Event(t, n, kv)),
                1 => (0u8..4, text()).prop_map(|(c, m)| TestOp::Status(c, m)),
                1 => text().prop_map(TestOp::Rename),
                1 => (prop_oneof![Just(0u16), Just(200), Just(404), Just(503)], 0u8..3, any::<bool>())
                    .prop_map(|(s, w, t)| TestOp::Response(s, w, t)),
                1 => (0.0f64..3e12, text(), text()).prop_map(|(t, a, b)| TestOp::Failure(t, a, b)),
                1 => (0.0f64..3e12, text(), text(), text()).prop_map(|(t, a, b, c)| TestOp::Exception(t, a, b, c)),
            ]
        }
        fn limits() -> impl Strategy<Value = SpanLimits> {
            (0u32..6, 0u32..4, 0u32..4, 0u32..3, prop::option::of(0u32..9)).prop_map(|(a, pe, e, l, len)| SpanLimits {
                max_attributes: a,
                max_attributes_per_event: pe,
                max_attributes_per_link: 128,
                max_events: e,
                max_links: l,
                max_attribute_value_length: len,
            })
        }

        /// Encodes a span whose log is `log` (any bytes) both ways.
        fn both_paths_raw(log: &[u8], limits: SpanLimits, enc: crate::core::otlp::Encoding) -> (Vec<u8>, Vec<u8>) {
            use crate::core::otlp::{encode_span, encode_staged};
            let config = TracerConfig { limits, ..TracerConfig::default() };
            let mut old = Tracer::new(config, IdGenerator::from_seed([5; 32]));
            let h = old.start_span("s", SpanKind::Server, Parent::Root, 7_000);
            let trace_id = old.context(h).unwrap().trace_id;
            let _ = apply(&mut old, h, log);
            let span = old.end_span(h, 9_000).unwrap();
            let mut a = Vec::new();
            encode_span(enc, &span, &mut a);
            let mut new = Tracer::new(config, IdGenerator::from_seed([5; 32]));
            let h = new.start_span("s", SpanKind::Server, Parent::Root, 7_000);
            let (staged, _) = stage(log, trace_id, &limits);
            let span = new.end_span(h, 9_000).unwrap();
            let mut b = Vec::new();
            encode_staged(enc, &span, &staged, 0, &limits, &mut b);
            (a, b)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]
            /// Arbitrary bytes (mostly near-valid: op codes and small lengths)
            /// never panic, and both paths keep exactly the same prefix.
            #[test]
            fn any_bytes_same_bytes(log in prop::collection::vec(prop_oneof![0u8..8, any::<u8>()], 0..120),
                                    limits in prop_oneof![Just(SpanLimits::default()), limits()]) {
                let (applied, staged) = both_paths_raw(&log, limits, crate::core::otlp::Encoding::Protobuf);
                prop_assert_eq!(applied, staged);
                #[cfg(feature = "json")]
                {
                    let (applied, staged) = both_paths_raw(&log, limits, crate::core::otlp::Encoding::Json);
                    prop_assert_eq!(applied, staged);
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn same_bytes(ops in prop::collection::vec(op(), 0..12), cut in any::<usize>(), whole in any::<bool>(),
                          limits in prop_oneof![Just(SpanLimits::default()), limits()],
                          offset in prop_oneof![Just(0i64), -3_000_000_000i64..3_000_000_000]) {
                let cut = if whole { usize::MAX } else { cut % 200 };
                let (applied, staged) = both_paths(&ops, cut, limits, offset, crate::core::otlp::Encoding::Protobuf);
                prop_assert_eq!(applied, staged);
                #[cfg(feature = "json")]
                {
                    let (applied, staged) = both_paths(&ops, cut, limits, offset, crate::core::otlp::Encoding::Json);
                    prop_assert_eq!(String::from_utf8(applied).unwrap(), String::from_utf8(staged).unwrap());
                }
            }
        }
    }

    #[test]
    fn times_saturate() {
        assert_eq!(ms_to_nanos(1.5), 1_500_000);
        assert_eq!(ms_to_nanos(f64::NAN), 0);
        assert_eq!(ms_to_nanos(-3.0), 0);
        assert_eq!(ms_to_nanos(1e300), u64::MAX, "saturates, never wraps");
    }

    #[test]
    fn server_timing_entries() {
        assert_eq!(server_timing_traceparent("db;dur=2, traceparent;desc=\"00-x\""), Some("00-x"));
        assert_eq!(server_timing_traceparent("trace;desc=00-y"), Some("00-y"));
        assert_eq!(server_timing_traceparent("cache;desc=hit"), None);
    }
}
