#!/usr/bin/env bash
# scripts/measure-encoder-size.sh: what the OTLP encoder costs in wasm, hand-written vs
# opentelemetry-proto + prost (+ serde_json for OTLP/JSON). The figures behind the README's
# "why a hand-written encoder" note.
#
# Builds small cdylib probe crates in a temp dir for wasm32-unknown-unknown (release,
# opt-level z, LTO, codegen-units 1, panic abort). Each exports one
# `#[no_mangle] extern "C" fn encode(seed, json) -> usize` that builds the same span with
# tracelink's span model (every attribute type, an event, a link, an error status) and
# encodes it as a whole ExportTraceServiceRequest:
#   span-model-only        builds the span, encodes nothing (the floor the others share)
#   tracelink-protobuf     + tracelink::core::otlp, protobuf only
#   tracelink-both         + tracelink::core::otlp, protobuf or JSON chosen at run time
#   prost-protobuf         + conversion to opentelemetry-proto types, prost encode_to_vec
#   prost-serde-both       + opentelemetry-proto `with-serde`: prost or serde_json at run time
# The tracelink modules (id, span, otlp) are compiled from this repo's sources through
# `#[path]` modules rather than a path dependency on the crate, so the web layer's
# wasm-bindgen exports do not end up in the probes and only the encoder is measured.
# Each module goes through wasm-bindgen (as the real package does) and wasm-opt -Oz
# (npm binaryen from .tools/, never /usr/bin/wasm-opt), then gzip -9 and brotli -q 11.
#
# Usage: scripts/measure-encoder-size.sh        (KEEP=1 keeps the temp dir)
# Needs: scripts/setup.sh done (wasm32 target, wasm-bindgen, .tools/ wasm-opt, brotli).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
WASM_OPT="$ROOT/.tools/node_modules/.bin/wasm-opt"
OTEL_PROTO_VERSION=0.33.1
PROST_VERSION=0.14
WB_VERSION="$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p; s/^wasm-bindgen = "=\([0-9.]*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)"

die() { echo "measure-encoder-size: $*" >&2; exit 1; }
[ -x "$WASM_OPT" ] || die "no $WASM_OPT: run scripts/setup.sh"
[ "$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $WB_VERSION" ] || die "need wasm-bindgen $WB_VERSION: run scripts/setup.sh"
rustc --print target-libdir --target wasm32-unknown-unknown | xargs -I{} test -d {} || die "no wasm32 target: run scripts/setup.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/tracelink-size.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then echo "keeping $WORK" >&2; else trap 'rm -rf "$WORK"' EXIT; fi
export CARGO_TARGET_DIR="$WORK/target"

# --- shared probe source --------------------------------------------------------------------

# The span every probe builds, from tracelink's own model (so the probes differ only in
# the encoder). `seed` keeps the optimiser from folding it all into a constant.
cat > "$WORK/span_model.rs" <<EOF
#[allow(dead_code)]
mod core {
    #[path = "$ROOT/src/core/id.rs"]
    pub mod id;
    #[path = "$ROOT/src/core/span.rs"]
    pub mod span;
    #[cfg(feature = "tracelink-otlp")]
    #[path = "$ROOT/src/core/otlp/mod.rs"]
    pub mod otlp;
}
use crate::core::id::IdGenerator;
use crate::core::span::*;

fn build(seed: u64) -> (Resource, Scope, SpanData) {
    let mut ids = IdGenerator::from_seed([seed as u8; 32]);
    let limits = SpanLimits::default();
    let parent = SpanContext { trace_id: ids.trace_id(), span_id: ids.span_id(), flags: TraceFlags(1), trace_state: String::new(), is_remote: true };
    let ctx = SpanContext { span_id: ids.span_id(), is_remote: false, ..parent.clone() };
    let t = 1_700_000_000_000_000_000 + seed;
    let mut span = SpanData::new(ctx, Some(&parent), format!("GET /item/{seed}"), SpanKind::Client, t);
    span.set_attribute(KeyValue::new("http.request.method", "GET"), &limits);
    span.set_attribute(KeyValue::new("http.response.status_code", seed as i64), &limits);
    span.set_attribute(KeyValue::new("ratio", seed as f64 / 3.0), &limits);
    span.set_attribute(KeyValue::new("cached", seed & 1 == 0), &limits);
    span.set_attribute(KeyValue::new("tags", Value::Array(Array::String(vec!["a\"b".into(), format!("{seed}")]))), &limits);
    span.add_event("first byte".into(), t + 10, vec![KeyValue::new("bytes", seed as i64)], &limits);
    span.add_link(parent.clone(), vec![KeyValue::new("kind", "follows")], &limits);
    span.set_status(Status::Error(format!("status {seed}")));
    span.end(t + 1_000_000);
    (Resource::new("probe", Some("1.0.0"), "rust"), Scope { name: "tracelink".into(), version: "0.1.0".into() }, span)
}
EOF

