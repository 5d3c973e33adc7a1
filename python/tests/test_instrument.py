"""`instrument_app` on real FastAPI apps served by uvicorn on free ports, traced
with the OpenTelemetry SDK into a real rotel collector; every request is real
HTTP: CORS merging and preflights, the response headers (server span, server
clock, Timing-Allow-Origin), hostile `traceparent`s, correlation ids, arguments.

Run from the repository root: `.tools/venv/bin/python -m pytest python/tests -q`
"""

from __future__ import annotations

import re
import time

import pytest
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from apps import (EVIL, OTHER_PAGE, PAGE, RELAY, SERVER, TRACE_HEADERS, build_app, ids, lower_set, otlp_json,
                  preflight, server_span, server_timing)
from testkit import http
from tracelink_backend import instrument_app
from tracelink_backend.correlation import VALID_CORRELATION_ID


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
