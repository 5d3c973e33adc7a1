"""A FastAPI backend that joins browser traces through `instrument_app` alone.

The app a user of tracelink-backend would write: the OpenTelemetry SDK exporting
OTLP/HTTP to a collector, `FastAPIInstrumentor`, then the one call
`instrument_app(app, allow_origins=..., relay_path='/otlp/v1/traces', collector=...)`.
No CORS, header or relay code of its own. Started by tests/support/peers.mjs
(`startTracelinkApp`) for tests/e2e/cross_origin.test.mjs:

    python tests/peers/cross_origin_app.py --port P --collector http://127.0.0.1:4318 \
        --allow-origin http://127.0.0.1:8080 [--service NAME]

Routes: `GET /api/hello` (its correlation id and server span, as JSON) and
`GET /healthz` (untraced, for the readiness probe). Uvicorn's access log (stdout)
lists every request, preflights included.
"""

from __future__ import annotations

import argparse

import tracelink_backend
import uvicorn
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from tracelink_backend import current_correlation_id, instrument_app

RELAY_PATH = "/otlp/v1/traces"


def build_app(collector: str, allow_origins: list[str], service: str) -> FastAPI:
    """The app: traced into `collector` as `service`, joined with `instrument_app`."""
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.rstrip('/')}/v1/traces"), schedule_delay_millis=50)
    )
    app = FastAPI()

    @app.get("/api/hello")
    async def hello():
        span = trace.get_current_span().get_span_context()
        return {"correlation_id": current_correlation_id(), "trace_id": f"{span.trace_id:032x}"}

    @app.get("/healthz")
    async def healthz():
        return {"ok": True}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="healthz")
    instrument_app(app, allow_origins=allow_origins, relay_path=RELAY_PATH, collector=collector)
    app.router.on_shutdown.append(provider.shutdown)  # flush the last spans
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--collector", required=True, help="the collector's OTLP/HTTP base URL")
    parser.add_argument("--allow-origin", action="append", default=[], dest="allow_origins")
    parser.add_argument("--service", default="tracelink-cross-origin-backend")
    args = parser.parse_args()
    print(f"tracelink_backend from {tracelink_backend.__file__}", flush=True)
    app = build_app(args.collector, args.allow_origins, args.service)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
