//! Between the `opentelemetry` API's types and the core's.
//!
//! The core's span model mirrors the OpenTelemetry data model, so these are
//! one-to-one, with two exceptions: attribute values of a kind newer than
//! this code (the API's enums are `#[non_exhaustive]`) are skipped, and a
//! `tracestate` entry the API's stricter key rules refuse is left out of
//! the API's [`TraceState`] (the core keeps the header as received).

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{self as api, TraceState};

use crate::core::id::{SpanId, TraceId};
use crate::core::span::{Array, KeyValue, SpanContext, SpanKind, Status, TraceFlags, Value};
use crate::core::trace_context;

/// The API's span context for a core one.
pub fn to_api_context(c: &SpanContext) -> api::SpanContext {
    api::SpanContext::new(
        api::TraceId::from_bytes(c.trace_id.0),
        api::SpanId::from_bytes(c.span_id.0),
        api::TraceFlags::new(c.flags.known().0),
        c.is_remote,
        to_api_trace_state(&c.trace_state),
    )
}

/// The core's span context for an API one (`None` when it is invalid).
pub fn from_api_context(c: &api::SpanContext) -> Option<SpanContext> {
    c.is_valid().then(|| SpanContext {
        trace_id: TraceId(c.trace_id().to_bytes()),
        span_id: SpanId(c.span_id().to_bytes()),
        flags: TraceFlags(c.trace_flags().to_u8()).known(),
        trace_state: from_api_trace_state(c.trace_state()),
        is_remote: c.is_remote(),
    })
}

/// A `tracestate` header (already valid) as the API's [`TraceState`].
pub fn to_api_trace_state(header: &str) -> TraceState {
    if header.is_empty() {
        return TraceState::NONE;
    }
    let parsed = trace_context::TraceState::parse(header);
    let entries: Vec<(&str, &str)> = parsed.iter().collect();
    TraceState::from_key_value(entries.iter().copied()).unwrap_or_else(|_| {
        // One entry the API refuses would refuse them all: keep the others.
        let kept = entries.iter().copied().filter(|&kv| TraceState::from_key_value([kv]).is_ok());
        TraceState::from_key_value(kept).unwrap_or_default()
    })
}

/// The API's [`TraceState`] as a `tracestate` header, through the core's
/// rules (limits, truncation); empty when there is none.
pub fn from_api_trace_state(state: &TraceState) -> String {
    let header = state.header();
    if header.is_empty() {
        return header;
    }
    trace_context::TraceState::parse(&header).header()
}

/// The core's kind for the API's.
pub fn kind(k: &api::SpanKind) -> SpanKind {
    match k {
        api::SpanKind::Client => SpanKind::Client,
        api::SpanKind::Server => SpanKind::Server,
        api::SpanKind::Producer => SpanKind::Producer,
        api::SpanKind::Consumer => SpanKind::Consumer,
        api::SpanKind::Internal => SpanKind::Internal,
    }
}

/// The core's status for the API's.
pub fn status(s: api::Status) -> Status {
    match s {
        api::Status::Unset => Status::Unset,
        api::Status::Ok => Status::Ok,
        api::Status::Error { description } => Status::Error(description.into_owned()),
    }
}

/// The core's attribute for the API's (`None` for a value kind this code
/// does not know).
pub fn key_value(kv: opentelemetry::KeyValue) -> Option<KeyValue> {
    use opentelemetry::{Array as A, Value as V};
    let value = match kv.value {
        V::Bool(b) => Value::Bool(b),
        V::I64(i) => Value::I64(i),
        V::F64(f) => Value::F64(f),
        V::String(s) => Value::String(s.as_str().to_owned()),
        V::Array(A::Bool(v)) => Value::Array(Array::Bool(v)),
        V::Array(A::I64(v)) => Value::Array(Array::I64(v)),
        V::Array(A::F64(v)) => Value::Array(Array::F64(v)),
        V::Array(A::String(v)) => Value::Array(Array::String(v.iter().map(|s| s.as_str().to_owned()).collect())),
        _ => return None,
    };
    Some(KeyValue { key: kv.key.as_str().to_owned(), value })
}

