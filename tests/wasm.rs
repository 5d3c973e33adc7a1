//! The core and the platform layer on wasm32, in Node and headless Chromium
//! (`cargo test --target wasm32-unknown-unknown --test wasm`, and again with
//! `WASM_BINDGEN_USE_BROWSER=1`). Proves on the real target what the host
//! tests prove on x86: ids from the JS CSPRNG, W3C formats, OTLP bytes, the
//! export policy, and the wall clock.
#![cfg(target_arch = "wasm32")]

use tracelink::core::export::Transport;
use tracelink::core::id::IdGenerator;
use tracelink::core::otlp::Encoding;
use tracelink::core::pipeline::{Pipeline, PipelineConfig, Response};
use tracelink::core::span::{KeyValue, SpanKind};
use tracelink::core::trace_context;
use tracelink::core::tracer::Parent;
use wasm_bindgen_test::*;

fn now_nanos() -> u64 {
    (js_sys::Date::now() * 1e6) as u64
}

#[wasm_bindgen_test]
fn ids_come_from_the_js_csprng() {
    let mut a = IdGenerator::from_entropy().expect("crypto.getRandomValues");
    let mut b = IdGenerator::from_entropy().expect("crypto.getRandomValues");
    let (x, y) = (a.trace_id(), b.trace_id());
    assert!(x.is_valid() && y.is_valid());
    assert_ne!(x, y);
    assert_eq!(x.to_hex().len(), 32);
    assert!(x.to_hex().bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
}

#[wasm_bindgen_test]
fn traceparent_round_trips_and_rejects_bad_input() {
    let ctx = trace_context::parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03").unwrap();
    assert!(ctx.flags.is_sampled() && ctx.flags.is_random());
    assert_eq!(
        trace_context::format_traceparent(&ctx),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03"
    );
    for bad in [
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
        "",
        "\u{1F600}",
    ] {
        assert!(trace_context::parse_traceparent(bad).is_none(), "{bad}");
    }
}

#[wasm_bindgen_test]
fn pipeline_encodes_and_batches_on_wasm() {
    for encoding in [Encoding::Protobuf, Encoding::Json] {
        let mut config = PipelineConfig::new("wasm-test", Some("1.0.0"), "rust");
        config.encoding = encoding;
        config.compress = false;
        let mut p = Pipeline::new(config, IdGenerator::from_entropy().unwrap());
        let root = p.tracer.start_span("op", SpanKind::Internal, Parent::Root, now_nanos());
        let child = p.tracer.start_span("GET", SpanKind::Client, Parent::Local(root), now_nanos());
        p.tracer.set_attribute(child, KeyValue::new("http.response.status_code", 200i64));
        p.end_span(child, now_nanos(), 0, false);
        p.end_span(root, now_nanos(), 0, false);
        assert!(p.poll_request(0).is_none(), "waits for the schedule timer");
        p.flush(0);
        let req = p.poll_request(0).expect("flush sends");
        assert_eq!(req.transport, Transport::FetchKeepalive);
        match encoding {
            Encoding::Json => {
                let body = String::from_utf8(req.body.clone()).unwrap();
                assert!(body.starts_with("{\"resourceSpans\":["), "{body}");
                assert!(body.contains("\"wasm-test\""));
                // the JS engine's own parser accepts it
                assert!(js_sys::JSON::parse(&body).is_ok());
            }
            Encoding::Protobuf => assert_eq!(req.body[0], 0x0a, "field 1 (resource_spans), length-delimited"),
        }
        p.on_response(req.id, Response::Http { status: 200, retry_after_ms: None, body: None }, 1);
        assert!(p.is_idle());
        let exported = p.stats_fields().into_iter().find(|(k, _)| *k == "exported").unwrap().1;
        assert_eq!(exported, 2);
    }
}

#[wasm_bindgen_test]
fn retry_after_is_honoured_on_wasm() {
    let mut p = Pipeline::new(PipelineConfig::new("retry", None, "rust"), IdGenerator::from_seed([1; 32]));
    let h = p.tracer.start_span("s", SpanKind::Internal, Parent::Root, now_nanos());
    p.end_span(h, now_nanos(), 0, false);
    p.flush(0);
    let req = p.poll_request(0).unwrap();
    p.on_response(req.id, Response::Http { status: 503, retry_after_ms: Some(2_000), body: None }, 10);
    assert!(p.poll_request(10).is_none());
    assert_eq!(p.poll_timeout(), Some(2010));
    p.handle_timeout(2010);
    let again = p.poll_request(2010).expect("retried after Retry-After");
    p.on_response(again.id, Response::Http { status: 200, retry_after_ms: None, body: None }, 2020);
    assert!(p.is_idle());
}


// ---- the platform layer (the npm package's ABI is tested through the
// package itself: tests/js, tests/e2e, tests/edge) ---------------------------

use tracelink::web::clock::Clock;

#[wasm_bindgen_test]
fn clock_tracks_the_wall_clock_with_sub_ms_resolution() {
    let mut c = Clock::new();
    let wall = js_sys::Date::now();
    let a = c.unix_nanos();
    let b = c.unix_nanos();
    assert!(b >= a, "monotonic");
    assert!(((a as f64 / 1e6) - wall).abs() < 1500.0, "within the drift bound of Date.now()");
    assert_eq!(tracelink::web::clock::ms_to_nanos(1.5), 1_500_000);
    assert_eq!(tracelink::web::clock::ms_to_nanos(1_795_472_911_303.651_4), 1_795_472_911_303_651_000);
    assert_eq!(tracelink::web::clock::ms_to_nanos(-3.0), 0);
}
