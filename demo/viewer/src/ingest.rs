//! The one door into the trace store, shared by the gRPC and HTTP receivers.
//!
//! `otlp-embedded` stores OTLP spans as received and converts them to Jaeger JSON
//! when the UI asks. Its conversion loses things the tracelink demo needs to see,
//! so every export request is normalized here first, the way Jaeger's own OTLP
//! receiver translates spans:
//!
//! - span kind, status and instrumentation scope become the tags Jaeger UI reads
//!   (`span.kind`, `otel.status_code`, `otel.status_description`, `error`,
//!   `otel.scope.name`, `otel.scope.version`); `trace_state` becomes
//!   `w3c.tracestate`. Attributes the sender set itself are never overwritten.
//! - Jaeger "processes" are keyed by `service.instance.id`, and otlp-embedded uses
//!   `"unknown"` when it is missing, so a browser span and a backend span of the
//!   same trace would be shown under one service. A resource without
//!   `service.instance.id` gets one equal to its `service.name`
//!   (`unknown_service` when that is missing too, as the OTel spec says).
//! - a span that ends before it starts is clamped to zero duration (the store
//!   computes `end - start` unsigned).

use std::sync::Arc;

use otlp_embedded::proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use otlp_embedded::proto::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use otlp_embedded::proto::trace::v1::{span, status, Span};
use otlp_embedded::{StateRef, TraceService, TraceServiceImpl};
use tonic::{Request, Response, Status};

/// Normalizes export requests and hands them to the store.
#[derive(Clone)]
pub struct Ingest {
    store: Arc<TraceServiceImpl>,
}

impl Ingest {
    /// An ingest door in front of `state`.
    pub fn new(state: StateRef) -> Self {
        Ingest { store: Arc::new(TraceServiceImpl::new(state)) }
    }

    /// Normalizes and stores one request; `via` names the receiver in the log line.
    pub async fn export(&self, mut request: ExportTraceServiceRequest, via: &str) -> Result<(), Status> {
        let spans = normalize(&mut request);
        self.store.export(Request::new(request)).await?;
        eprintln!("viewer: stored {spans} span(s) via {via}");
        Ok(())
    }
}

#[tonic::async_trait]
impl TraceService for Ingest {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        Ingest::export(self, request.into_inner(), "grpc").await?;
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// Rewrites `request` in place for the Jaeger view; returns the span count.
pub fn normalize(request: &mut ExportTraceServiceRequest) -> usize {
    let mut count = 0;
    for resource_spans in &mut request.resource_spans {
        let resource = resource_spans.resource.get_or_insert_with(Default::default);
        let service = match string_attribute(&resource.attributes, "service.name") {
            Some(name) => name.to_owned(),
            None => {
                resource.attributes.push(string_kv("service.name", "unknown_service"));
                "unknown_service".to_owned()
            }
        };
        if string_attribute(&resource.attributes, "service.instance.id").is_none() {
            resource.attributes.push(string_kv("service.instance.id", &service));
        }
        for scope_spans in &mut resource_spans.scope_spans {
            let scope = scope_spans.scope.take().unwrap_or_default();
            for span in &mut scope_spans.spans {
                tag_span(span, &scope);
                count += 1;
            }
            scope_spans.scope = Some(scope);
        }
    }
    count
}

fn tag_span(span: &mut Span, scope: &InstrumentationScope) {
    if span.end_time_unix_nano < span.start_time_unix_nano {
        span.end_time_unix_nano = span.start_time_unix_nano;
    }
    let kind = match span::SpanKind::try_from(span.kind) {
        Ok(span::SpanKind::Client) => Some("client"),
        Ok(span::SpanKind::Server) => Some("server"),
        Ok(span::SpanKind::Producer) => Some("producer"),
        Ok(span::SpanKind::Consumer) => Some("consumer"),
        Ok(span::SpanKind::Internal) => Some("internal"),
        Ok(span::SpanKind::Unspecified) | Err(_) => None,
    };
    let mut tags = Vec::new();
    if let Some(kind) = kind {
        tags.push(string_kv("span.kind", kind));
    }
    if let Some(status) = &span.status {
        match status::StatusCode::try_from(status.code) {
            Ok(status::StatusCode::Error) => {
                tags.push(string_kv("otel.status_code", "ERROR"));
                tags.push(KeyValue {
                    key: "error".to_owned(),
                    value: Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) }),
                });
            }
            Ok(status::StatusCode::Ok) => tags.push(string_kv("otel.status_code", "OK")),
            _ => {}
        }
        if !status.message.is_empty() {
            tags.push(string_kv("otel.status_description", &status.message));
        }
    }
    if !scope.name.is_empty() {
        tags.push(string_kv("otel.scope.name", &scope.name));
    }
    if !scope.version.is_empty() {
        tags.push(string_kv("otel.scope.version", &scope.version));
    }
    if !span.trace_state.is_empty() {
        tags.push(string_kv("w3c.tracestate", &span.trace_state));
    }
    for tag in tags {
        if !span.attributes.iter().any(|kv| kv.key == tag.key) {
            span.attributes.push(tag);
        }
    }
}

fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| match &kv.value {
        Some(AnyValue { value: Some(any_value::Value::StringValue(s)) }) => Some(s.as_str()),
        _ => None,
    })
}

fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otlp_embedded::proto::resource::v1::Resource;
    use otlp_embedded::proto::trace::v1::{ResourceSpans, ScopeSpans};

    fn request(resource: Option<Resource>, span: Span) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource,
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "tracelink".into(),
                        version: "0.1.0".into(),
                        ..Default::default()
                    }),
                    spans: vec![span],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn tag<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
        attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
    }

    #[test]
    fn adds_jaeger_tags_without_overwriting_sender_attributes() {
        let span = Span {
            kind: span::SpanKind::Client as i32,
            trace_state: "vendor=1".into(),
            status: Some(otlp_embedded::proto::trace::v1::Status {
                code: status::StatusCode::Error as i32,
                message: "boom".into(),
            }),
            attributes: vec![string_kv("otel.scope.name", "mine")],
            ..Default::default()
        };
        let mut req = request(None, span);
        assert_eq!(normalize(&mut req), 1);
        let resource_spans = &req.resource_spans[0];
        let span = &resource_spans.scope_spans[0].spans[0];
        let s = |v: &str| any_value::Value::StringValue(v.into());
        assert_eq!(tag(&span.attributes, "span.kind"), Some(&s("client")));
        assert_eq!(tag(&span.attributes, "otel.status_code"), Some(&s("ERROR")));
        assert_eq!(tag(&span.attributes, "otel.status_description"), Some(&s("boom")));
        assert_eq!(tag(&span.attributes, "error"), Some(&any_value::Value::BoolValue(true)));
        assert_eq!(tag(&span.attributes, "w3c.tracestate"), Some(&s("vendor=1")));
        assert_eq!(tag(&span.attributes, "otel.scope.version"), Some(&s("0.1.0")));
        assert_eq!(span.attributes.iter().filter(|kv| kv.key == "otel.scope.name").count(), 1);
        assert_eq!(tag(&span.attributes, "otel.scope.name"), Some(&s("mine")));
        let resource = resource_spans.resource.as_ref().unwrap();
        assert_eq!(string_attribute(&resource.attributes, "service.name"), Some("unknown_service"));
        assert_eq!(string_attribute(&resource.attributes, "service.instance.id"), Some("unknown_service"));
    }

    #[test]
    fn keeps_existing_instance_id_and_clamps_negative_durations() {
        let resource = Resource {
            attributes: vec![string_kv("service.name", "web"), string_kv("service.instance.id", "tab-1")],
            ..Default::default()
        };
        let span = Span { start_time_unix_nano: 10, end_time_unix_nano: 3, ..Default::default() };
        let mut req = request(Some(resource), span);
        normalize(&mut req);
        let resource = req.resource_spans[0].resource.as_ref().unwrap();
        assert_eq!(string_attribute(&resource.attributes, "service.instance.id"), Some("tab-1"));
        assert_eq!(resource.attributes.len(), 2);
        let span = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.end_time_unix_nano, 10);
        assert!(tag(&span.attributes, "span.kind").is_none(), "unspecified kind adds no tag");
    }
}
