//! The span model: what a finished span carries to the exporter.
//!
//! Types mirror the OpenTelemetry data model (and the `opentelemetry` crate's
//! names) so they map one-to-one onto OTLP and onto the `opentelemetry` API
//! traits. Times are unix nanoseconds passed in by the caller; nothing here
//! reads a clock. Limits are applied as data is added, and everything a limit
//! removes is counted in the span's `dropped_*` fields, which OTLP carries.

use super::id::{SpanId, TraceId};

/// W3C trace flags: a bit field. Bit 0 sampled, bit 1 random trace id
/// (Level 2). Other bits are unknown and never sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct TraceFlags(pub u8);

impl TraceFlags {
    /// Bit 0: the caller may have recorded this trace.
    pub const SAMPLED: u8 = 0x01;
    /// Bit 1: the trace id's right-most 7 bytes are random (W3C Level 2).
    pub const RANDOM_TRACE_ID: u8 = 0x02;
    /// The bits this implementation knows; others are zeroed when sent.
    pub const KNOWN: u8 = Self::SAMPLED | Self::RANDOM_TRACE_ID;

    /// Whether the sampled bit is set.
    pub fn is_sampled(self) -> bool {
        self.0 & Self::SAMPLED != 0
    }
    /// Whether the random-trace-id bit is set.
    pub fn is_random(self) -> bool {
        self.0 & Self::RANDOM_TRACE_ID != 0
    }
    /// These flags with the sampled bit set or cleared.
    pub fn with_sampled(self, sampled: bool) -> TraceFlags {
        TraceFlags(if sampled { self.0 | Self::SAMPLED } else { self.0 & !Self::SAMPLED })
    }
    /// Only the known bits: what goes on the wire.
    pub fn known(self) -> TraceFlags {
        TraceFlags(self.0 & Self::KNOWN)
    }
}

/// The propagated identity of a span.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SpanContext {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub flags: TraceFlags,
    /// The W3C `tracestate` header value (already validated), or empty.
    pub trace_state: String,
    /// Whether this context came from another process (extracted).
    pub is_remote: bool,
}

impl SpanContext {
    /// Valid when both ids are non-zero.
    pub fn is_valid(&self) -> bool {
        self.trace_id.is_valid() && self.span_id.is_valid()
    }
}

/// What kind of operation a span describes (OTLP enum values minus one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    #[default]
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// The OTLP `Span.SpanKind` number (1..=5).
    pub fn otlp(self) -> u32 {
        match self {
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }
    /// Parses `internal|server|client|producer|consumer` (any case).
    pub fn parse(s: &str) -> Option<SpanKind> {
        Some(match s.to_ascii_lowercase().as_str() {
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => return None,
        })
    }
}

/// An attribute value (the OTel `AnyValue` subset the API allows).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Bool(bool),
    I64(i64),
    F64(f64),
    String(String),
    Array(Array),
}

/// A homogeneous attribute array.
#[derive(Clone, Debug, PartialEq)]
pub enum Array {
    Bool(Vec<bool>),
    I64(Vec<i64>),
    F64(Vec<f64>),
    String(Vec<String>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::I64(i)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::F64(f)
    }
}

/// A key and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: Value,
}

impl KeyValue {
    /// A key-value pair.
    pub fn new(key: impl Into<String>, value: impl Into<Value>) -> KeyValue {
        KeyValue { key: key.into(), value: value.into() }
    }
}

/// Span status. `Error` carries a description; `Ok` and `Unset` carry none.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Unset,
    Ok,
    Error(String),
}

impl Status {
    /// The OTLP `Status.StatusCode` number.
    pub fn otlp_code(&self) -> u32 {
        match self {
            Status::Unset => 0,
            Status::Ok => 1,
            Status::Error(_) => 2,
        }
    }
    /// The description (empty unless `Error`).
    pub fn message(&self) -> &str {
        match self {
            Status::Error(m) => m,
            _ => "",
        }
    }
}

/// A timestamped annotation on a span.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// A reference to another span (e.g. a batch's producer).
#[derive(Clone, Debug, PartialEq)]
pub struct Link {
    pub span_context: SpanContext,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// Limits applied while a span records data. `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanLimits {
    pub max_attributes: u32,
    pub max_attributes_per_event: u32,
    pub max_attributes_per_link: u32,
    pub max_events: u32,
    pub max_links: u32,
    /// Longest string value (in bytes, cut at a char boundary), per string
    /// and per array element.
    pub max_attribute_value_length: Option<u32>,
}

