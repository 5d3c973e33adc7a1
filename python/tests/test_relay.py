"""The OTLP relay of `instrument_app` on real FastAPI apps served by uvicorn,
forwarding to a real rotel collector (or to a recording HTTP server, to prove
what is never forwarded): encodings, refusals, limits, CORS, tracing.

Run from the repository root: `.tools/venv/bin/python -m pytest python/tests -q`
"""

from __future__ import annotations

import gzip
import logging

import pytest

from apps import EVIL, PAGE, RELAY, SERVER, build_app, ids, otlp_json, otlp_protobuf, preflight, server_span
from testkit import Recorder, free_port, http


# --- the relay ------------------------------------------------------------------------------------

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
