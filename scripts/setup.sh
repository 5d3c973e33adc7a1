#!/usr/bin/env bash
# scripts/setup.sh: take a fresh machine to a working tracelink build and test run.
# Idempotent: every step checks first and does nothing when its piece is present
# (a re-run takes a few seconds). Called by scripts/build.sh and scripts/test.sh,
# so a new user never runs it by hand.
#
# Installs (project-local where it can: everything under .tools/ is disposable):
#   * the Rust wasm32-unknown-unknown target (rustup; Debian rustc-web fallback)
#   * wasm-bindgen-cli pinned to the wasm-bindgen crate version in Cargo.toml
#   * wasm-opt from npm binaryen (never Debian's binaryen: it corrupts output)
#   * Chromium + chromedriver + brotli (Debian packages)
#   * Python peers in .tools/venv: rotel (collector), FastAPI + OpenTelemetry SDK,
#     and this checkout's python/ package (tracelink-backend), editable
#   * npm dev dependencies (playwright-core) from package.json
#   * edge runtimes for tests/edge (workerd, Deno, Bun: binaries in npm packages)
#   * bundlers for tests/bundlers (Vite, webpack 5)
#   * the demo's trace viewer (demo/viewer, Jaeger UI offline), built once
# Knobs: SETUP_QUIET=1 prints only what it installs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
WASM_BINDGEN_VERSION="$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p; s/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"
BINARYEN_VERSION=132.0.0
PY_PEERS=(rotel==0.0.1a15 fastapi==0.165.0 uvicorn==0.54.0
  opentelemetry-api==1.45.2 opentelemetry-sdk==1.45.2
  opentelemetry-exporter-otlp-proto-http==1.45.2
  opentelemetry-instrumentation-fastapi==0.66b2
  opentelemetry-instrumentation-dbapi==0.66b2 pytest==9.2.0)
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH" DEBIAN_FRONTEND=noninteractive
t0=$SECONDS
log() { printf '==> [setup %3ss] %s\n' "$((SECONDS - t0))" "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "setup: need root for: $*" >&2; return 1; fi; }
mkdir -p "$TOOLS"

# 1. Debian packages: browser for tests, brotli for size figures, protoc for the
#    trace viewer's build (demo/viewer).
pkgs=(chromium chromium-driver brotli curl protobuf-compiler)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  as_root apt-get install -y -q "${missing[@]}" >/dev/null \
    || { as_root apt-get update -q >/dev/null && as_root apt-get install -y -q "${missing[@]}" >/dev/null; }
fi

# 2. The wasm32 target. rustup first (what users do); the Debian rustc-web route
#    (std built once from rust-web-src) when the Rust distribution server fails.
if ! rustc --print target-libdir --target wasm32-unknown-unknown 2>/dev/null | xargs -I{} test -d {}; then
  log "rustup target add wasm32-unknown-unknown"
  if ! rustup target add wasm32-unknown-unknown; then
    log "rustup failed: Debian rustc-web fallback"
    "$ROOT/scripts/setup-debian-rust.sh"
  fi
fi

# 2b. std sources, for the size-optimised build (scripts/build.sh falls back without them).
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
  log "rustup component add rust-src"
  rustup component add rust-src || log "rust-src unavailable: builds use the plain std (a few KB larger)"
fi

# 3. wasm-bindgen CLI, exactly the crate's version (no --locked: see WASM notes in README).
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes, once)"
  (cd / && cargo install -q --force wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION")
fi

# 4. wasm-opt from npm binaryen, project-local.
if [ "$(node -p "require('$TOOLS/node_modules/binaryen/package.json').version" 2>/dev/null)" != "$BINARYEN_VERSION" ]; then
  log "npm install binaryen@$BINARYEN_VERSION into .tools/"
  (cd "$TOOLS" && { [ -f package.json ] || echo '{"private":true}' > package.json; } \
    && npm install -q --no-audit --no-fund "binaryen@$BINARYEN_VERSION" >/dev/null)
fi

# 5. Python peers (collector, backend) in a project venv.
if ! "$TOOLS/venv/bin/python" -c 'import rotel, fastapi, uvicorn, opentelemetry.sdk, opentelemetry.instrumentation.fastapi, opentelemetry.instrumentation.dbapi, pytest' 2>/dev/null; then
  log "python venv .tools/venv: ${PY_PEERS[*]}"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "${PY_PEERS[@]}"
fi
# 5b. The backend package, editable (edits are live), from this checkout's python/.
if ! "$TOOLS/venv/bin/python" -c 'import pathlib, sys, tracelink_backend as t
sys.exit(pathlib.Path(t.__file__).resolve().parents[1] != pathlib.Path(sys.argv[1]).resolve())' "$ROOT/python" 2>/dev/null; then
  log "pip install -e python (tracelink-backend)"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check -e "$ROOT/python"
fi

# 6. npm dev dependencies (test drivers).
if [ -f "$ROOT/package.json" ] && ! (cd "$ROOT" && node -e 'require.resolve("playwright-core"); require.resolve("typescript"); require.resolve("esbuild")' 2>/dev/null); then
  log "npm install (dev dependencies)"
  (cd "$ROOT" && npm install -q --no-audit --no-fund >/dev/null)
fi
# 6b. Edge runtimes for tests/edge: workerd, Deno and Bun, pinned in
#     tests/edge/package.json (their binaries come inside the npm packages).
if ! (cd "$ROOT/tests/edge" && node -e 'for (const [n, v] of Object.entries(require("./package.json").devDependencies))
    if (require(n + "/package.json").version !== v) process.exit(1)' \
    && node_modules/.bin/workerd --version && node_modules/.bin/deno --version && node_modules/.bin/bun --version) >/dev/null 2>&1; then
  log "npm install tests/edge (workerd, deno, bun)"
  (cd "$ROOT/tests/edge" && npm install -q --no-audit --no-fund >/dev/null)
fi
# 6c. Bundlers for tests/bundlers (Vite, webpack 5), pinned in tests/bundlers/package.json.
if ! (cd "$ROOT/tests/bundlers" && node -e 'for (const [n, v] of Object.entries(require("./package.json").devDependencies))
    if (require(n + "/package.json").version !== v) process.exit(1)') >/dev/null 2>&1; then
  log "npm install tests/bundlers (vite, webpack)"
  (cd "$ROOT/tests/bundlers" && npm install -q --no-audit --no-fund >/dev/null)
fi
# 7. The demo's trace viewer (demo/viewer: its own Cargo package and lockfile), built
#    once; rebuilt only when its manifest, lockfile or sources are newer than the binary.
VIEWER="$ROOT/demo/viewer"
VIEWER_BIN="$VIEWER/target/release/tracelink-viewer"
if [ -f "$VIEWER/Cargo.toml" ] && { [ ! -x "$VIEWER_BIN" ] || [ -n "$(find "$VIEWER/Cargo.toml" "$VIEWER/Cargo.lock" "$VIEWER/src" -newer "$VIEWER_BIN" -print -quit)" ]; }; then
  log "cargo build --release demo/viewer (about 1 minute, once)"
  cargo build -q --release --locked --manifest-path "$VIEWER/Cargo.toml"
fi
[ "${SETUP_QUIET:-0}" = 1 ] || log "ready: $(rustc -V) | $(wasm-bindgen --version) | wasm-opt $("$TOOLS/node_modules/.bin/wasm-opt" --version | cut -d' ' -f3)"