impl Default for SpanLimits {
    /// The OpenTelemetry SDK defaults (128 each), with string values capped
    /// at 4 KiB so one runaway value cannot fill a keepalive request.
    fn default() -> SpanLimits {
        SpanLimits {
            max_attributes: 128,
            max_attributes_per_event: 128,
            max_attributes_per_link: 128,
            max_events: 128,
            max_links: 128,
            max_attribute_value_length: Some(4096),
        }
    }
}

/// Who produced the spans: `service.name` and friends.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Resource {
    pub attributes: Vec<KeyValue>,
}

impl Resource {
    /// A resource with `service.name`, optional `service.version`, and the
    /// `telemetry.sdk.*` attributes naming this library.
    pub fn new(service_name: &str, service_version: Option<&str>, sdk_language: &str) -> Resource {
        let mut attributes = vec![KeyValue::new("service.name", service_name)];
        if let Some(v) = service_version {
            attributes.push(KeyValue::new("service.version", v));
        }
        attributes.push(KeyValue::new("telemetry.sdk.name", "tracelink"));
        attributes.push(KeyValue::new("telemetry.sdk.language", sdk_language));
        attributes.push(KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")));
        Resource { attributes }
    }

    /// Adds or replaces an attribute.
    pub fn set(&mut self, kv: KeyValue) {
        match self.attributes.iter_mut().find(|a| a.key == kv.key) {
            Some(a) => a.value = kv.value,
            None => self.attributes.push(kv),
        }
    }
}

/// The library that produced the spans (`InstrumentationScope`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Scope {
    pub name: String,
    pub version: String,
}

/// A span: in progress while `end_time_unix_nano` is 0, then exported.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanData {
    pub span_context: SpanContext,
    /// `SpanId::INVALID` for a root span.
    pub parent_span_id: SpanId,
    /// Whether the parent came from another process.
    pub parent_is_remote: bool,
    pub name: String,
    pub kind: SpanKind,
    pub start_time_unix_nano: u64,
    pub end_time_unix_nano: u64,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    pub status: Status,
}

impl SpanData {
    /// A new span in progress.
    pub fn new(
        span_context: SpanContext,
        parent: Option<&SpanContext>,
        name: String,
        kind: SpanKind,
        start_time_unix_nano: u64,
    ) -> SpanData {
        SpanData {
            span_context,
            parent_span_id: parent.map_or(SpanId::INVALID, |p| p.span_id),
            parent_is_remote: parent.is_some_and(|p| p.is_remote),
            name,
            kind,
            start_time_unix_nano,
            end_time_unix_nano: 0,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status: Status::Unset,
        }
    }

    /// Sets an attribute (replacing one with the same key) within `limits`.
    pub fn set_attribute(&mut self, kv: KeyValue, limits: &SpanLimits) {
        self.dropped_attributes_count +=
            set_limited(&mut self.attributes, kv, limits.max_attributes, limits.max_attribute_value_length);
    }

    /// Adds an event within `limits`; its attributes are limited too.
    pub fn add_event(&mut self, name: String, time_unix_nano: u64, attributes: Vec<KeyValue>, limits: &SpanLimits) {
        if self.events.len() as u32 >= limits.max_events {
            self.dropped_events_count = self.dropped_events_count.saturating_add(1);
            return;
        }
        let (attributes, dropped) =
            limit_list(attributes, limits.max_attributes_per_event, limits.max_attribute_value_length);
        self.events.push(Event { name, time_unix_nano, attributes, dropped_attributes_count: dropped });
    }

    /// Adds a link within `limits`.
    pub fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>, limits: &SpanLimits) {
        if self.links.len() as u32 >= limits.max_links {
            self.dropped_links_count = self.dropped_links_count.saturating_add(1);
            return;
        }
        let (attributes, dropped) =
            limit_list(attributes, limits.max_attributes_per_link, limits.max_attribute_value_length);
        self.links.push(Link { span_context, attributes, dropped_attributes_count: dropped });
    }

    /// Sets the status. `Ok` is final; `Unset` never overrides (OTel rule).
    pub fn set_status(&mut self, status: Status) {
        match (&self.status, &status) {
            (Status::Ok, _) | (_, Status::Unset) => {}
            _ => self.status = status,
        }
    }

    /// Ends the span at `time` (never before its start).
    pub fn end(&mut self, time_unix_nano: u64) {
        self.end_time_unix_nano = time_unix_nano.max(self.start_time_unix_nano);
    }

    /// Whether `end` was called.
    pub fn has_ended(&self) -> bool {
        self.end_time_unix_nano != 0
    }
}

