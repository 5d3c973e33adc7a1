#!/usr/bin/env bash
# scripts/build.sh: build the npm package in pkg/ (runs setup first when needed).
#   cargo (wasm32, release) -> wasm-bindgen --target web -> wasm-opt -Oz -> pkg/
# The hand-written package files (tracelink.js, tracelink.d.ts, package.json)
# live in pkg/ and are committed; this script adds the generated ones.
# Knobs (for the bench): TRACELINK_OUT=DIR (default pkg), TRACELINK_FEATURES=list.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SETUP_QUIET=1 bash scripts/setup.sh
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WASM_OPT="$ROOT/.tools/node_modules/.bin/wasm-opt"
OUT="${TRACELINK_OUT:-pkg}"
FEATURES=(${TRACELINK_FEATURES:+--features "$TRACELINK_FEATURES"})
TARGET_SUFFIX="${TRACELINK_FEATURES:+-${TRACELINK_FEATURES//[^a-z0-9]/-}}"

# Smallest build: std rebuilt with panics that abort at once (no panic
# messages, no formatting machinery: about -13 KB raw / -6 KB gzip). It needs
# the rust-src component and unstable flags on the stable compiler
# (RUSTC_BOOTSTRAP), so a failure falls back to the plain stable build.
# TRACELINK_PLAIN_BUILD=1 skips it.
MIN_DIR="target/min$TARGET_SUFFIX"
WASM_OUT="target/plain$TARGET_SUFFIX/wasm32-unknown-unknown/release/tracelink.wasm"
if [ "${TRACELINK_PLAIN_BUILD:-0}" != 1 ] && RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none" \
    cargo build --release --lib --target wasm32-unknown-unknown --target-dir "$MIN_DIR" "${FEATURES[@]}" \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size; then
  WASM_OUT="$MIN_DIR/wasm32-unknown-unknown/release/tracelink.wasm"
else
  echo "build: size-optimised std build unavailable; using the plain stable build" >&2
  cargo build --release --lib --target wasm32-unknown-unknown --target-dir "target/plain$TARGET_SUFFIX" "${FEATURES[@]}"
fi
mkdir -p "$OUT"
rm -rf "$OUT"/tracelink_wasm* "$OUT"/snippets
wasm-bindgen --target web --out-dir "$OUT" --out-name tracelink_wasm --no-typescript "$WASM_OUT"
"$WASM_OPT" -Oz --strip-debug --strip-producers "$OUT/tracelink_wasm_bg.wasm" -o "$OUT/tracelink_wasm_bg.wasm"
if [ "$OUT" = pkg ]; then
  cp README.md LICENSE pkg/ 2>/dev/null || true
else
  cp pkg/tracelink.js pkg/tracelink.d.ts pkg/package.json "$OUT/"
fi

# Sizes of what a page loads: the wasm and both JS files.
node scripts/size.mjs "$OUT"

# The Rust example app (examples/rust-app, feature `opentelemetry`): tests/e2e/rust_app.test.mjs.
if [ "$OUT" = pkg ]; then bash scripts/build-rust-app.sh; fi
