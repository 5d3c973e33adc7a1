#!/usr/bin/env bash
# scripts/measure-gzip-size.sh: what synchronous gzip costs in the wasm: tracelink's own
# encoder (src/core/gzip.rs) vs miniz_oxide as a dependency. The figures behind the
# README's "gzip written by hand" note.
#
# Builds small cdylib probes for wasm32-unknown-unknown the way scripts/build.sh builds the
# package (release, opt-level z, LTO, codegen-units 1, std rebuilt with immediate-abort
# panics; the plain stable build if that is unavailable). Each exports one
# `#[wasm_bindgen] fn compress(n, seed) -> usize` over the same generated input:
#   floor            generates the input, compresses nothing
#   tracelink-gzip   + core::gzip (fixed-Huffman DEFLATE, stored fallback, CRC-32, framing)
#   miniz-oxide      + miniz_oxide::deflate (level 6, dynamic Huffman) and core::gzip's
#                    CRC-32 and framing (so only the DEFLATE encoders differ)
# src/core/gzip.rs is compiled in through a `#[path]` module (no wasm-bindgen exports of the
# crate end up in the probes). Each goes through wasm-bindgen --target web and wasm-opt -Oz
# (npm binaryen from .tools/), then gzip -9 and brotli -q 11.
#
# Usage: scripts/measure-gzip-size.sh        (KEEP=1 keeps the temp dir)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WASM_OPT="$ROOT/.tools/node_modules/.bin/wasm-opt"
MINIZ_VERSION=0.9
WB_VERSION="$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p; s/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"

die() { echo "measure-gzip-size: $*" >&2; exit 1; }
[ -x "$WASM_OPT" ] || die "no $WASM_OPT: run scripts/setup.sh"
[ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $WB_VERSION" ] || die "need wasm-bindgen $WB_VERSION: run scripts/setup.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tracelink-gzip-size.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then echo "keeping $WORK" >&2; else trap 'rm -rf "$WORK"' EXIT; fi
export CARGO_TARGET_DIR="$WORK/target"

# The input every probe builds: OTLP-like records (a repeated shape with random ids).
cat > "$WORK/input.rs" <<'EOF2'
fn input(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.extend_from_slice(b"\x12\x8a\x01\x0a\x10");
        for _ in 0..6 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(b"\x2a\x08bench.op\x4a\x14\x0a\x08app.name\x12\x0a\x0a\x08checkout");
    }
    out.truncate(n);
    out
}
EOF2

probe() {
  local name="$1" deps="$2" body="$3" dir="$WORK/$1"
  mkdir -p "$dir/src"
  cat > "$dir/Cargo.toml" <<EOF2
[package]
name = "probe-$name"
version = "0.0.0"
edition = "2021"
publish = false
[lib]
crate-type = ["cdylib"]
path = "src/lib.rs"
[dependencies]
wasm-bindgen = "=$WB_VERSION"
$deps
[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
EOF2
  cat > "$dir/src/lib.rs" <<EOF2
include!("$WORK/input.rs");
#[allow(dead_code)]
#[path = "$ROOT/src/core/gzip.rs"]
mod gzip;
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn compress(n: usize, seed: u32) -> usize {
    let data = input(n, seed);
    $body
}
EOF2
}

probe floor "" 'data.iter().map(|&b| b as usize).sum()'
probe tracelink-gzip "" 'gzip::gzip(&data).len()'
probe miniz-oxide "miniz_oxide = { version = \"$MINIZ_VERSION\", default-features = false, features = [\"with-alloc\"] }" \
  'let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec(&data, 6));
    out.extend_from_slice(&gzip::crc32(&[&data]).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.len()'

build() { # dir
  (cd "$1" && RUSTC_BOOTSTRAP=1 \
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none" \
    cargo build -q --release --target wasm32-unknown-unknown \
    -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size) \
  || (echo "    size-optimised std build unavailable; plain build" >&2
      cd "$1" && cargo build -q --release --target wasm32-unknown-unknown)
}

size() { wc -c < "$1" | tr -d ' '; }
rows=()
for name in floor tracelink-gzip miniz-oxide; do
  echo "==> building $name" >&2
  if ! build "$WORK/$name" >"$WORK/$name.log" 2>&1; then
    echo "    $name did not build; skipped" >&2; tail -20 "$WORK/$name.log" >&2
    rows+=("$name|build failed|||"); continue
  fi
  wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/probe_${name//-/_}.wasm"
  out="$WORK/out/$name"; mkdir -p "$out"
  wasm-bindgen --target web --out-dir "$out" --out-name probe "$wasm"
  "$WASM_OPT" -Oz --strip-debug --strip-producers "$out/probe_bg.wasm" -o "$out/opt.wasm"
  raw=$(size "$out/opt.wasm")
  gz=$(gzip -9 -c "$out/opt.wasm" | wc -c | tr -d ' ')
  br="-"; command -v brotli >/dev/null && br=$(brotli -q 11 -c "$out/opt.wasm" | wc -c | tr -d ' ')
  rows+=("$name|$raw|$gz|$br")
done

printf '\n%-16s %12s %10s %10s %22s\n' probe "wasm-opt -Oz" "gzip -9" "brotli" "added raw/gzip/brotli"
for row in "${rows[@]}"; do
  IFS='|' read -r name raw gz br <<<"$row"
  if [ "$name" = floor ]; then f_raw=$raw; f_gz=$gz; f_br=$br; fi
  delta=""
  [ "$name" != floor ] && [ -n "$gz" ] && delta="+$((raw - f_raw)) / +$((gz - f_gz)) / +$((br - f_br))"
  printf '%-16s %12s %10s %10s %22s\n' "$name" "$raw" "$gz" "$br" "$delta"
done
echo
echo "wasm-bindgen $WB_VERSION --target web, then $("$WASM_OPT" --version); $(rustc -V); miniz_oxide $MINIZ_VERSION"
