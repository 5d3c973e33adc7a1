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
        p.on_response(req.id, Response::Http { status: 200, retry_after: None, body: None }, 1, 0);
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
    p.on_response(req.id, Response::Http { status: 503, retry_after: Some("2"), body: None }, 10, 0);
    assert!(p.poll_request(10).is_none());
    assert_eq!(p.poll_timeout(), Some(2010));
    p.handle_timeout(2010);
    let again = p.poll_request(2010).expect("retried after Retry-After");
    p.on_response(again.id, Response::Http { status: 200, retry_after: None, body: None }, 2020, 0);
    assert!(p.is_idle());
}


// ---- the platform layer: web::Agent driven as the JS entry drives it -------

use js_sys::{Array, Function, Reflect};
use tracelink::web::clock::Clock;
use tracelink::web::Agent;
use wasm_bindgen::JsValue;

/// An Agent whose host callbacks record into JS arrays: `sent` gets
/// `[id, body, transport, gzip]`, `timers` gets each requested delay.
/// Bodies are not gzip'd (`compress: false`) unless `compress`.
fn agent(json: bool) -> (Agent, Array, Array) {
    agent_with(json, false)
}

fn agent_with(json: bool, compress: bool) -> (Agent, Array, Array) {
    let sent = Array::new();
    let timers = Array::new();
    let send = Function::new_with_args("id, body, transport, gzip", "this.push([id, body, transport, gzip]); return true;");
    let send = send.bind0(&sent);
    let set_timer = Function::new_with_args("ms", "this.push(ms);").bind0(&timers);
    let cfg = js_sys::Object::new();
    Reflect::set(&cfg, &"serviceName".into(), &"agent-test".into()).unwrap();
    Reflect::set(&cfg, &"json".into(), &JsValue::from_bool(json)).unwrap();
    if !compress {
        Reflect::set(&cfg, &"compress".into(), &JsValue::FALSE).unwrap();
    }
    (Agent::new(cfg.into(), send, set_timer, None).unwrap(), sent, timers)
}

fn stat(a: &Agent, key: &str) -> f64 {
    Reflect::get(&a.stats(), &key.into()).unwrap().as_f64().unwrap()
}

#[wasm_bindgen_test]
fn agent_exports_through_the_host_callbacks() {
    let (mut a, sent, timers) = agent(true);
    let op = a.start("op", 0, 0);
    let fetch = a.fetch_start("GET", "https://api.example/x", "api.example", 443, op);
    assert!(a.traceparent(fetch).starts_with(&format!("00-{}-", a.trace_id(op))));
    a.attr_str(0, "k", "v");
    a.event(op, "staged-attributes-event");
    a.fetch_end(fetch, 503, "", "traceparent;desc=\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\"");
    a.end(op);
    assert_eq!(sent.length(), 0, "nothing sent before the schedule timer");
    assert!(timers.length() >= 1, "a timer was requested");
    a.flush();
    assert_eq!(sent.length(), 1);
    let call = Array::from(&sent.get(0));
    assert_eq!(call.get(2).as_f64(), Some(1.0), "small batches go keepalive (they survive an unload)");
    let body: Vec<u8> = js_sys::Uint8Array::new(&call.get(1)).to_vec();
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("\"agent-test\"") && text.contains("staged-attributes-event"), "{text}");
    assert!(text.contains("b7ad6b7169203331"), "server span from Server-Timing recorded");
    assert!(text.contains("{\"key\":\"error.type\",\"value\":{\"stringValue\":\"503\"}}"), "{text}");
    assert!(!a.idle());
    a.on_outcome(call.get(0).as_f64().unwrap(), 200, None, Some(b"{}".to_vec()));
    assert!(a.idle());
    assert_eq!(stat(&a, "exported"), 2.0);
    assert_eq!(stat(&a, "dropped"), 0.0);
}

#[wasm_bindgen_test]
fn agent_retries_then_uses_keepalive_when_hidden() {
    let (mut a, sent, _timers) = agent(false);
    let h = a.start("s", 0, 0);
    a.end(h);
    a.flush();
    let first = Array::from(&sent.get(0));
    a.on_outcome(first.get(0).as_f64().unwrap(), 429, Some("0".into()), None);
    assert_eq!(stat(&a, "retried"), 1.0);
    assert_eq!(sent.length(), 2, "Retry-After: 0 resends at once");
    let retry = Array::from(&sent.get(1));
    assert_eq!(retry.get(2).as_f64(), Some(1.0));
    a.on_outcome(retry.get(0).as_f64().unwrap(), 200, None, None);
    assert_eq!(stat(&a, "exported"), 1.0);
    let h = a.start("queued-when-hidden", 0, 0);
    a.end(h);
    a.page_hidden();
    let last = Array::from(&sent.get(sent.length() - 1));
    assert_eq!(last.get(2).as_f64(), Some(1.0), "keepalive transport while hidden");
    a.on_outcome(last.get(0).as_f64().unwrap(), 400, None, None);
    assert_eq!(stat(&a, "droppedFailed"), 1.0, "400 is not retried: dropped and counted");
    assert!(a.idle());
}

#[wasm_bindgen_test]
fn agent_gzips_by_default_and_tells_the_host() {
    let (mut a, sent, _) = agent_with(true, true);
    for i in 0..20 {
        let h = a.start("compressible", 0, 0);
        a.attr_str(h, "http.route", "/api/items/:id");
        a.attr_int(h, "i", f64::from(i));
        a.end(h);
    }
    a.flush();
    let call = Array::from(&sent.get(0));
    assert_eq!(call.get(3), JsValue::TRUE, "gzip flag");
    let body: Vec<u8> = js_sys::Uint8Array::new(&call.get(1)).to_vec();
    assert_eq!(&body[..3], &[0x1f, 0x8b, 8], "a gzip member");
    assert!(body.len() < 20 * 150, "{} bytes for 20 spans (about 300 each uncompressed)", body.len());
    a.on_outcome(call.get(0).as_f64().unwrap(), 200, None, None);
    assert_eq!(stat(&a, "exported"), 20.0);
    // compress: false sends the same spans plain.
    let (mut a, sent, _) = agent(true);
    let h = a.start("plain", 0, 0);
    a.end(h);
    a.flush();
    let call = Array::from(&sent.get(0));
    assert_eq!(call.get(3), JsValue::FALSE);
    assert_eq!(js_sys::Uint8Array::new(&call.get(1)).get_index(0), b'{');
}

#[wasm_bindgen_test]
fn agent_ignores_stale_and_unknown_handles() {
    let (mut a, _sent, _) = agent(false);
    let h = a.start("s", 0, 0);
    a.end(h);
    a.end(h);
    a.attr_str(h, "late", "x");
    a.end(12345);
    assert_eq!(a.traceparent(h), "");
    assert_eq!(a.normalize_traceparent("garbage", ""), "");
    assert_eq!(stat(&a, "ended"), 1.0);
}

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
