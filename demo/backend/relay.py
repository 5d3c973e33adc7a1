"""Same-origin OTLP relay: `POST /otlp/v1/traces` on the backend forwards the
browser's export, byte for byte, to the one collector URL in the config.

Why: a page served by this backend can export to its own origin, so the
collector needs no CORS setup and no public address. What it is not: a proxy.
The target never comes from the request (not from its path, query, Host or
Forwarded headers), only `/v1/traces` is relayed, redirects are not followed,
and the body is neither parsed nor rewritten: the collector judges it and its
status and body come back unchanged (502 when it cannot be reached).

The relay's own traffic is not traced: the route is excluded from the
FastAPI instrumentation and the upstream call runs with instrumentation
suppressed, or every browser export would produce backend spans.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from opentelemetry.instrumentation.utils import suppress_instrumentation
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

RELAY_PATH = "/otlp/v1/traces"
OTLP_CONTENT_TYPES = ("application/x-protobuf", "application/json")
_PASSED_ENCODINGS = ("gzip", "identity")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401 - urllib hook
        return None  # a 3xx from the collector is returned as is, never followed


class OtlpRelay:
    """ASGI-callable endpoint forwarding OTLP/HTTP trace exports to `target_url`."""

    def __init__(self, target_url: str, max_bytes: int, timeout_seconds: float = 10.0) -> None:
        self.target_url = target_url
        self.max_bytes = max_bytes
        self._timeout = timeout_seconds
        self._opener = urllib.request.build_opener(_NoRedirects)

    async def __call__(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() not in OTLP_CONTENT_TYPES:
            return _error(415, "OTLP/HTTP needs Content-Type application/x-protobuf or application/json")
        encoding = request.headers.get("content-encoding")
        if encoding is not None and encoding.strip().lower() not in _PASSED_ENCODINGS:
            return _error(415, "Content-Encoding must be gzip or absent")
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return _error(400, "bad Content-Length")
            if int(declared) > self.max_bytes:
                return _error(413, f"export body over {self.max_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > self.max_bytes:  # chunked uploads have no Content-Length
                return _error(413, f"export body over {self.max_bytes} bytes")

        headers = {"Content-Type": content_type}
        if encoding is not None:
            headers["Content-Encoding"] = encoding
        status, reply, reply_type = await run_in_threadpool(self._forward, bytes(body), headers)
        return Response(reply, status_code=status, media_type=reply_type, headers={"Cache-Control": "no-store"})

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str | None]:
        request = urllib.request.Request(self.target_url, data=body, method="POST", headers=headers)
        with suppress_instrumentation():
            try:
                with self._opener.open(request, timeout=self._timeout) as reply:
                    return reply.status, reply.read(), reply.headers.get("Content-Type")
            except urllib.error.HTTPError as reply:  # 4xx/5xx (and unfollowed 3xx): pass through
                with reply:
                    return reply.code, reply.read(), reply.headers.get("Content-Type")
            except (OSError, ValueError) as exc:  # refused, reset, timeout, DNS
                return 502, _json({"error": f"collector unreachable: {type(exc).__name__}"}), "application/json"


def _error(status: int, message: str) -> Response:
    return Response(_json({"error": message}), status_code=status, media_type="application/json")


def _json(value: object) -> bytes:
    return json.dumps(value).encode()
