"""`instrument_app` on real FastAPI apps served by uvicorn on free ports, traced
with the OpenTelemetry SDK into a real rotel collector; every request is real HTTP.

Run from the repository root: `.tools/venv/bin/python -m pytest python/tests -q`
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import secrets
import time

import pytest
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from testkit import Recorder, Server, free_port, header_values, http
from tracelink_backend import current_correlation_id, instrument_app
from tracelink_backend.correlation import VALID_CORRELATION_ID

SERVER = 2  # OTLP span kind
PAGE = "http://page.test:8080"
OTHER_PAGE = "https://other.test"
EVIL = "http://evil.test"
TRACE_HEADERS = {"traceparent", "tracestate", "baggage", "x-correlation-id"}


def build_app(rotel, service: str, *, app_cors: dict | None = None, before_otel: bool = False, **kwargs):
    """A FastAPI app traced into `rotel` as `service`, set up with
    `instrument_app(**kwargs)` (after the OpenTelemetry instrumentation unless
    `before_otel`), and the app's own CORSMiddleware when `app_cors` is given."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=rotel.traces_url)))
    app = FastAPI()
    if app_cors is not None:
        app.add_middleware(CORSMiddleware, **app_cors)

    @app.get("/api/hello")
    async def hello():
        return {"correlation_id": current_correlation_id()}

    @app.post("/api/echo")
    async def echo(body: dict):
        return body

    @app.get("/page", response_class=HTMLResponse)
    async def page():
        return "<!doctype html><title>page</title>"

    kwargs.setdefault("collector", rotel.url)
    if before_otel:
        setup = instrument_app(app, **kwargs)
        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
    else:
        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider)
        setup = instrument_app(app, **kwargs)
    return app, setup


@pytest.fixture
def serve():
    """serve(app) -> a running uvicorn Server; all stopped at the end of the test."""
    servers = []

    def start(app):
        server = Server(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def ids():
    return secrets.token_hex(16), secrets.token_hex(8)


def server_span(collector, trace_id: str) -> dict:
    """The one SERVER span of `trace_id` (the instrumentation's send/receive spans are its children)."""
    [span] = collector.wait_for(lambda s: s["traceId"] == trace_id and s["kind"] == SERVER)
    return span


def preflight(url: str, origin: str, headers: str, method: str = "POST"):
    return http("OPTIONS", url, headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers})


def lower_set(reply, name: str) -> set[str]:
    return {v.lower() for v in header_values(reply, name)}


def server_timing(reply) -> dict[str, dict[str, str]]:
    """Server-Timing metrics by name: {"traceparent": {"desc": "00-…"}, …}."""
    metrics = {}
    for entry in header_values(reply, "server-timing"):
        name, *params = entry.split(";")
        metrics[name.strip()] = {k.strip(): v.strip().strip('"') for k, v in (p.split("=", 1) for p in params)}
    return metrics


def otlp_json(trace_id: str, span_id: str, name: str) -> bytes:
    now = time.time_ns()
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "relayed"}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": name, "kind": 3,
            "startTimeUnixNano": str(now - 1_000_000), "endTimeUnixNano": str(now)}]}]}]}).encode()


def otlp_protobuf(trace_id: str, span_id: str, name: str) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    now = time.time_ns()
    req = ExportTraceServiceRequest()
    resource_spans = req.resource_spans.add()
    attr = resource_spans.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "relayed"
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name, span.kind = bytes.fromhex(trace_id), bytes.fromhex(span_id), name, 3
    span.start_time_unix_nano, span.end_time_unix_nano = now - 1_000_000, now
    return req.SerializeToString()


# --- CORS -----------------------------------------------------------------------------------------


