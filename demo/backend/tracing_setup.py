"""Tracing for the FIR desk backend: the module a FastAPI team typically writes
around the OpenTelemetry Python SDK.

One call, `setup_tracing`, installs a TracerProvider that batches spans to an
OTLP/HTTP (protobuf) collector and sets the W3C propagators (`traceparent`,
`tracestate`, `baggage`) globally, so an incoming browser request continues the
browser's trace. The helpers below keep application code free of SDK details:

    with trace_operation("fir.lookup", {"fir.id": fir_id}):
        add_trace_event("cache.miss")
        ...

Every span opened by `trace_operation` carries a `correlation_id` attribute: the
one passed in, else the one bound to the current request by
`use_correlation_id` (tracelink_backend's correlation-id middleware does that
for each request; both helpers are re-exported here).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping, MutableMapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, format_span_id, format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from tracelink_backend import CORRELATION_ID_ATTRIBUTE, current_correlation_id, use_correlation_id

__all__ = [
    "setup_tracing",
    "trace_operation",
    "add_trace_attributes",
    "add_trace_event",
    "get_current_trace_id",
    "get_current_span_id",
    "inject_context",
    "extract_context",
    "use_correlation_id",
    "current_correlation_id",
]

TRACER_NAME = "afirgen.backend"
"""Instrumentation scope of the spans this module creates."""



def setup_tracing(
    service_name: str,
    service_version: str,
    otlp_endpoint: str,
    console_export: bool = False,
    *,
    schedule_delay_millis: int = 200,
) -> TracerProvider:
    """Install the global TracerProvider and the W3C propagators.

    `otlp_endpoint` is the full traces URL (`http://host:4318/v1/traces`). Spans
    leave in batches at most `schedule_delay_millis` after they end; call
    `shutdown()` on the returned provider at exit to flush the last batch.
    The default sampler is ParentBased(AlwaysOn): a request whose `traceparent`
    says "not sampled" (flags 00) is not exported.
    """
    resource = Resource.create({SERVICE_NAME: service_name, SERVICE_VERSION: service_version})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint), schedule_delay_millis=schedule_delay_millis)
    )
    if console_export:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(), schedule_delay_millis=schedule_delay_millis))
    trace.set_tracer_provider(provider)
    # Explicit rather than relying on OTEL_PROPAGATORS' default (the same pair).
    propagate.set_global_textmap(CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()]))
    return provider


@contextmanager
def trace_operation(
    name: str,
    attributes: Mapping[str, Any] | None = None,
    correlation_id: str | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
) -> Iterator[Span]:
    """Run the block inside a new child span of the current span.

    An exception leaving the block is recorded on the span (an `exception`
    event), sets the span's status to ERROR and is re-raised unchanged.
    """
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(
        name,
        kind=kind,
        attributes=_clean(attributes or {}),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        cid = correlation_id or current_correlation_id()
        if cid:
            span.set_attribute(CORRELATION_ID_ATTRIBUTE, cid)
        try:
            yield span
        except Exception as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def add_trace_attributes(**attributes: Any) -> None:
    """Set attributes on the current span (None values are skipped).

    Dotted keys go through a dict: `add_trace_attributes(**{"fir.id": fir_id})`.
    """
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(_clean(attributes))


def add_trace_event(name: str, **attributes: Any) -> None:
    """Add a timestamped event to the current span."""
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(name, _clean(attributes))


def get_current_trace_id() -> str | None:
    """The current trace id as 32 lower-case hex digits, or None outside a span."""
    ctx = trace.get_current_span().get_span_context()
    return format_trace_id(ctx.trace_id) if ctx.is_valid else None


def get_current_span_id() -> str | None:
    """The current span id as 16 lower-case hex digits, or None outside a span."""
    ctx = trace.get_current_span().get_span_context()
    return format_span_id(ctx.span_id) if ctx.is_valid else None


def inject_context(headers: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Write `traceparent`/`tracestate`/`baggage` for the current context into
    `headers` (a new dict when None) and return it, for an outgoing call."""
    carrier: MutableMapping[str, str] = {} if headers is None else headers
    propagate.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str]) -> otel_context.Context:
    """The context carried by incoming `headers`; pass it as `context=` when
    starting a span, or attach it with `opentelemetry.context.attach`."""
    return propagate.extract(headers)


def _clean(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Drop None values, which are not valid OpenTelemetry attribute values."""
    return {k: v for k, v in attributes.items() if v is not None}
