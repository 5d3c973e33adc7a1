#!/usr/bin/env bash
# scripts/fuzz.sh (`make fuzz`): runs every cargo-fuzz target in fuzz/ for a
# set time, one after the other, then the JS API fuzz (tests/fuzz/), and
# prints executions and crashes per target. Not part of `make test`.
# Installs what it needs first: cargo-fuzz (from crates.io, into ~/.cargo/bin),
# and the tools and pkg/ the JS fuzz uses (scripts/setup.sh, scripts/build.sh).
#
# Knobs:
#   FUZZ_SECONDS=60       seconds per Rust target
#   FUZZ_RUNS=N           instead: N executions per Rust target
#   FUZZ_TARGETS="a b"    only these Rust targets (default: all)
#   FUZZ_SANITIZER=none   or address (the core has no unsafe code: without
#                         ASan the same checks run about twice as fast)
#   FUZZ_JS_ITERATIONS=20000, FUZZ_JS_SEED=S   the JS API fuzz (0 skips it)
#   FUZZ_SMOKE=1          only each target's seed inputs (fuzz/seeds) once,
#                         and 2000 JS iterations
# Corpora grow in fuzz/corpus/<target> (not committed); a crash is saved in
# fuzz/artifacts/<target>/ and reproduces with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run <target> fuzz/artifacts/<target>/<file>   (in fuzz/)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
CARGO_FUZZ_VERSION=0.13.2
SMOKE="${FUZZ_SMOKE:-0}"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-60}"
SANITIZER="${FUZZ_SANITIZER:-none}"
JS_ITERATIONS="${FUZZ_JS_ITERATIONS:-20000}"
[ "$SMOKE" = 1 ] && JS_ITERATIONS="${FUZZ_JS_ITERATIONS:-2000}"

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "fuzz: cargo install cargo-fuzz $CARGO_FUZZ_VERSION (about a minute, once)"
  # --locked first; a registry mirror may lack a locked version, then resolve afresh.
  (cd / && { cargo install -q --force --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" \
    || cargo install -q --force cargo-fuzz --version "$CARGO_FUZZ_VERSION"; })
fi
# cargo-fuzz passes unstable flags (-Zsanitizer, coverage passes) to rustc;
# the stable compiler accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1

targets=(${FUZZ_TARGETS:-$(cd fuzz && cargo fuzz list)})
echo "fuzz: building ${#targets[@]} targets (sanitizer: $SANITIZER)"
(cd fuzz && cargo fuzz build -s "$SANITIZER" 2>&1 | grep -v '^ *Compiling') || true
(cd fuzz && cargo fuzz build -s "$SANITIZER" >/dev/null 2>&1)  # fails here if the build did

summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  before=$(ls "fuzz/artifacts/$t" | wc -l)
  if [ "$SMOKE" = 1 ]; then
    limits=(-runs=0)                          # the seed inputs, once each
    dirs=("seeds/$t")
  elif [ -n "${FUZZ_RUNS:-}" ]; then
    limits=("-runs=$FUZZ_RUNS")
    dirs=("corpus/$t" "seeds/$t")
  else
    limits=("-max_total_time=$SECONDS_PER_TARGET")
    dirs=("corpus/$t" "seeds/$t")
  fi
  log="$(mktemp)"
  echo "fuzz: $t ${limits[*]}"
  status=0
  (cd fuzz && cargo fuzz run -s "$SANITIZER" "$t" "${dirs[@]}" -- "${limits[@]}" -print_final_stats=1) >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  crashes=$(( $(ls "fuzz/artifacts/$t" | wc -l) - before ))
  if [ "$status" != 0 ]; then
    failed=1
    grep -E -A12 "panicked at|ERROR: libFuzzer|Test unit written" "$log" | head -40 || tail -40 "$log"
    [ "$crashes" -gt 0 ] || crashes="? (exit $status)"
  fi
  summary+=("$(printf '%-14s %12s executions %6ss  crashes: %s' "$t" "${execs:-?}" "${secs:-?}" "$crashes")")
  rm -f "$log"
done

js="skipped"
if [ "$JS_ITERATIONS" != 0 ]; then
  SETUP_QUIET=1 bash scripts/setup.sh
  [ -f pkg/tracelink_wasm_bg.wasm ] || bash scripts/build.sh
  echo "fuzz: JS API, $JS_ITERATIONS iterations"
  if node tests/fuzz/js_api.fuzz.mjs --iterations "$JS_ITERATIONS" ${FUZZ_JS_SEED:+--seed "$FUZZ_JS_SEED"}; then
    js="$JS_ITERATIONS iterations, 0 findings"
  else
    js="$JS_ITERATIONS iterations, FINDINGS (listed above)"
    failed=1
  fi
fi

printf '\nfuzz summary (sanitizer: %s)\n' "$SANITIZER"
printf '  %s\n' "${summary[@]}"
printf '  %-14s %s\n' "js_api" "$js"
exit "$failed"
