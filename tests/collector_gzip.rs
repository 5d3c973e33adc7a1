//! gzip'd export against a real collector: the pipeline's own request
//! bodies (compression on, the default), POSTed to rotel on 127.0.0.1 with
//! `Content-Encoding: gzip` exactly as the JS side sends them, must be
//! accepted and decoded span for span. And a gzip body *without* the header
//! is refused, which is why beacons (which cannot set it) are never gzip'd.
//! Needs rotel (scripts/setup.sh installs it); fails without it.

#[path = "support/rotel.rs"]
mod rotel;

use std::collections::HashMap;
use std::time::Duration;

use rotel::Rotel;
use tracelink::core::export::Transport;
use tracelink::core::id::IdGenerator;
use tracelink::core::otlp::Encoding;
use tracelink::core::pipeline::{Pipeline, PipelineConfig, Response};
use tracelink::core::span::{KeyValue, SpanKind};
use tracelink::core::tracer::Parent;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Ends `n` spans of the bench's shape; returns span id (hex) → index.
fn bench_spans(p: &mut Pipeline, n: usize) -> HashMap<String, i64> {
    let t0 = 1_764_000_000_123_455_000u64;
    (0..n as u64)
        .map(|i| {
            let t = t0 + i * 9_000;
            let h = p.tracer.start_span("bench.op", SpanKind::Internal, Parent::Root, t);
            let id = p.tracer.context(h).expect("live").span_id.to_hex();
            for kv in [
                KeyValue::new("app.name", "checkout"),
                KeyValue::new("app.items", i as i64),
                KeyValue::new("app.ratio", 0.25),
                KeyValue::new("app.cached", false),
                KeyValue::new("http.route", "/api/items/:id"),
                KeyValue::new("app.step", "validate ü"),
            ] {
                p.tracer.set_attribute(h, kv);
            }
            p.tracer.add_event(h, "e", t + 5_000, vec![KeyValue::new("k", "v")]);
            p.end_span(h, t + 5_000, 0, false);
            (id, i as i64)
        })
        .collect()
}

#[test]
fn gzipped_requests_from_the_pipeline_reach_rotel_intact() {
    let rotel = Rotel::start();
    let mut expected = HashMap::new();
    for (enc, n) in [(Encoding::Protobuf, 700), (Encoding::Json, 600)] {
        let mut config = PipelineConfig::new(&format!("gzip-{enc:?}"), Some("1.0.0"), "rust");
        config.encoding = enc;
        assert!(config.compress, "compression is the default");
        let mut p = Pipeline::new(config, IdGenerator::from_seed([enc as u8 + 1; 32]));
        expected.extend(bench_spans(&mut p, n));
        p.flush(0);
        let mut requests = 0;
        while let Some(req) = p.poll_request(0) {
            requests += 1;
            assert!(req.gzip, "{enc:?}: a batch of spans compresses");
            assert_ne!(req.transport, Transport::Beacon);
            let headers = [("Content-Type", enc.content_type()), ("Content-Encoding", "gzip")];
            let (status, body) = rotel.post_with("/v1/traces", &headers, &req.body);
            assert_eq!(status, 200, "{enc:?}: {}", String::from_utf8_lossy(&body));
            p.on_response(req.id, Response::Http { status, retry_after_ms: None, body: Some(&body) }, 1);
        }
        assert!(requests >= 2, "{enc:?}: more than one batch ({requests})");
        let stats: HashMap<_, _> = p.stats_fields().into_iter().collect();
        assert_eq!(stats["exported"], n as u64, "{enc:?}: {stats:?}");
        assert_eq!(stats["dropped"], 0);
    }
    let spans = rotel.wait_for_spans(expected.len(), TIMEOUT);
    assert_eq!(spans.len(), expected.len(), "each span once");
    for got in &spans {
        let i = expected.remove(got["spanId"].str()).unwrap_or_else(|| panic!("unexpected or repeated span {got:?}"));
        assert_eq!(got["name"].str(), "bench.op");
        let attrs = got["attributes"].arr();
        assert_eq!(attrs.len(), 6);
        assert_eq!(attrs[1]["key"].str(), "app.items");
        assert_eq!(attrs[1]["value"]["intValue"].i64(), i);
        assert_eq!(attrs[5]["value"]["stringValue"].str(), "validate ü");
        assert_eq!(got["events"].arr()[0]["attributes"].arr()[0]["value"]["stringValue"].str(), "v");
        let service = got["resource"]["attributes"].arr().iter().find(|a| a["key"].str() == "service.name").cloned();
        assert!(service.is_some_and(|s| s["value"]["stringValue"].str().starts_with("gzip-")));
    }
    assert!(expected.is_empty());
}

#[test]
fn rotel_refuses_a_gzip_body_without_content_encoding() {
    let rotel = Rotel::start();
    let mut p = Pipeline::new(PipelineConfig::new("no-header", None, "rust"), IdGenerator::from_seed([9; 32]));
    bench_spans(&mut p, 50);
    p.flush(0);
    let req = p.poll_request(0).expect("a request");
    assert!(req.gzip);
    // What a beacon would deliver: the bytes, no Content-Encoding.
    let (status, _) = rotel.post("/v1/traces", "application/x-protobuf", &req.body);
    assert_eq!(status, 400, "gzip bytes read as protobuf");
    // The same bytes with the header are fine.
    let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "gzip")];
    assert_eq!(rotel.post_with("/v1/traces", &headers, &req.body).0, 200);
    assert_eq!(rotel.wait_for_spans(50, TIMEOUT).len(), 50);
}
