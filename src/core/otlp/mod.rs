//! OTLP/HTTP trace encoders: protobuf and JSON, written by hand.
//!
//! A span is encoded **once**, when it ends, into a self-contained *span
//! record*, and queued as bytes. A request is framed later around any list
//! of records ([`encode_request`]), so the exporter knows the exact size of
//! a request before building it ([`request_overhead`], [`encoded_request_len`])
//! and can split batches by bytes (keepalive requests must stay under 64 KiB).
//!
//! | encoding | a record is | the request adds |
//! |---|---|---|
//! | [`Encoding::Protobuf`] | one `ScopeSpans.spans` field: tag, length, `Span` | the `ExportTraceServiceRequest` / `ResourceSpans` / `ScopeSpans` headers |
//! | [`Encoding::Json`] | one `Span` object `{...}` | the same envelope, and a comma between records |
//!
//! Every request carries one `ResourceSpans` (the [`Resource`]) with one
//! `ScopeSpans` (the [`Scope`]). Field numbers follow opentelemetry-proto
//! (`trace.proto`, `common.proto`, `resource.proto`, `trace_service.proto`);
//! default-valued fields are left out as proto3 does. The JSON form follows
//! the OTLP JSON mapping (lowerCamelCase keys, hex ids, 64-bit integers as
//! decimal strings, enums as numbers), which strict receivers such as rotel
//! enforce; the one deliberate deviation, for non-finite doubles, is described
//! in `json.rs`.
//!
//! [`parse_partial_success`] reads the collector's `ExportTraceServiceResponse`
//! so the export policy can count spans the collector rejected.

#[cfg(feature = "json")]
mod float;
#[cfg(feature = "json")]
mod json;
mod proto;

use crate::core::id::{push_hex, SpanId};
use crate::core::span::{Array, Resource, Scope, SpanContext, SpanData, SpanLimits, Value};
use crate::core::clock_skew::shift;
use crate::core::span_log::{Staged, StagedSpan};

/// The body format of an OTLP/HTTP export request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// Binary protobuf (`application/x-protobuf`): smaller, the OTLP default.
    #[default]
    Protobuf,
    /// The OTLP JSON mapping (`application/json`); cargo feature `json`.
    #[cfg(feature = "json")]
    Json,
}

impl Encoding {
    /// The exact `Content-Type` to send. Strict receivers reject anything else,
    /// including `application/json; charset=utf-8` and `application/protobuf`.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            #[cfg(feature = "json")]
            Encoding::Json => "application/json",
        }
    }
}

/// Appends one span to `out` as a self-contained record.
///
/// Protobuf: the bytes of one `ScopeSpans.spans` field (tag 2, varint length,
/// the `Span` message). JSON: the `Span` object `{...}`. Frame records into a
/// request with [`encode_request`], using the same encoding.
pub fn encode_span(enc: Encoding, span: &SpanData, out: &mut Vec<u8>) {
    match enc {
        Encoding::Protobuf => proto::span_record(out, span),
        #[cfg(feature = "json")]
        Encoding::Json => json::span_record(out, span),
    }
}

/// [`encode_span`] for a span head (ids, parent, kind, times; its own lists
/// empty) whose attributes, events, links and status were staged from a span
/// log ([`crate::core::span_log::stage`]), with every time moved by
/// `offset_nano` (clock skew) and string values cut to
/// `limits.max_attribute_value_length`. No value is copied on the way; the
/// bytes are those of applying the log to the span and encoding that.
pub fn encode_staged(enc: Encoding, span: &SpanData, staged: &StagedSpan<'_>, offset_nano: i64, limits: &SpanLimits, out: &mut Vec<u8>) {
    let max_len = limits.max_attribute_value_length.map_or(usize::MAX, |n| n as usize);
    match enc {
        Encoding::Protobuf => proto::span_record_staged(out, span, staged, offset_nano, max_len),
        #[cfg(feature = "json")]
        Encoding::Json => json::span_record_staged(out, span, staged, offset_nano, max_len),
    }
}

