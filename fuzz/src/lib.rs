//! Shared pieces of the OTLP encoder fuzz targets.
//!
//! [`RequestInput`] is what the fuzzer controls (via `arbitrary`): a
//! resource, a scope, span limits and spans built by a sequence of
//! operations. [`RequestInput::build`] replays it twice: through tracelink's
//! span model (`SpanData` and its limits), and through [`Expected`], a
//! separate model written from the documented rules (replace by key, drop
//! past the limit and count it, cut strings at a char boundary, `Ok` status
//! is final, `Unset` never overrides, end never before start). Each target
//! then decodes tracelink's bytes with an independent decoder into the same
//! [`Expected`] shape and compares the two.

use arbitrary::Arbitrary;
use tracelink::core::id::{SpanId, TraceId};
use tracelink::core::otlp::{
    encode_request, encode_span, encode_spans, encoded_request_len, request_overhead, Encoding,
};
use tracelink::core::span::{
    Array, KeyValue, Resource, Scope, SpanContext, SpanData, SpanKind, SpanLimits, Status, TraceFlags, Value,
};

/// An attribute value as the fuzzer makes it.
#[derive(Arbitrary, Clone, Debug)]
pub enum AttrInput {
    Bool(bool),
    I64(i64),
    F64(f64),
    Str(String),
    Bools(Vec<bool>),
    I64s(Vec<i64>),
    F64s(Vec<f64>),
    Strs(Vec<String>),
}

impl AttrInput {
    fn value(&self) -> Value {
        match self.clone() {
            AttrInput::Bool(b) => Value::Bool(b),
            AttrInput::I64(i) => Value::I64(i),
            AttrInput::F64(f) => Value::F64(f),
            AttrInput::Str(s) => Value::String(s),
            AttrInput::Bools(v) => Value::Array(Array::Bool(v)),
            AttrInput::I64s(v) => Value::Array(Array::I64(v)),
            AttrInput::F64s(v) => Value::Array(Array::F64(v)),
            AttrInput::Strs(v) => Value::Array(Array::String(v)),
        }
    }

