//! The HTTP CLIENT span of a traced fetch, and where trace headers may go.
//!
//! The semantics of the JS traced fetch (`Agent.fetchStart`/`fetchEnd`/
//! `fetchFail` and `_mayPropagate` in `pkg/tracelink.js`), for the Rust API
//! (`tracelink::fetch`): the span's name and attributes (OpenTelemetry HTTP
//! semantic conventions), how the response is recorded (status,
//! `error.type`, the server's own span read back from `traceresponse` or
//! `Server-Timing`), and the allowlist rule for `traceparent`. Pure
//! functions over the [`Tracer`]; the platform layer parses URLs and moves
//! the bytes.
//!
//! Compiled with the `opentelemetry` feature only, so the default build (the
//! npm package's wasm) stays byte-for-byte what it was; the `Agent` keeps
//! its own copy of the same lines until it switches over.

use super::span::{KeyValue, Status};
use super::tracer::{Parent, SpanHandle, Tracer};

/// Starts a CLIENT span for an HTTP request: named by the method (`HTTP`
/// for an unknown one), with `http.request.method`, `url.full` (already
/// redacted by the caller), `server.address` and `server.port`.
pub fn start(
    tracer: &mut Tracer,
    method: &str,
    url_full: &str,
    host: &str,
    port: u16,
    parent: Parent<'_>,
    now_unix_nano: u64,
) -> SpanHandle {
    // The methods the semantic conventions name; others become `_OTHER`.
    let known =
        matches!(method, "GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS" | "CONNECT" | "TRACE");
    let h =
        tracer.start_span(if known { method } else { "HTTP" }, super::span::SpanKind::Client, parent, now_unix_nano);
    tracer.set_attribute(h, KeyValue::new("http.request.method", if known { method } else { "_OTHER" }));
    if !known {
        tracer.set_attribute(h, KeyValue::new("http.request.method_original", method));
    }
    tracer.set_attribute(h, KeyValue::new("url.full", url_full));
    tracer.set_attribute(h, KeyValue::new("server.address", host));
    tracer.set_attribute(h, KeyValue::new("server.port", i64::from(port)));
    h
}

/// Records the response on span `h` (the caller then ends it): the status
/// code, `error.type` and ERROR status for 4xx/5xx, and the server's span
/// from `traceresponse` or `Server-Timing: traceparent|trace;desc=…` as
/// `tracelink.response.{trace_id,span_id}`. When the server did not continue
/// our trace, the span links to the server's trace instead.
pub fn record_response(tracer: &mut Tracer, h: SpanHandle, status: u16, traceresponse: &str, server_timing: &str) {
    // The same rules as the npm package's fetch spans (one implementation).
    super::span_log::http_response(tracer, h, status, traceresponse, server_timing);
}

/// Records a request that got no response (network error, abort) on span
/// `h` (the caller then ends it): `error.type`, an exception event and
/// ERROR status.
pub fn record_failure(tracer: &mut Tracer, h: SpanHandle, error_type: &str, message: &str, now_unix_nano: u64) {
    tracer.set_attribute(h, KeyValue::new("error.type", error_type));
    tracer.record_exception(h, error_type, message, "", now_unix_nano);
    tracer.set_status(h, Status::Error(message.to_owned()));
}

/// The `desc` of a `traceparent` or `trace` entry in a Server-Timing header.
pub fn server_timing_traceparent(header: &str) -> Option<String> {
    super::span_log::server_timing_traceparent(header).map(str::to_owned)
}

