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
//!         | 5 status:leb traceresponse:str server_timing:str date:str time_ms:f64
//!                                                 HTTP response (headers arrived at time_ms)
//!         | 6 time_ms:f64 error_type:str message:str           HTTP request failed
//!         | 7 time_ms:f64 type:str message:str stack:str       exception (+ ERROR status)
//! value  := 0 str | 1 i64 | 2 f64 | 3 u8 | 4 elem:u8 n:leb elem_value*n
//! ```
//!
//! A malformed log applies what parsed before the fault and reports it;
//! nothing panics.

use super::span::{Array, KeyValue, Status, Value};
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
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
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
}

/// Milliseconds (f64) to nanoseconds, rounded to whole microseconds (the
/// finest resolution hosts give; finer digits would be noise on the wire).
pub fn ms_to_nanos(ms: f64) -> u64 {
    // NaN and negatives saturate to 0 in the cast.
    (ms * 1000.0).round() as u64 * 1000
}

/// An HTTP response the log recorded, for clock-skew estimation
/// (`Pipeline::clock_sample_from_response`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HttpResponse<'a> {
    /// When the response headers arrived, unix nanoseconds.
    pub at_unix_nano: u64,
    pub server_timing: &'a str,
    pub date: &'a str,
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
                let date = r.str()?;
                let at_unix_nano = ms_to_nanos(r.f64()?);
                http_response(tracer, h, status, traceresponse, server_timing);
                response = Some(HttpResponse { at_unix_nano, server_timing, date });
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
    let server = trace_context::parse_traceparent(traceresponse.trim())
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
    header.split(',').find_map(|entry| {
        let mut parts = entry.split(';');
        let name = parts.next()?.trim();
        if !name.eq_ignore_ascii_case("traceparent") && !name.eq_ignore_ascii_case("trace") {
            return None;
        }
        parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("desc").then(|| v.trim().trim_matches('"'))
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
    /// Stages an HTTP response whose headers arrived at `time_ms` (unix ms).
    pub fn http_response(&mut self, status: u16, traceresponse: &str, server_timing: &str, date: &str, time_ms: f64) -> &mut Self {
        self.buf.push(op::HTTP_RESPONSE);
        self.leb(u64::from(status));
        self.str(traceresponse);
        self.str(server_timing);
        self.str(date);
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
            .http_response(503, "", "traceparent;desc=\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"", "", 1.75);
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

    #[test]
    fn server_timing_entries() {
        assert_eq!(server_timing_traceparent("db;dur=2, traceparent;desc=\"00-x\""), Some("00-x"));
        assert_eq!(server_timing_traceparent("trace;desc=00-y"), Some("00-y"));
        assert_eq!(server_timing_traceparent("cache;desc=hit"), None);
    }
}
