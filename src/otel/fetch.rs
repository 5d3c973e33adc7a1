//! [`fetch`]: a traced `fetch` for Rust, with the JS traced fetch's
//! semantics (`core::http_span` has the span; this file the platform part).

use std::future::Future;

use js_sys::{Promise, Reflect};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Headers, Request, RequestInit, Response, Url, UrlSearchParams};

use super::propagation::baggage_header;
use super::provider::page_href;
use super::{convert, registry};
use crate::core::http_span;
use crate::core::span::KeyValue;
use crate::core::tracer::{Parent, SpanHandle};
use crate::web::driver::Driver;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(catch, js_name = fetch)]
    fn fetch_with_request(input: &Request) -> Result<Promise, JsValue>;
}

/// Sends `request` with `fetch` (on `globalThis`) in a CLIENT span whose
/// parent is the current OpenTelemetry [`Context`]'s span.
///
/// The span and the trace headers are made when `fetch` is called, so the
/// context that counts is the caller's, not the one the future is polled
/// in. The future resolves as `fetch` does, when the response headers
/// arrive (the body is not read, cloned or buffered), with the response
/// or the error `fetch` rejected with; it never fails because of tracing.
///
/// - The span is named by the method and carries `http.request.method`,
///   `url.full` (without userinfo; values of `AWSAccessKeyId`, `Signature`,
///   `sig`, `X-Goog-Signature`, or the provider's
///   `with_redact_query_params`, as `REDACTED`), `server.address`,
///   `server.port`, `http.response.status_code`, and `error.type` with an
///   ERROR status for 4xx/5xx, network errors and aborts.
/// - `traceparent`, `tracestate` and the context's `baggage` go only to the
///   page's own origin and to URLs under the provider's
///   `with_propagate_to` prefixes, so no CORS preflight breaks a
///   third-party call. A `traceparent` the request already has is kept,
///   never duplicated (the span then records `tracelink.caller_traceparent`).
///   The caller's `Request` is not modified: a copy with the added headers
///   is sent.
/// - The server's own span, from `traceresponse` or
///   `Server-Timing: traceparent;desc=…`, is recorded as
///   `tracelink.response.span_id`; if the server started another trace,
///   the span links to it.
/// - The span is recorded by the most recently built
///   [`WebTracerProvider`](crate::WebTracerProvider); without one (or after
///   its shutdown) this is a plain `fetch`. Requests to the export endpoint
///   are never traced.
///
/// ```no_run
/// # async fn run() -> Result<(), wasm_bindgen::JsValue> {
/// let request = web_sys::Request::new_with_str("/api/ping")?;
/// let response = tracelink::fetch(&request).await?;
/// # Ok(()) }
/// ```
pub fn fetch(request: &Request) -> impl Future<Output = Result<Response, JsValue>> + 'static {
    let traced = registry::current().and_then(|(driver, policy)| {
        let url = Url::new(&request.url()).ok()?;
        if url.href() == policy.endpoint {
            return None; // the exporter's own requests
        }
        let method = request.method().to_ascii_uppercase();
        let port = match url.port() {
            p if p.is_empty() => {
                if url.protocol() == "https:" {
                    443
                } else {
                    80
                }
            }
            p => p.parse().unwrap_or(0),
        };
        let cx = Context::current();
        let parent = convert::from_api_context(cx.span().span_context());
        let span_url = span_url(&url, &policy.redact);
        let h = driver.with(|p, clock| {
            let now = clock.unix_nanos();
            let from = parent.as_ref().map_or(Parent::Root, Parent::Remote);
            http_span::start(&mut p.tracer, &method, &span_url, &url.hostname(), port, from, now)
        })?;
        if h == SpanHandle::NONE {
            return None;
        }
        let origin = page_href().and_then(|href| Url::new(&href).ok()).map(|u| u.origin());
        let allowed = http_span::may_propagate(
            &url.href(),
            &url.origin(),
            origin.as_deref(),
            policy.propagate_to.iter().map(String::as_str),
        );
        let with_headers = if allowed { with_trace_headers(request, &driver, h, &cx) } else { None };
        Some((driver, h, with_headers))
    });
    let (promise, span) = match traced {
        Some((driver, h, with_headers)) => {
            let sent = fetch_with_request(with_headers.as_ref().unwrap_or(request));
            (sent, Some((driver, h)))
        }
        None => (fetch_with_request(request), None),
    };
    async move {
        let result = match promise {
            Ok(p) => JsFuture::from(p).await.map(JsCast::unchecked_into::<Response>),
            Err(e) => Err(e),
        };
        if let Some((driver, h)) = span {
            finish(&driver, h, &result);
        }
        result
    }
}

