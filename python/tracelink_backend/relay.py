"""The same-origin OTLP relay: `POST /otlp/v1/traces` on the backend forwards
the browser's span exports to the one collector URL it was configured with.

Why: a page can export to its own origin, so the collector needs no CORS
setup and no public address, and ad blockers that block telemetry hosts let
it through. What it is not: a proxy. The target never comes from the request
(not from its path, query, Host or Forwarded headers) and redirects are not
followed. Before anything is forwarded, in this order:

    method POST                                       else 405
    the client's rate limit (a token bucket per IP)   else 429 with Retry-After
    Content-Type application/x-protobuf or json       else 415
    Content-Encoding gzip, identity or none           else 415
    body (and its gzip content) within max_bytes      else 413
    body an OTLP trace export (otlp_body.check)       else 400

A body that passes is forwarded byte for byte (gzip stays compressed, the
Content-Type is passed as received); the collector's status, body,
Content-Type and Retry-After come back unchanged, 502 when it cannot be reached.

The upstream call runs with OpenTelemetry instrumentation suppressed, so an
instrumented HTTP client never turns the relay's traffic into spans.
"""

from __future__ import annotations

import json
import logging
import math
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from . import otlp_body
from .otlp_body import BadBody
from .rate_limit import RateLimiter

_log = logging.getLogger("tracelink_backend")

DEFAULT_RELAY_PATH = "/otlp/v1/traces"
DEFAULT_MAX_BYTES = 1 << 20
"""tracelink's largest export request (`max_batch_bytes`): 1 MiB."""

try:  # the key instrumentations honour; opentelemetry-instrumentation names it publicly
    from opentelemetry.instrumentation.utils import suppress_instrumentation
except ImportError:  # pragma: no cover - without opentelemetry-instrumentation nothing is instrumented
    from contextlib import nullcontext as suppress_instrumentation


def collector_traces_url(collector: str | None, env: dict[str, str]) -> str:
    """The collector's traces URL: `collector` when given (a base URL gets
    `/v1/traces`), else `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else
    `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`, else `http://localhost:4318/v1/traces`
    (what the OpenTelemetry OTLP/HTTP exporter uses)."""
    if collector is None:
        traces = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        collector = traces or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or "http://localhost:4318"
        if traces:
            return _check_url(traces)
    url = _check_url(collector)
    if urllib.parse.urlsplit(url).path in ("", "/"):
        url = url.rstrip("/") + "/v1/traces"
    return url


def _check_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"collector must be an http(s) URL, not {url!r}")
    return url


def client_address(scope: Scope) -> str:
    """The rate-limit key: the peer's IP address (behind a reverse proxy, let the
    server rewrite it from X-Forwarded-For, e.g. uvicorn `--proxy-headers`)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's hook
        return None  # a 3xx from the collector is returned as it is, never followed


class OtlpRelay:
    """The relay endpoint as an ASGI app (see the module docs)."""

    def __init__(
        self,
        collector_url: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        rate_limiter: RateLimiter | None = None,
        client_key: Callable[[Scope], str] = client_address,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.collector_url = _check_url(collector_url)
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}")
        self.max_bytes = max_bytes
        self.rate_limiter = rate_limiter
        self.client_key = client_key
        self.timeout_seconds = timeout_seconds
        self._opener = urllib.request.build_opener(_NoRedirects)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await _reply(send, 405, {"error": "the OTLP relay takes POST only"}, {"allow": "POST"})
            return
        if self.rate_limiter is not None:
            wait = self.rate_limiter.acquire(self.client_key(scope))
            if wait > 0:
                retry_after = str(max(1, math.ceil(wait)))
                await _reply(send, 429, {"error": "too many exports from this client"}, {"retry-after": retry_after})
                return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        content_type = headers.get("content-type", "")
        encoding = headers.get("content-encoding")
        try:
            media = otlp_body.media_type(content_type)
            if media not in otlp_body.MEDIA_TYPES:
                raise BadBody(415, f"Content-Type must be {otlp_body.PROTOBUF} or {otlp_body.JSON}")
            if encoding is not None and encoding.strip().lower() not in ("gzip", "identity"):
                raise BadBody(415, f"Content-Encoding {encoding!r} is not supported: send gzip or none")
            body = await self._read_body(headers.get("content-length"), receive)
            otlp_body.check(otlp_body.decode(body, encoding, self.max_bytes), media)
        except BadBody as bad:
            await _reply(send, bad.status, {"error": bad.message})
            return

        forwarded = {"Content-Type": content_type}
        if encoding is not None and encoding.strip().lower() == "gzip":
            forwarded["Content-Encoding"] = "gzip"
        status, reply, reply_headers = await run_in_threadpool(self._forward, body, forwarded)
        await _send(send, status, reply, reply_headers)

    async def _read_body(self, declared: str | None, receive: Receive) -> bytes:
        if declared is not None:
            if not declared.strip().isdigit():
                raise BadBody(400, "bad Content-Length")
            if int(declared) > self.max_bytes:
                raise BadBody(413, f"the export is over {self.max_bytes} bytes")
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise BadBody(400, "the client went away before the body was complete")
            body += message.get("body", b"")
            if len(body) > self.max_bytes:  # chunked uploads have no Content-Length
                raise BadBody(413, f"the export is over {self.max_bytes} bytes")
            if not message.get("more_body", False):
                return bytes(body)

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
        request = urllib.request.Request(self.collector_url, data=body, method="POST", headers=headers)
        with suppress_instrumentation():
            try:
                with self._opener.open(request, timeout=self.timeout_seconds) as reply:
                    return reply.status, reply.read(), _passed_headers(reply.headers)
            except urllib.error.HTTPError as reply:  # 4xx/5xx and unfollowed 3xx: passed through
                with reply:
                    return reply.code, reply.read(), _passed_headers(reply.headers)
            except (OSError, ValueError) as exc:  # refused, reset, timeout, DNS
                _log.warning("OTLP relay: collector %s unreachable: %s", self.collector_url, exc)
                error = json.dumps({"error": f"collector unreachable: {type(exc).__name__}"}).encode()
                return 502, error, {"content-type": "application/json"}


def _passed_headers(headers) -> dict[str, str]:  # noqa: ANN001 - http.client.HTTPMessage
    out = {}
    for name in ("content-type", "retry-after"):
        value = headers.get(name)
        if value is not None:
            out[name] = value
    return out


async def _reply(send: Send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    await _send(send, status, json.dumps(body).encode(), {"content-type": "application/json", **(headers or {})})


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw += [(b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class RelayRoute:
    """ASGI middleware sending requests for `path` to `relay` and everything else
    to `app`. Placed outside the OpenTelemetry middleware when it can be, so the
    relay's own requests make no server spans."""

    def __init__(self, app: ASGIApp, path: str, relay: ASGIApp) -> None:
        self.app = app
        self.path = path
        self.relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _route_path(scope) == self.path:
            await self.relay(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path
