#!/usr/bin/env bash
# scripts/demo.sh (`make demo`): the FIR desk demo on 127.0.0.1, from a fresh clone.
# Builds pkg/ (scripts/build.sh runs setup first: toolchain, Python venv with rotel and the
# backend, the trace viewer), then starts the trace viewer (Jaeger UI), rotel and the backend,
# prints the URLs and stays in the foreground: Ctrl-C (or SIGTERM) stops everything.
#
# Ports (127.0.0.1; 0 = any free port):
#   DEMO_PORT=8000                 the demo page, its API and the OTLP relay
#   DEMO_VIEWER_PORT=16686         Jaeger UI
#   DEMO_COLLECTOR_HTTP_PORT=4318  rotel OTLP/HTTP     DEMO_COLLECTOR_GRPC_PORT=4317  rotel OTLP/gRPC
#   DEMO_VIEWER_GRPC_PORT=0        the viewer's OTLP receivers (only rotel uses them)
#   DEMO_VIEWER_HTTP_PORT=0
# DEMO_SKIP_BUILD=1 reuses an existing pkg/ (no setup, no build).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DEMO_T0_MS="$(date +%s%3N)"
if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
  echo "==> building pkg/ (scripts/build.sh; the first run also installs what is missing)"
  if ! bash scripts/build.sh; then
    echo "demo: the build failed (scripts/build.sh, output above); nothing was started" >&2
    exit 1
  fi
fi
# exec: node is the foreground process that Ctrl-C and SIGTERM reach.
exec node scripts/demo.mjs
