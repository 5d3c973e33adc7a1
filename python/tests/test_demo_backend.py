"""The FIR desk demo backend (demo/backend, set up with `instrument_app`)
against a real collector (rotel): what a browser that sends `traceparent`
gets back, and what lands in the collector.

Run from the repository root: `.tools/venv/bin/python -m pytest python/tests -q`
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from testkit import ALLOWED_ORIGIN, Backend, free_port, header_values, http, post_json

SERVER, CLIENT = 2, 3  # OTLP span kinds
ERROR = 2  # OTLP status code

REPORT = {"complainant": "Asha Rao", "description": "My phone was stolen at the bus stop. It was black.",
          "location": "MG Road"}


def ids():
    return secrets.token_hex(16), secrets.token_hex(8)


def traceparent(trace_id: str, parent: str, flags: str = "01") -> dict[str, str]:
    return {"traceparent": f"00-{trace_id}-{parent}-{flags}"}


def by_name(spans: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in spans:
        out.setdefault(s["name"], []).append(s)
    return out


def only(spans: list[dict], name: str) -> dict:
    matches = [s for s in spans if s["name"] == name]
    assert len(matches) == 1, f"{name}: {[s['name'] for s in spans]}"
    return matches[0]


def create_fir(backend, headers=None) -> str:
    r = post_json(backend.url + "/api/firs", REPORT, headers)
    assert r.status == 201, r.body
    return r.json()["fir_id"]


# --- routes -------------------------------------------------------------------------------------


def test_report_lifecycle(backend):
    r = post_json(backend.url + "/api/firs", REPORT)
    assert r.status == 201
    body = r.json()
    assert re.fullmatch(r"FIR-\d{6}", body["fir_id"])
    assert re.fullmatch(r"[0-9a-f]{32}", body["trace_id"])
    fir_id = body["fir_id"]

    first = http("GET", f"{backend.url}/api/firs/{fir_id}").json()
    second = http("GET", f"{backend.url}/api/firs/{fir_id}").json()
    assert first["fir"]["description"] == REPORT["description"]
    assert (first["cached"], second["cached"]) == (False, True)

    s1 = http("POST", f"{backend.url}/api/firs/{fir_id}/summary").json()
    s2 = http("POST", f"{backend.url}/api/firs/{fir_id}/summary").json()
    assert s1["summary"] == "[theft] Asha Rao at MG Road: My phone was stolen at the bus stop."
    assert (s1["cached"], s2["cached"], s2["summary"]) == (False, True, s1["summary"])


def test_validation_errors_are_422_and_404(backend, collector):
    assert post_json(backend.url + "/api/firs", {"complainant": "x"}).status == 422  # schema
    assert http("GET", backend.url + "/api/firs/FIR-999999").status == 404
    assert http("GET", backend.url + "/api/firs/42").status == 422

    trace_id, parent = ids()
    short = dict(REPORT, description="  stolen  ")
    r = post_json(backend.url + "/api/firs", short, traceparent(trace_id, parent))
    assert r.status == 422 and "too short" in r.json()["detail"]
    spans = collector.trace(trace_id, count=2)
    validate = only(spans, "fir.validate")
    assert validate["status"]["code"] == ERROR
    assert validate["events"][0]["name"] == "exception"
    assert validate["events"][0]["attributes"]["exception.type"].endswith("FirInvalid")
    server = only(spans, "POST /api/firs")
    assert server["attributes"]["http.status_code"] == 422
    assert server["status"]["code"] != ERROR  # 4xx is the client's error, not the server's

    trace_id, parent = ids()
    assert http("GET", backend.url + "/api/firs/FIR-777777", headers=traceparent(trace_id, parent)).status == 404
    lookup = only(collector.trace(trace_id, count=3), "fir.lookup")
    assert lookup["status"]["code"] == ERROR and "FIR-777777" in lookup["status"]["message"]


# --- trace propagation --------------------------------------------------------------------------


def test_traceparent_continues_into_server_and_child_spans(backend, collector):
    fir_id = create_fir(backend)
    trace_id, parent = ids()
    headers = {**traceparent(trace_id, parent), "X-Correlation-ID": "desk-42"}
    r = http("POST", f"{backend.url}/api/firs/{fir_id}/summary", headers=headers)
    assert r.status == 200 and r.json()["trace_id"] == trace_id

    # server, fir.lookup, cache.get(fir), SELECT, cache.set(fir), cache.get(summary), model, cache.set(summary)
    spans = collector.trace(trace_id, count=8)
    server = only(spans, f"POST /api/firs/{{fir_id}}/summary")
    assert server["parentSpanId"] == parent
    assert server["kind"] == SERVER
    assert server["attributes"]["correlation_id"] == "desk-42"
    assert server["resource"]["service.name"] == "afirgen-backend-test"
    assert all(s["traceId"] == trace_id for s in spans)
    names = by_name(spans)
    assert len(names["cache.get"]) == 2 and len(names["cache.set"]) == 2
    lookup = only(spans, "fir.lookup")
    assert lookup["parentSpanId"] == server["spanId"]
    select = only(spans, "SELECT")
    assert select["parentSpanId"] == lookup["spanId"] and select["kind"] == CLIENT
    assert select["attributes"]["db.system"] == "sqlite"
    assert select["attributes"]["db.statement"].startswith("SELECT id, complainant")
    model = only(spans, "model_server.summarize")
    assert model["parentSpanId"] == server["spanId"] and model["kind"] == CLIENT
    assert model["events"][0]["attributes"]["traceparent"] == f"00-{trace_id}-{model['spanId']}-01"
    for s in names["cache.get"] + names["cache.set"] + [lookup, model]:
        assert s["attributes"]["correlation_id"] == "desk-42", s["name"]
    assert not [s for s in spans if s["name"].endswith((" http send", " http receive"))]


def test_create_report_spans(backend, collector):
    trace_id, parent = ids()
    fir_id = create_fir(backend, traceparent(trace_id, parent))
    spans = collector.trace(trace_id, count=3)
    server = only(spans, "POST /api/firs")
    assert server["parentSpanId"] == parent
    assert server["attributes"]["fir.id"] == fir_id
    insert = only(spans, "INSERT")
    assert insert["parentSpanId"] == server["spanId"]
    assert only(spans, "fir.validate")["status"]["code"] == 0


def test_unsampled_parent_exports_nothing(backend, collector):
    trace_id, parent = ids()
    r = http("GET", backend.url + "/api/ping", headers=traceparent(trace_id, parent, "00"))
    body = r.json()
    assert body["server_span"]["trace_id"] == trace_id and body["server_span"]["sampled"] is False
    assert r.headers["traceresponse"].endswith("-00")
    # Spans leave in order: once a later sampled request's span arrived, the
    # unsampled one would have too.
    marker, marker_parent = ids()
    http("GET", backend.url + "/api/ping", headers=traceparent(marker, marker_parent))
    collector.trace(marker)
    assert not [s for s in collector.spans() if s["traceId"] == trace_id]


def test_uppercase_traceparent_starts_a_new_trace(backend):
    trace_id, parent = ids()
    r = http("GET", backend.url + "/api/ping", headers=traceparent(trace_id.upper(), parent.upper()))
    body = r.json()
    assert body["received"]["traceparent"] == f"00-{trace_id.upper()}-{parent.upper()}-01"
    assert body["server_span"]["trace_id"] != trace_id


def test_ping_reports_received_headers(backend):
    trace_id, parent = ids()
    headers = {**traceparent(trace_id, parent), "tracestate": "vendor=abc", "baggage": "user=42",
               "X-Correlation-ID": "c-1"}
    body = http("GET", backend.url + "/api/ping", headers=headers).json()
    assert body["received"] == {"traceparent": f"00-{trace_id}-{parent}-01", "tracestate": "vendor=abc",
                                "baggage": "user=42", "x-correlation-id": "c-1"}
    assert body["correlation_id"] == "c-1"


# --- response headers ---------------------------------------------------------------------------


def test_response_trace_headers_name_the_server_span(backend, collector):
    trace_id, parent = ids()
    r = http("GET", backend.url + "/api/ping", headers={**traceparent(trace_id, parent), "X-Correlation-ID": "abc-1"})
    span_id = r.json()["server_span"]["span_id"]
    expected = f"00-{trace_id}-{span_id}-01"
    assert r.headers["traceresponse"] == expected
    assert header_values(r, "server-timing")[0] == f'traceparent;desc="{expected}"'
    assert header_values(r, "server-timing")[1].startswith("tracelink-time;desc=")
    assert "timing-allow-origin" not in r.headers  # same origin: not needed
    assert r.headers["x-correlation-id"] == "abc-1"
    allowed = http("GET", backend.url + "/api/ping", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.headers["timing-allow-origin"] == ALLOWED_ORIGIN
    assert "timing-allow-origin" not in http("GET", backend.url + "/api/ping", headers={"Origin": "http://evil.test"}).headers
    server = only(collector.trace(trace_id), "GET /api/ping")
    assert server["spanId"] == span_id and server["parentSpanId"] == parent


def test_correlation_id_generated_when_missing_or_unsafe(backend):
    for headers in ({}, {"X-Correlation-ID": "has spaces and ; semicolons"}, {"X-Correlation-ID": "x" * 129}):
        r = http("GET", backend.url + "/api/ping", headers=headers)
        cid = r.headers["x-correlation-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", cid) and r.json()["correlation_id"] == cid


def test_cors_preflight_allows_trace_headers(backend):
    requested = "traceparent, tracestate, baggage, x-correlation-id, content-type"
    r = http("OPTIONS", backend.url + "/api/firs", headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": requested})
    assert r.status == 200
    assert r.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"traceparent", "tracestate", "baggage", "x-correlation-id", "content-type"} <= allowed

    denied = http("OPTIONS", backend.url + "/api/firs", headers={
        "Origin": "http://evil.test", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "traceparent"})
    assert denied.status == 400 and "access-control-allow-origin" not in denied.headers

    r = http("GET", backend.url + "/api/ping", headers={"Origin": ALLOWED_ORIGIN})
    exposed = {h.strip().lower() for v in r.headers.get_all("access-control-expose-headers") for h in v.split(",")}
    assert {"traceresponse", "server-timing", "x-correlation-id"} <= exposed


def test_untraced_routes_make_no_spans(backend, collector):
    http("GET", backend.url + "/healthz")
    assert http("GET", backend.url + "/api/config").json() == {"viewerUrl": None}
    http("GET", backend.url + "/nothing-here")
    post_json(backend.url + "/otlp/v1/traces", {"resourceSpans": []})
    marker, parent = ids()
    http("GET", backend.url + "/api/ping", headers=traceparent(marker, parent))
    collector.trace(marker)
    server_spans = [s for s in collector.spans()
                    if s["kind"] == SERVER and s["resource"]["service.name"] == "afirgen-backend-test"]
    targets = {s["attributes"].get("http.target", "?") for s in server_spans}
    assert targets and all(t.startswith("/api/") for t in targets), targets
    assert "/api/config" not in targets


# --- OTLP relay ---------------------------------------------------------------------------------


def otlp_json(trace_id: str, span_id: str, name: str) -> bytes:
    now = time.time_ns()
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "relay-test"}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": name, "kind": 3,
            "startTimeUnixNano": str(now - 1_000_000), "endTimeUnixNano": str(now)}]}]}]}).encode()


def otlp_protobuf(trace_id: str, span_id: str, name: str) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    now = time.time_ns()
    req = ExportTraceServiceRequest()
    resource_spans = req.resource_spans.add()
    service = resource_spans.resource.attributes.add()
    service.key, service.value.string_value = "service.name", "relay-test"
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name, span.kind = bytes.fromhex(trace_id), bytes.fromhex(span_id), name, CLIENT
    span.start_time_unix_nano, span.end_time_unix_nano = now - 1_000_000, now
    return req.SerializeToString()


RELAY_CASES = {
    "json": ("application/json", None, otlp_json),
    "protobuf": ("application/x-protobuf", None, otlp_protobuf),
    "protobuf+gzip": ("application/x-protobuf", "gzip", otlp_protobuf),
    "json+gzip": ("application/json", "gzip", otlp_json),
}


@pytest.mark.parametrize("case", RELAY_CASES)
def test_relay_forwards_exports_to_the_collector(backend, collector, case):
    content_type, encoding, encode = RELAY_CASES[case]
    trace_id, span_id = ids()
    body = encode(trace_id, span_id, f"relayed {case}")
    headers = {"Content-Type": content_type}
    if encoding:
        body, headers["Content-Encoding"] = gzip.compress(body), encoding
    r = http("POST", backend.url + "/otlp/v1/traces", body, headers)
    assert r.status == 200, r.body
    [span] = collector.trace(trace_id)
    assert (span["spanId"], span["name"], span["kind"]) == (span_id, f"relayed {case}", CLIENT)
    assert span["resource"]["service.name"] == "relay-test"


def test_relay_returns_the_collectors_verdict(backend):
    trace_id, span_id = ids()
    # rotel accepts bare application/json only: the relay passes the header and the 400 through
    r = http("POST", backend.url + "/otlp/v1/traces", otlp_json(trace_id, span_id, "x"),
             {"Content-Type": "application/json; charset=utf-8"})
    assert r.status == 400 and b"resourceSpans" not in r.body
    # Not an export at all: refused by the relay itself.
    r = http("POST", backend.url + "/otlp/v1/traces", b"{}", {"Content-Type": "application/json"})
    assert r.status == 400 and "resourceSpans" in r.json()["error"]


def test_relay_rejects_other_content_types_and_encodings(backend):
    body = otlp_json(*ids(), "x")
    for headers in ({"Content-Type": "text/plain"}, {"Content-Type": "application/protobuf"}, {},
                    {"Content-Type": "application/json", "Content-Encoding": "br"}):
        assert http("POST", backend.url + "/otlp/v1/traces", body, headers).status == 415, headers


def test_relay_limits_body_size(backend):
    big = b"{" + b" " * 5000 + b"}"  # the test backend's RELAY_MAX_BYTES is 4096
    assert http("POST", backend.url + "/otlp/v1/traces", big, {"Content-Type": "application/json"}).status == 413
    chunked = http("POST", backend.url + "/otlp/v1/traces", iter([big[:3000], big[3000:]]),
                   {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    assert chunked.status == 413


class _Recorder(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self):  # noqa: N802
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args):
        pass


def test_relay_cannot_be_pointed_elsewhere(backend, collector):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    elsewhere = f"127.0.0.1:{server.server_address[1]}"
    try:
        trace_id, span_id = ids()
        r = http("POST", f"{backend.url}/otlp/v1/traces?endpoint=http://{elsewhere}/v1/traces&url=http://{elsewhere}",
                 otlp_json(trace_id, span_id, "pinned"),
                 {"Content-Type": "application/json", "Host": elsewhere, "X-Forwarded-Host": elsewhere,
                  "Forwarded": f"host={elsewhere}", "X-Forwarded-Proto": "http"})
        assert r.status == 200
        collector.trace(trace_id)  # it went to the configured collector
        for path in ("/otlp/v1/logs", "/otlp/v1/metrics", f"/otlp/http://{elsewhere}/v1/traces",
                     "/otlp/v1/traces/../../v1/traces", "/otlp/", "/v1/traces"):
            assert http("POST", backend.url + path, b"{}", {"Content-Type": "application/json"}).status in (404, 405), path
        assert http("GET", backend.url + "/otlp/v1/traces").status == 405
        assert _Recorder.hits == []
    finally:
        server.shutdown()
        server.server_close()


def test_relay_answers_502_when_collector_is_down(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1/traces"
    b = Backend(tmp_path, dead)
    try:
        r = http("POST", b.url + "/otlp/v1/traces", otlp_json(*ids(), "x"), {"Content-Type": "application/json"})
        assert r.status == 502 and "unreachable" in r.json()["error"]
    finally:
        b.stop()


# --- static files -------------------------------------------------------------------------------


def test_static_files_are_untraced_except_the_document(tmp_path, collector):
    site, pkg = tmp_path / "site", tmp_path / "pkg"
    site.mkdir()
    pkg.mkdir()
    (site / "index.html").write_text("<!doctype html><title>FIR desk</title>")
    (site / "app.mjs").write_text("export {};")
    (pkg / "tracelink_bg.wasm").write_bytes(b"\0asm\1\0\0\0")
    (pkg / "tracelink.js").write_text("export default 1;")
    b = Backend(tmp_path, collector.traces_url, STATIC_DIR=str(site), PKG_DIR=str(pkg), OTEL_SERVICE_NAME="static-test")
    try:
        types = {p: http("GET", b.url + p).headers["content-type"]
                 for p in ("/", "/app.mjs", "/pkg/tracelink_bg.wasm", "/pkg/tracelink.js")}
        assert types == {"/": "text/html; charset=utf-8", "/app.mjs": "text/javascript; charset=utf-8",
                         "/pkg/tracelink_bg.wasm": "application/wasm", "/pkg/tracelink.js": "text/javascript; charset=utf-8"}
        assert http("GET", b.url + "/pkg/tracelink_bg.wasm").body == b"\0asm\1\0\0\0"
        assert http("GET", b.url + "/missing.js").status == 404
        marker, parent = ids()
        assert http("GET", b.url + "/api/ping", headers=traceparent(marker, parent)).status == 200  # API still first
        collector.trace(marker)
        served = [s for s in collector.spans() if s["resource"]["service.name"] == "static-test"]
        assert sorted(s["attributes"].get("http.target") for s in served) == ["/", "/api/ping"], served
        # The document names its server span, for the page-load join.
        document = http("GET", b.url + "/")
        traceresponse = document.headers["traceresponse"]
        assert header_values(document, "server-timing")[0] == f'traceparent;desc="{traceresponse}"'
        collector.trace(traceresponse[3:35])
    finally:
        b.stop()


# --- tracing_setup in process -------------------------------------------------------------------


def test_tracing_setup_helpers(collector):
    from opentelemetry import context, trace

    from demo.backend import tracing_setup as ts

    provider = ts.setup_tracing("helpers-test", "9.9.9", collector.traces_url)
    tracer = trace.get_tracer("test")
    assert ts.get_current_trace_id() is None
    with tracer.start_as_current_span("root") as root:
        trace_id = ts.get_current_trace_id()
        assert trace_id == f"{root.get_span_context().trace_id:032x}"
        headers = ts.inject_context({"x": "1"})
        assert headers["traceparent"] == f"00-{trace_id}-{ts.get_current_span_id()}-{headers['traceparent'][-2:]}"
        with ts.use_correlation_id("bound-1"):
            with ts.trace_operation("op.ok", {"a": 1, "skipped": None}) as span:
                ts.add_trace_attributes(b="two", none=None)
                ts.add_trace_event("checkpoint", step=3)
                assert span.get_span_context().trace_id == root.get_span_context().trace_id
            with pytest.raises(ValueError, match="boom"):
                with ts.trace_operation("op.fail", correlation_id="explicit-1"):
                    raise ValueError("boom")
    extracted = ts.extract_context(headers)
    token = context.attach(extracted)
    try:
        assert ts.get_current_trace_id() == trace_id
    finally:
        context.detach(token)
    provider.force_flush()

    spans = collector.trace(trace_id, count=3)
    ok, fail = only(spans, "op.ok"), only(spans, "op.fail")
    assert ok["attributes"] == {"a": 1, "b": "two", "correlation_id": "bound-1"}
    assert [e["name"] for e in ok["events"]] == ["checkpoint"] and ok["events"][0]["attributes"] == {"step": 3}
    assert ok["status"]["code"] == 0
    assert fail["attributes"]["correlation_id"] == "explicit-1"
    assert fail["status"] == {"code": ERROR, "message": "ValueError: boom"}
    assert fail["events"][0]["name"] == "exception"
    assert ok["resource"]["service.name"] == "helpers-test" and ok["resource"]["service.version"] == "9.9.9"
    provider.shutdown()
