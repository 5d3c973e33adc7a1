//! The OTLP JSON mapping, written by hand.
//!
//! Rules (opentelemetry-proto `docs/specification.md`, enforced byte for byte
//! by strict receivers such as rotel): lowerCamelCase keys; trace and span
//! ids as lowercase hex strings (not base64); 64-bit integers
//! (`startTimeUnixNano`, `intValue`, ...) as decimal strings; enums (`kind`,
//! status `code`) and 32-bit integers (`flags`, `dropped*Count`) as numbers;
//! default-valued fields left out; an `AnyValue` never empty; an
//! `arrayValue` always with its `values` list (rotel rejects
//! `{"arrayValue":{}}`).
//!
//! Finite doubles are written in their shortest round-trip form, as Rust's
//! `{:?}` writes them (`0.1`, `1.0`, `1e300`, `5e-324`: all valid JSON
//! numbers), by `float.rs` rather than core's float formatting, which would
//! cost about 18 KB of wasm.
//!
//! **Non-finite doubles** are the one deliberate deviation. Proto3 JSON
//! writes them as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`, but rotel
//! answers 400 to those (and to `null`, `1e999`): the whole request would be
//! lost for one attribute, and a 400 is never retried. So a non-finite
//! double is sent as a `stringValue` with that same text; the value arrives,
//! as a string. The protobuf encoding carries the double unchanged.

use super::{float, for_each_element, link_flags, scalar, shift, span_flags, staged_scalar, Scalar};
use crate::core::span::{Event, KeyValue, Link, Resource, Scope, SpanContext, SpanData, Status, Value};
use crate::core::span_log::{Staged, StagedAttribute, StagedSpan};

/// Everything after the last record.
pub(super) const REQUEST_TAIL: &[u8] = b"]}]}]}";

/// Opens an object with a context's `traceId`, `spanId` and `traceState`
/// (spans and links share them).
fn context_fields(out: &mut Vec<u8>, ctx: &SpanContext) {
    out.extend_from_slice(b"{\"traceId\":");
    hex(out, &ctx.trace_id.0);
    key(out, "spanId");
    hex(out, &ctx.span_id.0);
    if !ctx.trace_state.is_empty() {
        key(out, "traceState");
        string(out, &ctx.trace_state);
    }
}

/// Appends one span as a JSON `Span` object.
pub(super) fn span_record(out: &mut Vec<u8>, span: &SpanData) {
    span_head(out, span, &span.name, 0);
    attributes(out, "attributes", &span.attributes);
    count(out, "droppedAttributesCount", span.dropped_attributes_count);
    list(out, "events", &span.events, event);
    count(out, "droppedEventsCount", span.dropped_events_count);
    list(out, "links", &span.links, link);
    count(out, "droppedLinksCount", span.dropped_links_count);
    status(out, &span.status);
    out.push(b'}');
}

/// Opens a `Span` object with its ids, parent, flags, `name`, kind, and the
/// times moved by `offset_nano`.
fn span_head(out: &mut Vec<u8>, span: &SpanData, name: &str, offset_nano: i64) {
    context_fields(out, &span.span_context);
    if span.parent_span_id.is_valid() {
        key(out, "parentSpanId");
        hex(out, &span.parent_span_id.0);
    }
    count(out, "flags", span_flags(span));
    key(out, "name");
    string(out, name);
    key(out, "kind");
    decimal(out, span.kind.otlp().into());
    key(out, "startTimeUnixNano");
    quoted_decimal(out, shift(span.start_time_unix_nano, offset_nano));
    key(out, "endTimeUnixNano");
    quoted_decimal(out, shift(span.end_time_unix_nano, offset_nano));
}

