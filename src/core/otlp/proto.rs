//! OTLP protobuf, written field by field in field-number order (the order
//! prost and the Go collector use), leaving proto3 defaults out.
//!
//! Nested messages are written in place: [`begin`] reserves one byte for the
//! length and [`end`] fills it in. Only a body of 128 bytes or more needs a
//! longer varint; then the body is rotated right by the extra bytes. Most
//! attributes are short, so most messages are never moved.

use super::{for_each_element, link_flags, scalar, shift, span_flags, staged_scalar, Scalar};
use crate::core::span::{Event, KeyValue, Link, Resource, Scope, SpanData, Status, Value};
use crate::core::span_log::{Staged, StagedAttribute, StagedSpan};

// Wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// A varint length prefix is at most this long for any length below 4 GiB.
const MAX_LEN_PREFIX: usize = 5;

/// Appends one `ScopeSpans.spans` field (tag 2) holding `span`.
pub(super) fn span_record(out: &mut Vec<u8>, span: &SpanData) {
    let record = begin(out, 2);
    span_head(out, span, &span.name, 0);
    attributes(out, 9, &span.attributes);
    uint(out, 10, span.dropped_attributes_count.into());
    for e in &span.events {
        event(out, e);
    }
    uint(out, 12, span.dropped_events_count.into());
    for l in &span.links {
        link(out, l);
    }
    uint(out, 14, span.dropped_links_count.into());
    status(out, &span.status);
    fixed32(out, 16, span_flags(span));
    end(out, record);
}

/// `Span` fields 1-8: ids, trace state, parent, `name`, kind, and the times
/// moved by `offset_nano`.
fn span_head(out: &mut Vec<u8>, span: &SpanData, name: &str, offset_nano: i64) {
    let ctx = &span.span_context;
    bytes(out, 1, &ctx.trace_id.0);
    bytes(out, 2, &ctx.span_id.0);
    string(out, 3, &ctx.trace_state);
    if span.parent_span_id.is_valid() {
        bytes(out, 4, &span.parent_span_id.0);
    }
    string(out, 5, name);
    uint(out, 6, span.kind.otlp().into());
    fixed64(out, 7, shift(span.start_time_unix_nano, offset_nano));
    fixed64(out, 8, shift(span.end_time_unix_nano, offset_nano));
}

/// [`span_record`] for the span head `span` (ids, parent, kind, times; its
/// own lists empty) with what its log recorded (`staged`), every time moved
/// by `offset_nano` and string values cut to `max_len` bytes. The same bytes
/// as applying the log to `span` and encoding that.
pub(super) fn span_record_staged(out: &mut Vec<u8>, span: &SpanData, staged: &StagedSpan<'_>, offset_nano: i64, max_len: usize) {
    let record = begin(out, 2);
    span_head(out, span, staged.name.unwrap_or(&span.name), offset_nano);
    staged_attributes(out, 9, &staged.attributes, max_len);
    uint(out, 10, staged.dropped_attributes_count.into());
    for e in &staged.events {
        let m = begin(out, 11);
        fixed64(out, 1, shift(e.time_unix_nano, offset_nano));
        string(out, 2, e.name);
        staged_attributes(out, 3, &staged.event_attributes[e.attributes.0..e.attributes.1], max_len);
        uint(out, 4, e.dropped_attributes_count.into());
        end(out, m);
    }
    uint(out, 12, staged.dropped_events_count.into());
    for l in &staged.links {
        link(out, l);
    }
    uint(out, 14, staged.dropped_links_count.into());
    if staged.status.0 != 0 {
        let m = begin(out, 15);
        string(out, 2, staged.status.1);
        uint(out, 3, staged.status.0.into());
        end(out, m);
    }
    fixed32(out, 16, span_flags(span));
    end(out, record);
}

