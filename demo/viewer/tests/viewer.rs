//! End-to-end tests of the built viewer binary: real OTLP over HTTP and gRPC in,
//! Jaeger JSON and UI pages out, signals and bad input handled.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use otlp_embedded::proto::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use support::*;

const PROTOBUF: (&str, &str) = ("Content-Type", "application/x-protobuf");

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// Fetches `/api/traces/<id>` and returns `data[0]`.
fn fetch_trace(viewer: &Viewer, trace_hex: &str) -> serde_json::Value {
    let reply = get(viewer.ui, &format!("/api/traces/{trace_hex}"));
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut json = reply.json();
    assert_eq!(json["data"].as_array().map(Vec::len), Some(1), "{json}");
    json["data"][0].take()
}

/// Both spans present, child CHILD_OF parent, service and kinds as sent.
fn assert_two_spans(trace: &serde_json::Value, sent: &TwoSpans, service: &str) {
    assert_eq!(trace["traceID"], sent.trace_hex().as_str());
    assert_eq!(trace["spans"].as_array().unwrap().len(), 2, "{trace}");
    let parent = jaeger_span(trace, &sent.parent);
    let child = jaeger_span(trace, &sent.child);
    assert_eq!(parent["operationName"], "page load");
    assert_eq!(child["operationName"], "GET /api/items");
    assert!(parent["references"].as_array().is_none_or(Vec::is_empty), "root has no parent: {parent}");
    assert_eq!(
        child["references"],
        serde_json::json!([{ "refType": "CHILD_OF", "traceID": sent.trace_hex(), "spanID": hex(&sent.parent) }])
    );
    assert_eq!(child["duration"], 5000, "microseconds");
    assert_eq!(jaeger_service(trace, parent), service);
    assert_eq!(jaeger_service(trace, child), service);
    assert_eq!(jaeger_tag(parent, "span.kind").unwrap(), "server");
    assert_eq!(jaeger_tag(child, "span.kind").unwrap(), "client");
    assert_eq!(jaeger_tag(child, "otel.scope.name").unwrap(), "tracelink");
    assert_eq!(jaeger_tag(child, "http.request.method").unwrap(), "GET");
}

#[test]
fn banner_is_one_line_with_three_loopback_addresses() {
    let viewer = Viewer::start();
    assert_eq!(
        viewer.banner,
        format!("viewer ui=http://{} grpc={} http=http://{}", viewer.ui, viewer.grpc, viewer.http)
    );
    for addr in [viewer.ui, viewer.grpc, viewer.http] {
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    }
}

#[test]
fn http_export_shows_parent_and_child_in_jaeger_api() {
    let viewer = Viewer::start();
    let sent = TwoSpans::new("http-demo", 1);
    let reply = request(viewer.http, "POST", "/v1/traces", &[PROTOBUF], &sent.request.encode_to_vec());
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("content-type"), Some("application/x-protobuf"));
    ExportTraceServiceResponse::decode(&reply.body[..]).expect("protobuf ExportTraceServiceResponse");

    assert_two_spans(&fetch_trace(&viewer, &sent.trace_hex()), &sent, "http-demo");
}

#[test]
fn http_export_accepts_gzip_and_feeds_search() {
    let viewer = Viewer::start();
    let sent = TwoSpans::new("gzip-demo", 2);
    let body = gzip(&sent.request.encode_to_vec());
    let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "gzip")];
    let reply = request(viewer.http, "POST", "/v1/traces", &headers, &body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_two_spans(&fetch_trace(&viewer, &sent.trace_hex()), &sent, "gzip-demo");

    // What the UI's search page asks for.
    assert_eq!(get(viewer.ui, "/api/services").json()["data"], serde_json::json!(["gzip-demo"]));
    let found = get(viewer.ui, "/api/traces?service=gzip-demo&limit=20&lookback=1h").json();
    assert_eq!(found["data"][0]["traceID"], sent.trace_hex().as_str(), "{found}");
    let operations = get(viewer.ui, "/api/services/gzip-demo/operations").json();
    assert_eq!(operations["data"], serde_json::json!(["page load"]));
}

