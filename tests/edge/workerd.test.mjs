// Cloudflare Workers in workerd (from npm), serving on 127.0.0.1: the README's
// Worker (examples/cloudflare-worker.js, as written) and a probe Worker. The
// wasm goes in as the imported precompiled WebAssembly.Module; configuration
// comes from env bindings with the standard OTEL_* names; traced fetches go
// out through a network service that allows 127.0.0.1 to the real FastAPI +
// OpenTelemetry backend; spans reach the real rotel collector through
// ctx.waitUntil(tracing.flush()).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, startCollector, startBackend, stopAll } from '../support/peers.mjs';
import { EXAMPLES, FIXTURES, PKG, assertAllExported, assertJoined, run, runtime, serve, spanMillis, tempDir, traceSpans } from './support.mjs';

let collector, backend, workerd, urls;

before(async () => {
  collector = await startCollector();
  backend = await startBackend({ collectorUrl: collector.httpUrl });
  const ports = { EXAMPLE_PORT: await freePort(), PROBE_PORT: await freePort(), FROZEN_PORT: await freePort() };
  const dir = tempDir('tracelink-workerd-');
  const vars = { ...ports, OTLP_URL: collector.httpUrl, API_URL: backend.url };
  const config = fs.readFileSync(path.join(FIXTURES, 'workerd', 'config.capnp'), 'utf8')
    .replace(/\$([A-Z_]+)/g, (m, name) => String(vars[name] ?? m));
  fs.writeFileSync(path.join(dir, 'config.capnp'), config);
  fs.copyFileSync(path.join(EXAMPLES, 'cloudflare-worker.js'), path.join(dir, 'cloudflare-worker.js'));
  fs.copyFileSync(path.join(FIXTURES, 'workerd', 'probe-worker.js'), path.join(dir, 'probe-worker.js'));
  for (const f of ['tracelink.js', 'context.js', 'core.js', 'tracelink.wasm', 'tracelink-gzip.wasm', 'tracelink-full.wasm']) fs.copyFileSync(path.join(PKG, f), path.join(dir, f));
  workerd = await serve(runtime('workerd'), ['serve', 'config.capnp', '--verbose'], { cwd: dir, env: { ...process.env, PWD: dir }, port: ports.FROZEN_PORT });
  urls = {
    example: `http://127.0.0.1:${ports.EXAMPLE_PORT}`,
    probe: `http://127.0.0.1:${ports.PROBE_PORT}`,
    frozen: `http://127.0.0.1:${ports.FROZEN_PORT}`,
  };
});

after(async () => {
  if (process.env.EDGE_DEBUG) console.log(workerd?.output());
  await workerd?.stop();
  await stopAll();
});

async function getJson(url, init) {
  const res = await fetch(url, init);
  const text = await res.text();
  assert.equal(res.status, 200, `${url}: ${text}\n--- workerd log\n${workerd.output()}`);
  return JSON.parse(text);
}

/** /stats of a probe Worker once its waitUntil flushes are done. */
async function settledStats(base) {
  for (const deadline = Date.now() + 10_000; ;) {
    const out = await getJson(`${base}/stats`);
    if ((out.stats.queued === 0 && out.stats.inFlight === 0) || Date.now() > deadline) return out;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, '0')).join('');

test('examples/cloudflare-worker.js as written: continues the caller trace, joins the backend, exports via waitUntil', async () => {
  const callerTrace = hex(16);
  const callerSpan = hex(8);
  const out = await getJson(`${urls.example}/hello`, { headers: { traceparent: `00-${callerTrace}-${callerSpan}-01` } });
  assert.equal(out.status, 200);
  assert.equal(out.traceId, callerTrace, 'the Worker continued the incoming traceparent');
  const { spans, clients } = await assertJoined(collector, out.traceId, 'example-worker');
  const server = spans.find((s) => s.name === 'GET worker');
  assert.equal(server.kind, 2);
  assert.equal(server.parentSpanId, callerSpan, 'the Worker span is a child of the caller span');
  assert.equal(clients[0].parentSpanId, server.spanId, 'the fetch span is a child of the Worker span');
  assert.equal(server.resource['service.name'], 'example-worker', 'OTEL_SERVICE_NAME from the env binding');
});

test('Worker: nothing lost across 12 concurrent requests in one isolate', async () => {
  const outs = await Promise.all(Array.from({ length: 12 }, () => getJson(`${urls.example}/concurrent`)));
  const traceIds = new Set(outs.map((o) => o.traceId));
  assert.equal(traceIds.size, 12, 'a new trace per request without traceparent');
  for (const traceId of traceIds) await assertJoined(collector, traceId, 'example-worker');
  // Exactly one server and one client span per request: none lost, none sent twice.
  await new Promise((r) => setTimeout(r, 300));
  const ours = collector.readSpans().filter((s) => traceIds.has(s.traceId) && s.resource['service.name'] === 'example-worker');
  assert.equal(ours.length, 24);
  assert.equal(new Set(ours.map((s) => s.spanId)).size, 24);
});