    /// The value the span model should hold, strings cut to `max` bytes.
    fn expected(&self, max: Option<usize>) -> Val {
        let cut = |s: &String| cut_at_char_boundary(s, max);
        match self {
            AttrInput::Bool(b) => Val::Bool(*b),
            AttrInput::I64(i) => Val::Int(*i),
            AttrInput::F64(f) => Val::Double(f.to_bits()),
            AttrInput::Str(s) => Val::Str(cut(s)),
            AttrInput::Bools(v) => Val::Array(v.iter().map(|b| Val::Bool(*b)).collect()),
            AttrInput::I64s(v) => Val::Array(v.iter().map(|i| Val::Int(*i)).collect()),
            AttrInput::F64s(v) => Val::Array(v.iter().map(|f| Val::Double(f.to_bits())).collect()),
            AttrInput::Strs(v) => Val::Array(v.iter().map(|s| Val::Str(cut(s))).collect()),
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char.
fn cut_at_char_boundary(s: &str, max: Option<usize>) -> String {
    let Some(max) = max else { return s.to_owned() };
    let mut out = String::new();
    for c in s.chars() {
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// Span limits: the defaults, or small ones so that every limit is hit.
#[derive(Arbitrary, Debug)]
pub struct LimitsInput {
    small: bool,
    attributes: u8,
    per_event: u8,
    per_link: u8,
    events: u8,
    links: u8,
    value_length: Option<u8>,
}

impl LimitsInput {
    fn limits(&self) -> SpanLimits {
        if !self.small {
            return SpanLimits::default();
        }
        SpanLimits {
            max_attributes: u32::from(self.attributes % 9),
            max_attributes_per_event: u32::from(self.per_event % 9),
            max_attributes_per_link: u32::from(self.per_link % 9),
            max_events: u32::from(self.events % 9),
            max_links: u32::from(self.links % 9),
            max_attribute_value_length: self.value_length.map(|n| u32::from(n % 64)),
        }
    }
}

/// What the fuzzer does to a span between its start and its end.
#[derive(Arbitrary, Debug)]
pub enum Op {
    Attribute(String, AttrInput),
    Event { name: String, time: u64, attributes: Vec<(String, AttrInput)> },
    Link(LinkInput),
    Status { code: u8, message: String },
}

#[derive(Arbitrary, Debug)]
pub struct LinkInput {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    trace_state: String,
    is_remote: bool,
    attributes: Vec<(String, AttrInput)>,
}

#[derive(Arbitrary, Debug)]
pub struct SpanInput {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    flags: u8,
    trace_state: String,
    /// The parent's span id and whether it is remote.
    parent: Option<([u8; 8], bool)>,
    name: String,
    kind: u8,
    start: u64,
    end: u64,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
pub struct RequestInput {
    resource: Vec<(String, AttrInput)>,
    scope_name: String,
    scope_version: String,
    limits: LimitsInput,
    spans: Vec<SpanInput>,
}

/// An attribute value in the expected model. Doubles are kept as bits so
/// that NaN payloads and the sign of zero compare exactly.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Bool(bool),
    Int(i64),
    Double(u64),
    Str(String),
    Array(Vec<Val>),
}

pub type Attrs = Vec<(String, Val)>;

#[derive(Clone, Debug, PartialEq)]
pub struct ExpEvent {
    pub time: u64,
    pub name: String,
    pub attributes: Attrs,
    pub dropped_attributes: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExpLink {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub trace_state: String,
    pub attributes: Attrs,
    pub dropped_attributes: u32,
    pub flags: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExpSpan {
    pub trace_id: Vec<u8>,
    pub span_id: Vec<u8>,
    pub trace_state: String,
    /// Empty for a root span.
    pub parent_span_id: Vec<u8>,
    pub flags: u32,
    pub name: String,
    pub kind: i32,
    pub start: u64,
    pub end: u64,
    pub attributes: Attrs,
    pub dropped_attributes: u32,
    pub events: Vec<ExpEvent>,
    pub dropped_events: u32,
    pub links: Vec<ExpLink>,
    pub dropped_links: u32,
    /// `(code, message)`, `None` when unset.
    pub status: Option<(i32, String)>,
}

/// A whole request as the collector should see it.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub resource: Attrs,
    /// `(name, version)`, `None` when both are empty.
    pub scope: Option<(String, String)>,
    pub spans: Vec<ExpSpan>,
}

/// Sets `key` in `list` like the span model: replace in place, else append
/// while under `max`; returns 1 if dropped.
fn set_attr(list: &mut Attrs, key: &str, value: Val, max: u32) -> u32 {
    if let Some(existing) = list.iter_mut().find(|(k, _)| k == key) {
        existing.1 = value;
        return 0;
    }
    if list.len() >= max as usize {
        return 1;
    }
    list.push((key.to_owned(), value));
    0
}

fn limited(attributes: &[(String, AttrInput)], max: u32, max_len: Option<usize>) -> (Attrs, u32) {
    let mut out = Attrs::new();
    let mut dropped = 0;
    for (k, v) in attributes {
        dropped += set_attr(&mut out, k, v.expected(max_len), max);
    }
    (out, dropped)
}

fn key_values(attributes: &[(String, AttrInput)]) -> Vec<KeyValue> {
    attributes.iter().map(|(k, v)| KeyValue { key: k.clone(), value: v.value() }).collect()
}

const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

impl SpanInput {
    /// Builds the span through tracelink's model, and the expected form of it.
    fn build(&self, limits: &SpanLimits) -> (SpanData, ExpSpan) {
        let max_len = limits.max_attribute_value_length.map(|n| n as usize);
        let ctx = SpanContext {
            trace_id: TraceId(self.trace_id),
            span_id: SpanId(self.span_id),
            flags: TraceFlags(self.flags),
            trace_state: self.trace_state.clone(),
            is_remote: false,
        };
        let parent = self.parent.map(|(id, remote)| SpanContext {
            span_id: SpanId(id),
            is_remote: remote,
            ..SpanContext::default()
        });
        let kinds = [SpanKind::Internal, SpanKind::Server, SpanKind::Client, SpanKind::Producer, SpanKind::Consumer];
        let kind = kinds[usize::from(self.kind % 5)];
        let mut span = SpanData::new(ctx, parent.as_ref(), self.name.clone(), kind, self.start);

        let parent_valid = matches!(self.parent, Some((id, _)) if id != [0; 8]);
        let mut flags = u32::from(self.flags & 0x03);
        if parent_valid {
            flags |= HAS_IS_REMOTE;
            if self.parent.is_some_and(|(_, remote)| remote) {
                flags |= IS_REMOTE;
            }
        }
        let mut exp = ExpSpan {
            trace_id: self.trace_id.to_vec(),
            span_id: self.span_id.to_vec(),
            trace_state: self.trace_state.clone(),
            parent_span_id: if parent_valid { self.parent.unwrap().0.to_vec() } else { Vec::new() },
            flags,
            name: self.name.clone(),
            kind: i32::from(self.kind % 5) + 1,
            start: self.start,
            end: self.end.max(self.start),
            attributes: Attrs::new(),
            dropped_attributes: 0,
            events: Vec::new(),
            dropped_events: 0,
            links: Vec::new(),
            dropped_links: 0,
            status: None,
        };

        for op in &self.ops {
            match op {
                Op::Attribute(key, value) => {
                    span.set_attribute(KeyValue { key: key.clone(), value: value.value() }, limits);
                    exp.dropped_attributes +=
                        set_attr(&mut exp.attributes, key, value.expected(max_len), limits.max_attributes);
                }
                Op::Event { name, time, attributes } => {
                    span.add_event(name.clone(), *time, key_values(attributes), limits);
                    if exp.events.len() >= limits.max_events as usize {
                        exp.dropped_events += 1;
                    } else {
                        let (attributes, dropped) = limited(attributes, limits.max_attributes_per_event, max_len);
                        exp.events.push(ExpEvent {
                            time: *time,
                            name: name.clone(),
                            attributes,
                            dropped_attributes: dropped,
                        });
                    }
                }
                Op::Link(l) => {
                    let ctx = SpanContext {
                        trace_id: TraceId(l.trace_id),
                        span_id: SpanId(l.span_id),
                        flags: TraceFlags(l.flags),
                        trace_state: l.trace_state.clone(),
                        is_remote: l.is_remote,
                    };
                    span.add_link(ctx, key_values(&l.attributes), limits);
                    if exp.links.len() >= limits.max_links as usize {
                        exp.dropped_links += 1;
                    } else {
                        let (attributes, dropped) = limited(&l.attributes, limits.max_attributes_per_link, max_len);
                        let remote = if l.is_remote { IS_REMOTE } else { 0 };
                        exp.links.push(ExpLink {
                            trace_id: l.trace_id.to_vec(),
                            span_id: l.span_id.to_vec(),
                            trace_state: l.trace_state.clone(),
                            attributes,
                            dropped_attributes: dropped,
                            flags: u32::from(l.flags & 0x03) | HAS_IS_REMOTE | remote,
                        });
                    }
                }
                Op::Status { code, message } => {
                    let status = match code % 3 {
                        0 => Status::Unset,
                        1 => Status::Ok,
                        _ => Status::Error(message.clone()),
                    };
                    span.set_status(status);
                    // Ok is final; Unset never overrides; Error carries its message.
                    match (exp.status.as_ref().map(|s| s.0), code % 3) {
                        (Some(1), _) | (_, 0) => {}
                        (_, 1) => exp.status = Some((1, String::new())),
                        _ => exp.status = Some((2, message.clone())),
                    }
                }
            }
        }
        span.end(self.end);
        (span, exp)
    }
}

impl RequestInput {
    /// The resource, the scope, the spans (through tracelink's span model)
    /// and what a collector should decode from them.
    pub fn build(&self) -> (Resource, Scope, Vec<SpanData>, Expected) {
        let limits = self.limits.limits();
        let resource = Resource {
            attributes: self.resource.iter().map(|(k, v)| KeyValue { key: k.clone(), value: v.value() }).collect(),
        };
        let scope = Scope { name: self.scope_name.clone(), version: self.scope_version.clone() };
        let (spans, expected): (Vec<_>, Vec<_>) = self.spans.iter().map(|s| s.build(&limits)).unzip();
        let expected = Expected {
            // The resource is encoded as given: no limits, duplicates kept.
            resource: self.resource.iter().map(|(k, v)| (k.clone(), v.expected(None))).collect(),
            scope: (!self.scope_name.is_empty() || !self.scope_version.is_empty())
                .then(|| (self.scope_name.clone(), self.scope_version.clone())),
            spans: expected,
        };
        (resource, scope, spans, expected)
    }
}

/// Encodes `spans` record by record, frames them, and checks the sizes the
/// exporter relies on: `encoded_request_len` exact, `request_overhead` exact
/// (JSON) or at most 8 bytes high (protobuf), and the same bytes as
/// `encode_spans`. Returns the request body.
pub fn encode_and_check_framing(enc: Encoding, resource: &Resource, scope: &Scope, spans: &[SpanData]) -> Vec<u8> {
    let records: Vec<Vec<u8>> = spans
        .iter()
        .map(|s| {
            let mut r = Vec::new();
            encode_span(enc, s, &mut r);
            r
        })
        .collect();
    let records_len: usize = records.iter().map(Vec::len).sum();
    let mut body = vec![0x5a]; // encode_request appends
    encode_request(enc, resource, scope, records.iter().map(Vec::as_slice), &mut body);
    assert_eq!(body.remove(0), 0x5a, "encode_request must append");
    assert_eq!(body, encode_spans(enc, resource, scope, spans), "framed records differ from encode_spans");
    assert_eq!(body.len(), encoded_request_len(enc, resource, scope, spans.len(), records_len), "encoded_request_len");
    let bound = records_len + request_overhead(enc, resource, scope, spans.len());
    match enc {
        Encoding::Json => assert_eq!(bound, body.len(), "request_overhead (JSON) must be exact"),
        Encoding::Protobuf => {
            assert!(bound >= body.len() && bound - body.len() <= 8, "request_overhead bound {bound} vs {}", body.len())
        }
    }
    body
}