/// Sets `kv` in `list` (replace by key, else append when under `max`);
/// returns 1 if it was dropped.
fn set_limited(list: &mut Vec<KeyValue>, mut kv: KeyValue, max: u32, max_len: Option<u32>) -> u32 {
    if let Some(n) = max_len {
        truncate_value(&mut kv.value, n as usize);
    }
    if let Some(existing) = list.iter_mut().find(|a| a.key == kv.key) {
        existing.value = kv.value;
        return 0;
    }
    if list.len() as u32 >= max {
        return 1;
    }
    list.push(kv);
    0
}

fn limit_list(attributes: Vec<KeyValue>, max: u32, max_len: Option<u32>) -> (Vec<KeyValue>, u32) {
    let mut out = Vec::with_capacity(attributes.len().min(max as usize));
    let mut dropped = 0u32;
    for kv in attributes {
        dropped = dropped.saturating_add(set_limited(&mut out, kv, max, max_len));
    }
    (out, dropped)
}

/// Cuts string values (and string array elements) to at most `max` bytes,
/// at a char boundary.
pub fn truncate_value(value: &mut Value, max: usize) {
    match value {
        Value::String(s) => truncate_str(s, max),
        Value::Array(Array::String(v)) => v.iter_mut().for_each(|s| truncate_str(s, max)),
        _ => {}
    }
}

fn truncate_str(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span() -> SpanData {
        SpanData::new(SpanContext::default(), None, "s".into(), SpanKind::Internal, 10)
    }

    #[test]
    fn attribute_limit_counts_drops_and_replaces_in_place() {
        let limits = SpanLimits { max_attributes: 2, ..SpanLimits::default() };
        let mut s = span();
        s.set_attribute(KeyValue::new("a", 1), &limits);
        s.set_attribute(KeyValue::new("b", 2), &limits);
        s.set_attribute(KeyValue::new("c", 3), &limits);
        s.set_attribute(KeyValue::new("a", 9), &limits);
        assert_eq!(s.attributes, vec![KeyValue::new("a", 9), KeyValue::new("b", 2)]);
        assert_eq!(s.dropped_attributes_count, 1);
    }

    #[test]
    fn long_strings_are_cut_at_char_boundaries() {
        let limits = SpanLimits { max_attribute_value_length: Some(4), ..SpanLimits::default() };
        let mut s = span();
        s.set_attribute(KeyValue::new("k", "aé€z"), &limits); // 1 + 2 + 3 + 1 bytes
        assert_eq!(s.attributes[0].value, Value::from("aé"));
        s.set_attribute(KeyValue::new("arr", Value::Array(Array::String(vec!["abcdef".into()]))), &limits);
        assert_eq!(s.attributes[1].value, Value::Array(Array::String(vec!["abcd".into()])));
    }

    #[test]
    fn events_and_links_are_limited() {
        let limits = SpanLimits { max_events: 1, max_links: 1, max_attributes_per_event: 1, ..SpanLimits::default() };
        let mut s = span();
        s.add_event("e1".into(), 11, vec![KeyValue::new("x", 1), KeyValue::new("y", 2)], &limits);
        s.add_event("e2".into(), 12, vec![], &limits);
        s.add_link(SpanContext::default(), vec![], &limits);
        s.add_link(SpanContext::default(), vec![], &limits);
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.events[0].dropped_attributes_count, 1);
        assert_eq!(s.dropped_events_count, 1);
        assert_eq!(s.dropped_links_count, 1);
    }

    #[test]
    fn status_rules() {
        let mut s = span();
        s.set_status(Status::Error("boom".into()));
        s.set_status(Status::Unset);
        assert_eq!(s.status, Status::Error("boom".into()));
        s.set_status(Status::Ok);
        s.set_status(Status::Error("later".into()));
        assert_eq!(s.status, Status::Ok);
    }

    #[test]
    fn end_never_precedes_start() {
        let mut s = span();
        s.end(5);
        assert_eq!(s.end_time_unix_nano, 10);
        assert!(s.has_ended());
    }
}
