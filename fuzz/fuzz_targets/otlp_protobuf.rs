//! OTLP protobuf encoder: spans built from fuzz input are encoded by
//! tracelink, decoded by prost with the official `opentelemetry-proto`
//! messages, and compared field by field with what the span model should
//! hold. The decoded message must also re-encode (prost) to the very same
//! bytes: tracelink claims prost's field order and default omission.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use tracelink::core::otlp::Encoding;
use tracelink_fuzz::{encode_and_check_framing, Attrs, ExpEvent, ExpLink, ExpSpan, Expected, RequestInput, Val};

fuzz_target!(|input: RequestInput| {
    let (resource, scope, spans, expected) = input.build();
    let body = encode_and_check_framing(Encoding::Protobuf, &resource, &scope, &spans);
    let request = match ExportTraceServiceRequest::decode(body.as_slice()) {
        Ok(r) => r,
        Err(e) => panic!("prost cannot decode tracelink's request: {e}"),
    };
    assert_eq!(decoded(&request), expected);
    assert!(request.encode_to_vec() == body, "prost re-encodes the decoded request to different bytes");
});

fn decoded(request: &ExportTraceServiceRequest) -> Expected {
    assert_eq!(request.resource_spans.len(), 1, "one ResourceSpans");
    let rs = &request.resource_spans[0];
    assert!(rs.schema_url.is_empty());
    assert_eq!(rs.scope_spans.len(), 1, "one ScopeSpans");
    let ss = &rs.scope_spans[0];
    assert!(ss.schema_url.is_empty());
    let resource = match &rs.resource {
        None => Attrs::new(),
        Some(r) => {
            assert_eq!(r.dropped_attributes_count, 0);
            assert!(!r.attributes.is_empty(), "an empty resource is left out");
            attrs(&r.attributes)
        }
    };
    let scope = ss.scope.as_ref().map(|s| {
        assert!(s.attributes.is_empty() && s.dropped_attributes_count == 0);
        (s.name.clone(), s.version.clone())
    });
    let spans = ss
        .spans
        .iter()
        .map(|s| ExpSpan {
            trace_id: s.trace_id.clone(),
            span_id: s.span_id.clone(),
            trace_state: s.trace_state.clone(),
            parent_span_id: s.parent_span_id.clone(),
            flags: s.flags,
            name: s.name.clone(),
            kind: s.kind,
            start: s.start_time_unix_nano,
            end: s.end_time_unix_nano,
            attributes: attrs(&s.attributes),
            dropped_attributes: s.dropped_attributes_count,
            events: s
                .events
                .iter()
                .map(|e| ExpEvent {
                    time: e.time_unix_nano,
                    name: e.name.clone(),
                    attributes: attrs(&e.attributes),
                    dropped_attributes: e.dropped_attributes_count,
                })
                .collect(),
            dropped_events: s.dropped_events_count,
            links: s
                .links
                .iter()
                .map(|l| ExpLink {
                    trace_id: l.trace_id.clone(),
                    span_id: l.span_id.clone(),
                    trace_state: l.trace_state.clone(),
                    attributes: attrs(&l.attributes),
                    dropped_attributes: l.dropped_attributes_count,
                    flags: l.flags,
                })
                .collect(),
            dropped_links: s.dropped_links_count,
            status: s.status.as_ref().map(|st| (st.code, st.message.clone())),
        })
        .collect();
    Expected { resource, scope, spans }
}

fn attrs(list: &[KeyValue]) -> Attrs {
    list.iter()
        .map(|kv| {
            assert_eq!(kv.key_strindex, 0);
            let value = kv.value.as_ref().unwrap_or_else(|| panic!("attribute {:?} has no value", kv.key));
            (kv.key.clone(), val(value, true))
        })
        .collect()
}

fn val(v: &AnyValue, array_allowed: bool) -> Val {
    match v.value.as_ref().expect("an AnyValue is never empty") {
        any_value::Value::StringValue(s) => Val::Str(s.clone()),
        any_value::Value::BoolValue(b) => Val::Bool(*b),
        any_value::Value::IntValue(i) => Val::Int(*i),
        any_value::Value::DoubleValue(f) => Val::Double(f.to_bits()),
        any_value::Value::ArrayValue(a) if array_allowed => {
            Val::Array(a.values.iter().map(|e| val(e, false)).collect())
        }
        other => panic!("unexpected AnyValue member {other:?}"),
    }
}