# prost conversion from the span model to opentelemetry-proto's generated types.
cat > "$WORK/prost_convert.rs" <<'EOF'
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue as PKeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource as PResource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span as PSpan, Status as PStatus};

fn any(v: &Value) -> AnyValue {
    use any_value::Value as V;
    let one = |v: V| AnyValue { value: Some(v) };
    let value = match v {
        Value::Bool(b) => V::BoolValue(*b),
        Value::I64(i) => V::IntValue(*i),
        Value::F64(f) => V::DoubleValue(*f),
        Value::String(s) => V::StringValue(s.clone()),
        Value::Array(a) => V::ArrayValue(ArrayValue {
            values: match a {
                Array::Bool(v) => v.iter().map(|&b| one(V::BoolValue(b))).collect(),
                Array::I64(v) => v.iter().map(|&i| one(V::IntValue(i))).collect(),
                Array::F64(v) => v.iter().map(|&f| one(V::DoubleValue(f))).collect(),
                Array::String(v) => v.iter().map(|s| one(V::StringValue(s.clone()))).collect(),
            },
        }),
    };
    one(value)
}

fn kvs(list: &[KeyValue]) -> Vec<PKeyValue> {
    list.iter().map(|kv| PKeyValue { key: kv.key.clone(), value: Some(any(&kv.value)), ..Default::default() }).collect()
}