def test_cors_is_merged_into_the_apps_own_settings(collector, serve):
    app, setup = build_app(collector, "cors-merge", allow_origins=[OTHER_PAGE], app_cors=dict(
        allow_origins=[PAGE], allow_methods=["GET", "POST"], allow_headers=["content-type", "x-app-key"],
        expose_headers=["x-app-version"], max_age=321))
    server = serve(app)
    requested = "traceparent, tracestate, baggage, x-correlation-id, content-type, x-app-key"
    for origin in (PAGE, OTHER_PAGE):
        r = preflight(server.url + "/api/echo", origin, requested)
        assert r.status == 200, (origin, r.body)
        assert r.headers["access-control-allow-origin"] == origin
        assert TRACE_HEADERS | {"content-type", "x-app-key"} <= lower_set(r, "access-control-allow-headers")
        assert r.headers["access-control-max-age"] == "321"  # the app's own settings stay
        assert lower_set(r, "access-control-allow-methods") == {"get", "post"}

    r = http("POST", server.url + "/api/echo", b'{"a": 1}', {"Origin": PAGE, "Content-Type": "application/json"})
    assert r.status == 200 and r.json() == {"a": 1}
    assert r.headers["access-control-allow-origin"] == PAGE
    assert {"x-app-version", "traceresponse", "server-timing", "x-correlation-id"} <= lower_set(
        r, "access-control-expose-headers")
    assert setup.cors.origins == [PAGE, OTHER_PAGE]


def test_origins_not_allowed_get_no_grant(collector, serve):
    app, _ = build_app(collector, "cors-deny", allow_origins=[PAGE])
    server = serve(app)
    for origin in (EVIL, PAGE + ".evil.test", "null", PAGE.upper(), PAGE + "/"):
        r = preflight(server.url + "/api/echo", origin, "traceparent, content-type")
        assert r.status == 400 and "access-control-allow-origin" not in r.headers, origin
        r = http("GET", server.url + "/api/hello", headers={"Origin": origin, "traceparent": f"00-{'1' * 32}-{'2' * 16}-01"})
        assert r.status == 200, origin  # the request itself is served; the browser just may not read it
        assert "access-control-allow-origin" not in r.headers and "timing-allow-origin" not in r.headers, origin


def test_an_app_without_cors_gets_one_for_the_given_origins(collector, serve):
    app, _ = build_app(collector, "cors-added", allow_origins=[PAGE], allow_origin_regex=r"https://[a-z]+\.example\.com")
    server = serve(app)
    for origin in (PAGE, "https://shop.example.com"):
        r = preflight(server.url + "/api/echo", origin, "traceparent, tracestate, baggage, x-correlation-id, content-type")
        assert r.status == 200 and r.headers["access-control-allow-origin"] == origin, origin
    assert preflight(server.url + "/api/echo", "https://shop.example.com.evil.test", "traceparent").status == 400


def test_same_origin_only_without_origins(collector, serve):
    app, setup = build_app(collector, "cors-none")
    server = serve(app)
    r = preflight(server.url + "/api/echo", PAGE, "traceparent")
    assert "access-control-allow-origin" not in r.headers
    r = http("GET", server.url + "/api/hello", headers={"Origin": PAGE})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers and "timing-allow-origin" not in r.headers
    assert "traceresponse" in r.headers  # same-origin pages still read the server span
    assert setup.cors.is_empty


def test_a_cors_middleware_added_after_instrument_app_is_merged_too(collector, serve):
    app, _ = build_app(collector, "cors-late")
    app.add_middleware(CORSMiddleware, allow_origins=[PAGE], allow_methods=["POST"])
    server = serve(app)
    r = preflight(server.url + "/api/echo", PAGE, "traceparent, x-correlation-id")
    assert r.status == 200 and TRACE_HEADERS <= lower_set(r, "access-control-allow-headers")


# --- response headers -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/hello", "/page"])
def test_responses_name_the_server_span_and_the_server_time(collector, serve, path):
    app, _ = build_app(collector, "headers", allow_origins=[PAGE])
    server = serve(app)
    trace_id, parent = ids()
    before = time.time_ns()
    r = http("GET", server.url + path, headers={"traceparent": f"00-{trace_id}-{parent}-01", "Origin": PAGE})
    after = time.time_ns()
    assert r.status == 200
    traceresponse = r.headers["traceresponse"]
    assert re.fullmatch(f"00-{trace_id}-[0-9a-f]{{16}}-01", traceresponse), traceresponse
    metrics = server_timing(r)
    assert metrics["traceparent"] == {"desc": traceresponse}
    assert r.headers["timing-allow-origin"] == PAGE
    # The server's clock: received at desc, answered dur ms later, all inside our round trip.
    desc, dur = metrics["tracelink-time"]["desc"], metrics["tracelink-time"]["dur"]
    assert re.fullmatch(r"\d{13}\.\d{3}", desc) and re.fullmatch(r"\d+\.\d{3}", dur), metrics
    received = int(desc.replace(".", "")) * 1000
    answered = received + int(dur.replace(".", "")) * 1000
    assert before - 1000 <= received <= answered <= after
    span = server_span(collector, trace_id)
    assert span["spanId"] == traceresponse[36:52] and span["parentSpanId"] == parent and span["kind"] == SERVER
    if path == "/page":
        assert r.headers["content-type"].startswith("text/html")