/// [`attributes`] for staged key/values.
fn staged_attributes(out: &mut Vec<u8>, field: u32, list: &[StagedAttribute<'_>], max_len: usize) {
    for (k, v) in list {
        if let Staged::Array { .. } = v {
            let m = begin(out, field);
            string(out, 1, k);
            let a = begin(out, 2);
            let arr = begin(out, 5);
            v.for_each_element(|e| {
                staged_scalar(e, max_len, &mut |s| {
                    let m = begin(out, 1);
                    scalar_member(out, s);
                    end(out, m);
                });
            });
            end(out, arr);
            end(out, a);
            end(out, m);
        } else {
            // A scalar's lengths are known up front: written in place, with
            // no length to patch (the bytes `begin`/`end` would give).
            staged_scalar(*v, max_len, &mut |s| key_scalar(out, field, k, s));
        }
    }
}

/// A `KeyValue { key 1, value 2: AnyValue }` field holding a scalar.
fn key_scalar(out: &mut Vec<u8>, field: u32, k: &str, s: Scalar<'_>) {
    let any = match s {
        Scalar::Str(v) => 1 + varint_len(v.len() as u64) + v.len(),
        Scalar::Bool(_) => 2,
        Scalar::I64(v) => 1 + varint_len(v as u64),
        Scalar::F64(_) => 9,
    };
    let key_field = if k.is_empty() { 0 } else { 1 + varint_len(k.len() as u64) + k.len() };
    key(out, field, LEN);
    varint(out, (key_field + 1 + varint_len(any as u64) + any) as u64);
    string(out, 1, k);
    key(out, 2, LEN);
    varint(out, any as u64);
    scalar_member(out, s);
}

/// `Span.events` (11): `Event { time 1, name 2, attributes 3, dropped 4 }`.
fn event(out: &mut Vec<u8>, e: &Event) {
    let m = begin(out, 11);
    fixed64(out, 1, e.time_unix_nano);
    string(out, 2, &e.name);
    attributes(out, 3, &e.attributes);
    uint(out, 4, e.dropped_attributes_count.into());
    end(out, m);
}

/// `Span.links` (13): `Link { trace_id 1, span_id 2, trace_state 3,
/// attributes 4, dropped 5, flags 6 }`.
fn link(out: &mut Vec<u8>, l: &Link) {
    let m = begin(out, 13);
    let ctx = &l.span_context;
    bytes(out, 1, &ctx.trace_id.0);
    bytes(out, 2, &ctx.span_id.0);
    string(out, 3, &ctx.trace_state);
    attributes(out, 4, &l.attributes);
    uint(out, 5, l.dropped_attributes_count.into());
    fixed32(out, 6, link_flags(ctx));
    end(out, m);
}

/// `Span.status` (15): `Status { message 2, code 3 }`, left out when unset.
fn status(out: &mut Vec<u8>, s: &Status) {
    if *s == Status::Unset {
        return;
    }
    let m = begin(out, 15);
    string(out, 2, s.message());
    uint(out, 3, s.otlp_code().into());
    end(out, m);
}

/// A repeated `KeyValue { key 1, value 2 }` field.
fn attributes(out: &mut Vec<u8>, field: u32, list: &[KeyValue]) {
    for kv in list {
        let m = begin(out, field);
        string(out, 1, &kv.key);
        any_value(out, 2, &kv.value);
        end(out, m);
    }
}

/// An `AnyValue` message field. The `oneof` member is always written, even
/// when it holds a default (`""`, `false`, `0`): an empty `AnyValue` would
/// mean "no value".
fn any_value(out: &mut Vec<u8>, field: u32, value: &Value) {
    let m = begin(out, field);
    match (scalar(value), value) {
        (Some(s), _) => scalar_member(out, s),
        (None, Value::Array(array)) => {
            let a = begin(out, 5); // array_value: ArrayValue { values 1 }
            for_each_element(array, &mut |s| {
                let e = begin(out, 1);
                scalar_member(out, s);
                end(out, e);
            });
            end(out, a);
        }
        (None, _) => {}
    }
    end(out, m);
}

/// The `AnyValue` oneof member: string 1, bool 2, int 3, double 4.
fn scalar_member(out: &mut Vec<u8>, s: Scalar<'_>) {
    match s {
        Scalar::Str(v) => {
            key(out, 1, LEN);
            len_prefixed(out, v.as_bytes());
        }
        Scalar::Bool(v) => {
            key(out, 2, VARINT);
            out.push(v as u8);
        }
        Scalar::I64(v) => {
            key(out, 3, VARINT);
            varint(out, v as u64);
        }
        Scalar::F64(v) => {
            key(out, 4, FIXED64);
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
    }
}

/// The request up to the first record: `ExportTraceServiceRequest {
/// resource_spans 1: ResourceSpans { resource 1, scope_spans 2: ScopeSpans {
/// scope 1, spans 2 ... } } }`, for records totalling `records_len` bytes.
/// Nothing follows the records.
pub(super) fn request_head(resource: &Resource, scope: &Scope, records_len: usize) -> Vec<u8> {
    let (resource_field, scope_field) = envelope_fields(resource, scope);
    let scope_spans_len = scope_field.len() + records_len;
    let resource_spans_len = resource_field.len() + 1 + varint_len(scope_spans_len as u64) + scope_spans_len;
    let mut head = Vec::with_capacity(resource_field.len() + scope_field.len() + 2 + 2 * MAX_LEN_PREFIX);
    key(&mut head, 1, LEN);
    varint(&mut head, resource_spans_len as u64);
    head.extend_from_slice(&resource_field);
    key(&mut head, 2, LEN);
    varint(&mut head, scope_spans_len as u64);
    head.extend_from_slice(&scope_field);
    head
}

/// [`request_head`]'s length, from the lengths of [`envelope_fields`].
pub(super) fn head_len(resource_field: usize, scope_field: usize, records_len: usize) -> usize {
    let scope_spans_len = scope_field + records_len;
    let resource_spans_len = resource_field + 1 + varint_len(scope_spans_len as u64) + scope_spans_len;
    resource_spans_len - records_len + 1 + varint_len(resource_spans_len as u64)
}

/// [`request_head`]'s length with both variable length prefixes counted at
/// their maximum: exact to within 8 bytes.
pub(super) fn max_overhead(resource: &Resource, scope: &Scope) -> usize {
    let (resource_field, scope_field) = envelope_fields(resource, scope);
    resource_field.len() + scope_field.len() + 2 * (1 + MAX_LEN_PREFIX)
}

/// The `ResourceSpans.resource` and `ScopeSpans.scope` fields, each left out
/// when empty.
pub(super) fn envelope_fields(resource: &Resource, scope: &Scope) -> (Vec<u8>, Vec<u8>) {
    let mut r = Vec::new();
    if !resource.attributes.is_empty() {
        let m = begin(&mut r, 1);
        attributes(&mut r, 1, &resource.attributes); // Resource.attributes
        end(&mut r, m);
    }
    let mut s = Vec::new();
    if !scope.name.is_empty() || !scope.version.is_empty() {
        let m = begin(&mut s, 1);
        string(&mut s, 1, &scope.name); // InstrumentationScope.name
        string(&mut s, 2, &scope.version);
        end(&mut s, m);
    }
    (r, s)
}

// --- Writing primitives -------------------------------------------------

fn key(out: &mut Vec<u8>, field: u32, wire_type: u32) {
    varint(out, u64::from(field << 3 | wire_type));
}

/// Writes `v` as a base-128 varint into `buf`; returns its length (1..=10).
fn varint_bytes(mut v: u64, buf: &mut [u8; 10]) -> usize {
    let mut i = 0;
    while v >= 0x80 && i < 9 {
        buf[i] = v as u8 | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    i + 1
}

pub(super) fn varint(out: &mut Vec<u8>, mut v: u64) {
    // Byte pushes: most varints here are one byte (keys, small lengths).
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The number of bytes `v` takes as a varint.
pub(super) fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn len_prefixed(out: &mut Vec<u8>, b: &[u8]) {
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    if !b.is_empty() {
        key(out, field, LEN);
        len_prefixed(out, b);
    }
}

fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    bytes(out, field, s.as_bytes());
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        key(out, field, VARINT);
        varint(out, v);
    }
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        key(out, field, FIXED64);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn fixed32(out: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        key(out, field, FIXED32);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Starts a length-delimited field; returns where its body starts.
fn begin(out: &mut Vec<u8>, field: u32) -> usize {
    key(out, field, LEN);
    out.push(0);
    out.len()
}

/// Ends the field [`begin`] started at `body`: writes its length, moving the
/// body right when the length needs more than the one reserved byte.
fn end(out: &mut Vec<u8>, body: usize) {
    let mut buf = [0; 10];
    let n = varint_bytes((out.len() - body) as u64, &mut buf);
    out[body - 1] = buf[0];
    if n > 1 {
        let len = out.len();
        out.extend_from_slice(&buf[1..n]);
        out.copy_within(body..len, body + n - 1);
        out[body..body + n - 1].copy_from_slice(&buf[1..n]);
    }
}

// --- Reading (responses) ------------------------------------------------

/// One decoded field value.
#[derive(Debug, PartialEq)]
pub(super) enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// A protobuf field reader over a byte slice; every method returns `None`
/// on malformed input instead of panicking.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = *self.take(1)?.first()?;
            v |= u64::from(b & 0x7f) << shift.min(63);
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }

    /// The next field as `(number, value)`; `None` at a malformed field.
    pub(super) fn field(&mut self) -> Option<(u64, Field<'a>)> {
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 {
            return None;
        }
        let value = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => Field::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().ok()?)),
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Field::Bytes(self.take(len)?)
            }
            5 => Field::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().ok()?)),
            _ => return None, // groups (3, 4) are not used by OTLP
        };
        Some((number, value))
    }
}

