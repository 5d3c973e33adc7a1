"""Backend configuration, read once from the environment.

    BACKEND_HOST, BACKEND_PORT  bind address (default 127.0.0.1:8000)
    OTEL_SERVICE_NAME           resource service.name (default afirgen-backend)
    SERVICE_VERSION             resource service.version (default 0.1.0)
    OTLP_TRACES_ENDPOINT        collector traces URL: the exporter's target and the
                                only target of the /otlp/v1/traces relay
                                (default http://127.0.0.1:4318/v1/traces)
    CONSOLE_EXPORT              1/true: also print spans to stdout
    CORS_ORIGINS                comma list of browser origins allowed to call the
                                API cross-origin, or * (default *); empty: no CORS
    RELAY_MAX_BYTES             largest relayed export body (default 1048576)
    RELAY_RATE_PER_SECOND       relayed exports per client and second (default 10)
    RELAY_BURST                 relayed exports a client may send at once (default 60)
    CACHE_TTL_SECONDS           in-process cache lifetime (default 60)
    VIEWER_URL                  trace viewer base URL the page links to (GET /api/config)
    STATIC_DIR                  optional directory served at /   (index.html)
    PKG_DIR                     optional directory served at /pkg/
    BACKEND_LOG_LEVEL           uvicorn log level (default warning)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    service_name: str = "afirgen-backend"
    service_version: str = "0.1.0"
    otlp_traces_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    console_export: bool = False
    cors_origins: tuple[str, ...] = ("*",)
    relay_max_bytes: int = 1 << 20
    relay_rate_per_second: float = 10.0
    relay_burst: int = 60
    cache_ttl_seconds: float = 60.0
    viewer_url: str | None = None
    static_dir: str | None = None
    pkg_dir: str | None = None
    log_level: str = "warning"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "Settings":
        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        d = cls()
        origins = env.get("CORS_ORIGINS")
        return cls(
            host=get("BACKEND_HOST") or d.host,
            port=int(get("BACKEND_PORT") or d.port),
            service_name=get("OTEL_SERVICE_NAME") or d.service_name,
            service_version=get("SERVICE_VERSION") or d.service_version,
            otlp_traces_endpoint=get("OTLP_TRACES_ENDPOINT") or d.otlp_traces_endpoint,
            console_export=(get("CONSOLE_EXPORT") or "").lower() in ("1", "true", "yes", "on"),
            cors_origins=d.cors_origins if origins is None else tuple(o.strip() for o in origins.split(",") if o.strip()),
            relay_max_bytes=int(get("RELAY_MAX_BYTES") or d.relay_max_bytes),
            relay_rate_per_second=float(get("RELAY_RATE_PER_SECOND") or d.relay_rate_per_second),
            relay_burst=int(get("RELAY_BURST") or d.relay_burst),
            cache_ttl_seconds=float(get("CACHE_TTL_SECONDS") or d.cache_ttl_seconds),
            viewer_url=get("VIEWER_URL"),
            static_dir=get("STATIC_DIR"),
            pkg_dir=get("PKG_DIR"),
            log_level=get("BACKEND_LOG_LEVEL") or d.log_level,
        )
