//! The OpenTelemetry API (feature `opentelemetry`) on wasm32, in Node and in
//! headless Chromium (`WASM_BINDGEN_USE_BROWSER=1`): the provider, tracer
//! and span over the core, the propagators, the traced fetch, flush and
//! shutdown, page hide (Chromium), and `tracing` through
//! `tracing-opentelemetry`.
//!
//! Spans go to a real collector: `tests/support/otel-wasm-peers.mjs` starts
//! rotel behind a CORS front plus `/echo` routes on two origins, builds this
//! file with `TRACELINK_TEST_PEER` / `TRACELINK_TEST_OTHER` set to them and,
//! after the run, checks what rotel decoded. Run it through that script (scripts/test.sh does).
#![cfg(target_arch = "wasm32")]

use std::time::{Duration, SystemTime};

use js_sys::{Array, Function, Promise, Reflect};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{FutureExt, Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use tracelink::{Error, Protocol, WebTracerProvider};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &Function, ms: i32) -> JsValue;
}

/// Where the test peers run (set at build time by otel-wasm-peers.mjs).
fn peer() -> &'static str {
    match option_env!("TRACELINK_TEST_PEER") {
        Some(url) => url,
        None => panic!("run through tests/support/otel-wasm-peers.mjs (it sets TRACELINK_TEST_PEER)"),
    }
}

/// Another origin with the same `/echo`, not allowlisted.
fn other_origin() -> &'static str {
    match option_env!("TRACELINK_TEST_OTHER") {
        Some(url) => url,
        None => panic!("run through tests/support/otel-wasm-peers.mjs (it sets TRACELINK_TEST_OTHER)"),
    }
}

fn in_browser() -> bool {
    Reflect::get(&js_sys::global(), &"document".into()).is_ok_and(|d| d.is_object())
}

async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = JsFuture::from(p).await;
}

fn provider(protocol: Protocol) -> WebTracerProvider {
    WebTracerProvider::builder()
        .with_service_name("otel-wasm-test")
        .with_service_version("0.0.1")
        .with_resource_attribute(KeyValue::new("test.runner", if in_browser() { "chromium" } else { "node" }))
        .with_endpoint(format!("{}/v1/traces", peer()))
        .with_protocol(protocol)
        .with_propagate_to([peer()])
        .build()
        .expect("provider")
}

#[wasm_bindgen_test]
fn build_refuses_bad_settings_with_clear_errors() {
    let base = || WebTracerProvider::builder().with_endpoint("http://127.0.0.1:1/v1/traces");
    assert_eq!(WebTracerProvider::builder().build().unwrap_err(), Error::MissingEndpoint);
    assert!(matches!(base().with_endpoint("ftp://collector/v1/traces").build(), Err(Error::InvalidEndpoint(_))));
    assert!(matches!(base().with_endpoint("http://[::1").build(), Err(Error::InvalidEndpoint(_))));
    assert_eq!(base().with_sample_ratio(1.5).build().unwrap_err(), Error::InvalidSampleRatio);
    assert_eq!(base().with_sample_ratio(f64::NAN).build().unwrap_err(), Error::InvalidSampleRatio);
    assert_eq!(base().with_header("bad header", "x").build().unwrap_err(), Error::InvalidHeader("bad header".into()));
    assert_eq!("http/json".parse::<Protocol>(), Ok(Protocol::HttpJson));
    assert!("grpc".parse::<Protocol>().is_err());
    assert!(Error::MissingEndpoint.to_string().contains("with_endpoint"));
}

#[wasm_bindgen_test]
async fn spans_nest_export_and_flush_in_both_protocols() {
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
        let provider = provider(protocol);
        let tracer = provider.tracer("otel-wasm");
        let root = tracer.start("wasm.root");
        let root_sc = root.span_context().clone();
        let cx = Context::current_with_span(root);
        let mut child = tracer
            .span_builder("wasm.child")
            .with_kind(SpanKind::Producer)
            .with_attributes([KeyValue::new("i", 1i64), KeyValue::new("s", "x"), KeyValue::new("f", 0.5)])
            .start_with_context(&tracer, &cx);
        let child_sc = child.span_context().clone();
        assert!(child.is_recording());
        assert_eq!(child_sc.trace_id(), root_sc.trace_id(), "one trace");
        assert_ne!(child_sc.span_id(), root_sc.span_id());
        assert!(root_sc.is_sampled() && root_sc.trace_flags().to_u8() & 0x02 != 0, "W3C Level 2 random flag");
        child.add_event("started", vec![KeyValue::new("n", 3i64)]);
        child.set_status(Status::error("boom"));
        child.end();
        assert!(!child.is_recording(), "ended");
        child.end(); // a second end changes nothing
        cx.span().end();

        assert_eq!(provider.stats().queued, 2, "{:?}", provider.stats());
        provider.force_flush().await.expect("flush");
        let s = provider.stats();
        assert_eq!(
            (s.started, s.ended, s.exported, s.dropped, s.queued, s.in_flight, s.live),
            (2, 2, 2, 0, 0, 0, 0),
            "{s:?}"
        );
        assert!(s.requests >= 1);
        provider.shutdown().await.expect("shutdown");
    }
}

