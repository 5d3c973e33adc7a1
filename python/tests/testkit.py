"""Test kit: real peers on free 127.0.0.1 ports. A rotel collector (from
.tools/venv) whose received spans are read back from a JSONL file; an app
served by a real uvicorn server in a thread (`Server`); the demo backend as a
subprocess (`python -m demo.backend`); and `Recorder`, an HTTP server that
records what reaches it (to prove what is never forwarded)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
PROCESSOR = ROOT / "tests" / "peers" / "rotel_dump_processor.py"
PYTHON = sys.executable  # the venv's interpreter: it has rotel and the backend's packages
ALLOWED_ORIGIN = "http://page.test:8080"  # the CORS origin the test backend allows


def plain_value(v):
    """A typed OTLP value from the read-back ({"intValue": 5}) as plain JSON (5)."""
    if not isinstance(v, dict):
        return v
    if "arrayValue" in v:
        return [plain_value(x) for x in v["arrayValue"]]
    if "kvlistValue" in v:
        return {k: plain_value(x) for k, x in v["kvlistValue"].items()}
    return next(iter(v.values()), None)


def plain_attributes(kvs) -> dict:
    return {kv["key"]: plain_value(kv["value"]) for kv in kvs or []}


def flatten_span(record: dict) -> dict:
    """The processor's typed record with attributes as {key: value} maps, the
    resource as its attribute map and a missing status as UNSET."""
    out = dict(record)
    out["resource"] = plain_attributes((record.get("resource") or {}).get("attributes"))
    out["attributes"] = plain_attributes(record.get("attributes"))
    out["events"] = [dict(e, attributes=plain_attributes(e.get("attributes"))) for e in record.get("events", [])]
    out["links"] = [dict(link, attributes=plain_attributes(link.get("attributes"))) for link in record.get("links", [])]
    out["status"] = record.get("status") or {"code": 0, "message": ""}
    return out


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """`n` distinct free ports: every socket stays bound until all are picked
    (a port released first can be handed out again)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Reply:
    def __init__(self, status: int, headers, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)


def header_values(reply: Reply, name: str) -> list[str]:
    """Every comma-separated item of every `name` header, stripped."""
    return [item.strip() for value in reply.headers.get_all(name) or [] for item in value.split(",")]


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    """One request without any proxy or redirect handling; errors are replies too."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=15) as r:
            return Reply(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        with e:
            return Reply(e.code, e.headers, e.read())


def post_json(url: str, value, headers: dict[str, str] | None = None) -> Reply:
    return http("POST", url, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})


def _wait_until(ready: Callable[[], bool], proc: subprocess.Popen, what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; log tail:\n{_tail(log)}")
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout}s; log tail:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen, grace: float = 8.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Collector:
    """rotel-agent receiving OTLP on free ports; `spans()` reads back what it decoded."""

    def __init__(self, workdir: Path) -> None:
        import rotel.agent

        if not PROCESSOR.is_file():
            raise RuntimeError(f"collector: span processor {PROCESSOR} is missing")
        agent = rotel.agent.Agent.agent_path
        self.http_port, self.grpc_port = free_ports(2)
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.traces_url = self.url + "/v1/traces"
        self.spans_file = workdir / "spans.jsonl"
        self.spans_file.touch()
        self.log = workdir / "rotel.out"
        env = dict(os.environ, TRACELINK_SPANS_FILE=str(self.spans_file))
        if shutil.which("ldd") and b"not found" in subprocess.run(["ldd", agent], capture_output=True).stdout:
            libdir = sysconfig.get_config_var("LIBDIR")  # libpython for the embedded processor
            env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [libdir, env.get("LD_LIBRARY_PATH")]))
        args = [agent, "start",
                "--otlp-http-endpoint", f"127.0.0.1:{self.http_port}",
                "--otlp-grpc-endpoint", f"127.0.0.1:{self.grpc_port}",
                "--otlp-with-trace-processor", str(PROCESSOR),
                "--exporter", "blackhole", "--batch-timeout", "50ms"]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        _wait_until(lambda: post_json(self.traces_url, {"resourceSpans": []}).status == 200,
                    self.proc, "rotel collector", self.log, 15)

    def spans(self) -> list[dict]:
        out = []
        for line in self.spans_file.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line still being written
            assert "processor_error" not in record, record
            out.append(flatten_span(record))
        return out

    def wait_for(self, predicate: Callable[[dict], bool], count: int = 1, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while True:
            found = [s for s in self.spans() if predicate(s)]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)}/{count} matching spans after {timeout}s; {len(self.spans())} received")
            if self.proc.poll() is not None:
                raise RuntimeError(f"rotel exited; log tail:\n{_tail(self.log)}")
            time.sleep(0.05)

    def trace(self, trace_id: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        return self.wait_for(lambda s: s["traceId"] == trace_id, count, timeout)

    def stop(self) -> None:
        _stop(self.proc)


class Backend:
    """`python -m demo.backend` on a free port, ready when /healthz answers."""

    def __init__(self, workdir: Path, traces_url: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"backend-{self.port}.out"
        full_env = dict(os.environ, BACKEND_PORT=str(self.port), OTLP_TRACES_ENDPOINT=traces_url, **env)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([PYTHON, "-m", "demo.backend"], cwd=ROOT, env=full_env,
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _wait_until(lambda: http("GET", self.url + "/healthz").status == 200, self.proc, "backend", self.log, 30)

    def stop(self) -> None:
        _stop(self.proc)


class Server:
    """An ASGI app served by uvicorn on a free port, in a thread of this process."""

    def __init__(self, app) -> None:
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Recorder:
    """An HTTP server answering every request with `status`, recording (method, path, body)."""

    def __init__(self, status: int = 200) -> None:
        hits: list[tuple[str, str, bytes]] = []
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                hits.append((self.command, self.path, self.rfile.read(length)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _record

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
