"""Response headers that tell the browser which server span answered it, and
what time the server's clock said.

On every HTTP response (JSON, HTML documents, files, errors):

    traceresponse: 00-<trace id>-<server span id>-<flags>         when the request is traced
    Server-Timing: traceparent;desc="00-<trace id>-<server span id>-<flags>",
                   tracelink-time;desc=<unix ms>;dur=<ms>
    Timing-Allow-Origin: <origin>                                  only for allowed origins

`traceresponse` is the W3C Trace Context Level 2 draft header; the
`traceparent` Server-Timing metric is the convention browser SDKs read from
fetch headers and from the navigation/resource timing entries (the page-load
join; cross-origin entries show it only with `Timing-Allow-Origin`).

`tracelink-time` is the server's clock for the browser's clock-skew
correction: `desc` is the wall-clock time (Unix epoch milliseconds with three
decimals, i.e. microseconds) at which this middleware received the request and
`dur` the milliseconds (three decimals) until the response started. The server
was therefore handling the request during [desc, desc + dur] by its clock, an
interval that lies inside the client's round trip; the client derives its
clock offset and its uncertainty from that (NTP-style, see tracelink's
`src/core/clock_skew.rs`). A Server-Timing metric rather than a custom header:
it needs no extra `Access-Control-Expose-Headers` entry, and devtools show it.
"""

from __future__ import annotations

import time

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .correlation import request_header
from .cors import CorsPolicy

SERVER_TIME_METRIC = "tracelink-time"
"""The Server-Timing metric carrying the server's clock (see the module docs)."""


def format_traceparent(span_context: trace.SpanContext) -> str:
    """`00-<trace id>-<span id>-<flags>` for a valid span context."""
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{int(span_context.trace_flags) & 0xFF:02x}"


def format_ms(nanoseconds: int) -> str:
    """Nanoseconds as milliseconds with three decimals (truncated to microseconds)."""
    return f"{nanoseconds // 1_000_000}.{nanoseconds // 1_000 % 1_000:03d}"


def server_time_metric(received_unix_ns: int, handling_ns: int) -> str:
    """The `tracelink-time` Server-Timing metric."""
    return f"{SERVER_TIME_METRIC};desc={format_ms(received_unix_ns)};dur={format_ms(max(handling_ns, 0))}"


class TraceResponseHeadersMiddleware:
    """ASGI middleware writing the headers in the module docs. Install it inside
    the OpenTelemetry middleware (any `add_middleware` is): the span current when
    a request enters it is the request's server span.

    `policy` decides `Timing-Allow-Origin` (none when it is None or empty);
    `server_time` turns the `tracelink-time` metric on or off.
    """

    def __init__(self, app: ASGIApp, policy: CorsPolicy | None = None, server_time: bool = True) -> None:
        self.app = app
        self.policy = policy
        self.server_time = server_time

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received_unix_ns = time.time_ns()
        received_mono_ns = time.perf_counter_ns()
        server_span = trace.get_current_span().get_span_context()
        traceparent = format_traceparent(server_span) if server_span.is_valid else None
        origin = request_header(scope, b"origin")
        timing_origin = None
        if origin is not None and self.policy is not None and self.policy.allows(origin):
            timing_origin = "*" if self.policy.allows_any else origin

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                metrics = []
                if traceparent is not None:
                    headers = [h for h in headers if h[0].lower() != b"traceresponse"]
                    headers.append((b"traceresponse", traceparent.encode()))
                    metrics.append(f'traceparent;desc="{traceparent}"')
                if self.server_time:
                    metrics.append(server_time_metric(received_unix_ns, time.perf_counter_ns() - received_mono_ns))
                if metrics:
                    headers.append((b"server-timing", ", ".join(metrics).encode()))
                if timing_origin is not None and not any(h[0].lower() == b"timing-allow-origin" for h in headers):
                    headers.append((b"timing-allow-origin", timing_origin.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
