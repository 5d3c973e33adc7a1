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

cargo build --release --lib --target wasm32-unknown-unknown
rm -rf pkg/tracelink_wasm* pkg/snippets
wasm-bindgen --target web --out-dir pkg --out-name tracelink_wasm --no-typescript \
  target/wasm32-unknown-unknown/release/tracelink.wasm
"$WASM_OPT" -Oz --strip-debug --strip-producers pkg/tracelink_wasm_bg.wasm -o pkg/tracelink_wasm_bg.wasm
cp README.md LICENSE pkg/ 2>/dev/null || true

# Sizes of what a page loads: the wasm and both JS files.
node scripts/size.mjs pkg
