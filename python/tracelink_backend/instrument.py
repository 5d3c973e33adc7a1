"""`instrument_app`: the one call that makes a FastAPI/Starlette app join browser traces."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp, Scope

from .correlation import DEFAULT_CORRELATION_HEADER, CorrelationIdMiddleware
from .cors import TRACE_REQUEST_HEADERS, TRACE_RESPONSE_HEADERS, CorsPolicy, check_origins, merge_cors
from .rate_limit import RateLimiter
from .relay import DEFAULT_MAX_BYTES, DEFAULT_RELAY_PATH, OtlpRelay, RelayRoute, client_address, collector_traces_url
from .response_headers import TraceResponseHeadersMiddleware

_log = logging.getLogger("tracelink_backend")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")


@dataclass(frozen=True)
class TracelinkSetup:
    """What `instrument_app` set up (for logs and tests)."""

    allow_origins: tuple[str, ...]
    correlation_header: str | None
    relay_path: str | None
    collector_url: str | None
    """The relay's only target (None without a relay)."""
    cors: CorsPolicy
    """The merged CORS policy; filled in when the app builds its middleware stack."""


def instrument_app(
    app: Any,
    *,
    allow_origins: Sequence[str] = (),
    allow_origin_regex: str | None = None,
    relay_path: str | None = DEFAULT_RELAY_PATH,
    collector: str | None = None,
    correlation_header: str | None = DEFAULT_CORRELATION_HEADER,
    server_time: bool = True,
    relay_max_bytes: int = DEFAULT_MAX_BYTES,
    relay_rate_per_second: float = 10.0,
    relay_burst: int = 60,
    relay_client_key: Callable[[Scope], str] = client_address,
    relay_timeout_seconds: float = 10.0,
    cors_allow_methods: Sequence[str] = ("*",),
    cors_allow_headers: Sequence[str] = ("content-type",),
) -> TracelinkSetup:
    """Make `app` (FastAPI or Starlette, traced with the OpenTelemetry SDK, e.g.
    by `FastAPIInstrumentor.instrument_app`) cooperate with tracelink in the browser:

    - CORS: `traceparent`, `tracestate`, `baggage` and `correlation_header` are
      allowed and `traceresponse`, `Server-Timing` and `correlation_header` exposed,
      merged into the app's own `CORSMiddleware` (its origins gain `allow_origins`);
      without one, a `CORSMiddleware` for `allow_origins` / `allow_origin_regex`
      is added with `cors_allow_methods` and `cors_allow_headers`.
    - Response headers: `traceresponse`, `Server-Timing: traceparent;desc=…` and
      `tracelink-time` (the server clock, see `response_headers`), and
      `Timing-Allow-Origin` for allowed origins.
    - Correlation ids (`correlation_header`, None turns it off): kept or made,
      set on the server span as `correlation_id`, echoed.
    - The OTLP relay at `relay_path` (None turns it off) to `collector` (default:
      the `OTEL_EXPORTER_OTLP_*` variables, as the OTLP exporter reads them),
      rate-limited per client and size-limited (see `relay`).

    Call it before the app starts serving; calling it after
    `FastAPIInstrumentor.instrument_app` keeps the relay's requests untraced.
    Bad arguments raise `TypeError`/`ValueError` here, not at the first request.
    """
    if not hasattr(app, "user_middleware") or not hasattr(app, "build_middleware_stack"):
        raise TypeError(f"instrument_app needs a FastAPI or Starlette app, not {type(app).__name__}")
    if getattr(app, "middleware_stack", None) is not None:
        raise RuntimeError("instrument_app must be called before the app starts serving")
    if getattr(app, "_tracelink_setup", None) is not None:
        raise RuntimeError("instrument_app was already called on this app")
    origins = check_origins(allow_origins)
    if allow_origin_regex is not None:
        re.compile(allow_origin_regex)  # a bad pattern fails here, with re's message
    if correlation_header is not None and not _HEADER_NAME.fullmatch(correlation_header):
        raise ValueError(f"correlation_header {correlation_header!r} is not an HTTP header name")
    if relay_path is not None and (not relay_path.startswith("/") or relay_path.rstrip("/") == ""):
        raise ValueError(f"relay_path must be an absolute path such as /otlp/v1/traces, not {relay_path!r}")
    collector_url = collector_traces_url(collector, dict(os.environ)) if relay_path is not None else None
    relay = None
    if relay_path is not None:
        relay = OtlpRelay(
            collector_url,
            max_bytes=relay_max_bytes,
            rate_limiter=RateLimiter(relay_rate_per_second, relay_burst),
            client_key=relay_client_key,
            timeout_seconds=relay_timeout_seconds,
        )

    extra = (correlation_header.lower(),) if correlation_header else ()
    policy = CorsPolicy()
    setup = TracelinkSetup(origins, correlation_header, relay_path, collector_url, policy)

    # Inside the OpenTelemetry middleware (every user middleware is): they need the server span.
    app.add_middleware(TraceResponseHeadersMiddleware, policy=policy, server_time=server_time)
    if correlation_header:
        app.add_middleware(CorrelationIdMiddleware, header=correlation_header)

    original_build = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        # At build time, so a CORSMiddleware added after this call is merged too.
        merged = merge_cors(
            app.user_middleware,
            allow_origins=origins,
            allow_origin_regex=allow_origin_regex,
            request_headers=TRACE_REQUEST_HEADERS + extra,
            expose_headers=TRACE_RESPONSE_HEADERS + extra,
            default_methods=cors_allow_methods,
            default_headers=cors_allow_headers,
        )
        policy.origins, policy.origin_regexes = merged.origins, merged.origin_regexes
        stack = original_build()
        if relay is None:
            return stack
        relay_app: ASGIApp = relay
        if not policy.is_empty:  # cross-origin pages may export here too
            relay_app = CORSMiddleware(
                relay,
                allow_origins=policy.origins,
                allow_origin_regex=policy.regex_source(),
                allow_methods=["POST"],
                allow_headers=["content-type", "content-encoding"],
            )
        if getattr(app, "build_middleware_stack", None) is not build_middleware_stack:
            _log.warning(
                "tracelink: the app was wrapped after instrument_app (e.g. FastAPIInstrumentor.instrument_app "
                "called later): requests to the relay %s will make server spans; call instrument_app last "
                "or exclude the path from tracing",
                relay_path,
            )
        # Starlette's stack is ServerErrorMiddleware(...): keep it outermost (the
        # OpenTelemetry FastAPI instrumentation expects that) and route the relay just inside.
        if isinstance(stack, ServerErrorMiddleware):
            stack.app = RelayRoute(stack.app, relay_path, relay_app)
            return stack
        return RelayRoute(stack, relay_path, relay_app)

    app.build_middleware_stack = build_middleware_stack
    app._tracelink_setup = setup
    return setup