#[wasm_bindgen_test]
async fn sampling_ratio_zero_propagates_but_records_nothing() {
    let provider = WebTracerProvider::builder()
        .with_endpoint(format!("{}/v1/traces", peer()))
        .with_sample_ratio(0.0)
        .build()
        .unwrap();
    let tracer = provider.tracer("otel-wasm");
    let mut span = tracer.start("unsampled");
    assert!(!span.is_recording());
    assert!(span.span_context().is_valid() && !span.span_context().is_sampled(), "context still propagates (-00)");
    span.set_attribute(KeyValue::new("ignored", true));
    drop(span); // ends it
    let s = provider.stats();
    assert_eq!((s.started, s.unsampled, s.live, s.queued), (1, 1, 0, 0), "{s:?}");
    provider.force_flush().await.expect("nothing to flush");
}

#[wasm_bindgen_test]
async fn shutdown_drops_later_spans_and_counts_them() {
    let provider = provider(Protocol::HttpProtobuf);
    let tracer = provider.tracer("otel-wasm");
    tracer.start("before shutdown").end();
    provider.shutdown().await.expect("shutdown flushes");
    assert_eq!(provider.stats().exported, 1);
    tracer.start("after shutdown").end();
    let s = provider.stats();
    assert_eq!((s.dropped_shutdown, s.dropped), (1, 1), "{s:?}");
}

#[wasm_bindgen_test]
async fn explicit_timestamps_are_kept_and_now_uses_the_fine_clock() {
    let provider = provider(Protocol::HttpJson);
    let tracer = provider.tracer("otel-wasm");
    let an_hour_ago = SystemTime::UNIX_EPOCH + Duration::from_millis(js_sys::Date::now() as u64 - 3_600_000);
    let mut span = tracer.span_builder("wasm.backdated").with_start_time(an_hour_ago).start(&tracer);
    span.end_with_timestamp(an_hour_ago + Duration::from_millis(5));
    provider.force_flush().await.expect("flush");
    assert_eq!(provider.stats().exported, 1);
    provider.shutdown().await.unwrap();
}

