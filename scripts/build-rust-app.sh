#!/usr/bin/env bash
# scripts/build-rust-app.sh: build the Rust example app (examples/rust-app) into
# examples/rust-app/pkg: cargo (wasm32, release) -> wasm-bindgen --target web -> wasm-opt -Oz.
# Called by scripts/build.sh (after pkg/) and by scripts/test.sh; setup must have run.
# A plain stable build, as a user's app would be built.
# Knobs (scripts/measure-rust-size.sh): RUST_APP_OUT=DIR (default examples/rust-app/pkg),
#   RUST_APP_CARGO_FLAGS="--no-default-features" or "--features tracing".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WASM_OPT="$ROOT/.tools/node_modules/.bin/wasm-opt"
OUT="${RUST_APP_OUT:-examples/rust-app/pkg}"
FLAGS=(${RUST_APP_CARGO_FLAGS:-})
TARGET_DIR="target/rust-app${RUST_APP_CARGO_FLAGS:+-${RUST_APP_CARGO_FLAGS//[^a-z0-9]/-}}"

cargo build --release --lib --target wasm32-unknown-unknown --manifest-path examples/rust-app/Cargo.toml \
  --target-dir "$TARGET_DIR" "${FLAGS[@]}"
mkdir -p "$OUT"
rm -f "$OUT"/rust_app*
wasm-bindgen --target web --out-dir "$OUT" --no-typescript "$TARGET_DIR/wasm32-unknown-unknown/release/rust_app.wasm"
"$WASM_OPT" -Oz --strip-debug --strip-producers "$OUT/rust_app_bg.wasm" -o "$OUT/rust_app_bg.wasm"
printf 'rust-app (%s): wasm %s bytes, gzip -9 %s\n' "${RUST_APP_CARGO_FLAGS:-default features}" \
  "$(wc -c < "$OUT/rust_app_bg.wasm")" "$(gzip -9c "$OUT/rust_app_bg.wasm" | wc -c)"