/// Appends a whole `ExportTraceServiceRequest` to `out`: one `ResourceSpans`
/// with `resource`, one `ScopeSpans` with `scope`, and the `records` (made by
/// [`encode_span`] with the same `enc`) as its spans, in order.
///
/// `records` is iterated twice (protobuf needs the total length first).
pub fn encode_request<'a>(
    enc: Encoding,
    resource: &Resource,
    scope: &Scope,
    records: impl IntoIterator<Item = &'a [u8]> + Clone,
    out: &mut Vec<u8>,
) {
    let records_len = records.clone().into_iter().map(<[u8]>::len).sum();
    let (head, tail) = frame(enc, resource, scope, records_len);
    out.reserve(head.len() + records_len + tail.len() + 8);
    out.extend_from_slice(&head);
    for (i, record) in records.into_iter().enumerate() {
        #[cfg(feature = "json")]
        if enc == Encoding::Json && i > 0 {
            out.push(b',');
        }
        let _ = i;
        out.extend_from_slice(record);
    }
    out.extend_from_slice(tail);
}

/// Bytes a request with `n` records adds beyond the sum of their lengths.
///
/// JSON: exact. Protobuf: an upper bound, at most 8 bytes too high. The two
/// length prefixes around the records (`ResourceSpans`, `ScopeSpans`) are
/// varints whose size depends on the records' total length; this counts
/// them at 5 bytes each, enough for any request below 4 GiB. For the exact
/// size of a given batch use [`encoded_request_len`].
pub fn request_overhead(enc: Encoding, resource: &Resource, scope: &Scope, n: usize) -> usize {
    let _ = n; // JSON only
    match enc {
        Encoding::Protobuf => proto::max_overhead(resource, scope),
        #[cfg(feature = "json")]
        Encoding::Json => json::overhead(resource, scope, n),
    }
}

/// The exact length of the request [`encode_request`] writes for `n` records
/// whose lengths add up to `records_len`.
pub fn encoded_request_len(enc: Encoding, resource: &Resource, scope: &Scope, n: usize, records_len: usize) -> usize {
    let _ = n; // JSON only
    match enc {
        Encoding::Protobuf => {
            let (head, tail) = frame(enc, resource, scope, records_len);
            head.len() + records_len + tail.len()
        }
        #[cfg(feature = "json")]
        Encoding::Json => json::overhead(resource, scope, n) + records_len,
    }
}

/// The request envelope of one resource and scope, measured once: what
/// [`encode_request`] writes around records, without re-encoding it for
/// every size asked (the export policy asks once per record it considers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    encoding: Encoding,
    /// Protobuf: the `resource` field's length; JSON: the whole head's.
    resource_len: usize,
    /// Protobuf: the `scope` field's length.
    scope_len: usize,
}

impl Envelope {
    /// Measures the envelope of `resource` and `scope` in `enc`.
    pub fn new(enc: Encoding, resource: &Resource, scope: &Scope) -> Envelope {
        let (resource_len, scope_len) = match enc {
            Encoding::Protobuf => {
                let (r, s) = proto::envelope_fields(resource, scope);
                (r.len(), s.len())
            }
            #[cfg(feature = "json")]
            Encoding::Json => (json::request_head(resource, scope).len(), 0),
        };
        Envelope { encoding: enc, resource_len, scope_len }
    }

    /// The length of [`request_head`] for records (and separators) totalling `records_len` bytes.
    pub fn head_len(&self, records_len: usize) -> usize {
        match self.encoding {
            Encoding::Protobuf => proto::head_len(self.resource_len, self.scope_len, records_len),
            #[cfg(feature = "json")]
            Encoding::Json => self.resource_len,
        }
    }