/// [`span_record`] for a span head with what its log recorded (see
/// `otlp::encode_staged`): the same bytes, no value copied.
pub(super) fn span_record_staged(out: &mut Vec<u8>, span: &SpanData, staged: &StagedSpan<'_>, offset_nano: i64, max_len: usize) {
    span_head(out, span, staged.name.unwrap_or(&span.name), offset_nano);
    staged_attributes(out, &staged.attributes, max_len);
    count(out, "droppedAttributesCount", staged.dropped_attributes_count);
    if !staged.events.is_empty() {
        key(out, "events");
        out.push(b'[');
        for (i, e) in staged.events.iter().enumerate() {
            comma(out, i);
            out.extend_from_slice(b"{\"timeUnixNano\":");
            quoted_decimal(out, shift(e.time_unix_nano, offset_nano));
            key(out, "name");
            string(out, e.name);
            staged_attributes(out, &staged.event_attributes[e.attributes.0..e.attributes.1], max_len);
            count(out, "droppedAttributesCount", e.dropped_attributes_count);
            out.push(b'}');
        }
        out.push(b']');
    }
    count(out, "droppedEventsCount", staged.dropped_events_count);
    list(out, "links", &staged.links, link);
    count(out, "droppedLinksCount", staged.dropped_links_count);
    if staged.status.0 != 0 {
        key(out, "status");
        out.extend_from_slice(b"{\"code\":");
        decimal(out, staged.status.0.into());
        if !staged.status.1.is_empty() {
            key(out, "message");
            string(out, staged.status.1);
        }
        out.push(b'}');
    }
    out.push(b'}');
}