/// `ExportTraceServiceResponse { partial_success 1: ExportTracePartialSuccess
/// { rejected_spans 1: int64, error_message 2: string } }`.
///
/// A `partial_success` that occurs more than once is merged, as protobuf
/// parsers must: each later occurrence overrides only the fields it holds.
pub(super) fn parse_partial_success(body: &[u8]) -> Option<(i64, String)> {
    let mut response = Reader { buf: body };
    let mut found = None;
    while !response.buf.is_empty() {
        match response.field()? {
            (1, Field::Bytes(b)) => merge_partial_success(b, found.get_or_insert_with(Default::default))?,
            (1, _) => return None,
            _ => {}
        }
    }
    found
}

fn merge_partial_success(body: &[u8], (rejected, message): &mut (i64, String)) -> Option<()> {
    let mut r = Reader { buf: body };
    while !r.buf.is_empty() {
        match r.field()? {
            (1, Field::Varint(v)) => *rejected = v as i64,
            // The message is only informative: kept when it is valid UTF-8.
            (2, Field::Bytes(b)) => *message = core::str::from_utf8(b).unwrap_or_default().to_owned(),
            (1 | 2, _) => return None,
            _ => {}
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::id::{SpanId, TraceId};
    use crate::core::span::{Array, SpanContext, SpanKind, TraceFlags};

    fn vint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        varint(&mut out, v);
        out
    }

    #[test]
    fn varint_edges() {
        assert_eq!(vint(0), [0x00]);
        assert_eq!(vint(1), [0x01]);
        assert_eq!(vint(127), [0x7f]);
        assert_eq!(vint(128), [0x80, 0x01]);
        assert_eq!(vint(300), [0xac, 0x02]);
        assert_eq!(vint(16_383), [0xff, 0x7f]);
        assert_eq!(vint(16_384), [0x80, 0x80, 0x01]);
        assert_eq!(vint(u64::MAX), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        // int64 -1 is the ten-byte two's complement form
        assert_eq!(vint(-1i64 as u64).len(), 10);
        for v in [0, 1, 127, 128, 16_383, 16_384, 1 << 21, (1 << 28) - 1, 1 << 35, 1 << 63, u64::MAX] {
            assert_eq!(varint_len(v), vint(v).len(), "{v}");
            assert_eq!(Reader { buf: &vint(v) }.varint(), Some(v));
        }
    }

    #[test]
    fn nested_lengths_grow_in_place() {
        for body_len in [0usize, 1, 127, 128, 129, 16_383, 16_384, 70_000] {
            let mut out = vec![0xee];
            let m = begin(&mut out, 9);
            out.extend(std::iter::repeat_n(0xab, body_len));
            end(&mut out, m);
            let mut expected = vec![0xee, 9 << 3 | 2];
            expected.extend(vint(body_len as u64));
            expected.extend(std::iter::repeat_n(0xab, body_len));
            assert_eq!(out, expected, "body {body_len}");
        }
    }

    fn minimal_span() -> SpanData {
        let ctx = SpanContext {
            trace_id: TraceId([0x11; 16]),
            span_id: SpanId([0x22; 8]),
            flags: TraceFlags(0x01),
            ..SpanContext::default()
        };
        let mut span = SpanData::new(ctx, None, "GET".into(), SpanKind::Client, 1);
        span.end(2);
        span
    }

    #[test]
    fn minimal_root_span_bytes() {
        let mut out = Vec::new();
        span_record(&mut out, &minimal_span());
        let mut expected = vec![0x12, 59]; // ScopeSpans.spans, 59-byte Span
        expected.extend([0x0a, 16]); // trace_id
        expected.extend([0x11; 16]);
        expected.extend([0x12, 8]); // span_id
        expected.extend([0x22; 8]);
        expected.extend([0x2a, 3, b'G', b'E', b'T']); // name
        expected.extend([0x30, 3]); // kind = CLIENT
        expected.extend([0x39, 1, 0, 0, 0, 0, 0, 0, 0]); // start, fixed64
        expected.extend([0x41, 2, 0, 0, 0, 0, 0, 0, 0]); // end
        expected.extend([0x85, 0x01, 1, 0, 0, 0]); // flags (field 16, fixed32) = sampled
        assert_eq!(expected.len(), 61);
        assert_eq!(out, expected);
    }

    #[test]
    fn child_of_remote_parent_with_everything() {
        let parent = SpanContext {
            trace_id: TraceId([0x11; 16]),
            span_id: SpanId([0x33; 8]),
            flags: TraceFlags(0xff), // unknown bits are not sent
            trace_state: String::new(),
            is_remote: true,
        };
        let ctx = SpanContext { span_id: SpanId([0x22; 8]), trace_state: "a=b".into(), ..parent.clone() };
        let mut span = SpanData::new(ctx, Some(&parent), "x".into(), SpanKind::Server, 0x0102);
        span.end(0x0203);
        span.attributes.push(KeyValue::new("b", false));
        span.attributes.push(KeyValue::new("i", -1i64));
        span.dropped_attributes_count = 3;
        span.events.push(Event {
            name: "e".into(),
            time_unix_nano: 5,
            attributes: vec![],
            dropped_attributes_count: 0,
        });
        span.dropped_events_count = 4;
        span.links.push(Link { span_context: parent.clone(), attributes: vec![], dropped_attributes_count: 1 });
        span.dropped_links_count = 5;
        span.status = Status::Error("no".into());
        let mut out = Vec::new();
        span_record(&mut out, &span);

        let mut body = vec![0x0a, 16];
        body.extend([0x11; 16]);
        body.extend([0x12, 8]);
        body.extend([0x22; 8]);
        body.extend([0x1a, 3, b'a', b'=', b'b']); // trace_state
        body.extend([0x22, 8]); // parent_span_id
        body.extend([0x33; 8]);
        body.extend([0x2a, 1, b'x', 0x30, 2]); // name, kind = SERVER
        body.extend([0x39, 0x02, 0x01, 0, 0, 0, 0, 0, 0]);
        body.extend([0x41, 0x03, 0x02, 0, 0, 0, 0, 0, 0]);
        // attributes: KeyValue { key "b", value AnyValue { bool_value false } }
        body.extend([0x4a, 7, 0x0a, 1, b'b', 0x12, 2, 0x10, 0x00]);
        // KeyValue { key "i", value AnyValue { int_value -1 (10 bytes) } }
        body.extend([0x4a, 16, 0x0a, 1, b'i', 0x12, 11, 0x18]);
        body.extend([0xff; 9]);
        body.push(0x01);
        body.extend([0x50, 3]); // dropped_attributes_count
        body.extend([0x5a, 12, 0x09, 5, 0, 0, 0, 0, 0, 0, 0, 0x12, 1, b'e']); // event
        body.extend([0x60, 4]); // dropped_events_count
                                // link: trace_id, span_id, dropped 1, flags = 0x03 | HAS_IS_REMOTE | IS_REMOTE
        body.extend([0x6a, 35, 0x0a, 16]);
        body.extend([0x11; 16]);
        body.extend([0x12, 8]);
        body.extend([0x33; 8]);
        body.extend([0x28, 1, 0x35, 0x03, 0x03, 0, 0]);
        body.extend([0x70, 5]); // dropped_links_count
        body.extend([0x7a, 6, 0x12, 2, b'n', b'o', 0x18, 2]); // status
        body.extend([0x85, 0x01, 0x03, 0x03, 0, 0]); // flags: 0x03 | parent remote
        let mut expected = vec![0x12];
        expected.extend(vint(body.len() as u64));
        expected.extend(body);
        assert_eq!(out, expected);
    }

    #[test]
    fn every_any_value_member_is_written_even_when_default() {
        let cases: [(Value, &[u8]); 7] = [
            (Value::from(""), &[0x0a, 0x00]),
            (Value::from(false), &[0x10, 0x00]),
            (Value::from(0i64), &[0x18, 0x00]),
            (Value::from(0.0), &[0x21, 0, 0, 0, 0, 0, 0, 0, 0]),
            (Value::from(-2.5), &[0x21, 0, 0, 0, 0, 0, 0, 0x04, 0xc0]),
            (Value::Array(Array::I64(vec![])), &[0x2a, 0x00]),
            (Value::Array(Array::Bool(vec![true, false])), &[0x2a, 8, 0x0a, 2, 0x10, 1, 0x0a, 2, 0x10, 0]),
        ];
        for (value, member) in cases {
            let mut out = Vec::new();
            any_value(&mut out, 2, &value);
            let mut expected = vec![0x12, member.len() as u8];
            expected.extend(member);
            assert_eq!(out, expected, "{value:?}");
        }
    }

    #[test]
    fn request_head_lengths_cover_the_records() {
        let resource = Resource::new("svc", Some("1.0"), "rust");
        let scope = Scope { name: "tracelink".into(), version: "0.1.0".into() };
        for records_len in [0usize, 1, 100, 127, 128, 5000, 16_384, 3_000_000] {
            let head = request_head(&resource, &scope, records_len);
            let mut r = Reader { buf: &head };
            // resource_spans: its length runs exactly to the end of the records
            let key = r.varint().unwrap();
            assert_eq!(key, 1 << 3 | 2);
            let len = r.varint().unwrap() as usize;
            assert_eq!(r.buf.len() + records_len, len);
            let overhead = head.len();
            let bound = max_overhead(&resource, &scope);
            assert!(bound >= overhead && bound - overhead <= 8, "{records_len}: {bound} vs {overhead}");
        }
    }

    #[test]
    fn partial_success_parses_and_tolerates_garbage() {
        // partial_success { rejected_spans 3, error_message "bad" }, plus an unknown field 9
        let body = [0x0a, 7, 0x08, 3, 0x12, 3, b'b', b'a', b'd', 0x48, 1];
        assert_eq!(parse_partial_success(&body), Some((3, "bad".into())));
        assert_eq!(parse_partial_success(&[]), None);
        assert_eq!(parse_partial_success(&[0x0a, 0]), Some((0, String::new())));
        // negative int64 round-trips
        let mut neg = vec![0x0a, 11, 0x08];
        neg.extend(vint(-7i64 as u64));
        assert_eq!(parse_partial_success(&neg), Some((-7, String::new())));
        for garbage in [
            &[0x0a][..],
            &[0x0a, 5, 0x08],
            &[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            &[0x08, 1], // field 1 with the wrong wire type
            &[0x0b],    // start group
            &[0x00, 1], // field 0
            b"{\"partialSuccess\":{}}",
        ] {
            assert_eq!(parse_partial_success(garbage), None, "{garbage:?}");
        }
        // invalid UTF-8 in the message: the response still counts, the message is dropped
        assert_eq!(parse_partial_success(&[0x0a, 3, 0x12, 1, 0xff]), Some((0, String::new())));

        // Found by fuzzing (fuzz/ target otlp_response, checked against
        // prost): a repeated partial_success merges; the second one here holds
        // only an unknown field, so rejected_spans 24 from the first stays.
        let twice = [0x0a, 2, 0x08, 24, 0x18, 1, 0x0a, 2, 0x18, 24];
        assert_eq!(parse_partial_success(&twice), Some((24, String::new())));
        let message_later = [0x0a, 2, 0x08, 5, 0x0a, 3, 0x12, 1, b'm', 0x0a, 2, 0x08, 6];
        assert_eq!(parse_partial_success(&message_later), Some((6, "m".into())));
    }

    // ---- a decoder for our own output, to check nesting with proptest ----

    fn decode_scalar(body: &[u8]) -> Option<Value> {
        let mut r = Reader { buf: body };
        let value = match r.field()? {
            (1, Field::Bytes(b)) => Value::String(String::from_utf8(b.to_vec()).ok()?),
            (2, Field::Varint(v)) => Value::Bool(v != 0),
            (3, Field::Varint(v)) => Value::I64(v as i64),
            (4, Field::Fixed64(v)) => Value::F64(f64::from_bits(v)),
            (5, Field::Bytes(b)) => {
                let mut a = Reader { buf: b };
                let mut items = Vec::new();
                while !a.buf.is_empty() {
                    match a.field()? {
                        (1, Field::Bytes(e)) => items.push(decode_scalar(e)?),
                        _ => return None,
                    }
                }
                Value::Array(match items.first() {
                    None => Array::I64(vec![]),
                    Some(Value::Bool(_)) => Array::Bool(items.iter().map(|v| v == &Value::Bool(true)).collect()),
                    Some(Value::I64(_)) => {
                        Array::I64(items.iter().map(|v| if let Value::I64(i) = v { *i } else { 0 }).collect())
                    }
                    Some(Value::F64(_)) => {
                        Array::F64(items.iter().map(|v| if let Value::F64(f) = v { *f } else { 0.0 }).collect())
                    }
                    Some(_) => Array::String(
                        items
                            .iter()
                            .map(|v| if let Value::String(s) = v { s.clone() } else { String::new() })
                            .collect(),
                    ),
                })
            }
            _ => return None,
        };
        r.buf.is_empty().then_some(value)
    }

    /// Span attributes (field 9) decoded back from a span record.
    fn decode_attributes(record: &[u8]) -> Option<Vec<KeyValue>> {
        let mut outer = Reader { buf: record };
        let (2, Field::Bytes(span)) = outer.field()? else { return None };
        if !outer.buf.is_empty() {
            return None;
        }
        let mut r = Reader { buf: span };
        let mut out = Vec::new();
        while !r.buf.is_empty() {
            if let (9, Field::Bytes(kv)) = r.field()? {
                let mut k = Reader { buf: kv };
                let (mut key, mut value) = (String::new(), None);
                while !k.buf.is_empty() {
                    match k.field()? {
                        (1, Field::Bytes(b)) => key = String::from_utf8(b.to_vec()).ok()?, // absent when ""
                        (2, Field::Bytes(b)) => value = Some(decode_scalar(b)?),
                        _ => return None,
                    }
                }
                out.push(KeyValue { key, value: value? });
            }
        }
        Some(out)
    }

    use proptest::prelude::*;

    fn value_strategy() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::I64),
            any::<f64>().prop_filter("NaN != NaN", |f| !f.is_nan()).prop_map(Value::F64),
            ".{0,300}".prop_map(Value::String),
            prop::collection::vec(any::<i64>(), 1..40).prop_map(|v| Value::Array(Array::I64(v))),
            prop::collection::vec(".{0,200}", 1..5).prop_map(|v| Value::Array(Array::String(v))),
        ]
    }

    proptest! {
        #[test]
        fn attributes_round_trip(attrs in prop::collection::vec((".{0,20}", value_strategy()), 0..12)) {
            let mut span = minimal_span();
            span.attributes = attrs.into_iter().map(|(k, v)| KeyValue { key: k, value: v }).collect();
            let mut out = Vec::new();
            span_record(&mut out, &span);
            let decoded = decode_attributes(&out);
            prop_assert_eq!(decoded.as_ref(), Some(&span.attributes));
        }

        #[test]
        fn partial_success_never_panics(body in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_partial_success(&body);
        }
    }
}
