"""The FIR desk's dependencies, each traced the way a real service would be:

* `FirStore`    SQLite through the OpenTelemetry DB-API instrumentation (one
                client span per statement, named `INSERT`, `SELECT`, ...)
* `TtlCache`    an in-process cache with `cache.get` / `cache.set` spans
* `ModelServer` a simulated summarization model behind a network call
                (`model_server.summarize`, a CLIENT span)
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Callable

from opentelemetry.instrumentation import dbapi
from opentelemetry.trace import SpanKind, TracerProvider

from .tracing_setup import add_trace_event, inject_context, trace_operation

_FIR_ID = re.compile(r"FIR-(\d{6,9})")


class FirNotFound(LookupError):
    """No report with that id."""


class FirInvalid(ValueError):
    """A request the desk cannot accept (answered with 422)."""


@dataclass(frozen=True)
class Fir:
    fir_id: str
    complainant: str
    description: str
    location: str
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_fir_id(fir_id: str) -> int:
    """`FIR-000042` -> 42; FirInvalid for anything else."""
    m = _FIR_ID.fullmatch(fir_id)
    if not m:
        raise FirInvalid(f"malformed FIR id {fir_id!r} (expected FIR-NNNNNN)")
    return int(m.group(1))


def format_fir_id(number: int) -> str:
    return f"FIR-{number:06d}"


class FirStore:
    """Reports in SQLite (in memory by default), one connection behind a lock."""

    def __init__(self, path: str = ":memory:", tracer_provider: TracerProvider | None = None) -> None:
        raw = sqlite3.connect(path, check_same_thread=False)
        # Schema first, on the raw connection: startup DDL is not a request's work.
        raw.execute(
            "CREATE TABLE IF NOT EXISTS firs ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " complainant TEXT NOT NULL, description TEXT NOT NULL,"
            " location TEXT NOT NULL, created_at REAL NOT NULL)"
        )
        raw.commit()
        # What SQLite3Instrumentor().instrument_connection(raw) does.
        self._conn = dbapi.instrument_connection(
            "opentelemetry.instrumentation.sqlite3", raw, "sqlite", tracer_provider=tracer_provider
        )
        self._lock = threading.Lock()

    def create(self, complainant: str, description: str, location: str) -> Fir:
        created_at = time.time()
        with self._lock:
            cur = self._conn.cursor()
            cur.execute(
                "INSERT INTO firs (complainant, description, location, created_at) VALUES (?, ?, ?, ?)",
                (complainant, description, location, created_at),
            )
            self._conn.commit()
            number = cur.lastrowid
        return Fir(format_fir_id(number), complainant, description, location, created_at)

    def get(self, number: int) -> Fir | None:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("SELECT id, complainant, description, location, created_at FROM firs WHERE id = ?", (number,))
            row = cur.fetchone()
        if row is None:
            return None
        return Fir(format_fir_id(row[0]), row[1], row[2], row[3], row[4])

    def close(self) -> None:
        self._conn.close()


class TtlCache:
    """A small dict cache whose entries expire `ttl_seconds` after being set."""

    def __init__(self, ttl_seconds: float, max_entries: int = 1024, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any | None:
        with trace_operation("cache.get", {"cache.key": key}) as span:
            now = self._clock()
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry[0] <= now:
                    del self._entries[key]
                    entry = None
            span.set_attribute("cache.hit", entry is not None)
            return None if entry is None else entry[1]

    def set(self, key: str, value: Any) -> None:
        with trace_operation("cache.set", {"cache.key": key, "cache.ttl_s": self._ttl}):
            with self._lock:
                self._entries[key] = (self._clock() + self._ttl, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)


class ModelServer:
    """Stands in for an LLM summarization service: a traced outgoing call with
    a fixed latency and a deterministic answer."""

    model = "fir-summarizer-v1"

    def __init__(self, latency_seconds: float = 0.03) -> None:
        self._latency = latency_seconds

    async def summarize(self, fir: Fir) -> str:
        attributes = {"peer.service": "model-server", "model.name": self.model, "fir.id": fir.fir_id,
                      "model.input_chars": len(fir.description)}
        with trace_operation("model_server.summarize", attributes, kind=SpanKind.CLIENT) as span:
            headers = inject_context({})  # what the real HTTP call would carry
            add_trace_event("model_server.request", traceparent=headers.get("traceparent"))
            await asyncio.sleep(self._latency)
            summary = summarize_text(fir)
            span.set_attribute("model.output_chars", len(summary))
            return summary


_CATEGORIES = (
    ("theft", ("stolen", "theft", "steal", "robbed", "robbery", "snatched")),
    ("assault", ("assault", "attacked", "beaten", "hit me", "injured")),
    ("fraud", ("fraud", "cheated", "scam", "otp", "upi")),
    ("missing person", ("missing",)),
)


def summarize_text(fir: Fir) -> str:
    """The model's deterministic output for a report."""
    text = " ".join(fir.description.split())
    lowered = text.lower()
    category = next((name for name, words in _CATEGORIES if any(w in lowered for w in words)), "general complaint")
    first = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0]
    if len(first) > 140:
        first = first[:137].rstrip() + "..."
    return f"[{category}] {fir.complainant} at {fir.location}: {first}"