/// `,"attributes":[...]` for staged key/values, left out when empty.
fn staged_attributes(out: &mut Vec<u8>, list: &[StagedAttribute<'_>], max_len: usize) {
    if list.is_empty() {
        return;
    }
    key(out, "attributes");
    out.push(b'[');
    for (i, (k, v)) in list.iter().enumerate() {
        comma(out, i);
        out.extend_from_slice(b"{\"key\":");
        string(out, k);
        key(out, "value");
        if let Staged::Array { .. } = v {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            let mut n = 0;
            v.for_each_element(|e| {
                staged_scalar(e, max_len, &mut |s| {
                    comma(out, n);
                    n += 1;
                    scalar_value(out, s);
                });
            });
            out.extend_from_slice(b"]}}");
        } else {
            staged_scalar(*v, max_len, &mut |s| scalar_value(out, s));
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// `"name":[item,item,...]`, or nothing for an empty list.
fn list<T>(out: &mut Vec<u8>, name: &str, items: &[T], item: fn(&mut Vec<u8>, &T)) {
    if items.is_empty() {
        return;
    }
    key(out, name);
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        comma(out, i);
        item(out, x);
    }
    out.push(b']');
}

fn event(out: &mut Vec<u8>, e: &Event) {
    out.extend_from_slice(b"{\"timeUnixNano\":");
    quoted_decimal(out, e.time_unix_nano);
    key(out, "name");
    string(out, &e.name);
    attributes(out, "attributes", &e.attributes);
    count(out, "droppedAttributesCount", e.dropped_attributes_count);
    out.push(b'}');
}

fn link(out: &mut Vec<u8>, l: &Link) {
    let ctx = &l.span_context;
    context_fields(out, ctx);
    attributes(out, "attributes", &l.attributes);
    count(out, "droppedAttributesCount", l.dropped_attributes_count);
    count(out, "flags", link_flags(ctx));
    out.push(b'}');
}

fn status(out: &mut Vec<u8>, s: &Status) {
    if *s == Status::Unset {
        return;
    }
    key(out, "status");
    out.extend_from_slice(b"{\"code\":");
    decimal(out, s.otlp_code().into());
    if !s.message().is_empty() {
        key(out, "message");
        string(out, s.message());
    }
    out.push(b'}');
}

/// `,"name":[{"key":..,"value":{..}},...]`, left out when `list` is empty.
fn attributes(out: &mut Vec<u8>, name: &str, list: &[KeyValue]) {
    if list.is_empty() {
        return;
    }
    key(out, name);
    key_values(out, list);
}

fn key_values(out: &mut Vec<u8>, list: &[KeyValue]) {
    out.push(b'[');
    for (i, kv) in list.iter().enumerate() {
        comma(out, i);
        out.extend_from_slice(b"{\"key\":");
        string(out, &kv.key);
        key(out, "value");
        any_value(out, &kv.value);
        out.push(b'}');
    }
    out.push(b']');
}

fn any_value(out: &mut Vec<u8>, value: &Value) {
    match (scalar(value), value) {
        (Some(s), _) => scalar_value(out, s),
        (None, Value::Array(array)) => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            let mut i = 0;
            for_each_element(array, &mut |s| {
                comma(out, i);
                i += 1;
                scalar_value(out, s);
            });
            out.extend_from_slice(b"]}}");
        }
        (None, _) => {}
    }
}

/// An `AnyValue` object holding one scalar.
fn scalar_value(out: &mut Vec<u8>, s: Scalar<'_>) {
    match s {
        Scalar::Str(v) => {
            out.extend_from_slice(b"{\"stringValue\":");
            string(out, v);
        }
        Scalar::Bool(v) => {
            out.extend_from_slice(b"{\"boolValue\":");
            out.extend_from_slice(if v { b"true" } else { b"false" });
        }
        Scalar::I64(v) => {
            out.extend_from_slice(b"{\"intValue\":\"");
            if v < 0 {
                out.push(b'-');
            }
            decimal(out, v.unsigned_abs());
            out.push(b'"');
        }
        Scalar::F64(v) if v.is_finite() => {
            out.extend_from_slice(b"{\"doubleValue\":");
            float::push_f64(out, v);
        }
        Scalar::F64(v) => {
            // see the module doc: rotel rejects every JSON form of these
            out.extend_from_slice(b"{\"stringValue\":\"");
            out.extend_from_slice(match (v.is_nan(), v > 0.0) {
                (true, _) => b"NaN",
                (false, true) => b"Infinity",
                (false, false) => b"-Infinity",
            });
            out.push(b'"');
        }
    }
    out.push(b'}');
}

/// The request up to the first record.
pub(super) fn request_head(resource: &Resource, scope: &Scope) -> Vec<u8> {
    let mut out = b"{\"resourceSpans\":[{".to_vec();
    if !resource.attributes.is_empty() {
        out.extend_from_slice(b"\"resource\":{\"attributes\":");
        key_values(&mut out, &resource.attributes);
        out.extend_from_slice(b"},");
    }
    out.extend_from_slice(b"\"scopeSpans\":[{");
    if !scope.name.is_empty() || !scope.version.is_empty() {
        out.extend_from_slice(b"\"scope\":{\"name\":");
        string(&mut out, &scope.name);
        if !scope.version.is_empty() {
            key(&mut out, "version");
            string(&mut out, &scope.version);
        }
        out.extend_from_slice(b"},");
    }
    out.extend_from_slice(b"\"spans\":[");
    out
}

/// The exact bytes a request adds to `n` records: envelope and commas.
pub(super) fn overhead(resource: &Resource, scope: &Scope, n: usize) -> usize {
    request_head(resource, scope).len() + REQUEST_TAIL.len() + n.saturating_sub(1)
}

// --- Writing primitives -------------------------------------------------

/// `,"name":` (every object opens with a field that is always present, so
/// every later field starts with a comma).
fn key(out: &mut Vec<u8>, name: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn comma(out: &mut Vec<u8>, index: usize) {
    if index > 0 {
        out.push(b',');
    }
}

/// `,"name":n` for a non-zero 32-bit count.
fn count(out: &mut Vec<u8>, name: &str, n: u32) {
    if n != 0 {
        key(out, name);
        decimal(out, n.into());
    }
}

/// Appends `v` in decimal (no `core::fmt`: it would cost wasm size).
pub fn decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn quoted_decimal(out: &mut Vec<u8>, v: u64) {
    out.push(b'"');
    decimal(out, v);
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A quoted lowercase hex string.
fn hex(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
    out.push(b'"');
}

/// A JSON string: quotes, backslashes and control characters escaped;
/// everything else (all of Unicode, U+2028/2029 included) as UTF-8.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 15)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

// --- Reading (responses) ------------------------------------------------

/// `{"partialSuccess":{"rejectedSpans":"3","errorMessage":"..."}}`; the
/// proto field names (`partial_success`, ...) are accepted too, as proto3
/// JSON parsers must, and `rejectedSpans` may be a string or a number.
pub(super) fn parse_partial_success(body: &[u8]) -> Option<(i64, String)> {
    let mut c = Cursor { s: body, i: 0 };
    let mut found = None;
    c.object(&mut |c, name| match name {
        "partialSuccess" | "partial_success" => {
            if !c.null() {
                found = Some(partial_success(c)?);
            }
            Some(())
        }
        _ => c.skip_value(),
    })?;
    c.at_end().then_some(())?;
    found
}

fn partial_success(c: &mut Cursor<'_>) -> Option<(i64, String)> {
    let (mut rejected, mut message) = (0, String::new());
    c.object(&mut |c, name| {
        match name {
            "rejectedSpans" | "rejected_spans" => rejected = c.int64()?,
            "errorMessage" | "error_message" => message = if c.null() { String::new() } else { c.string()? },
            _ => c.skip_value()?,
        }
        Some(())
    })?;
    Some((rejected, message))
}

/// A forgiving-but-safe JSON reader: enough to find fields in a response.
/// Every method returns `None` on malformed input; none can panic or loop
/// forever (each step consumes input or stops).
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<u8> {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.i += usize::from(hit);
        hit
    }

    fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// A run of number/literal characters (`-12.5e3`, `true`, `null`).
    fn token(&mut self) -> Option<&[u8]> {
        self.peek();
        let start = self.i;
        while let Some(c) = self.s.get(self.i) {
            if !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')) {
                break;
            }
            self.i += 1;
        }
        self.s.get(start..self.i).filter(|t| !t.is_empty())
    }

    /// Consumes a `null` literal if one is next.
    fn null(&mut self) -> bool {
        if self.peek() == Some(b'n') && self.s.get(self.i..self.i + 4) == Some(b"null") {
            self.i += 4;
            return true;
        }
        false
    }

    /// An int64: a JSON string or number holding a decimal integer.
    fn int64(&mut self) -> Option<i64> {
        if self.null() {
            return Some(0);
        }
        if self.peek() == Some(b'"') {
            return self.string()?.parse().ok();
        }
        std::str::from_utf8(self.token()?).ok()?.parse().ok()
    }

    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    let unescaped = match e {
                        b'"' | b'\\' | b'/' => e as char,
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.escaped_char()?,
                        _ => return None,
                    };
                    out.extend_from_slice(unescaped.encode_utf8(&mut [0; 4]).as_bytes());
                }
                0..=0x1f => return None,
                _ => out.push(c),
            }
        }
    }

    /// The character after `\u`: four hex digits, or a surrogate pair.
    /// A lone surrogate becomes U+FFFD.
    fn escaped_char(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        if !(0xd800..0xdc00).contains(&hi) {
            return Some(char::from_u32(hi).unwrap_or('\u{fffd}'));
        }
        if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
            return Some('\u{fffd}');
        }
        self.i += 2;
        let lo = self.hex4()?;
        let pair = (0xdc00..0xe000).contains(&lo).then(|| 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
        Some(pair.and_then(char::from_u32).unwrap_or('\u{fffd}'))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        digits.iter().try_fold(0, |v, &d| Some(v * 16 + char::from(d).to_digit(16)?))
    }

    /// Reads an object, calling `member` with the cursor on each value.
    fn object(&mut self, member: &mut dyn FnMut(&mut Self, &str) -> Option<()>) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if self.eat(b'}') {
            return Some(());
        }
        loop {
            let name = self.string()?;
            if !self.eat(b':') {
                return None;
            }
            member(self, &name)?;
            if self.eat(b'}') {
                return Some(());
            }
            if !self.eat(b',') {
                return None;
            }
        }
    }

    /// Skips one value of any kind, iteratively (no recursion depth limit).
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'{' | b'[' => {
                    self.i += 1;
                    depth += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.i += 1;
                }
                b',' | b':' if depth > 0 => self.i += 1,
                b'"' => {
                    self.string()?;
                }
                _ => {
                    self.token()?;
                }
            }
            if depth == 0 {
                return Some(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::id::{SpanId, TraceId};
    use crate::core::span::{Array, SpanContext, SpanKind, TraceFlags};

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped() {
        let s = text(|o| string(o, "a\"b\\c\n\r\t\u{0}\u{8}\u{c}\u{1f}\u{7f}é€😀\u{2028}/"));
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\r\\t\\u0000\\u0008\\u000c\\u001f\u{7f}é€😀\u{2028}/\"");
    }

    #[test]
    fn numbers() {
        for (v, expected) in [(0u64, "0"), (9, "9"), (10, "10"), (u64::MAX, "18446744073709551615")] {
            assert_eq!(text(|o| decimal(o, v)), expected);
        }
        let int = |i: i64| text(|o| scalar_value(o, Scalar::I64(i)));
        assert_eq!(int(i64::MIN), r#"{"intValue":"-9223372036854775808"}"#);
        assert_eq!(int(i64::MAX), r#"{"intValue":"9223372036854775807"}"#);
        assert_eq!(int(0), r#"{"intValue":"0"}"#);
        let double = |f: f64| text(|o| scalar_value(o, Scalar::F64(f)));
        assert_eq!(double(0.1), r#"{"doubleValue":0.1}"#);
        assert_eq!(double(1.0), r#"{"doubleValue":1.0}"#);
        assert_eq!(double(-2.5), r#"{"doubleValue":-2.5}"#);
        assert_eq!(double(-0.0), r#"{"doubleValue":-0.0}"#);
        assert_eq!(double(1e300), r#"{"doubleValue":1e300}"#);
        assert_eq!(double(5e-324), r#"{"doubleValue":5e-324}"#);
        assert_eq!(double(f64::NAN), r#"{"stringValue":"NaN"}"#);
        assert_eq!(double(f64::INFINITY), r#"{"stringValue":"Infinity"}"#);
        assert_eq!(double(f64::NEG_INFINITY), r#"{"stringValue":"-Infinity"}"#);
    }

    #[test]
    fn shortest_doubles_round_trip() {
        let mut x = 0x0123_4567_89ab_cdefu64;
        for _ in 0..10_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let f = f64::from_bits(x);
            if !f.is_finite() {
                continue;
            }
            let s = text(|o| float::push_f64(o, f));
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), f.to_bits(), "{s}");
            // a JSON number: -?digits[.digits][e[-]digits]
            let body = s.strip_prefix('-').unwrap_or(&s);
            assert!(body.bytes().all(|c| c.is_ascii_digit() || b".e-".contains(&c)), "{s}");
            assert!(body.starts_with(|c: char| c.is_ascii_digit()), "{s}");
        }
    }

    #[test]
    fn span_object() {
        let parent = SpanContext {
            trace_id: TraceId([0xab; 16]),
            span_id: SpanId([0x01; 8]),
            flags: TraceFlags(1),
            trace_state: String::new(),
            is_remote: false,
        };
        let ctx = SpanContext { span_id: SpanId([0x02; 8]), trace_state: "k=v".into(), ..parent.clone() };
        let mut span = SpanData::new(ctx, Some(&parent), "n\"1".into(), SpanKind::Consumer, 7);
        span.end(9);
        span.attributes = vec![
            KeyValue::new("s", ""),
            KeyValue::new("a", Value::Array(Array::String(vec!["x".into(), "y".into()]))),
            KeyValue::new("e", Value::Array(Array::F64(vec![]))),
        ];
        span.dropped_attributes_count = 2;
        span.events.push(Event {
            name: "ev".into(),
            time_unix_nano: 8,
            attributes: vec![KeyValue::new("b", true)],
            dropped_attributes_count: 1,
        });
        span.links.push(Link { span_context: parent.clone(), attributes: vec![], dropped_attributes_count: 0 });
        span.dropped_links_count = 3;
        span.status = Status::Ok;
        let json = text(|o| span_record(o, &span));
        let ab = "ab".repeat(16);
        let expected = format!(
            concat!(
                r#"{{"traceId":"{ab}","spanId":"0202020202020202","traceState":"k=v","parentSpanId":"0101010101010101","#,
                r#""flags":257,"name":"n\"1","kind":5,"startTimeUnixNano":"7","endTimeUnixNano":"9","#,
                r#""attributes":[{{"key":"s","value":{{"stringValue":""}}}},"#,
                r#"{{"key":"a","value":{{"arrayValue":{{"values":[{{"stringValue":"x"}},{{"stringValue":"y"}}]}}}}}},"#,
                r#"{{"key":"e","value":{{"arrayValue":{{"values":[]}}}}}}],"droppedAttributesCount":2,"#,
                r#""events":[{{"timeUnixNano":"8","name":"ev","attributes":[{{"key":"b","value":{{"boolValue":true}}}}],"droppedAttributesCount":1}}],"#,
                r#""links":[{{"traceId":"{ab}","spanId":"0101010101010101","flags":257}}],"droppedLinksCount":3,"#,
                r#""status":{{"code":1}}}}"#
            ),
            ab = ab
        );
        assert_eq!(json, expected);
    }

    #[test]
    fn request_envelope() {
        let resource = Resource { attributes: vec![KeyValue::new("service.name", "web")] };
        let scope = Scope { name: "tl".into(), version: String::new() };
        assert_eq!(
            String::from_utf8(request_head(&resource, &scope)).unwrap(),
            r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"web"}}]},"scopeSpans":[{"scope":{"name":"tl"},"spans":["#
        );
        assert_eq!(
            String::from_utf8(request_head(&Resource::default(), &Scope::default())).unwrap(),
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":["#
        );
    }

    #[test]
    fn partial_success_forms() {
        let p = |s: &str| parse_partial_success(s.as_bytes());
        assert_eq!(
            p(r#"{"partialSuccess":{"rejectedSpans":"3","errorMessage":"too \"big\" \u00e9\ud83d\ude00"}}"#),
            Some((3, "too \"big\" é😀".into()))
        );
        assert_eq!(p(r#" { "partialSuccess" : { "rejectedSpans" : 4 } } "#), Some((4, String::new())));
        assert_eq!(p(r#"{"partial_success":{"rejected_spans":"-1","error_message":"x"}}"#), Some((-1, "x".into())));
        assert_eq!(
            p(r#"{"other":[1,{"a":"}"}],"partialSuccess":{"x":{"y":[]},"errorMessage":"m"}}"#),
            Some((0, "m".into()))
        );
        assert_eq!(p(r#"{"partialSuccess":{}}"#), Some((0, String::new())));
        assert_eq!(p(r#"{"partialSuccess":null}"#), None);
        assert_eq!(p("{}"), None);
        assert_eq!(p(""), None);
        assert_eq!(p(r#"{"partialSuccess":{"rejectedSpans":"3x"}}"#), None);
        assert_eq!(p(r#"{"partialSuccess":{"rejectedSpans":99999999999999999999}}"#), None);
        assert_eq!(p(r#"{"partialSuccess":{"rejectedSpans":1}"#), None);
        assert_eq!(p(r#"{"partialSuccess":{"rejectedSpans":1}} trailing"#), None);
        assert_eq!(p(r#"{"partialSuccess":{"errorMessage":"\ud800"}}"#), Some((0, "\u{fffd}".into())));
        assert_eq!(p(r#"{"partialSuccess":{"errorMessage":"\q"}}"#), None);
        assert_eq!(p(&"[".repeat(100_000)), None);
        assert_eq!(p(&format!("{{\"a\":{}", "[".repeat(100_000))), None);
        assert_eq!(p("{\"a\":]}"), None);
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn partial_success_never_panics(body in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_partial_success(&body);
        }

        #[test]
        fn partial_success_never_panics_on_jsonish(body in r#"[{}\[\]":,\\u0-9a-zA-Z_ .-]{0,80}"#) {
            let _ = parse_partial_success(body.as_bytes());
            let framed = format!(r#"{{"partialSuccess":{body}}}"#);
            let _ = parse_partial_success(framed.as_bytes());
        }
    }
}