/// Records the outcome on the span and ends it.
fn finish(driver: &Driver, h: SpanHandle, result: &Result<Response, JsValue>) {
    match result {
        Ok(response) => {
            let headers = response.headers();
            let traceresponse = headers.get("traceresponse").ok().flatten().unwrap_or_default();
            let server_timing = headers.get("server-timing").ok().flatten().unwrap_or_default();
            driver.with(|p, _| {
                http_span::record_response(&mut p.tracer, h, response.status(), &traceresponse, &server_timing)
            });
        }
        Err(e) => {
            let text = |key: &str| Reflect::get(e, &JsValue::from_str(key)).ok().and_then(|v| v.as_string());
            let error_type = text("name").filter(|n| !n.is_empty()).unwrap_or_else(|| "Error".into());
            let message = text("message").or_else(|| e.as_string()).unwrap_or_default();
            driver.with(|p, clock| {
                let now = clock.unix_nanos();
                http_span::record_failure(&mut p.tracer, h, &error_type, &message, now);
            });
        }
    }
    driver.end_span(h, None);
}

/// A copy of `request` with `traceparent`, `tracestate` and `baggage`
/// added (each only when the request does not have it already).
fn with_trace_headers(request: &Request, driver: &Driver, h: SpanHandle, cx: &Context) -> Option<Request> {
    let span = driver.with(|p, _| p.tracer.context(h).cloned())??;
    let traceparent = crate::core::trace_context::format_traceparent(&span);
    let headers = Headers::new_with_headers(&request.headers()).ok()?;
    let add = |name: &str, value: &str| {
        if !value.is_empty() && !headers.has(name).unwrap_or(true) {
            let _ = headers.set(name, value);
        }
    };
    add("traceparent", &traceparent);
    add("tracestate", &span.trace_state);
    add("baggage", &baggage_header(cx));
    if headers.get("traceparent").ok().flatten().as_deref() != Some(traceparent.as_str()) {
        driver.with(|p, _| p.tracer.set_attribute(h, KeyValue::new("tracelink.caller_traceparent", true)));
    }
    let init = RequestInit::new();
    init.set_headers(&headers);
    // new Request(request, {headers}) keeps everything else (body, signal,
    // mode, credentials...), exactly as fetch(request, {headers}) would.
    Request::new_with_request_and_init(request, &init).ok()
}

/// `url.full` for a span: no userinfo; values of the redacted query
/// parameters (compared in lowercase) replaced by `REDACTED`.
fn span_url(url: &Url, redact: &[String]) -> String {
    let Ok(u) = Url::new(&url.href()) else {
        return String::new();
    };
    u.set_username("");
    u.set_password("");
    if !u.search().is_empty() && !redact.is_empty() {
        let params = u.search_params();
        let out = UrlSearchParams::new().ok();
        let mut changed = false;
        if let (Some(out), Ok(Some(entries))) = (&out, js_sys::try_iter(&params)) {
            for pair in entries.flatten() {
                let pair = js_sys::Array::from(&pair);
                let (k, v) = (pair.get(0).as_string().unwrap_or_default(), pair.get(1).as_string().unwrap_or_default());
                if redact.iter().any(|r| r.eq_ignore_ascii_case(&k)) {
                    changed = true;
                    out.append(&k, "REDACTED");
                } else {
                    out.append(&k, &v);
                }
            }
            if changed {
                u.set_search(&String::from(out.to_string()));
            }
        }
    }
    u.href()
}
