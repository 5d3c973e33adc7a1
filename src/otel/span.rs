//! [`Span`]: an OpenTelemetry span recorded by tracelink's core.

use std::borrow::Cow;
use std::time::SystemTime;

use opentelemetry::trace::{self as api, SpanContext};
use opentelemetry::KeyValue;

use super::{convert, registry};
use crate::core::pipeline::Pipeline;
use crate::core::tracer::SpanHandle;
use crate::web::clock::Clock;

/// A span started by a [`Tracer`](super::Tracer).
///
/// Its data lives in the core's slab until it ends; this value is a handle
/// (`Send + Sync`, as `opentelemetry::Context` requires). Ending it (`end`,
/// or dropping it) encodes it and queues it for export. Limits: 128
/// attributes, events and links, 4 KiB per string value; what a limit cuts
/// is counted in the exported span. Times: a timestamp within 2 ms of
/// `Date.now()` (the `opentelemetry` crate's "now" on wasm32, whole
/// milliseconds) is read from tracelink's clock instead (sub-millisecond,
/// corrected for sleep and frozen tabs); others are kept as given.
#[derive(Debug)]
pub struct Span {
    provider: u32,
    handle: SpanHandle,
    context: SpanContext,
    recording: bool,
}

impl Span {
    pub(crate) fn new(provider: u32, handle: SpanHandle, context: SpanContext, recording: bool) -> Span {
        Span { provider, handle, context, recording }
    }

    /// A span that records nothing and propagates `context`.
    pub(crate) fn non_recording(context: SpanContext) -> Span {
        Span { provider: 0, handle: SpanHandle::NONE, context, recording: false }
    }

    /// Runs `f` on this span's pipeline while it records.
    fn record(&self, f: impl FnOnce(&mut Pipeline, &mut Clock, SpanHandle)) {
        if !self.recording {
            return;
        }
        if let Some(driver) = registry::driver(self.provider) {
            driver.with(|pipeline, clock| f(pipeline, clock, self.handle));
        }
    }
}

impl api::Span for Span {
    fn add_event_with_timestamp<T>(&mut self, name: T, timestamp: SystemTime, attributes: Vec<KeyValue>)
    where
        T: Into<Cow<'static, str>>,
    {
        let date_now = js_sys::Date::now();
        self.record(|p, clock, h| {
            let at = convert::explicit_time(timestamp, date_now).unwrap_or_else(|| clock.unix_nanos());
            p.tracer.add_event(h, &name.into(), at, convert::key_values(attributes));
        });
    }

    fn span_context(&self) -> &SpanContext {
        &self.context
    }

    fn is_recording(&self) -> bool {
        self.recording
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        self.record(|p, _, h| {
            if let Some(kv) = convert::key_value(attribute) {
                p.tracer.set_attribute(h, kv);
            }
        });
    }

    fn set_status(&mut self, status: api::Status) {
        self.record(|p, _, h| p.tracer.set_status(h, convert::status(status)));
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        self.record(|p, _, h| p.tracer.update_name(h, &new_name.into()));
    }

    fn add_link(&mut self, span_context: SpanContext, attributes: Vec<KeyValue>) {
        self.record(|p, _, h| {
            if let Some(to) = convert::from_api_context(&span_context) {
                p.tracer.add_link(h, to, convert::key_values(attributes));
            }
        });
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        let handle = std::mem::replace(&mut self.handle, SpanHandle::NONE);
        self.recording = false;
        if handle == SpanHandle::NONE {
            return;
        }
        if let Some(driver) = registry::driver(self.provider) {
            driver.end_span(handle, convert::explicit_time(timestamp, js_sys::Date::now()));
        }
    }
}

impl Drop for Span {
    /// Ends the span if it was not ended (as the OpenTelemetry SDK does).
    fn drop(&mut self) {
        if self.handle != SpanHandle::NONE {
            api::Span::end(self);
        }
    }
}
