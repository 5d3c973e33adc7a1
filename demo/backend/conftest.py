"""Session fixtures: one rotel collector and one backend shared by the tests."""

import pytest

from demo.backend.testkit import ALLOWED_ORIGIN, Backend, Collector


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
