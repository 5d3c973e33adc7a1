"""FIR desk backend: a FastAPI service instrumented with OpenTelemetry the way
tracelink's users run theirs. A browser request carrying `traceparent`
continues into a server span with database, cache and model-server children.

Routes (all JSON):
    POST /api/firs                     file a report {complainant, description, location}
                                       -> 201 {fir_id, trace_id, correlation_id}
    GET  /api/firs/{fir_id}            the report (cache, then SQLite)
    POST /api/firs/{fir_id}/summary    model-server summary (cached)
    GET  /api/ping                     the trace headers received and the server span's ids
    GET  /api/config                   page settings {viewerUrl}, not traced
    GET  /healthz                      liveness, not traced
    POST /otlp/v1/traces               same-origin OTLP relay to the collector (tracelink_backend)
    /pkg/*, /*                         optional static files (PKG_DIR, STATIC_DIR)

Only `/api/...` requests and the HTML document are traced. The browser-facing
half (CORS for the trace headers, `traceresponse`/`Server-Timing` response
headers, correlation ids, the relay) is one `instrument_app` call from the
`tracelink-backend` package (python/ in this repository). Configuration: settings.py.
Run from the repository root: `.tools/venv/bin/python -m demo.backend`.
"""

from __future__ import annotations

import mimetypes
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from pydantic import BaseModel, Field
from tracelink_backend import instrument_app

from .settings import Settings
from .store import FirInvalid, FirNotFound, FirStore, ModelServer, TtlCache, parse_fir_id
from .tracing_setup import (
    add_trace_attributes,
    current_correlation_id,
    get_current_span_id,
    get_current_trace_id,
    setup_tracing,
    trace_operation,
)

# Browsers refuse `WebAssembly.instantiateStreaming` and module scripts
# without these types; do not depend on the host's /etc/mime.types.
mimetypes.add_type("application/wasm", ".wasm")
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/javascript", ".mjs")

# Trace the API and the HTML document (its Server-Timing joins the page load to
# the server): not /healthz, static assets or the page's config fetch. The relay
# is outside the instrumentation. The ASGI instrumentation searches
# "scheme://host/path" with these.
UNTRACED_URLS = r"^[a-z]+://[^/]*/(?!api/|$|index\.html$),/api/config$"

CORRELATION_HEADER = "X-Correlation-ID"
RELAY_PATH = "/otlp/v1/traces"
TRACE_REQUEST_HEADERS = ("traceparent", "tracestate", "baggage", CORRELATION_HEADER.lower())


class FirIn(BaseModel):
    complainant: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=5000)
    location: str = Field(min_length=1, max_length=200)


def create_app(settings: Settings) -> FastAPI:
    """Build the app; installs the global tracer provider (once per process)."""
    provider = setup_tracing(
        settings.service_name, settings.service_version, settings.otlp_traces_endpoint, settings.console_export
    )
    origins = list(settings.cors_origins)

    store = FirStore(tracer_provider=provider)
    cache = TtlCache(settings.cache_ttl_seconds)
    model = ModelServer()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        store.close()
        provider.shutdown()  # flush the last batch of spans

    app = FastAPI(title="FIR desk (afirgen) backend", version=settings.service_version, lifespan=lifespan)
    if origins:
        # The API's own CORS needs; instrument_app merges the trace headers into it.
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                           allow_headers=["content-type"], max_age=600)

    @app.exception_handler(FirNotFound)
    async def not_found(_request: Request, exc: FirNotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(FirInvalid)
    async def invalid(_request: Request, exc: FirInvalid) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    def lookup(fir_id: str):
        with trace_operation("fir.lookup", {"fir.id": fir_id}):
            number = parse_fir_id(fir_id)
            fir = cache.get(f"fir:{fir_id}")
            if fir is not None:
                return fir, True
            fir = store.get(number)
            if fir is None:
                raise FirNotFound(f"no FIR {fir_id}")
            cache.set(f"fir:{fir_id}", fir)
            return fir, False

    @app.post("/api/firs", status_code=201)
    async def create_fir(report: FirIn):
        with trace_operation("fir.validate"):
            fields = {k: " ".join(v.split()) for k, v in report.model_dump().items()}
            empty = [k for k, v in fields.items() if not v]
            if empty:
                raise FirInvalid(f"blank field(s): {', '.join(empty)}")
            if len(fields["description"]) < 10:
                raise FirInvalid("description too short (10 characters at least)")
        fir = store.create(**fields)
        add_trace_attributes(**{"fir.id": fir.fir_id})
        return {"fir_id": fir.fir_id, "trace_id": get_current_trace_id(), "correlation_id": current_correlation_id()}

    @app.get("/api/firs/{fir_id}")
    async def get_fir(fir_id: str):
        fir, cached = lookup(fir_id)
        return {"fir": fir.to_json(), "cached": cached, "trace_id": get_current_trace_id()}

    @app.post("/api/firs/{fir_id}/summary")
    async def summarize(fir_id: str):
        fir, _ = lookup(fir_id)
        key = f"summary:{fir_id}"
        summary = cache.get(key)
        cached = summary is not None
        if not cached:
            summary = await model.summarize(fir)
            cache.set(key, summary)
        return {"fir_id": fir_id, "summary": summary, "cached": cached, "model": model.model,
                "trace_id": get_current_trace_id()}

    @app.get("/api/ping")
    async def ping(request: Request):
        sampled = trace.get_current_span().get_span_context().trace_flags.sampled
        return {
            "ok": True,
            "received": {name: request.headers.get(name) for name in TRACE_REQUEST_HEADERS},
            "correlation_id": current_correlation_id(),
            "server_span": {"trace_id": get_current_trace_id(), "span_id": get_current_span_id(), "sampled": sampled},
        }

    @app.get("/api/config")
    async def page_config():
        return {"viewerUrl": settings.viewer_url}

    @app.get("/healthz")
    async def healthz():
        return {"ok": True}

    if settings.pkg_dir:
        app.mount("/pkg", StaticFiles(directory=settings.pkg_dir), name="pkg")
    if settings.static_dir:
        app.mount("/", StaticFiles(directory=settings.static_dir, html=True), name="static")

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls=UNTRACED_URLS, exclude_spans=["send", "receive"]
    )
    # After the OpenTelemetry instrumentation, so the relay's requests stay untraced.
    instrument_app(app, relay_path=RELAY_PATH, collector=settings.otlp_traces_endpoint,
                   correlation_header=CORRELATION_HEADER, relay_max_bytes=settings.relay_max_bytes,
                   relay_rate_per_second=settings.relay_rate_per_second, relay_burst=settings.relay_burst)
    return app


def main() -> None:
    settings = Settings.from_env()
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)
