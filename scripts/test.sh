#!/usr/bin/env bash
# scripts/test.sh (`make test`): every test, from a fresh clone. Installs what
# is missing first (scripts/setup.sh). Each stage prints its runner's summary;
# the script stops at the first failing stage and prints a final tally.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export WASM_BINDGEN_TEST_TIMEOUT=120
passed=0
current=""
stage() { current="$1"; printf '\n=== %s\n' "$1"; }
ok() { passed=$((passed + 1)); }
# `cmd && ok || failed`: a failing stage stops the run with a non-zero exit
# (a command in an && list does not trigger `set -e` on its own).
failed() {
  printf '\nstage failed: %s\nstages: %d passed, 1 failed\n' "$current" "$passed" >&2
  exit 1
}

stage "1/8 core on the host: unit, property and real-collector tests (cargo test)"
cargo test --all-targets && ok || failed

stage "2/8 build pkg/ (wasm32 release, wasm-opt) and check the size budget (scripts/size-budget.json)"
bash scripts/build.sh && node scripts/size.mjs pkg --check >/dev/null && ok || failed

stage "3/8 the core and platform layer on wasm32 in Node (wasm-bindgen-test)"
cargo test --target wasm32-unknown-unknown --test wasm && ok || failed

stage "4/8 the same wasm tests in headless Chromium"
WASM_BINDGEN_USE_BROWSER=1 cargo test --target wasm32-unknown-unknown --test wasm && ok || failed

stage "4b/8 the Rust API (feature opentelemetry): host tests, then wasm32 in Node and Chromium against rotel"
cargo test --features opentelemetry --lib -- otel http_span \
  && cargo test --features opentelemetry --doc otel \
  && node tests/support/otel-wasm-peers.mjs && ok || failed

stage "5/8 the npm package: JS API, exporter and fetch tests in Node against rotel"
node --test --test-concurrency=1 tests/js/ && ok || failed

stage "6/8 browser end-to-end: Chromium + FastAPI/OpenTelemetry backend + rotel (+ the demo and Jaeger UI, apps built with Vite and webpack)"
node --test --test-concurrency=1 tests/e2e/ tests/bundlers/ && ok || failed

stage "7/8 edge and worker runtimes: Web/Service Worker, workerd, Deno, Bun, Node"
node --test --test-concurrency=1 tests/edge/ && ok || failed

stage "8/8 the backend package and the demo's programs: python/ + demo backend (pytest, real rotel), trace viewer (cargo test)"
"$ROOT/.tools/venv/bin/python" -m pytest -q python/tests \
  && cargo test --manifest-path demo/viewer/Cargo.toml --locked && ok || failed

printf '\nstages: %d passed, 0 failed\n' "$passed"
