#!/usr/bin/env bash
# scripts/build.sh: build the npm package in pkg/ (runs setup first when needed).
#   cargo (wasm32, release) -> wasm-bindgen --target web -> wasm-opt -Oz -> pkg/
# The hand-written package files (tracelink.js, tracelink.d.ts, package.json)
# live in pkg/ and are committed; this script adds the generated ones.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SETUP_QUIET=1 bash scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WASM_OPT="$ROOT/.tools/node_modules/.bin/wasm-opt"

# Smallest build: std rebuilt with panics that abort at once (no panic
# messages, no formatting machinery: about -13 KB raw / -6 KB gzip). It needs
# the rust-src component and unstable flags on the stable compiler
# (RUSTC_BOOTSTRAP), so a failure falls back to the plain stable build.
# TRACELINK_PLAIN_BUILD=1 skips it.
WASM_OUT=target/wasm32-unknown-unknown/release/tracelink.wasm
if [ "${TRACELINK_PLAIN_BUILD:-0}" != 1 ] && RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none" \
    cargo build --release --lib --target wasm32-unknown-unknown --target-dir target/min \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size; then
  WASM_OUT=target/min/wasm32-unknown-unknown/release/tracelink.wasm
else
  echo "build: size-optimised std build unavailable; using the plain stable build" >&2
  cargo build --release --lib --target wasm32-unknown-unknown
fi
rm -rf pkg/tracelink_wasm* pkg/snippets
wasm-bindgen --target web --out-dir pkg --out-name tracelink_wasm --no-typescript "$WASM_OUT"
"$WASM_OPT" -Oz --strip-debug --strip-producers pkg/tracelink_wasm_bg.wasm -o pkg/tracelink_wasm_bg.wasm
cp README.md LICENSE pkg/ 2>/dev/null || true

# Sizes of what a page loads: the wasm and both JS files.
node scripts/size.mjs pkg