def test_timing_allow_origin_is_a_star_when_every_origin_is_allowed(collector, serve):
    app, _ = build_app(collector, "tao-star", allow_origins=["*"])
    server = serve(app)
    assert http("GET", server.url + "/page", headers={"Origin": EVIL}).headers["timing-allow-origin"] == "*"


def test_server_time_can_be_turned_off(collector, serve):
    app, _ = build_app(collector, "no-time", server_time=False)
    server = serve(app)
    assert set(server_timing(http("GET", server.url + "/api/hello"))) == {"traceparent"}


HOSTILE_TRACEPARENTS = [  # (value, invalid by every reading: the server must start a new trace)
    ("", True),
    ("garbage", True),
    ("00-" + "0" * 32 + "-" + "1" * 16 + "-01", True),  # all-zero trace id
    ("00-" + "1" * 32 + "-" + "0" * 16 + "-01", True),  # all-zero span id
    ("ff-" + "1" * 32 + "-" + "2" * 16 + "-01", True),  # version ff
    ("00-" + "A" * 32 + "-" + "B" * 16 + "-01", True),  # upper case
    ("00-" + "1" * 31 + "-" + "2" * 16 + "-01", True),
    ("00-" + "1" * 32 + "-" + "2" * 16 + "-0g", True),
    ("00-\xff\xfe-" + "2" * 16 + "-01", True),
    ("x" * 7000, True),
    # Lenient parsers (OpenTelemetry Python's among them) may accept these; either way the request is served.
    ("00-" + "1" * 32 + "-" + "2" * 16 + "-01-extra", False),
    ("00-" + "1" * 32 + "-" + "2" * 16 + "-01" + " " * 4000, False),
    ("\t00-" + "1" * 32 + "-" + "2" * 16 + "-01,00-" + "3" * 32 + "-" + "4" * 16 + "-01", False),
]


def test_a_hostile_traceparent_never_breaks_the_request(collector, serve):
    app, _ = build_app(collector, "hostile")
    server = serve(app)
    for value, invalid in HOSTILE_TRACEPARENTS:
        headers = {"traceparent": value, "tracestate": "a=" + "b" * 600, "baggage": "=;" * 200,
                   "X-Correlation-ID": value[:200]}
        r = http("GET", server.url + "/api/hello", headers=headers)
        assert r.status == 200, repr(value[:60])
        traceresponse = r.headers["traceresponse"]
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", traceresponse)
        if invalid:
            assert traceresponse[3:35] not in ("1" * 32, "0" * 32, "a" * 32), repr(value[:60])
            assert server_span(collector, traceresponse[3:35])["parentSpanId"] in ("", None), repr(value[:60])
        echoed = r.headers["x-correlation-id"]
        sent = value[:200].strip(" \t")  # HTTP drops the whitespace around a header value
        assert echoed == sent if VALID_CORRELATION_ID.fullmatch(sent) else re.fullmatch(r"[0-9a-f]{32}", echoed)


# --- correlation ids ------------------------------------------------------------------------------


