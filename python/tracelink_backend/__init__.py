"""tracelink-backend: the backend half of tracelink.

A FastAPI (or Starlette) app traced with the OpenTelemetry SDK joins the
browser's traces with one call:

    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from tracelink_backend import instrument_app

    FastAPIInstrumentor.instrument_app(app)
    instrument_app(app, allow_origins=["https://app.example.com"])

It allows the trace headers through CORS (merged with the app's own
CORSMiddleware), tells the browser which server span answered
(`traceresponse`, `Server-Timing`) and what the server's clock said
(`tracelink-time`, for clock-skew correction), handles correlation ids, and
serves a same-origin OTLP relay at `/otlp/v1/traces`. See `instrument_app`.
"""

from .correlation import (
    CORRELATION_ID_ATTRIBUTE,
    CorrelationIdMiddleware,
    current_correlation_id,
    use_correlation_id,
)
from .cors import TRACE_REQUEST_HEADERS, TRACE_RESPONSE_HEADERS, CorsPolicy
from .instrument import TracelinkSetup, instrument_app
from .rate_limit import RateLimiter
from .relay import OtlpRelay
from .response_headers import SERVER_TIME_METRIC, TraceResponseHeadersMiddleware

__all__ = [
    "instrument_app",
    "TracelinkSetup",
    "current_correlation_id",
    "use_correlation_id",
    "CORRELATION_ID_ATTRIBUTE",
    "CorrelationIdMiddleware",
    "TraceResponseHeadersMiddleware",
    "OtlpRelay",
    "RateLimiter",
    "CorsPolicy",
    "TRACE_REQUEST_HEADERS",
    "TRACE_RESPONSE_HEADERS",
    "SERVER_TIME_METRIC",
]
