"""HTTP-level tracing glue: the correlation-id middleware and the response
headers that tell a browser which server span answered it.

Response headers (set on every traced response):

    traceresponse: 00-<trace id>-<server span id>-<flags>     (W3C Trace Context Level 2 draft)
    Server-Timing: traceparent;desc="00-<trace id>-<server span id>-<flags>"
    Timing-Allow-Origin: <origins>                            (lets Resource Timing read Server-Timing)
"""

from __future__ import annotations

import re
import uuid

from opentelemetry import trace
from opentelemetry.instrumentation.propagators import (
    ResponsePropagator,
    TraceResponsePropagator,
    default_setter,
)
from opentelemetry.trace import format_span_id, format_trace_id
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .tracing_setup import CORRELATION_ID_ATTRIBUTE, use_correlation_id

CORRELATION_HEADER = "x-correlation-id"
_VALID_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class CorrelationIdMiddleware:
    """Takes `X-Correlation-ID` from the request (a fresh one when it is missing
    or not a short token), records it as `correlation_id` on the server span,
    binds it for `trace_operation` spans and echoes it in the response.

    Installed inside the OpenTelemetry middleware, so the current span is the
    request's server span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = _header(scope, CORRELATION_HEADER.encode())
        generated = received is None or not _VALID_CORRELATION_ID.fullmatch(received)
        correlation_id = uuid.uuid4().hex if generated else received
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(CORRELATION_ID_ATTRIBUTE, correlation_id)
            if generated:
                span.set_attribute("correlation_id.generated", True)

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((CORRELATION_HEADER.encode(), correlation_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with use_correlation_id(correlation_id):
            await self.app(scope, receive, send_with_header)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class ServerTimingPropagator(ResponsePropagator):
    """`Server-Timing: traceparent;desc="00-…"`, the convention browser SDKs
    read (from fetch headers or PerformanceResourceTiming.serverTiming) to link
    a request to the server trace. Not shipped by OpenTelemetry Python."""

    def __init__(self, timing_allow_origin: str = "*") -> None:
        self._timing_allow_origin = timing_allow_origin

    def inject(self, carrier, context=None, setter=default_setter) -> None:
        ctx = trace.get_current_span(context).get_span_context()
        if not ctx.is_valid:
            return
        traceparent = f"00-{format_trace_id(ctx.trace_id)}-{format_span_id(ctx.span_id)}-{ctx.trace_flags:02x}"
        setter.set(carrier, "Server-Timing", f'traceparent;desc="{traceparent}"')
        setter.set(carrier, "Timing-Allow-Origin", self._timing_allow_origin)


class TraceHeadersPropagator(ResponsePropagator):
    """Both response conventions: `traceresponse` and `Server-Timing`."""

    def __init__(self, timing_allow_origin: str = "*") -> None:
        self._propagators = (TraceResponsePropagator(), ServerTimingPropagator(timing_allow_origin))

    def inject(self, carrier, context=None, setter=default_setter) -> None:
        for propagator in self._propagators:
            propagator.inject(carrier, context=context, setter=setter)