fn request(resource: &Resource, scope: &Scope, s: &SpanData) -> ExportTraceServiceRequest {
    let c = &s.span_context;
    let mut flags = u32::from(c.flags.known().0);
    if s.parent_span_id.is_valid() {
        flags |= 0x100 | if s.parent_is_remote { 0x200 } else { 0 };
    }
    let span = PSpan {
        trace_id: c.trace_id.0.to_vec(),
        span_id: c.span_id.0.to_vec(),
        trace_state: c.trace_state.clone(),
        parent_span_id: if s.parent_span_id.is_valid() { s.parent_span_id.0.to_vec() } else { Vec::new() },
        flags,
        name: s.name.clone(),
        kind: s.kind.otlp() as i32,
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: kvs(&s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        events: s.events.iter().map(|e| span::Event {
            time_unix_nano: e.time_unix_nano,
            name: e.name.clone(),
            attributes: kvs(&e.attributes),
            dropped_attributes_count: e.dropped_attributes_count,
        }).collect(),
        dropped_events_count: s.dropped_events_count,
        links: s.links.iter().map(|l| span::Link {
            trace_id: l.span_context.trace_id.0.to_vec(),
            span_id: l.span_context.span_id.0.to_vec(),
            trace_state: l.span_context.trace_state.clone(),
            attributes: kvs(&l.attributes),
            dropped_attributes_count: l.dropped_attributes_count,
            flags: u32::from(l.span_context.flags.known().0) | 0x100 | if l.span_context.is_remote { 0x200 } else { 0 },
        }).collect(),
        dropped_links_count: s.dropped_links_count,
        status: (s.status != Status::Unset).then(|| PStatus { message: s.status.message().into(), code: s.status.otlp_code() as i32 }),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(PResource { attributes: kvs(&resource.attributes), ..Default::default() }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: scope.name.clone(), version: scope.version.clone(), ..Default::default() }),
                spans: vec![span],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}
EOF

# probe <name> <extra [dependencies] lines> <features line> <body of encode()>
probe() {
  local name="$1" deps="$2" features="$3" body="$4" dir="$WORK/$1"
  mkdir -p "$dir/src"
  cat > "$dir/Cargo.toml" <<EOF
[package]
name = "probe-$name"
version = "0.0.0"
edition = "2021"
publish = false
[lib]
crate-type = ["cdylib"]
path = "src/lib.rs"
[dependencies]
getrandom = { version = "0.3", features = ["wasm_js"] }
wasm-bindgen = "=$WB_VERSION"
$deps
[features]
$features
[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
EOF
  cat > "$dir/src/lib.rs" <<EOF
include!("$WORK/span_model.rs");
$( [[ "$name" == prost* ]] && echo "include!(\"$WORK/prost_convert.rs\");" )
#[no_mangle]
pub extern "C" fn encode(seed: u64, json: u32) -> usize {
    let _ = json;
    let (resource, scope, span) = build(seed);
    $body
}
EOF
}

probe span-model-only "" "" \
  'resource.attributes.len() + scope.name.len() + span.attributes.len() + span.name.len()'
probe tracelink-protobuf "" 'default = ["tracelink-otlp"]
tracelink-otlp = []' \
  'crate::core::otlp::encode_spans(crate::core::otlp::Encoding::Protobuf, &resource, &scope, &[span]).len()'
probe tracelink-both "" 'default = ["tracelink-otlp"]
tracelink-otlp = []' \
  'let enc = if json != 0 { crate::core::otlp::Encoding::Json } else { crate::core::otlp::Encoding::Protobuf };
    crate::core::otlp::encode_spans(enc, &resource, &scope, &[span]).len()'
probe prost-protobuf \
  "opentelemetry-proto = { version = \"$OTEL_PROTO_VERSION\", default-features = false, features = [\"gen-tonic-messages\", \"trace\"] }
prost = \"$PROST_VERSION\"" "" \
  'prost::Message::encode_to_vec(&request(&resource, &scope, &span)).len()'
probe prost-serde-both \
  "opentelemetry-proto = { version = \"$OTEL_PROTO_VERSION\", default-features = false, features = [\"gen-tonic-messages\", \"trace\", \"with-serde\"] }
prost = \"$PROST_VERSION\"
serde_json = \"1\"" "" \
  'let req = request(&resource, &scope, &span);
    if json != 0 { serde_json::to_vec(&req).map_or(0, |v| v.len()) } else { prost::Message::encode_to_vec(&req).len() }'

# --- build, bindgen, optimise, compress -------------------------------------------------------
size() { wc -c < "$1" | tr -d ' '; }
rows=()
for name in span-model-only tracelink-protobuf tracelink-both prost-protobuf prost-serde-both; do
  echo "==> building $name" >&2
  if ! (cd "$WORK/$name" && cargo build -q --release --target wasm32-unknown-unknown) >"$WORK/$name.log" 2>&1; then
    echo "    $name did not build (see below); skipped" >&2; tail -20 "$WORK/$name.log" >&2
    rows+=("$name|build failed|||||"); continue
  fi
  crate="probe_${name//[-+]/_}"
  wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/$crate.wasm"
  out="$WORK/out/$name"; mkdir -p "$out"
  wasm-bindgen --target web --out-dir "$out" --out-name probe "$wasm"
  "$WASM_OPT" -Oz "$out/probe_bg.wasm" -o "$out/opt.wasm"
  raw=$(size "$out/opt.wasm")
  gz=$(gzip -9 -c "$out/opt.wasm" | wc -c | tr -d ' ')
  br="-"; command -v brotli >/dev/null && br=$(brotli -q 11 -c "$out/opt.wasm" | wc -c | tr -d ' ')
  rows+=("$name|$(size "$wasm")|$raw|$gz|$br")
done

floor_raw=""; floor_gz=""
printf '\n%-20s %12s %12s %10s %10s %14s\n' probe "cargo .wasm" "wasm-opt -Oz" "gzip -9" "brotli" "Δ floor (gz)"
for row in "${rows[@]}"; do
  IFS='|' read -r name cargo raw gz br <<<"$row"
  if [ "$name" = span-model-only ] && [ -n "$gz" ]; then floor_raw=$raw; floor_gz=$gz; fi
  delta=""
  if [ -n "$floor_raw" ] && [ -n "$gz" ] && [ "$name" != span-model-only ]; then
    delta="+$((raw - floor_raw)) (+$((gz - floor_gz)))"
  fi
  printf '%-20s %12s %12s %10s %10s %14s\n' "$name" "$cargo" "$raw" "$gz" "$br" "$delta"
done
echo
echo "wasm-bindgen $WB_VERSION --target web, then $("$WASM_OPT" --version); $(rustc -V)" 
echo "opentelemetry-proto $OTEL_PROTO_VERSION (prost $(cargo metadata --format-version 1 --manifest-path "$WORK/prost-protobuf/Cargo.toml" 2>/dev/null | grep -o '"name":"prost","version":"[^"]*"' | head -1 | sed 's/.*"version":"//; s/"//'))"
