#!/usr/bin/env bash
# scripts/setup-debian-rust.sh: the fallback when `rustup target add
# wasm32-unknown-unknown` fails (no Rust distribution server). Uses Debian's
# rustc-web (which ships the std sources), builds the wasm32 std once into its
# sysroot, links it as the rustup toolchain "debian-web" and makes it this
# repository's override, so plain `cargo` builds wasm32 here. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TC=debian-web
STD_DIR=/usr/lib/rustlib/wasm32-unknown-unknown/lib
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pkgs=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  as_root apt-get install -y -q "${missing[@]}" || { as_root apt-get update -q && as_root apt-get install -y -q "${missing[@]}"; }
fi
if [ "$(rustup toolchain list -v 2>/dev/null | awk -v t=$TC '$1==t{print $NF}')" != /usr ]; then
  rustup toolchain link "$TC" /usr
fi
# The std, built once per Debian rustc version (stamp = hash of `rustc -vV`).
stamp="$(/usr/bin/rustc -vV | sha256sum | cut -c1-16)"
if [ "$(cat "$STD_DIR/.stamp" 2>/dev/null)" != "$stamp" ]; then
  b="$(mktemp -d)"
  mkdir -p "$b/src"; echo '#![no_std]' > "$b/src/lib.rs"
  printf '[package]\nname = "wasm-std-build"\nversion = "0.0.0"\nedition = "2021"\n[profile.release]\nopt-level = 3\ncodegen-units = 1\ndebug = 0\n' > "$b/Cargo.toml"
  (cd "$b" && RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cembed-bitcode=yes" \
     cargo +"$TC" build -q --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort,test,proc_macro)
  as_root rm -rf "$STD_DIR"; as_root mkdir -p "$STD_DIR"
  as_root cp "$b"/target/wasm32-unknown-unknown/release/deps/lib*.rlib \
             "$b"/target/wasm32-unknown-unknown/release/deps/lib*.rmeta "$STD_DIR/"
  as_root rm -f "$STD_DIR"/libwasm_std_build-*
  echo "$stamp" | as_root tee "$STD_DIR/.stamp" >/dev/null
  rm -rf "$b"
fi
(cd "$ROOT" && rustup override set "$TC")
echo "setup: using Debian rustc-web ($(/usr/bin/rustc -V)) for this repository"
