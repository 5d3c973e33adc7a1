#!/usr/bin/env bash
# scripts/bench.sh: tracelink vs OpenTelemetry JS web, one table (make bench).
#   1. installs the bench's pinned npm dev dependencies into bench/ (once)
#   2. builds the npm package in pkg/ (scripts/build.sh; runs setup when needed)
#   3. node bench/run.mjs: prints the table, writes bench/results/latest.json
# Knobs (see bench/run.mjs): BENCH_QUICK=1 for a short smoke run,
# TRACELINK_PKG=DIR to measure another build, BENCH_ONLY=2,6, BENCH_REPS=N.
# If the tracelink build fails, the bench still runs and its cells read n/a.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '==> [bench] %s\n' "$*" >&2; }

# Chromium (and the rest of the toolchain) come from setup; never a browser download.
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then SETUP_QUIET=1 bash scripts/setup.sh; fi

deps_ok() {
  (cd bench && node -e '
    const fs = require("fs");
    const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"));
    for (const [name, want] of Object.entries(pkg.devDependencies)) {
      const got = JSON.parse(fs.readFileSync(`node_modules/${name}/package.json`, "utf8")).version;
      if (got !== want) process.exit(1);
    }' 2>/dev/null)
}
if ! deps_ok; then
  log "npm dev dependencies for bench/ (OpenTelemetry JS, esbuild, playwright-core)"
  if [ -f bench/package-lock.json ]; then
    (cd bench && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd bench && npm install --no-audit --no-fund --loglevel=error)
  fi
fi

if [ -z "${TRACELINK_PKG:-}" ]; then
  log "building pkg/ (scripts/build.sh)"
  bash scripts/build.sh || log "scripts/build.sh failed: the table's tracelink cells will read n/a"
fi

# Speed is measured on a build with Agent.encodeBench (metric 5) made with the
# same size-optimised flags; size is always measured on the shipped pkg/.
if [ -z "${TRACELINK_PKG:-}" ] && [ -f pkg/tracelink.wasm ]; then
  log "building the bench-hooks variant into target/bench-pkg (encodeBench)"
  if TRACELINK_OUT=target/bench-pkg TRACELINK_FEATURES=bench-hooks bash scripts/build.sh >/dev/null; then
    export TRACELINK_PKG="$ROOT/target/bench-pkg" TRACELINK_SIZE_PKG="$ROOT/pkg"
  fi
fi

exec node bench/run.mjs "$@"
