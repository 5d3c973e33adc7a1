#!/usr/bin/env bash
# scripts/measure-rust-size.sh: the size figures behind the README's "From Rust" section and
# its decisions (wasm after wasm-bindgen --target web and wasm-opt -Oz; gzip -9, brotli -q 11).
#
#   A. examples/rust-app without tracelink (--no-default-features), as documented (tracelink +
#      the opentelemetry API), and with a tracing-opentelemetry layer (--features tracing);
#      each as a plain stable build (what an app gets) and with the size-optimised std that
#      scripts/build.sh uses for pkg/ (panic=immediate-abort, build-std).
#   B. An attribute map crossing from JS into the Rust API, on top of the traced app:
#      fixed Rust attributes (floor), a hand-written js_sys walk, serde-wasm-bindgen.
#   (C., one transport or two, compared pkg/'s former wasm-bindgen Agent with and without the
#   Rust driver: +8.4 KB gzip of wasm against -0.6 KB of JS. pkg/'s wasm is now a raw ABI
#   without wasm-bindgen, so the Rust driver, which needs web-sys, is not an option for it.)
# Probe crates live in a temp dir (KEEP=1 keeps it). Needs scripts/setup.sh done. ~15 min.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WASM_OPT="$ROOT/.tools/node_modules/.bin/wasm-opt"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/tracelink-rust-size.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then echo "keeping $WORK" >&2; else trap 'rm -rf "$WORK"' EXIT; fi
MIN_FLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none"

# row LABEL DIR: the wasm and the glue in DIR (one *_bg.wasm, one .js)
row() {
  local wasm js
  wasm="$(ls "$2"/*_bg.wasm)"; js="$(ls "$2"/*.js | grep -v _bg | head -1)"
  node -e '
    const fs = require("fs"), z = require("zlib");
    const [label, wasm, js] = process.argv.slice(1);
    const m = (f) => { const b = fs.readFileSync(f); return [b.length, z.gzipSync(b, { level: 9 }).length,
      z.brotliCompressSync(b, { params: { [z.constants.BROTLI_PARAM_QUALITY]: 11 } }).length]; };
    const [w, g] = [m(wasm), m(js)];
    console.log(`| ${label} | ${w[0].toLocaleString("en")} | ${w[1].toLocaleString("en")} | ${w[2].toLocaleString("en")} | ${g[0].toLocaleString("en")} / ${g[1].toLocaleString("en")} |`);
  ' "$1" "$wasm" "$js"
}

# bindgen IN OUT: wasm-bindgen + wasm-opt -Oz
bindgen() {
  mkdir -p "$2"
  wasm-bindgen --target web --out-dir "$2" --no-typescript "$1"
  "$WASM_OPT" -Oz --strip-debug --strip-producers "$(ls "$2"/*_bg.wasm)" -o "$(ls "$2"/*_bg.wasm)"
}

# build MANIFEST TARGET_DIR MIN(0|1) [cargo flags...]: prints the cargo .wasm path
build() {
  local manifest="$1" tdir="$2" min="$3"; shift 3
  if [ "$min" = 1 ]; then
    RUSTC_BOOTSTRAP=1 RUSTFLAGS="$MIN_FLAGS" cargo build -q --release --lib --target wasm32-unknown-unknown \
      --manifest-path "$manifest" --target-dir "$tdir" -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size "$@" >&2
  else
    cargo build -q --release --lib --target wasm32-unknown-unknown --manifest-path "$manifest" --target-dir "$tdir" "$@" >&2
  fi
}

HEAD='| build | wasm | gzip | brotli | JS glue raw / gzip |
|---|---:|---:|---:|---:|'

echo "## A. examples/rust-app"
echo "$HEAD"
for min in 0 1; do
  for variant in "untraced:--no-default-features" "traced:" "traced + tracing-opentelemetry:--features=tracing"; do
    label="${variant%%:*}"; flags="${variant#*:}"
    tdir="target/size-rust-app-$min-${label//[^a-z]/}"
    build examples/rust-app/Cargo.toml "$tdir" "$min" $flags
    bindgen "$tdir/wasm32-unknown-unknown/release/rust_app.wasm" "$WORK/a-$min-${label//[^a-z]/}"
    row "$label ($([ "$min" = 1 ] && echo 'size-optimised std' || echo 'stable'))" "$WORK/a-$min-${label//[^a-z]/}"
  done