/// Whether trace headers may go to a URL (`href`, and its `origin`): to the
/// page's own origin (`page_origin`; `None` or `"null"` outside a page), and
/// to URLs matching an allowlisted prefix. A prefix matches the URL itself,
/// anything under it as a path (`https://api.example.com/v1` matches
/// `…/v1/x`, not `…/v10`), and the origin it names exactly. Never elsewhere:
/// `traceparent` is not CORS-safelisted, so a third-party request would get
/// a preflight that may fail.
pub fn may_propagate<'a>(
    href: &str,
    origin: &str,
    page_origin: Option<&str>,
    allow: impl IntoIterator<Item = &'a str>,
) -> bool {
    if page_origin.is_some_and(|p| p != "null" && p == origin) {
        return true;
    }
    allow.into_iter().any(|p| {
        if href == p || origin == p {
            return true;
        }
        match href.strip_prefix(p) {
            Some(rest) => p.ends_with('/') || rest.starts_with('/'),
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::id::IdGenerator;
    use crate::core::span::{SpanKind, Value};
    use crate::core::tracer::TracerConfig;

    fn tracer() -> Tracer {
        Tracer::new(TracerConfig::default(), IdGenerator::from_seed([3; 32]))
    }

    fn attr<'a>(span: &'a crate::core::span::SpanData, key: &str) -> Option<&'a Value> {
        span.attributes.iter().find(|a| a.key == key).map(|a| &a.value)
    }

    #[test]
    fn client_span_follows_the_semantic_conventions() {
        let mut t = tracer();
        let h =
            start(&mut t, "POST", "https://api.example.com/x?sig=REDACTED", "api.example.com", 443, Parent::Root, 5);
        record_response(&mut t, h, 503, "", "");
        let span = t.end_span(h, 9).unwrap();
        assert_eq!((span.name.as_str(), span.kind), ("POST", SpanKind::Client));
        assert_eq!(attr(&span, "http.request.method"), Some(&Value::from("POST")));
        assert_eq!(attr(&span, "server.port"), Some(&Value::I64(443)));
        assert_eq!(attr(&span, "http.response.status_code"), Some(&Value::I64(503)));
        assert_eq!(attr(&span, "error.type"), Some(&Value::from("503")));
        assert_eq!(span.status, Status::Error(String::new()));

        let h = start(&mut t, "PURGE", "http://h/", "h", 80, Parent::Root, 5);
        let span = t.end_span(h, 6).unwrap();
        assert_eq!(span.name, "HTTP");
        assert_eq!(attr(&span, "http.request.method"), Some(&Value::from("_OTHER")));
        assert_eq!(attr(&span, "http.request.method_original"), Some(&Value::from("PURGE")));
    }

    #[test]
    fn server_span_is_read_back_or_linked() {
        let mut t = tracer();
        let h = start(&mut t, "GET", "http://h/", "h", 80, Parent::Root, 1);
        let ours = t.context(h).unwrap().trace_id.to_hex();
        let tp = format!("00-{ours}-00f067aa0ba902b7-01");
        record_response(&mut t, h, 200, "", &format!("cache;dur=1, traceparent;desc=\"{tp}\""));
        let span = t.end_span(h, 2).unwrap();
        assert_eq!(attr(&span, "tracelink.response.span_id"), Some(&Value::from("00f067aa0ba902b7")));
        assert!(span.links.is_empty(), "same trace: no link");
        assert_eq!(span.status, Status::Unset);

        let h = start(&mut t, "GET", "http://h/", "h", 80, Parent::Root, 1);
        record_response(&mut t, h, 200, " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", "");
        let span = t.end_span(h, 2).unwrap();
        assert_eq!(span.links.len(), 1, "the server started its own trace: linked");
        assert_eq!(span.links[0].span_context.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");

        let h = start(&mut t, "GET", "http://h/", "h", 80, Parent::Root, 1);
        record_response(&mut t, h, 200, "garbage", "trace;desc=nonsense");
        let span = t.end_span(h, 2).unwrap();
        assert!(attr(&span, "tracelink.response.span_id").is_none(), "bad values are ignored");
    }

    #[test]
    fn failures_are_errors_with_an_exception_event() {
        let mut t = tracer();
        let h = start(&mut t, "GET", "http://h/", "h", 80, Parent::Root, 1);
        record_failure(&mut t, h, "TypeError", "Failed to fetch", 3);
        let span = t.end_span(h, 4).unwrap();
        assert_eq!(attr(&span, "error.type"), Some(&Value::from("TypeError")));
        assert_eq!(span.events[0].name, "exception");
        assert_eq!(span.status, Status::Error("Failed to fetch".into()));
    }

    #[test]
    fn trace_headers_go_only_where_allowed() {
        let page = Some("https://app.example.com");
        let allow = ["https://api.example.com/v1", "https://cdn.example.com", "https://x.example.com/"];
        let ok = |href: &str, origin: &str| may_propagate(href, origin, page, allow);
        assert!(ok("https://app.example.com/anything", "https://app.example.com"), "same origin");
        assert!(ok("https://api.example.com/v1", "https://api.example.com"));
        assert!(ok("https://api.example.com/v1/firs?x=1", "https://api.example.com"));
        assert!(!ok("https://api.example.com/v10", "https://api.example.com"), "a prefix matches whole path segments");
        assert!(!ok("https://api.example.com/", "https://api.example.com"));
        assert!(ok("https://cdn.example.com/a.js", "https://cdn.example.com"), "an origin");
        assert!(ok("https://x.example.com/y", "https://x.example.com"));
        assert!(!ok("https://evil.example.com/v1", "https://evil.example.com"));
        assert!(!ok("https://api.example.com.evil.net/v1", "https://api.example.com.evil.net"));
        assert!(!may_propagate("null/x", "null", Some("null"), []), "opaque origins never match");
        assert!(!may_propagate("http://h/", "http://h", None, []), "outside a page, only the allowlist");
    }
}
