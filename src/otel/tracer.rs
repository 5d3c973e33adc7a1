//! [`Tracer`]: starts [`Span`]s in a [`WebTracerProvider`]'s pipeline.

use opentelemetry::trace::{self as api, SpanBuilder, TraceContextExt};
use opentelemetry::Context;

use super::span::Span;
use super::{convert, registry, WebTracerProvider};
use crate::core::span::SpanKind;
use crate::core::tracer::{Parent, SpanHandle};

/// The OpenTelemetry `Tracer` of a [`WebTracerProvider`] (from
/// `provider.tracer("name")` or `opentelemetry::global::tracer`). It keeps
/// its provider alive.
#[derive(Clone, Debug)]
pub struct Tracer {
    provider: WebTracerProvider,
}

impl Tracer {
    pub(crate) fn new(provider: WebTracerProvider) -> Tracer {
        Tracer { provider }
    }
}

impl api::Tracer for Tracer {
    type Span = Span;

    /// Starts a span under `parent_cx`'s span (a new trace when it has
    /// none). The parent-based ratio sampler decides at start: an
    /// unsampled span still propagates its context (`-00`) but records
    /// nothing. A span is non-recording, carrying the parent's context, when
    /// telemetry is suppressed in `parent_cx`, when the provider is gone or
    /// lives on another thread, or when 8192 spans are already live
    /// (counted as `dropped_live_limit`).
    fn build_with_context(&self, builder: SpanBuilder, parent_cx: &Context) -> Span {
        let parent = parent_cx.span().span_context().clone();
        if parent_cx.is_telemetry_suppressed() {
            return Span::non_recording(parent);
        }
        let Some(driver) = registry::driver(self.provider.id()) else {
            return Span::non_recording(parent);
        };
        let core_parent = convert::from_api_context(&parent);
        let date_now = js_sys::Date::now();
        let started = driver.with(|pipeline, clock| {
            let start = builder
                .start_time
                .and_then(|t| convert::explicit_time(t, date_now))
                .unwrap_or_else(|| clock.unix_nanos());
            let kind = builder.span_kind.as_ref().map_or(SpanKind::Internal, convert::kind);
            let from = core_parent.as_ref().map_or(Parent::Root, Parent::Remote);
            let tracer = &mut pipeline.tracer;
            let h = tracer.start_span(&builder.name, kind, from, start);
            let context = tracer.context(h).map(convert::to_api_context)?;
            let recording = tracer.is_recording(h);
            if recording {
                for kv in convert::key_values(builder.attributes.unwrap_or_default()) {
                    tracer.set_attribute(h, kv);
                }
                for link in builder.links.unwrap_or_default() {
                    if let Some(to) = convert::from_api_context(&link.span_context) {
                        tracer.add_link(h, to, convert::key_values(link.attributes));
                    }
                }
                for event in builder.events.unwrap_or_default() {
                    let at = convert::explicit_time(event.timestamp, date_now).unwrap_or(start);
                    tracer.add_event(h, &event.name, at, convert::key_values(event.attributes));
                }
            }
            Some((h, context, recording))
        });
        match started.flatten() {
            Some((handle, context, recording)) if handle != SpanHandle::NONE => {
                Span::new(self.provider.id(), handle, context, recording)
            }
            _ => Span::non_recording(parent),
        }
    }
}