    /// What goes between two records.
    pub fn separator(&self) -> &'static [u8] {
        match self.encoding {
            Encoding::Protobuf => b"",
            #[cfg(feature = "json")]
            Encoding::Json => b",",
        }
    }

    /// What follows the last record.
    pub fn tail(&self) -> &'static [u8] {
        match self.encoding {
            Encoding::Protobuf => b"",
            #[cfg(feature = "json")]
            Encoding::Json => json::REQUEST_TAIL,
        }
    }
}

/// What [`encode_request`] writes before the records, for records (and
/// separators) totalling `records_len` bytes. Then come the records, each
/// after the first preceded by [`Envelope::separator`], then
/// [`Envelope::tail`].
pub fn request_head(enc: Encoding, resource: &Resource, scope: &Scope, records_len: usize) -> Vec<u8> {
    frame(enc, resource, scope, records_len).0
}

/// Convenience: a whole request over freshly encoded `spans`.
pub fn encode_spans(enc: Encoding, resource: &Resource, scope: &Scope, spans: &[SpanData]) -> Vec<u8> {
    let records: Vec<Vec<u8>> = spans
        .iter()
        .map(|span| {
            let mut record = Vec::new();
            encode_span(enc, span, &mut record);
            record
        })
        .collect();
    let mut out = Vec::new();
    encode_request(enc, resource, scope, records.iter().map(Vec::as_slice), &mut out);
    out
}

/// The collector's `ExportTraceServiceResponse.partial_success`, if the
/// response `body` carries one: `(rejected_spans, error_message)`.
///
/// `None` for an empty body, a response without `partial_success`, or a body
/// that is not a well-formed response in encoding `enc`. Never panics.
pub fn parse_partial_success(enc: Encoding, body: &[u8]) -> Option<(i64, String)> {
    match enc {
        Encoding::Protobuf => proto::parse_partial_success(body),
        #[cfg(feature = "json")]
        Encoding::Json => json::parse_partial_success(body),
    }
}

/// The request envelope before and after the records, for a given total
/// length of the records.
fn frame(enc: Encoding, resource: &Resource, scope: &Scope, records_len: usize) -> (Vec<u8>, &'static [u8]) {
    match enc {
        Encoding::Protobuf => (proto::request_head(resource, scope, records_len), &[]),
        #[cfg(feature = "json")]
        Encoding::Json => (json::request_head(resource, scope), json::REQUEST_TAIL),
    }
}

/// `SpanFlags`: bit 8 says whether bit 9 (the parent, or the linked span,
/// is remote) is known.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// `Span.flags`: the W3C flags this library knows, plus the parent's
/// remoteness when the span has a parent (roots carry neither remote bit).
fn span_flags(span: &SpanData) -> u32 {
    let mut flags = u32::from(span.span_context.flags.known().0);
    if span.parent_span_id != SpanId::INVALID {
        flags |= FLAG_HAS_IS_REMOTE;
        if span.parent_is_remote {
            flags |= FLAG_IS_REMOTE;
        }
    }
    flags
}

/// `Span.Link.flags`: the linked context's known W3C flags and remoteness.
fn link_flags(context: &SpanContext) -> u32 {
    let remote = if context.is_remote { FLAG_IS_REMOTE } else { 0 };
    u32::from(context.flags.known().0) | FLAG_HAS_IS_REMOTE | remote
}

/// One attribute value that is not an array: what an `AnyValue` holds and
/// what an `ArrayValue` element holds.
#[derive(Clone, Copy)]
enum Scalar<'a> {
    Bool(bool),
    I64(i64),
    F64(f64),
    Str(&'a str),
}