def test_correlation_ids_are_kept_or_made_and_set_on_the_server_span(collector, serve):
    app, _ = build_app(collector, "correlation")
    server = serve(app)
    trace_id, parent = ids()
    r = http("GET", server.url + "/api/hello", headers={"traceparent": f"00-{trace_id}-{parent}-01",
                                                        "X-Correlation-ID": "desk-42"})
    assert r.headers["x-correlation-id"] == "desk-42" and r.json() == {"correlation_id": "desk-42"}
    span = server_span(collector, trace_id)
    assert span["attributes"]["correlation_id"] == "desk-42"
    assert "correlation_id.generated" not in span["attributes"]

    trace_id, parent = ids()
    r = http("GET", server.url + "/api/hello", headers={"traceparent": f"00-{trace_id}-{parent}-01",
                                                        "X-Correlation-ID": "no spaces; please"})
    made = r.headers["x-correlation-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made) and r.json() == {"correlation_id": made}
    span = server_span(collector, trace_id)
    assert span["attributes"]["correlation_id"] == made and span["attributes"]["correlation_id.generated"] is True


def test_the_correlation_header_name_is_configurable(collector, serve):
    app, _ = build_app(collector, "request-id", allow_origins=[PAGE], correlation_header="X-Request-ID")
    server = serve(app)
    r = http("GET", server.url + "/api/hello", headers={"X-Request-ID": "r-1", "X-Correlation-ID": "c-1", "Origin": PAGE})
    assert r.headers["x-request-id"] == "r-1" and "x-correlation-id" not in r.headers
    assert "x-request-id" in lower_set(r, "access-control-expose-headers")
    assert "x-request-id" in lower_set(preflight(server.url + "/api/echo", PAGE, "x-request-id"), "access-control-allow-headers")


def test_correlation_ids_can_be_turned_off(collector, serve):
    app, _ = build_app(collector, "no-correlation", correlation_header=None)
    server = serve(app)
    r = http("GET", server.url + "/api/hello", headers={"X-Correlation-ID": "c-1"})
    assert r.json() == {"correlation_id": None} and "x-correlation-id" not in r.headers


# --- the relay ------------------------------------------------------------------------------------

RELAY = "/otlp/v1/traces"


@pytest.mark.parametrize("encoding", ["json", "protobuf", "json+gzip", "protobuf+gzip"])
def test_the_relay_forwards_exports_to_the_collector_untraced(collector, serve, encoding):
    app, setup = build_app(collector, f"relay-{encoding}")
    server = serve(app)
    trace_id, span_id = ids()
    body = (otlp_json if encoding.startswith("json") else otlp_protobuf)(trace_id, span_id, encoding)
    headers = {"Content-Type": "application/json" if encoding.startswith("json") else "application/x-protobuf"}
    if encoding.endswith("gzip"):
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    r = http("POST", server.url + RELAY, body, headers)
    assert r.status == 200, r.body
    [span] = collector.trace(trace_id)
    assert (span["spanId"], span["name"], span["resource"]["service.name"]) == (span_id, encoding, "relayed")
    assert setup.collector_url == collector.traces_url
    # No server span for the relay itself (instrument_app ran after the OpenTelemetry instrumentation).
    marker, parent = ids()
    http("GET", server.url + "/api/hello", headers={"traceparent": f"00-{marker}-{parent}-01"})
    server_span(collector, marker)
    servers = [s["name"] for s in collector.spans()
               if s["resource"]["service.name"] == f"relay-{encoding}" and s["kind"] == SERVER]
    assert servers == ["GET /api/hello"], servers


def gzip_bomb(size: int) -> bytes:
    return gzip.compress(b"{" + b" " * size + b"}", 9)


REFUSED = {  # name: (headers, body, status, words in the error)
    "text/plain": ({"Content-Type": "text/plain"}, b"{}", 415, "Content-Type"),
    "no content type": ({}, b'{"resourceSpans": []}', 415, "Content-Type"),
    "application/protobuf": ({"Content-Type": "application/protobuf"}, b"", 415, "Content-Type"),
    "brotli": ({"Content-Type": "application/json", "Content-Encoding": "br"}, b"{}", 415, "Content-Encoding"),
    "oversized": ({"Content-Type": "application/json"}, b"{" + b" " * 5000 + b"}", 413, "4096 bytes"),
    "gzip bomb": ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, gzip_bomb(1 << 20), 413,
                  "decompressed"),
    "not gzip": ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"{}", 400, "gzip"),
    "truncated gzip": ({"Content-Type": "application/json", "Content-Encoding": "gzip"},
                       gzip.compress(b'{"resourceSpans": []}')[:-6], 400, "gzip"),
    "not JSON": ({"Content-Type": "application/json"}, b'{"resourceSpans": [', 400, "not JSON"),
    "not UTF-8": ({"Content-Type": "application/json"}, b'{"resourceSpans": ["\xff"]}', 400, "not JSON"),
    "deep JSON": ({"Content-Type": "application/json"}, b"[" * 2000 + b"]" * 2000, 400, "RecursionError"),
    "JSON without spans": ({"Content-Type": "application/json"}, b'{"spans": []}', 400, "resourceSpans"),
    "JSON spans not a list": ({"Content-Type": "application/json"},
                              b'{"resourceSpans": [{"scopeSpans": [{"spans": 5}]}]}', 400, "spans"),
    "JSON as protobuf": ({"Content-Type": "application/x-protobuf"}, b'{"resourceSpans": []}', 400, "protobuf"),
    "truncated protobuf": ({"Content-Type": "application/x-protobuf"}, b"\x0a\x10\x12\x0e", 400, "protobuf"),
    "protobuf with a bad span list": ({"Content-Type": "application/x-protobuf"}, b"\x0a\x02\x12\x00\x0a\x03\x12\x01\xff",
                                      400, "protobuf"),
}