#[tokio::test]
async fn grpc_export_with_gzip_round_trips() {
    use tonic::codec::CompressionEncoding;
    use tonic::codegen::http::uri::PathAndQuery;

    let viewer = Viewer::start();
    let sent = TwoSpans::new("grpc-demo", 3);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", viewer.grpc))
        .unwrap()
        .connect()
        .await
        .expect("connect gRPC");
    // No generated client in otlp-embedded: the same call by hand, gzip like rotel.
    let mut grpc = tonic::client::Grpc::new(channel).send_compressed(CompressionEncoding::Gzip);
    grpc.ready().await.unwrap();
    let path = PathAndQuery::from_static("/opentelemetry.proto.collector.trace.v1.TraceService/Export");
    let codec = tonic_prost::ProstCodec::<ExportTraceServiceRequest, ExportTraceServiceResponse>::default();
    let response = grpc.unary(tonic::Request::new(sent.request.clone()), path, codec).await.expect("Export");
    assert!(response.into_inner().partial_success.is_none());

    let trace = tokio::task::spawn_blocking({
        let ui = viewer.ui;
        let id = sent.trace_hex();
        move || {
            let mut json = get(ui, &format!("/api/traces/{id}")).json();
            json["data"][0].take()
        }
    })
    .await
    .unwrap();
    assert_two_spans(&trace, &sent, "grpc-demo");
}

#[test]
fn spans_of_two_services_in_one_trace_keep_their_services() {
    // Browser and backend resources without service.instance.id: otlp-embedded
    // alone would show both under one service.
    let viewer = Viewer::start();
    let sent = TwoSpans::new("unused", 4);
    let mut spans = sent.request.resource_spans[0].scope_spans[0].spans.clone();
    let backend_span = spans.remove(0); // the child
    let request = ExportTraceServiceRequest {
        resource_spans: vec![resource_spans("browser", spans), resource_spans("backend", vec![backend_span])],
    };
    let reply = request_export(&viewer, &request);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let trace = fetch_trace(&viewer, &sent.trace_hex());
    assert_eq!(jaeger_service(&trace, jaeger_span(&trace, &sent.parent)), "browser");
    assert_eq!(jaeger_service(&trace, jaeger_span(&trace, &sent.child)), "backend");
}

fn request_export(viewer: &Viewer, export: &ExportTraceServiceRequest) -> Reply {
    request(viewer.http, "POST", "/v1/traces", &[PROTOBUF], &export.encode_to_vec())
}

#[test]
fn http_receiver_rejects_what_otlp_rejects() {
    let viewer = Viewer::start();
    let body = TwoSpans::new("x", 5).request.encode_to_vec();
    let post = |headers: &[(&str, &str)], body: &[u8]| request(viewer.http, "POST", "/v1/traces", headers, body).status;
    assert_eq!(post(&[("Content-Type", "application/json")], b"{\"resourceSpans\":[]}"), 415);
    assert_eq!(post(&[], &body), 415, "no content type");
    assert_eq!(post(&[PROTOBUF, ("Content-Encoding", "br")], &body), 415);
    assert_eq!(post(&[PROTOBUF, ("Content-Encoding", "gzip")], &body), 400, "not gzip");
    assert_eq!(post(&[PROTOBUF], b"\xff\xff\xff\xff not protobuf"), 400);
    assert_eq!(get(viewer.http, "/v1/traces").status, 405);
    assert_eq!(get(viewer.http, "/v1/metrics").status, 404);
    // Still alive and empty.
    assert_eq!(get(viewer.ui, "/healthz").status, 200);
    assert_eq!(get(viewer.ui, "/api/services").json()["total"], 0);
}

