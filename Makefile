# tracelink: the commands a new user runs. Each installs what it needs first.
.PHONY: test demo bench build fuzz
test:   ## every test: host, wasm (Node + Chromium), collector, browser e2e
	bash scripts/test.sh
demo:   ## the demo: backend, collector, Jaeger UI, demo page on 127.0.0.1
	bash scripts/demo.sh
bench:  ## tracelink vs OpenTelemetry JS, one table + JSON
	bash scripts/bench.sh
build:  ## the npm package in pkg/
	bash scripts/build.sh
fuzz:   ## cargo-fuzz targets (FUZZ_SECONDS each, default 60) + JS API fuzz; not part of `make test`
	bash scripts/fuzz.sh