def test_the_relay_refuses_bad_bodies_with_a_clear_4xx_and_never_forwards_them(collector, serve):
    upstream = Recorder()
    try:
        app, _ = build_app(collector, "relay-refuses", collector=upstream.url, relay_max_bytes=4096)
        server = serve(app)
        for name, (headers, body, status, words) in REFUSED.items():
            r = http("POST", server.url + RELAY, body, headers)
            assert r.status == status, (name, r.body)
            assert words in r.json()["error"], (name, r.json())
        chunked = http("POST", server.url + RELAY, iter([b"{" + b" " * 3000, b" " * 3000 + b"}"]),
                       {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        assert chunked.status == 413
        assert http("GET", server.url + RELAY).status == 405
        assert http("PUT", server.url + RELAY, b"{}", {"Content-Type": "application/json"}).status == 405
        assert upstream.hits == []
        # What passes goes to the configured collector, and only there.
        ok = http("POST", server.url + RELAY + "?endpoint=http://evil.test/", otlp_json(*ids(), "ok"),
                  {"Content-Type": "application/json", "X-Forwarded-Host": "evil.test", "Forwarded": "host=evil.test"})
        assert ok.status == 200
        assert [(m, p) for m, p, _ in upstream.hits] == [("POST", "/v1/traces")]
    finally:
        upstream.stop()


def test_the_relay_passes_the_collectors_verdict_through(collector, serve):
    upstream = Recorder(status=503)
    try:
        app, _ = build_app(collector, "relay-verdict", collector=upstream.url + "/custom/path")
        server = serve(app)
        r = http("POST", server.url + RELAY, otlp_json(*ids(), "x"), {"Content-Type": "application/json"})
        assert r.status == 503
        assert [p for _, p, _ in upstream.hits] == ["/custom/path"]  # a full URL is used as it is
    finally:
        upstream.stop()


def test_the_relay_answers_502_when_the_collector_is_down(collector, serve):
    app, _ = build_app(collector, "relay-down", collector=f"http://127.0.0.1:{free_port()}")
    server = serve(app)
    r = http("POST", server.url + RELAY, otlp_json(*ids(), "x"), {"Content-Type": "application/json"})
    assert r.status == 502 and "unreachable" in r.json()["error"]


def test_the_relay_rate_limits_each_client(collector, serve):
    upstream = Recorder()
    try:
        app, _ = build_app(collector, "relay-rate", collector=upstream.url, relay_burst=3, relay_rate_per_second=0.01)
        server = serve(app)
        statuses = [http("POST", server.url + RELAY, otlp_json(*ids(), "x"), {"Content-Type": "application/json"})
                    for _ in range(5)]
        assert [r.status for r in statuses] == [200, 200, 200, 429, 429]
        assert int(statuses[3].headers["retry-after"]) >= 1
        assert len(upstream.hits) == 3
        assert http("GET", server.url + "/api/hello").status == 200  # only the relay is limited
    finally:
        upstream.stop()


def test_cross_origin_pages_may_use_the_relay(collector, serve):
    app, _ = build_app(collector, "relay-cors", allow_origins=[PAGE])
    server = serve(app)
    r = preflight(server.url + RELAY, PAGE, "content-type, content-encoding")
    assert r.status == 200 and r.headers["access-control-allow-origin"] == PAGE
    assert preflight(server.url + RELAY, EVIL, "content-type").status == 400
    trace_id, span_id = ids()
    r = http("POST", server.url + RELAY, otlp_json(trace_id, span_id, "cross"),
             {"Content-Type": "application/json", "Origin": PAGE})
    assert r.status == 200 and r.headers["access-control-allow-origin"] == PAGE
    collector.trace(trace_id)


def test_instrument_app_before_the_otel_instrumentation_still_works_and_warns(collector, serve, caplog):
    app, _ = build_app(collector, "early", allow_origins=[PAGE], before_otel=True)
    with caplog.at_level(logging.WARNING, logger="tracelink_backend"):
        server = serve(app)
        trace_id, parent = ids()
        r = http("GET", server.url + "/api/hello", headers={"traceparent": f"00-{trace_id}-{parent}-01", "Origin": PAGE})
    assert r.headers["traceresponse"][3:35] == trace_id and r.headers["timing-allow-origin"] == PAGE
    assert server_span(collector, trace_id)["parentSpanId"] == parent
    assert http("POST", server.url + RELAY, otlp_json(*ids(), "x"), {"Content-Type": "application/json"}).status == 200
    assert any("will make server spans" in m for m in caplog.messages), caplog.messages


def test_the_relay_can_be_turned_off(collector, serve):
    app, setup = build_app(collector, "no-relay", relay_path=None)
    server = serve(app)
    assert http("POST", server.url + RELAY, otlp_json(*ids(), "x"), {"Content-Type": "application/json"}).status == 404
    assert setup.collector_url is None


# --- arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, error, words", [
    ({"allow_origins": PAGE}, TypeError, "not one string"),
    ({"allow_origins": [PAGE + "/"]}, ValueError, "trailing slash"),
    ({"allow_origins": ["page.test"]}, ValueError, "scheme://host"),
    ({"allow_origins": [None]}, TypeError, "not a string"),
    ({"allow_origin_regex": "("}, re.error, ""),
    ({"correlation_header": "X Correlation"}, ValueError, "header name"),
    ({"relay_path": "otlp"}, ValueError, "absolute path"),
    ({"collector": "ftp://collector"}, ValueError, "http(s) URL"),
    ({"relay_max_bytes": 0}, ValueError, "positive"),
    ({"relay_burst": 0}, ValueError, "at least 1"),
    ({"relay_rate_per_second": 0}, ValueError, "positive"),
])
def test_bad_arguments_fail_at_the_call(kwargs, error, words):
    with pytest.raises(error, match=re.escape(words) if words else None):
        instrument_app(FastAPI(), **{"collector": "http://127.0.0.1:4318", **kwargs})


