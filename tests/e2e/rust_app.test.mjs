// The Rust example app (examples/rust-app: plain wasm-bindgen, the opentelemetry API and
// tracelink's WebTracerProvider + tracelink::fetch) in headless Chromium, against the real
// FastAPI + OpenTelemetry backend on another origin (real CORS) and a real rotel collector.
// A click on "Ping the backend" must give one trace: the app's action span → its CLIENT
// span → the backend's SERVER span, in both protocols;
// http/protobuf exported cross-origin and flushed by the app's flush(), http/json through a
// same-origin relay and flushed by page hide (keepalive).
// Needs examples/rust-app/pkg (scripts/build.sh builds it: scripts/build-rust-app.sh).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, startCollector, startBackend, startStaticServer, corsFront, stopAll } from '../support/peers.mjs';
import { launchChromium, openPage } from '../support/browser.mjs';

const APP_WASM = path.join(ROOT, 'examples', 'rust-app', 'pkg', 'rust_app_bg.wasm');
let collector, site, backend, corsCollector, browser;

before(async () => {
  assert.ok(fs.existsSync(APP_WASM), `${APP_WASM} is missing: run scripts/build-rust-app.sh (scripts/build.sh does)`);
  collector = await startCollector();
  site = await startStaticServer({ root: ROOT, routes: { '/v1/traces': corsFront({ upstream: collector.httpUrl }) } });
  backend = await startBackend({ collectorUrl: collector.httpUrl, corsOrigins: [site.url] });
  corsCollector = await startStaticServer({ routes: { '/v1/traces': corsFront({ upstream: collector.httpUrl, allowOrigins: [site.url] }) } });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stopAll();
});

async function spansOf(traceId, n, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spans = collector.readSpans().filter((s) => s.traceId === traceId);
    if (spans.length >= n) return spans;
    if (Date.now() > deadline) throw new Error(`trace ${traceId}: ${spans.length}/${n} spans: ${spans.map((s) => s.name)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const [protocol, exportVia, flushBy] of [['http/protobuf', 'cors', 'flush()'], ['http/json', 'relay', 'page hide']]) {
  test(`Rust app: click → CLIENT span → backend SERVER span in one trace; ${protocol} via ${exportVia}, flushed by ${flushBy}`, async () => {
    const otlp = exportVia === 'cors' ? `${corsCollector.url}/v1/traces` : '/v1/traces';
    // Page hide: spans wait 10 minutes for a batch, so only page hide can send them.
    const query = new URLSearchParams({ api: backend.url, otlp, protocol, ...(flushBy === 'page hide' ? { batch_delay_ms: 600000 } : {}) });
    const p = await openPage(browser, `${site.url}/examples/rust-app/index.html?${query}`);
    await p.waitForSelector('#ping:not([disabled])');
    await p.click('#ping');
    await p.waitForSelector('#result[data-trace-id]');
    const { traceId, text } = await p.$eval('#result', (e) => ({ traceId: e.dataset.traceId, text: e.textContent }));
    assert.match(traceId, /^[0-9a-f]{32}$/);
    const answer = JSON.parse(text);
    assert.equal(answer.ok, true, text);
    assert.equal(answer.server_span.trace_id, traceId, 'the backend continued the click\'s trace');

    if (flushBy === 'flush()') {
      await p.evaluate(async () => (await import(new URL('./pkg/rust_app.js', location.href).href)).flush());
    } else {
      await new Promise((r) => setTimeout(r, 500));
      const early = collector.readSpans().filter((s) => s.traceId === traceId && s.resource['service.name'] === 'rust-app');
      assert.deepEqual(early, [], 'nothing exported before the page hides');
      await p.goto('about:blank'); // visibilitychange → hidden and pagehide: keepalive export
    }
    assert.deepEqual(p.pageErrors, []);

    const spans = await spansOf(traceId, 3);
    const action = spans.find((s) => s.name === 'ui.click ping');
    assert.ok(action, `the action span: ${spans.map((s) => s.name)}`);
    assert.equal(action.parentSpanId, '', 'the click starts the trace');
    assert.equal(action.resource['service.name'], 'rust-app');
    assert.equal(action.resource['telemetry.sdk.language'], 'rust');
    const client = spans.find((s) => s.kind === 3 && s.resource['service.name'] === 'rust-app');
    assert.ok(client, 'the CLIENT span of tracelink::fetch');
    assert.equal(client.parentSpanId, action.spanId, "the CLIENT span's parent is the action span");
    assert.equal(client.name, 'GET');
    assert.equal(client.attributes['url.full'], `${backend.url}/api/ping`);
    assert.equal(client.attributes['http.response.status_code'], 200);
    const server = spans.find((s) => s.kind === 2 && s.resource['service.name'] !== 'rust-app');
    assert.ok(server, `the backend's SERVER span: ${spans.map((s) => `${s.name}/${s.kind}`)}`);
    assert.equal(server.parentSpanId, client.spanId, "the backend SERVER span's parent is the Rust app's CLIENT span");
    assert.equal(server.spanId, answer.server_span.span_id);
    assert.equal(client.attributes['tracelink.response.span_id'], server.spanId, 'server span read back from traceresponse');
    assert.equal(answer.received.traceparent.slice(36, 52), client.spanId, 'the traceparent the backend received');
    await p.close();
  });
}

test("README's From Rust snippets are excerpts of examples/rust-app, and its versions are Cargo.toml's", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## From Rust\n');
  assert.ok(start >= 0, 'README.md has a "## From Rust" section');
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1));
  const lines = (text) => text.split('\n').map((l) => l.trim()).filter(Boolean);
  const source = lines(fs.readFileSync(path.join(ROOT, 'examples', 'rust-app', 'src', 'lib.rs'), 'utf8'));
  const blocks = [...section.matchAll(/```rust\n([\s\S]*?)```/g)].map((m) => lines(m[1]));
  assert.ok(blocks.length >= 4, `found ${blocks.length} rust blocks`);
  for (const want of blocks) {
    const found = source.some((_, i) => want.every((l, j) => source[i + j] === l));
    assert.ok(found, `not an excerpt of examples/rust-app/src/lib.rs:\n${want.join('\n')}`);
  }
  // The opentelemetry minor the README tells apps to use is the one the crate implements.
  const cargo = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
  const minor = /^opentelemetry = \{ version = "(\d+\.\d+)\./m.exec(cargo)?.[1];
  assert.ok(minor, 'Cargo.toml pins opentelemetry');
  assert.ok(section.includes(`opentelemetry = { version = "${minor}", default-features = false, features = ["trace"] }`), `README's Cargo line uses opentelemetry ${minor}`);
  assert.ok(section.includes(`API **${minor}**`), `README names the implemented minor ${minor}`);
  const example = fs.readFileSync(path.join(ROOT, 'examples', 'rust-app', 'Cargo.toml'), 'utf8');
  assert.match(example, new RegExp(`^opentelemetry = \\{ version = "${minor.replace('.', '\\.')}\\.`, 'm'), 'the example uses the same minor');
});