test('Worker probe: OTEL_* env bindings, only fetch fields Workers accept, stats consistent', async () => {
  const out = await getJson(`${urls.probe}/probe`);
  assert.equal(out.status, 200);
  const { spans, servers } = await assertJoined(collector, out.traceId, 'probe-worker', 2);
  assert.equal(out.ping.received.traceparent.slice(36, 52),
    servers.find((s) => s.spanId === out.ping.server_span.span_id).parentSpanId);
  const probe = spans.find((s) => s.name === 'probe');
  assert.equal(probe.resource['deployment.environment'], 'workerd-test', 'OTEL_RESOURCE_ATTRIBUTES');
  assert.equal(probe.resource['service.version'], '7.0.0');

  const { stats, fetches } = await settledStats(urls.probe);
  assertAllExported(stats);
  const exports = fetches.filter((f) => f.url.endsWith('/v1/traces'));
  const app = fetches.filter((f) => f.url.endsWith('/api/ping'));
  assert.ok(exports.length >= 1);
  for (const f of exports) {
    // keepalive is added only when a page is hidden, which never happens in a Worker.
    assert.deepEqual(f.fields, ['body', 'headers', 'method', 'signal'], 'what the exporter passes');
  }
  assert.deepEqual(app.map((f) => f.fields), [
    ['headers', 'method', 'redirect', 'signal'], // the caller's fields, headers replaced
    ['headers'], // a Request: only the headers are replaced
  ]);
});

test('Worker clock: timeOrigin is 0, yet span times are absolute and ordered', async () => {
  const before = Date.now();
  const out = await getJson(`${urls.probe}/probe`);
  assert.equal(out.timeOrigin, 0, 'workerd: performance.timeOrigin is 0');
  assert.ok(Math.abs(out.perfNow - out.wallAtEnd) < 1000, 'performance.now() is epoch milliseconds');
  const spans = await traceSpans(collector, out.traceId, 4);
  for (const s of spans.filter((x) => x.resource['service.name'] === 'probe-worker')) {
    const [start, end] = spanMillis(s);
    assert.ok(start >= before - 2000 && end <= Date.now() + 2000, `${s.name}: ${start}..${end} near the test's clock`);
    assert.ok(start >= out.wallAtStart - 50 && end <= out.wallAtEnd + 50, `${s.name} within the request`);
    assert.ok(end >= start);
  }
  const [cpuStart, cpuEnd] = spanMillis(spans.find((s) => s.name === 'probe.cpu'));
  assert.ok(cpuEnd - cpuStart >= 25, 'workerd runs the clock during CPU work');
});

test('Worker with a frozen clock (as in production): CPU-only spans last 0 ms, I/O spans are real', async () => {
  const out = await getJson(`${urls.frozen}/probe`);
  const spans = await assertJoined(collector, out.traceId, 'frozen-worker', 2).then((r) => r.spans);
  const ours = spans.filter((s) => s.resource['service.name'] === 'frozen-worker');
  for (const s of ours) {
    const [start, end] = spanMillis(s);
    assert.ok(start >= out.wallAtStart - 1 && end <= out.wallAtEnd + 1, `${s.name}: ${start}..${end} within the request`);
    assert.ok(end >= start);
  }
  const [cpuStart, cpuEnd] = spanMillis(ours.find((s) => s.name === 'probe.cpu'));
  assert.equal(cpuEnd, cpuStart, 'no I/O, no time passes');
  const [opStart, opEnd] = spanMillis(ours.find((s) => s.name === 'probe'));
  assert.ok(opEnd > opStart, 'the fetches moved the clock');
  for (const c of ours.filter((s) => s.kind === 3)) {
    const [start, end] = spanMillis(c);
    assert.ok(start >= opStart && end <= opEnd, 'fetch spans inside the operation');
  }
  const { stats } = await settledStats(urls.frozen);
  assertAllExported(stats);
});

test('Worker: a span ended without waitUntil(flush()) waits for the next flush, and is not lost', async () => {
  const { traceId } = await getJson(`${urls.probe}/nowait`);
  await new Promise((r) => setTimeout(r, 1500)); // past the 1 s export timer
  const early = collector.readSpans().filter((s) => s.traceId === traceId);
  const { stats } = await getJson(`${urls.probe}/stats`);
  assert.deepEqual(early, [], 'the export timer died with the request');
  assert.equal(stats.queued, 1);
  await getJson(`${urls.probe}/probe`); // flushes everything queued
  const [late] = await traceSpans(collector, traceId, 1);
  assert.equal(late.name, 'probe.nowait');
  assertAllExported((await settledStats(urls.probe)).stats);
});

test('workerd test: without the imported module, setupTracing rejects with what to do', async () => {
  const dir = tempDir('tracelink-workerd-misuse-');
  for (const f of ['misuse.capnp', 'misuse-worker.js']) fs.copyFileSync(path.join(FIXTURES, 'workerd', f), path.join(dir, f));
  for (const f of ['tracelink.js', 'context.js', 'core.js', 'tracelink.wasm', 'tracelink-gzip.wasm', 'tracelink-full.wasm']) fs.copyFileSync(path.join(PKG, f), path.join(dir, f));
  const out = await run(runtime('workerd'), ['test', 'misuse.capnp'], { cwd: dir, env: { ...process.env, PWD: dir } });
  const log = out.stdout + out.stderr;
  assert.equal(out.code, 0, log);
  assert.match(log, /\[ PASS \] misuse/);
  assert.match(log, /cannot load the wasm from next to tracelink\.js: Invalid URL/);
  assert.match(log, /the imported module works/);
});