/// The core's attributes for the API's (unknown kinds skipped).
pub fn key_values(kvs: impl IntoIterator<Item = opentelemetry::KeyValue>) -> Vec<KeyValue> {
    kvs.into_iter().filter_map(key_value).collect()
}

/// Unix nanoseconds for a `SystemTime` (0 before the epoch, saturating).
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A `SystemTime` for unix nanoseconds.
#[cfg(test)]
pub fn system_time(unix_nanos: u64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_nanos(unix_nanos)
}

/// A timestamp from the API, or `None` when it means "now".
///
/// The `opentelemetry` crate's default `end()`, `add_event()` and
/// `tracing-opentelemetry`'s span times read `Date.now()` on wasm32: whole
/// milliseconds, with none of the drift correction of tracelink's clock
/// (`web::clock`), so such an end could fall before a start taken from
/// that clock. A timestamp within [`NOW_TOLERANCE_MS`] of `date_now_ms` is
/// therefore taken as "now" and read from tracelink's clock instead; any
/// other is kept as given (a caller's explicit time).
pub fn explicit_time(t: SystemTime, date_now_ms: f64) -> Option<u64> {
    let nanos = unix_nanos(t);
    let ms = nanos as f64 / 1e6;
    ((ms - date_now_ms).abs() > NOW_TOLERANCE_MS).then_some(nanos)
}

/// How close to `Date.now()` a timestamp must be to mean "now" (see
/// [`explicit_time`]).
pub const NOW_TOLERANCE_MS: f64 = 2.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_round_trip_with_the_random_flag_and_state() {
        let core = SpanContext {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([9; 8]),
            flags: TraceFlags(0x03),
            trace_state: "vendor=a,other@sys=b".into(),
            is_remote: true,
        };
        let api = to_api_context(&core);
        assert!(api.is_sampled() && api.is_remote());
        assert_eq!(api.trace_flags().to_u8(), 0x03, "the W3C Level 2 random bit is kept");
        assert_eq!(api.trace_state().header(), "vendor=a,other@sys=b");
        assert_eq!(from_api_context(&api), Some(core));
        assert_eq!(from_api_context(&api::SpanContext::empty_context()), None);
    }

    #[test]
    fn unknown_flag_bits_are_not_propagated() {
        let api = api::SpanContext::new(
            api::TraceId::from_bytes([1; 16]),
            api::SpanId::from_bytes([2; 8]),
            api::TraceFlags::new(0xff),
            false,
            TraceState::NONE,
        );
        assert_eq!(from_api_context(&api).unwrap().flags, TraceFlags(0x03));
    }

    #[test]
    fn attribute_values_map_one_to_one() {
        use opentelemetry::{Array as A, KeyValue as Kv, StringValue};
        let got = key_values([
            Kv::new("b", true),
            Kv::new("i", 7i64),
            Kv::new("f", 1.5),
            Kv::new("s", "x"),
            Kv::new("as", opentelemetry::Value::Array(A::String(vec![StringValue::from("a"), StringValue::from("b")]))),
        ]);
        assert_eq!(
            got,
            vec![
                KeyValue::new("b", true),
                KeyValue::new("i", 7i64),
                KeyValue::new("f", 1.5),
                KeyValue::new("s", "x"),
                KeyValue { key: "as".into(), value: Value::Array(Array::String(vec!["a".into(), "b".into()])) },
            ]
        );
    }

    #[test]
    fn times_near_date_now_mean_now() {
        let now_ms = 1_700_000_000_000.0;
        assert_eq!(explicit_time(system_time(1_700_000_000_001_000_000), now_ms), None);
        assert_eq!(explicit_time(system_time(1_699_999_999_000_000_000), now_ms), Some(1_699_999_999_000_000_000));
        assert_eq!(unix_nanos(UNIX_EPOCH - std::time::Duration::from_secs(1)), 0);
    }

    #[test]
    fn trace_state_keeps_what_the_api_accepts() {
        assert_eq!(to_api_trace_state("").header(), "");
        assert_eq!(to_api_trace_state("a=1,b=2").header(), "a=1,b=2");
        assert_eq!(from_api_trace_state(&to_api_trace_state("a=1,b=2")), "a=1,b=2");
    }
}