/// Calls `each` on every element of an array value, in order.
fn for_each_element(array: &Array, each: &mut dyn FnMut(Scalar<'_>)) {
    match array {
        Array::Bool(v) => v.iter().for_each(|&b| each(Scalar::Bool(b))),
        Array::I64(v) => v.iter().for_each(|&i| each(Scalar::I64(i))),
        Array::F64(v) => v.iter().for_each(|&f| each(Scalar::F64(f))),
        Array::String(v) => v.iter().for_each(|s| each(Scalar::Str(s))),
    }
}

/// Calls `each` with the scalar a staged non-array value holds, strings cut
/// to `max_len` bytes at a char boundary (`span::truncate_value`); an array
/// gives nothing (see [`Staged::for_each_element`]).
fn staged_scalar(v: Staged<'_>, max_len: usize, each: &mut dyn FnMut(Scalar<'_>)) {
    let mut text = String::new();
    let s = match v {
        Staged::Str(s) => s,
        Staged::I64(i) => return each(Scalar::I64(i)),
        Staged::F64(f) => return each(Scalar::F64(f)),
        Staged::Bool(b) => return each(Scalar::Bool(b)),
        Staged::Array { .. } => return,
        Staged::TraceIdHex(id) => {
            push_hex(&mut text, &id);
            &text
        }
        Staged::SpanIdHex(id) => {
            push_hex(&mut text, &id);
            &text
        }
        Staged::StatusDigits(status) => {
            for d in [status / 100 % 10, status / 10 % 10, status % 10] {
                text.push(char::from(b'0' + d as u8));
            }
            &text
        }
    };
    let mut cut = s.len().min(max_len);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    each(Scalar::Str(&s[..cut]));
}

