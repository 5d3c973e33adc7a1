"""Session fixtures: one rotel collector and one demo backend shared by the tests.

Run from the repository root: `.tools/venv/bin/python -m pytest python/tests -q`
(scripts/setup.sh installs the package into .tools/venv, editable).
"""

import sys
from pathlib import Path

import pytest
import tracelink_backend

from testkit import ALLOWED_ORIGIN, ROOT, Backend, Collector, Server

sys.path.insert(0, str(ROOT))  # `demo.backend`, for the in-process helper tests

if Path(tracelink_backend.__file__).resolve().parents[1] != ROOT / "python":
    raise pytest.UsageError(f"tracelink_backend is imported from {tracelink_backend.__file__}, not this checkout's "
                            "python/: run scripts/setup.sh (it installs python/ into .tools/venv, editable)")


@pytest.fixture(scope="session")
def collector(tmp_path_factory):
    c = Collector(tmp_path_factory.mktemp("collector"))
    yield c
    c.stop()


@pytest.fixture(scope="session")
def backend(collector, tmp_path_factory):
    b = Backend(tmp_path_factory.mktemp("backend"), collector.traces_url,
                CORS_ORIGINS=ALLOWED_ORIGIN, RELAY_MAX_BYTES="4096", OTEL_SERVICE_NAME="afirgen-backend-test")
    yield b
    b.stop()


@pytest.fixture
def serve():
    """serve(app) -> a running uvicorn Server; all stopped at the end of the test."""
    servers = []

    def start(app):
        server = Server(app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
