#!/usr/bin/env bash
# scripts/build.sh: build the npm package in pkg/ (runs setup first when needed).
#   cargo (wasm32, release, the raw JS ABI) -> wasm-opt -Oz -> pkg/*.wasm
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

# The npm package's wasm is the raw ABI of src/js_abi.rs (no wasm-bindgen, no
# JS glue), in three variants: tracelink.wasm (the default: OTLP/protobuf),
# tracelink-gzip.wasm (adds gzip'd exports: the default for same-origin
# endpoints and outside pages) and tracelink-full.wasm (gzip, OTLP/JSON,
# console export and W3C baggage), each downloaded only by setups that use it.
#
# Smallest build: std rebuilt with panics that abort at once (no panic
# messages, no formatting machinery: about -13 KB raw / -6 KB gzip). It needs
# the rust-src component and unstable flags on the stable compiler
# (RUSTC_BOOTSTRAP), so a failure falls back to the plain stable build.
# TRACELINK_PLAIN_BUILD=1 skips it.
build_variant() { # $1: extra cargo features, $2: output file name
  local features="js-package${1:+,$1}${TRACELINK_FEATURES:+,$TRACELINK_FEATURES}"
  local suffix="-${features//[^a-z0-9]/-}"
  local min_dir="target/min$suffix" wasm
  wasm="target/plain$suffix/wasm32-unknown-unknown/release/tracelink.wasm"
  if [ "${TRACELINK_PLAIN_BUILD:-0}" != 1 ] && RUSTC_BOOTSTRAP=1 \
      RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none" \
      cargo build --release --lib --target wasm32-unknown-unknown --target-dir "$min_dir" \
      --no-default-features --features "$features" -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size; then
    wasm="$min_dir/wasm32-unknown-unknown/release/tracelink.wasm"
  else
    echo "build: size-optimised std build unavailable; using the plain stable build" >&2
    cargo build --release --lib --target wasm32-unknown-unknown --target-dir "target/plain$suffix" \
      --no-default-features --features "$features"
  fi
  # --low-memory-unused: the stack comes first (Rust's wasm-ld default), so
  # addresses below 1024 are its deepest end. --flatten --rereloop before -Oz
  # and --reorder-functions after it leave code that gzips better; --converge
  # repeats -Oz until no gain. Together -0.4 KB gzip; no speed change in Node.
  "$WASM_OPT" --low-memory-unused --flatten --rereloop -Oz -Oz --converge --reorder-functions \
    --strip-debug --strip-producers --strip-target-features "$wasm" -o "$OUT/$2"
}
mkdir -p "$OUT"
rm -rf "$OUT"/tracelink_wasm* "$OUT"/snippets "$OUT"/*.wasm
build_variant "" tracelink.wasm
build_variant gzip tracelink-gzip.wasm
build_variant full tracelink-full.wasm
if [ "$OUT" = pkg ]; then
  cp README.md LICENSE pkg/ 2>/dev/null || true
else
  mkdir -p "$OUT/instrument"
  cp pkg/tracelink.js pkg/context.js pkg/core.js pkg/persist.js pkg/tracelink.d.ts pkg/package.json "$OUT/"
  cp pkg/instrument/*.js "$OUT/instrument/" 2>/dev/null || true
fi

# Sizes of what a page loads: the wasm and the JS files.
node scripts/size.mjs "$OUT"

# The Rust example app (examples/rust-app, feature `opentelemetry`): tests/e2e/rust_app.test.mjs.
if [ "$OUT" = pkg ]; then bash scripts/build-rust-app.sh; fi