#[test]
fn http_receiver_answers_cors_for_browser_pages() {
    let viewer = Viewer::start();
    let origin = ("Origin", "http://127.0.0.1:8080");
    let preflight = request(
        viewer.http,
        "OPTIONS",
        "/v1/traces",
        &[origin, ("Access-Control-Request-Method", "POST"), ("Access-Control-Request-Headers", "content-type")],
        b"",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("http://127.0.0.1:8080"));
    assert_eq!(preflight.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(preflight.header("access-control-allow-headers"), Some("content-type"));
    assert!(preflight.header("access-control-allow-methods").unwrap().contains("POST"));

    let body = TwoSpans::new("cors", 6).request.encode_to_vec();
    let post = request(viewer.http, "POST", "/v1/traces", &[origin, PROTOBUF], &body);
    assert_eq!(post.status, 200);
    assert_eq!(post.header("access-control-allow-origin"), Some("http://127.0.0.1:8080"));
    assert_eq!(post.header("access-control-allow-credentials"), Some("true"));
    let refused = request(viewer.http, "POST", "/v1/traces", &[origin], &body);
    assert_eq!(refused.status, 415);
    assert_eq!(refused.header("access-control-allow-origin"), Some("http://127.0.0.1:8080"), "errors readable too");
}

#[test]
fn ui_serves_jaeger_pages_assets_and_healthz() {
    let viewer = Viewer::start();
    let health = get(viewer.ui, "/healthz");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));

    let index = get(viewer.ui, "/");
    assert_eq!(index.status, 200);
    assert!(index.header("content-type").unwrap().starts_with("text/html"));
    let html = index.text();
    assert!(html.contains("<title>Jaeger UI</title>"), "{html}");
    // Client-side routes get the same page, as 200.
    for route in ["/search", "/trace/0123456789abcdef0123456789abcdef"] {
        let page = get(viewer.ui, route);
        assert_eq!(page.status, 200, "{route}");
        assert!(page.text().contains("<title>Jaeger UI</title>"), "{route}");
    }
    // The entry script the page loads is embedded in the binary.
    let script = html
        .split("type=\"module\" crossorigin src=\"./")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no module script in {html}"));
    let asset = get(viewer.ui, &format!("/{script}"));
    assert_eq!(asset.status, 200, "{script}");
    assert!(asset.header("content-type").unwrap().contains("javascript"));
    assert!(asset.body.len() > 100_000, "{script}: {} bytes", asset.body.len());

    assert_eq!(get(viewer.ui, "/static/missing.js").status, 404);
    assert_eq!(get(viewer.ui, "/api/traces/00112233445566778899aabbccddeeff").status, 404);
}

#[test]
fn sigterm_and_sigint_stop_it_with_status_zero() {
    // (signal, hold an idle keep-alive connection like a browser tab does)
    for (signal, idle_connection) in [("TERM", true), ("INT", true), ("TERM", false)] {
        let mut viewer = Viewer::start();
        let _idle = idle_connection.then(|| {
            let mut idle = TcpStream::connect(viewer.ui).unwrap();
            idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut buf = [0u8; 256];
            let n = idle.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            idle
        });
        // Without the idle connection the signal follows the banner at once:
        // the handlers must already be installed.
        let (status, took) = viewer.signal_and_wait(signal, Duration::from_secs(5));
        assert_eq!(status.code(), Some(0), "SIG{signal}: {status}");
        assert!(took < Duration::from_millis(1500), "SIG{signal} took {took:?}");
    }
}

#[test]
fn refuses_non_loopback_busy_ports_and_unknown_flags() {
    let run = |args: &[&str]| Command::new(BIN).args(args).stdin(Stdio::null()).output().expect("run viewer");
    let public = run(&["--ui", "0.0.0.0:0"]);
    assert_eq!(public.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&public.stderr).contains("loopback"));

    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let taken = run(&["--ui", "0", "--grpc", &port, "--http", "0"]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(taken.stdout.is_empty(), "no banner when a port cannot be bound");
    assert!(String::from_utf8_lossy(&taken.stderr).contains("grpc"));

    assert_eq!(run(&["--verbose"]).status.code(), Some(2));
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("VIEWER_GRPC"));
}
