"""Correlation ids: one short token per request, shared by the browser's and
the backend's spans, so support can find a user's request in either.

The browser sends it in `X-Correlation-ID` (the header name is configurable).
The middleware keeps it when it is a short token, else makes a fresh one,
records it on the server span as `correlation_id`, binds it for the request
(`current_correlation_id()`, for an app's own `trace_operation` helper) and
echoes it in the response.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from contextlib import contextmanager
from typing import Iterator

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORRELATION_ID_ATTRIBUTE = "correlation_id"
"""The server span attribute holding the request's correlation id."""

CORRELATION_ID_GENERATED_ATTRIBUTE = "correlation_id.generated"
"""Set (true) on the server span when the id was made here, not received."""

DEFAULT_CORRELATION_HEADER = "X-Correlation-ID"

VALID_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
"""What a received correlation id must look like to be kept (a UUID, a ULID, `desk-42`)."""

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("tracelink_correlation_id", default=None)


@contextmanager
def use_correlation_id(correlation_id: str) -> Iterator[str]:
    """Bind `correlation_id` to the current task (and the tasks it starts)."""
    token = _correlation_id.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _correlation_id.reset(token)


def current_correlation_id() -> str | None:
    """The correlation id of the request being handled, if any."""
    return _correlation_id.get()


class CorrelationIdMiddleware:
    """ASGI middleware: see the module docs. Install it inside the OpenTelemetry
    middleware (any `add_middleware` is), so the current span is the server span."""

    def __init__(self, app: ASGIApp, header: str = DEFAULT_CORRELATION_HEADER) -> None:
        self.app = app
        self.header = header
        self._header_key = header.lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = request_header(scope, self._header_key)
        generated = received is None or not VALID_CORRELATION_ID.fullmatch(received)
        correlation_id = uuid.uuid4().hex if generated else received
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(CORRELATION_ID_ATTRIBUTE, correlation_id)
            if generated:
                span.set_attribute(CORRELATION_ID_GENERATED_ATTRIBUTE, True)
        echoed = (self._header_key, correlation_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != self._header_key]
                headers.append(echoed)
                message = {**message, "headers": headers}
            await send(message)

        with use_correlation_id(correlation_id):
            await self.app(scope, receive, send_with_id)


def request_header(scope: Scope, key: bytes) -> str | None:
    """The first request header named `key` (lower-case bytes), as text."""
    for name, value in scope.get("headers", ()):
        if name.lower() == key:
            return value.decode("latin-1")
    return None
