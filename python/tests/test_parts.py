"""The package's parts on their own: body checks, the rate limiter, the CORS
merge, header formats. No server needed."""

from __future__ import annotations

import gzip
import secrets

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from tracelink_backend import RateLimiter, otlp_body
from tracelink_backend.cors import merge_cors
from tracelink_backend.otlp_body import BadBody
from tracelink_backend.response_headers import format_ms, server_time_metric


def export_with_spans(n: int) -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    attr = rs.resource.attributes.add()
    attr.key, attr.value.string_value = "service.name", "parts"
    scope = rs.scope_spans.add()
    scope.scope.name = "test"
    for i in range(n):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = secrets.token_bytes(16), secrets.token_bytes(8), f"s{i}"
        span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
        span.attributes.add().key = "k"
        span.events.add().name = "e"
    return req.SerializeToString()


def test_real_protobuf_exports_pass():
    for n in (0, 1, 50):
        otlp_body.check(export_with_spans(n), otlp_body.PROTOBUF)
    otlp_body.check(b"", otlp_body.PROTOBUF)  # an empty request is a valid one


def test_every_truncation_of_a_protobuf_export_is_refused_or_a_valid_prefix():
    body = export_with_spans(3)
    refused = 0
    for cut in range(1, len(body)):
        try:
            otlp_body.check(body[:cut], otlp_body.PROTOBUF)
        except BadBody as bad:
            assert bad.status == 400
            refused += 1
    # A cut inside the one top-level field always leaves it running past the end.
    assert refused == len(body) - 1


@pytest.mark.parametrize("body", [
    b"\x0a\x05\x12\x03\x12\x01",  # a span list whose span runs past its end
    b"\x08\x96\x01\x0b",  # wire type 3 (groups): not in OTLP
    b"\x0a",  # a key without its length
    b"\x00\x01",  # field number 0
    b"\x0a\x81\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",  # an 11-byte varint
    b"\x09\x01\x02",  # fixed64 cut short
])
def test_malformed_protobuf_is_refused(body):
    with pytest.raises(BadBody) as refused:
        otlp_body.check(body, otlp_body.PROTOBUF)
    assert refused.value.status == 400


def test_gzip_is_undone_within_the_limit():
    payload = export_with_spans(5)
    assert otlp_body.decode(gzip.compress(payload), "gzip", len(payload)) == payload
    assert otlp_body.decode(payload, None, 1) == payload  # the limit is the reader's job without gzip
    with pytest.raises(BadBody) as big:
        otlp_body.decode(gzip.compress(payload), "GZIP", len(payload) - 1)
    assert big.value.status == 413
    with pytest.raises(BadBody) as trailing:
        otlp_body.decode(gzip.compress(payload) + b"junk", "gzip", 1 << 20)
    assert trailing.value.status == 400


def test_media_types_ignore_parameters_and_case():
    assert otlp_body.media_type("Application/JSON; charset=utf-8") == "application/json"
    assert otlp_body.media_type(None) == ""


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_limiter_allows_a_burst_then_the_rate():
    clock = FakeClock()
    limiter = RateLimiter(per_second=2, burst=3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0  # per client
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(0.5)
    clock.now += 100
    assert [limiter.acquire("a") for _ in range(4)][-1] > 0  # refills to the burst, no further


def test_the_rate_limiter_forgets_the_oldest_clients_first():
    limiter = RateLimiter(per_second=1, burst=1, max_clients=2, clock=FakeClock())
    for client in ("a", "b", "c"):
        limiter.acquire(client)
    assert len(limiter) == 2
    assert limiter.acquire("a") == 0.0  # forgotten: a full bucket again
    assert limiter.acquire("c") > 0


def test_the_cors_merge_is_idempotent_and_keeps_the_apps_settings():
    stack = [Middleware(CORSMiddleware, ["http://a.test"], allow_headers=["X-App"], allow_origin_regex=r"https://.*\.a\.test",
                        allow_credentials=True)]
    kwargs = dict(allow_origins=["http://b.test"], allow_origin_regex=r"https://b\.test", request_headers=("traceparent",),
                  expose_headers=("traceresponse",), default_methods=("*",), default_headers=())
    first = merge_cors(stack, **kwargs)
    once = dict(stack[0].kwargs)
    second = merge_cors(stack, **kwargs)
    assert stack[0].kwargs == once and len(stack) == 1
    assert once["allow_origins"] == ["http://a.test", "http://b.test"]
    assert once["allow_headers"] == ["X-App", "traceparent"] and once["allow_credentials"] is True
    assert once["expose_headers"] == ["traceresponse"]
    for policy in (first, second):
        assert policy.allows("http://b.test") and policy.allows("https://x.a.test") and policy.allows("https://b.test")
        assert not policy.allows("http://c.test") and not policy.allows("https://b.test.evil")


def test_an_app_that_allows_every_header_keeps_doing_so():
    stack = [Middleware(CORSMiddleware, allow_origins=["*"], allow_headers=["*"])]
    merge_cors(stack, allow_origins=[], allow_origin_regex=None, request_headers=("traceparent",),
               expose_headers=(), default_methods=(), default_headers=())
    assert stack[0].kwargs["allow_headers"] == ["*"]


def test_times_are_milliseconds_with_microseconds():
    assert format_ms(1_732_990_000_123_456_789) == "1732990000123.456"
    assert format_ms(5_000) == "0.005"
    assert server_time_metric(1_700_000_000_000_000_000, 1_500_000) == "tracelink-time;desc=1700000000000.000;dur=1.500"
    assert server_time_metric(0, -5) == "tracelink-time;desc=0.000;dur=0.000"
