"""Helpers for the package tests: FastAPI apps traced with the OpenTelemetry SDK
into rotel and set up with `instrument_app`, OTLP export bodies, header readers."""

from __future__ import annotations

import json
import secrets
import time

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from testkit import header_values, http
from tracelink_backend import current_correlation_id, instrument_app

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


def otlp_json(trace_id: str, span_id: str, name: str, service: str = "relayed") -> bytes:
    now = time.time_ns()
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": [{
            "traceId": trace_id, "spanId": span_id, "name": name, "kind": 3,
            "startTimeUnixNano": str(now - 1_000_000), "endTimeUnixNano": str(now)}]}]}]}).encode()


def otlp_protobuf(trace_id: str, span_id: str, name: str, service: str = "relayed") -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    now = time.time_ns()
    req = ExportTraceServiceRequest()
    resource_spans = req.resource_spans.add()
    attr = resource_spans.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", service
    span = resource_spans.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name, span.kind = bytes.fromhex(trace_id), bytes.fromhex(span_id), name, 3
    span.start_time_unix_nano, span.end_time_unix_nano = now - 1_000_000, now
    return req.SerializeToString()


RELAY = "/otlp/v1/traces"
