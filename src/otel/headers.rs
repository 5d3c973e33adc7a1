//! Trace headers on requests that tracelink does not send itself.
//!
//! `tracelink::fetch` adds `traceparent` on its own. For other HTTP clients,
//! these write the W3C headers of an OpenTelemetry [`Context`] into their
//! header types: `web_sys::Headers` (what `web_sys::Request` and gloo-net
//! use) and `http::HeaderMap` (reqwest on wasm, and most Rust HTTP crates).
//! The `inject_*` functions write `traceparent`, `tracestate` and `baggage`
//! with tracelink's propagators; the carrier types plug into any
//! propagator (e.g. `opentelemetry::global::get_text_map_propagator`).
//!
//! Unlike the traced fetch, these do not check the destination: call them
//! only for URLs that may receive trace headers (your own backends), since
//! `traceparent` is not CORS-safelisted and causes a preflight.

use http::header::{HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::Context;

use super::propagation::{BaggagePropagator, TraceContextPropagator};

/// Writes `traceparent`, `tracestate` and `baggage` for `cx` (e.g.
/// `Context::current()`) into `headers`, replacing earlier values.
///
/// ```
/// use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
/// let cx = opentelemetry::Context::new().with_remote_span_context(SpanContext::new(
///     TraceId::from_bytes([1; 16]), SpanId::from_bytes([2; 8]), TraceFlags::SAMPLED, false, TraceState::NONE));
/// let mut headers = http::HeaderMap::new();
/// tracelink::inject_header_map(&cx, &mut headers);
/// assert_eq!(headers["traceparent"], "00-01010101010101010101010101010101-0202020202020202-01");
/// ```
pub fn inject_header_map(cx: &Context, headers: &mut http::HeaderMap) {
    let mut injector = HeaderMapInjector(headers);
    TraceContextPropagator::new().inject_context(cx, &mut injector);
    BaggagePropagator::new().inject_context(cx, &mut injector);
}

/// An [`Injector`] into an `http::HeaderMap` (values that are not valid
/// header values are skipped).
#[derive(Debug)]
pub struct HeaderMapInjector<'a>(pub &'a mut http::HeaderMap);

impl Injector for HeaderMapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(key.as_bytes()), HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}

/// An [`Extractor`] from an `http::HeaderMap` (e.g. on a server).
#[derive(Debug)]
pub struct HeaderMapExtractor<'a>(pub &'a http::HeaderMap);

impl Extractor for HeaderMapExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self.0.get_all(key).iter().filter_map(|v| v.to_str().ok()).collect();
        (!values.is_empty()).then_some(values)
    }
}

#[cfg(target_arch = "wasm32")]
pub use self::web::{inject_headers, HeadersExtractor, HeadersInjector};

#[cfg(target_arch = "wasm32")]
mod web {
    use super::*;

    /// Writes `traceparent`, `tracestate` and `baggage` for `cx` into
    /// `headers` (e.g. a `web_sys::Request`'s, or a `Headers` for a
    /// `RequestInit`), replacing earlier values. Headers the platform
    /// refuses to change (an immutable `Headers`) are left alone.
    pub fn inject_headers(cx: &Context, headers: &web_sys::Headers) {
        let mut injector = HeadersInjector(headers);
        TraceContextPropagator::new().inject_context(cx, &mut injector);
        BaggagePropagator::new().inject_context(cx, &mut injector);
    }

    /// An [`Injector`] into a `web_sys::Headers`.
    #[derive(Debug)]
    pub struct HeadersInjector<'a>(pub &'a web_sys::Headers);

    impl Injector for HeadersInjector<'_> {
        fn set(&mut self, key: &str, value: String) {
            let _ = self.0.set(key, &value);
        }
    }

    /// An [`Extractor`] from a `web_sys::Headers` (a snapshot taken by
    /// [`HeadersExtractor::new`]; e.g. in a Service Worker's fetch handler).
    #[derive(Debug)]
    pub struct HeadersExtractor {
        entries: Vec<(String, String)>,
    }

    impl HeadersExtractor {
        /// Copies the headers (names lowercase, as `Headers` keeps them).
        pub fn new(headers: &web_sys::Headers) -> HeadersExtractor {
            let mut entries = Vec::new();
            if let Ok(Some(iter)) = js_sys::try_iter(headers) {
                for pair in iter.flatten() {
                    let pair = js_sys::Array::from(&pair);
                    if let (Some(k), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                        entries.push((k, v));
                    }
                }
            }
            HeadersExtractor { entries }
        }
    }

    impl Extractor for HeadersExtractor {
        fn get(&self, key: &str) -> Option<&str> {
            self.entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
        }

        fn keys(&self) -> Vec<&str> {
            self.entries.iter().map(|(k, _)| k.as_str()).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry::KeyValue;

    use super::*;

    #[test]
    fn header_map_round_trip() {
        let mut incoming = http::HeaderMap::new();
        incoming
            .insert("traceparent", HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        incoming.append("tracestate", HeaderValue::from_static("a=1"));
        incoming.append("tracestate", HeaderValue::from_static("b=2"));
        let cx = TraceContextPropagator::new().extract(&HeaderMapExtractor(&incoming));
        assert_eq!(cx.span().span_context().trace_state().header(), "a=1,b=2", "several lines combine");
        let cx = cx.with_baggage([KeyValue::new("tenant", "t 1")]);

        let mut out = http::HeaderMap::new();
        out.insert("traceparent", HeaderValue::from_static("replace me"));
        inject_header_map(&cx, &mut out);
        assert_eq!(out["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(out.get_all("traceparent").iter().count(), 1, "replaced, never duplicated");
        assert_eq!(out["tracestate"], "a=1,b=2");
        assert_eq!(out["baggage"], "tenant=t%201");
    }

    #[test]
    fn nothing_is_written_without_a_span_context() {
        let mut out = http::HeaderMap::new();
        inject_header_map(&Context::new(), &mut out);
        assert!(out.is_empty());
    }
}