done

# --- B. attribute maps from JS -----------------------------------------------------------------
probe() { # probe NAME EXTRA_DEPS SOURCE
  mkdir -p "$WORK/$1/src"
  cat > "$WORK/$1/Cargo.toml" <<EOF
[package]
name = "$1"
version = "0.0.0"
edition = "2021"
[workspace]
[lib]
crate-type = ["cdylib"]
[dependencies]
wasm-bindgen = "=0.2.130"
js-sys = "0.3.107"
wasm-bindgen-futures = "0.4.80"
opentelemetry = { version = "0.33.1", default-features = false, features = ["trace"] }
$2
[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"
EOF
  printf '%s\n' "$3" > "$WORK/$1/src/lib.rs"
}

ATTR_COMMON='
use opentelemetry::trace::{Span, Tracer, TracerProvider};
use opentelemetry::KeyValue;
use wasm_bindgen::prelude::*;
thread_local!(static P: tracelink::WebTracerProvider = tracelink::WebTracerProvider::builder().with_endpoint("http://127.0.0.1:4318").build().unwrap());
fn record_with(attrs: Vec<KeyValue>) { P.with(|p| { let mut s = p.tracer("p").start("probe"); s.set_attributes(attrs); s.end(); }); }'
TL="tracelink = { path = \"$ROOT\", default-features = false, features = [\"opentelemetry\"] }"

probe attrs_fixed "$TL" "$ATTR_COMMON
#[wasm_bindgen] pub fn record(_attrs: JsValue) { record_with(vec![KeyValue::new(\"a\", \"x\"), KeyValue::new(\"n\", 1i64)]); }"

probe attrs_reflect "$TL" "$ATTR_COMMON
fn value(v: &JsValue) -> Option<opentelemetry::Value> {
    if let Some(s) = v.as_string() { return Some(s.into()); }
    if let Some(b) = v.as_bool() { return Some(b.into()); }
    if let Some(n) = v.as_f64() { return Some(if n.fract() == 0.0 && n.abs() < 9.0e15 { (n as i64).into() } else { n.into() }); }
    if js_sys::Array::is_array(v) {
        let items: Vec<opentelemetry::StringValue> = js_sys::Array::from(v).iter().filter_map(|i| i.as_string()).map(Into::into).collect();
        return Some(opentelemetry::Value::Array(items.into()));
    }
    None
}
#[wasm_bindgen] pub fn record(attrs: JsValue) {
    let mut out = Vec::new();
    if let Ok(obj) = attrs.dyn_into::<js_sys::Object>() {
        for entry in js_sys::Object::entries(&obj).iter() {
            let pair = js_sys::Array::from(&entry);
            if let (Some(k), Some(v)) = (pair.get(0).as_string(), value(&pair.get(1))) { out.push(KeyValue::new(k, v)); }
        }
    }
    record_with(out);
}"

probe attrs_serde "$TL
serde = { version = \"1\", features = [\"derive\"] }
serde-wasm-bindgen = \"0.6.5\"" "$ATTR_COMMON
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum Attr { Bool(bool), Int(i64), Float(f64), Str(String), Strs(Vec<String>) }
#[wasm_bindgen] pub fn record(attrs: JsValue) {
    let map: std::collections::BTreeMap<String, Attr> = serde_wasm_bindgen::from_value(attrs).unwrap_or_default();
    record_with(map.into_iter().map(|(k, v)| match v {
        Attr::Bool(b) => KeyValue::new(k, b),
        Attr::Int(i) => KeyValue::new(k, i),
        Attr::Float(f) => KeyValue::new(k, f),
        Attr::Str(s) => KeyValue::new(k, s),
        Attr::Strs(v) => KeyValue::new(k, opentelemetry::Value::Array(v.into_iter().map(opentelemetry::StringValue::from).collect::<Vec<_>>().into())),
    }).collect());
}"

echo
echo "## B. an attribute map from JS into the Rust API (on top of tracelink; stable build)"
echo "$HEAD"
for p in attrs_fixed attrs_reflect attrs_serde; do
  build "$WORK/$p/Cargo.toml" "target/size-$p" 0
  bindgen "target/size-$p/wasm32-unknown-unknown/release/$p.wasm" "$WORK/out-$p"
  row "$p" "$WORK/out-$p"
done