#[wasm_bindgen_test]
fn propagators_round_trip_through_web_sys_headers() {
    let cx = tracelink::TraceContextPropagator::new().extract(&std::collections::HashMap::from([(
        "traceparent".to_string(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_string(),
    )]));
    let cx = cx.with_baggage([KeyValue::new("tenant", "t 1")]);
    let headers = web_sys::Headers::new().unwrap();
    tracelink::inject_headers(&cx, &headers);
    assert_eq!(
        headers.get("traceparent").unwrap().as_deref(),
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    );
    assert_eq!(headers.get("baggage").unwrap().as_deref(), Some("tenant=t%201"));
    let extractor = tracelink::HeadersExtractor::new(&headers);
    let back = tracelink::TraceContextPropagator::new().extract(&extractor);
    let back = tracelink::BaggagePropagator::new().extract_with_context(&back, &extractor);
    assert_eq!(back.span().span_context().span_id().to_string(), "00f067aa0ba902b7");
    assert_eq!(back.baggage().get("tenant").map(|v| v.as_str()), Some("t 1"));
}

fn json_field(v: &JsValue, key: &str) -> Option<String> {
    Reflect::get(v, &key.into()).ok().and_then(|v| v.as_string())
}

async fn echo(url: &str) -> (web_sys::Response, JsValue) {
    let request = web_sys::Request::new_with_str(url).unwrap();
    let response = tracelink::fetch(&request).await.expect("fetch");
    let body = JsFuture::from(response.json().unwrap()).await.unwrap();
    (response, body)
}

#[wasm_bindgen_test]
async fn traced_fetch_joins_the_current_span_and_reads_the_server_span_back() {
    let provider = provider(Protocol::HttpProtobuf);
    let tracer = provider.tracer("otel-wasm");
    let action = tracer.start("wasm.fetch.action");
    let action_sc = action.span_context().clone();
    let cx = Context::current_with_span(action).with_baggage([KeyValue::new("tenant", "acme")]);
    let fetched = echo(&format!("{}/echo?sig=secret&x=1", peer())).with_context(cx.clone()).await;
    let (response, body) = fetched;
    let traceparent = json_field(&body, "traceparent").expect("traceparent sent to an allowlisted URL");
    assert_eq!(&traceparent[3..35], action_sc.trace_id().to_string(), "the request continues the action's trace");
    assert_ne!(&traceparent[36..52], action_sc.span_id().to_string(), "its parent is the CLIENT span, not the action");
    assert_eq!(json_field(&body, "baggage").as_deref(), Some("tenant=acme"));
    assert!(response.headers().get("traceresponse").unwrap().is_some());
    cx.span().end();

    // Not allowlisted (another origin): no headers at all.
    let other = other_origin();
    let (_, body) = echo(&format!("{other}/echo")).with_context(Context::current_with_span(tracer.start("x"))).await;
    assert_eq!(json_field(&body, "traceparent"), None);
    assert_eq!(json_field(&body, "baggage"), None);

    // A network error is the caller's, unchanged; the span records it.
    let refused = web_sys::Request::new_with_str("http://127.0.0.1:9/nothing-listens").unwrap();
    assert!(tracelink::fetch(&refused).await.is_err());

    provider.force_flush().await.expect("flush");
    let s = provider.stats();
    // action + 2 client spans + "x" (dropped at the end of its statement) + the failed fetch
    assert_eq!((s.exported, s.dropped, s.live), (5, 0, 0), "{s:?}");
    provider.shutdown().await.unwrap();
}

#[wasm_bindgen_test]
async fn context_follows_the_future_across_await_in_spawn_local() {
    let provider = provider(Protocol::HttpProtobuf);
    let tracer = provider.tracer("otel-wasm");
    let span = tracer.start("wasm.task");
    let expected = span.span_context().span_id();
    let cx = Context::current_with_span(span);
    let (seen_before, seen_after) =
        (std::rc::Rc::new(std::cell::Cell::new(None)), std::rc::Rc::new(std::cell::Cell::new(None)));
    let (b, a) = (seen_before.clone(), seen_after.clone());
    wasm_bindgen_futures::spawn_local(
        async move {
            b.set(Some(Context::current().span().span_context().span_id()));
            sleep(5).await; // a real turn of the event loop
            a.set(Some(Context::current().span().span_context().span_id()));
        }
        .with_context(cx),
    );
    assert!(!Context::current().span().span_context().is_valid(), "nothing leaks into the spawner");
    sleep(30).await;
    assert_eq!(seen_before.get(), Some(expected));
    assert_eq!(seen_after.get(), Some(expected), "still current after the await");
    provider.shutdown().await.unwrap();
}

#[wasm_bindgen_test]
async fn tracing_spans_export_through_tracing_opentelemetry() {
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    let provider = provider(Protocol::HttpProtobuf);
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("app")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let outer = tracing::info_span!("wasm.tracing.outer", user = "u1");
    let trace_id = outer.context().span().span_context().trace_id();
    assert_ne!(trace_id, opentelemetry::trace::TraceId::INVALID);
    async {
        sleep(5).await;
        let inner = tracing::info_span!("wasm.tracing.inner");
        assert_eq!(inner.context().span().span_context().trace_id(), trace_id, "inner joins outer across the await");
        inner.in_scope(|| tracing::info!(answer = 42, "an event on the inner span"));
    }
    .instrument(outer)
    .await;
    provider.force_flush().await.expect("flush");
    let s = provider.stats();
    assert_eq!((s.exported, s.dropped), (2, 0), "{s:?}");
    provider.shutdown().await.unwrap();
}

fn dispatch(target: &JsValue, event: &str) {
    let ctor = Reflect::get(&js_sys::global(), &"Event".into()).unwrap();
    let ev = Reflect::construct(ctor.unchecked_ref::<Function>(), &Array::of1(&event.into())).unwrap();
    let f: Function = Reflect::get(target, &"dispatchEvent".into()).unwrap().unchecked_into();
    f.call1(target, &ev).unwrap();
}

#[wasm_bindgen_test]
async fn page_hide_sends_everything_queued_with_keepalive() {
    if !in_browser() {
        return; // Node has no pagehide: nothing to test there
    }
    let provider = WebTracerProvider::builder()
        .with_service_name("otel-wasm-test")
        .with_endpoint(format!("{}/v1/traces", peer()))
        .with_schedule_delay(Duration::from_secs(600))
        .build()
        .unwrap();
    let tracer = provider.tracer("otel-wasm");
    for i in 0..20i64 {
        let mut s = tracer.start("wasm.queued");
        s.set_attribute(KeyValue::new("i", i));
        s.end();
    }
    assert_eq!(provider.stats().queued, 20, "waiting for the 10-minute schedule delay");
    dispatch(&js_sys::global().into(), "pagehide");
    let s = provider.stats();
    assert_eq!((s.queued, s.in_flight), (0, 20), "sent at once on page hide: {s:?}");
    provider.force_flush().await.expect("flush");
    assert_eq!(provider.stats().exported, 20);
    provider.shutdown().await.unwrap();
}