/// The scalar a non-array value holds.
fn scalar(value: &Value) -> Option<Scalar<'_>> {
    Some(match value {
        Value::Bool(b) => Scalar::Bool(*b),
        Value::I64(i) => Scalar::I64(*i),
        Value::F64(f) => Scalar::F64(*f),
        Value::String(s) => Scalar::Str(s),
        Value::Array(_) => return None,
    })
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;
    use crate::core::id::{IdGenerator, TraceId};
    use crate::core::span::{KeyValue, SpanKind, SpanLimits, TraceFlags};

    fn spans(n: usize, seed: u8) -> Vec<SpanData> {
        let mut ids = IdGenerator::from_seed([seed; 32]);
        let limits = SpanLimits::default();
        (0..n)
            .map(|i| {
                let ctx = SpanContext {
                    trace_id: ids.trace_id(),
                    span_id: ids.span_id(),
                    flags: TraceFlags(1),
                    ..SpanContext::default()
                };
                let mut s = SpanData::new(ctx, None, format!("span {i}"), SpanKind::Client, 1_000 + i as u64);
                // sizes that cross the 128- and 16384-byte varint steps
                s.set_attribute(KeyValue::new("pad", "x".repeat(i * i * 37 % 20_000)), &limits);
                s.end(2_000 + i as u64);
                s
            })
            .collect()
    }

    #[test]
    fn content_types_are_exact() {
        assert_eq!(Encoding::default(), Encoding::Protobuf);
        assert_eq!(Encoding::Protobuf.content_type(), "application/x-protobuf");
        assert_eq!(Encoding::Json.content_type(), "application/json");
    }

    #[test]
    fn request_sizes_are_known_before_framing() {
        let resource = Resource::new("svc", Some("1.2.3"), "rust");
        let scope = Scope { name: "tracelink".into(), version: "0.1.0".into() };
        for enc in [Encoding::Protobuf, Encoding::Json] {
            for n in [0, 1, 2, 3, 10, 40] {
                let records: Vec<Vec<u8>> = spans(n, n as u8)
                    .iter()
                    .map(|s| {
                        let mut r = Vec::new();
                        encode_span(enc, s, &mut r);
                        r
                    })
                    .collect();
                let records_len: usize = records.iter().map(Vec::len).sum();
                let mut out = vec![0xaa]; // encode_request appends
                encode_request(enc, &resource, &scope, records.iter().map(Vec::as_slice), &mut out);
                let len = out.len() - 1;
                assert_eq!(len, encoded_request_len(enc, &resource, &scope, n, records_len), "{enc:?} n={n}");
                let envelope = Envelope::new(enc, &resource, &scope);
                let separators = envelope.separator().len() * n.saturating_sub(1);
                let head = request_head(enc, &resource, &scope, records_len + separators);
                assert_eq!(head.len(), envelope.head_len(records_len + separators), "{enc:?} n={n}");
                assert_eq!(len, head.len() + records_len + separators + envelope.tail().len(), "{enc:?} n={n}");
                assert!(out[1..].starts_with(&head) && out.ends_with(envelope.tail()));
                let bound = records_len + request_overhead(enc, &resource, &scope, n);
                match enc {
                    Encoding::Json => assert_eq!(bound, len, "n={n}"),
                    Encoding::Protobuf => assert!(bound >= len && bound - len <= 8, "n={n}: {bound} vs {len}"),
                }
            }
        }
    }

    #[test]
    fn records_frame_in_any_order_and_subset() {
        let resource = Resource::new("svc", None, "rust");
        let scope = Scope::default();
        let all = spans(3, 9);
        for enc in [Encoding::Protobuf, Encoding::Json] {
            let rec: Vec<Vec<u8>> = all
                .iter()
                .map(|s| {
                    let mut r = Vec::new();
                    encode_span(enc, s, &mut r);
                    r
                })
                .collect();
            let mut framed = Vec::new();
            encode_request(enc, &resource, &scope, [rec[2].as_slice(), rec[0].as_slice()], &mut framed);
            let direct = encode_spans(enc, &resource, &scope, &[all[2].clone(), all[0].clone()]);
            assert_eq!(framed, direct);
        }
    }

    #[test]
    fn json_request_is_the_envelope_around_comma_separated_records() {
        let s = &spans(2, 1);
        let body = String::from_utf8(encode_spans(Encoding::Json, &Resource::default(), &Scope::default(), s)).unwrap();
        let mut a = Vec::new();
        encode_span(Encoding::Json, &s[0], &mut a);
        let mut b = Vec::new();
        encode_span(Encoding::Json, &s[1], &mut b);
        let expected = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{},{}]}}]}}]}}"#,
            String::from_utf8(a).unwrap(),
            String::from_utf8(b).unwrap()
        );
        assert_eq!(body, expected);
    }

    #[test]
    fn protobuf_request_bytes() {
        let resource = Resource { attributes: vec![KeyValue::new("k", "v")] };
        let scope = Scope { name: "s".into(), version: "1".into() };
        let record = [0x12, 0x00]; // an (empty) span record
        let mut out = Vec::new();
        encode_request(Encoding::Protobuf, &resource, &scope, [&record[..]], &mut out);
        #[rustfmt::skip]
        let expected = [
            0x0a, 24,                     // resource_spans
              0x0a, 10,                   //   resource
                0x0a, 8,                  //     attributes: KeyValue
                  0x0a, 1, b'k', 0x12, 3, 0x0a, 1, b'v',
              0x12, 10,                   //   scope_spans
                0x0a, 6,                  //     scope
                  0x0a, 1, b's', 0x12, 1, b'1',
                0x12, 0x00,               //     the record
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn flags_carry_parent_remoteness_only_with_a_parent() {
        let ctx = SpanContext { trace_id: TraceId([1; 16]), flags: TraceFlags(0x03), ..SpanContext::default() };
        let root = SpanData::new(ctx.clone(), None, "r".into(), SpanKind::Internal, 1);
        assert_eq!(span_flags(&root), 0x03);
        let local_parent = SpanContext { span_id: crate::core::id::SpanId([2; 8]), ..ctx.clone() };
        assert_eq!(
            span_flags(&SpanData::new(ctx.clone(), Some(&local_parent), "c".into(), SpanKind::Internal, 1)),
            0x103
        );
        let remote = SpanContext { is_remote: true, ..local_parent };
        assert_eq!(span_flags(&SpanData::new(ctx, Some(&remote), "c".into(), SpanKind::Internal, 1)), 0x303);
        assert_eq!(link_flags(&remote), 0x303);
    }
}