def test_instrument_app_refuses_a_second_call_and_non_apps():
    app = FastAPI()
    instrument_app(app, collector="http://127.0.0.1:4318")
    with pytest.raises(RuntimeError, match="already"):
        instrument_app(app)
    with pytest.raises(TypeError, match="FastAPI or Starlette"):
        instrument_app(object())


def test_the_collector_comes_from_the_otel_environment(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert instrument_app(FastAPI()).collector_url == "http://localhost:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert instrument_app(FastAPI()).collector_url == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://traces.example/otlp/traces")
    assert instrument_app(FastAPI()).collector_url == "https://traces.example/otlp/traces"
    assert instrument_app(FastAPI(), collector="http://127.0.0.1:9").collector_url == "http://127.0.0.1:9/v1/traces"


def test_a_plain_starlette_app_works_too(collector, serve):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("hi"))])
    instrument_app(app, allow_origins=[PAGE], collector=collector.url)
    server = serve(app)
    r = http("GET", server.url + "/", headers={"Origin": PAGE, "X-Correlation-ID": "c-9"})
    assert r.body == b"hi" and r.headers["access-control-allow-origin"] == PAGE
    assert set(server_timing(r)) == {"tracelink-time"} and "traceresponse" not in r.headers  # no span: nothing to name
    assert r.headers["x-correlation-id"] == "c-9"
    trace_id, span_id = ids()
    assert http("POST", server.url + RELAY, otlp_json(trace_id, span_id, "plain"), {"Content-Type": "application/json"}).status == 200
    collector.trace(trace_id)
