// Proof under faults, in Node: the npm package exporting to a real collector
// (rotel) through a front that fails on command (tests/support/collector-front.mjs).
// Node has no IndexedDB, so persistence is unavailable here; the faults
// that do not need it are the same as in Chromium (tests/e2e/faults.test.mjs).
// For each scenario, once the dust settles: every span started is exported,
// dropped (by reason) or unsampled; no span arrives twice at the collector;
// everything not dropped arrives. Counts, not timings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startCollector, stopAll } from '../support/peers.mjs';
import { collectorFront } from '../support/collector-front.mjs';

const root = new URL('../../', import.meta.url);
const wasm = readFileSync(new URL('pkg/tracelink.wasm', root));
const { setupTracing } = await import(new URL('pkg/tracelink.js', root));

let collector, front, endpoint;
before(async () => {
  collector = await startCollector();
  front = collectorFront({ upstream: collector.httpUrl });
  endpoint = await front.listen();
});
after(async () => {
  await front?.stop();
  await stopAll();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `f()` until truthy (20 s at most). */
async function until(what, f) {
  for (let i = 0; i < 400; i++) {
    if (f()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function setup(serviceName, extra = {}) {
  return setupTracing({ serviceName, otlpEndpoint: endpoint, wasm, env: {}, scheduleDelayMillis: 50, ...extra });
}

function spans(t, n, name = 'work') {
  for (let i = 0; i < n; i++) t.startSpan(name, { attributes: { i } }).end();
}

/**
 * After the dust settles: the accounting holds and the collector has every
 * exported span exactly once. Returns the stats.
 */
async function settle(t, serviceName) {
  await t.flush(20000);
  const s = t.stats();
  assert.equal(s.queued + s.inFlight + s.live, 0, `settled: ${JSON.stringify(s)}`);
  assert.equal(s.persistence, 'unavailable', 'no IndexedDB in Node');
  assert.equal(s.started, s.exported + s.dropped + s.unsampled, `started = exported + dropped + unsampled: ${JSON.stringify(s)}`);
  const mine = () => collector.readSpans().filter((x) => x.resource['service.name'] === serviceName);
  await until(`${s.exported} spans at the collector`, () => mine().length >= s.exported);
  await sleep(300); // a late duplicate would show up now
  const got = mine();
  assert.equal(new Set(got.map((x) => x.spanId)).size, got.length, 'no span delivered twice');
  assert.equal(got.length, s.exported, 'everything exported arrived, nothing else');
  return s;
}

test('collector down (connection refused), then up: everything arrives once', async () => {
  await front.refuse();
  const t = await setup('faults-node-refused');
  spans(t, 30);
  await until('a failed export', () => t.stats().failedRequests >= 2);
  await front.accept();
  const s = await settle(t, 'faults-node-refused');
  assert.equal(s.exported, 30);
  assert.equal(s.dropped, 0);
  assert.ok(s.retried >= 2, JSON.stringify(s));
  await t.shutdown();
});

test('collector down beyond the retries: those spans are dropped and counted, later ones arrive', async () => {
  front.set('down');
  const t = await setup('faults-node-exhausted');
  spans(t, 12, 'lost');
  await until('retries exhausted', () => t.stats().droppedRetriesExhausted > 0); // 5 attempts, ~8 s of backoff
  front.set('pass');
  spans(t, 8, 'kept');
  const s = await settle(t, 'faults-node-exhausted');
  assert.equal(s.droppedRetriesExhausted, 12);
  assert.equal(s.exported, 8);
  assert.equal(s.failedRequests, 5);
  assert.ok(front.log.filter((e) => e.mode === 'down').length >= 5);
  await t.shutdown();
});

test('a 429 storm with Retry-After: retried after the pause, nothing lost or doubled', async () => {
  front.set('status', { status: 429, retryAfter: '1', times: 3 });
  const t = await setup('faults-node-429', { maxExportBatchSize: 10 });
  spans(t, 40);
  const s = await settle(t, 'faults-node-429');
  assert.equal(s.exported, 40);
  assert.equal(s.dropped, 0);
  assert.equal(s.failedRequests, 3, 'each 429 counted');
  assert.ok(s.retried >= 3);
  await t.shutdown();
});

test('503 flapping, sampled at 50%: every sampled span arrives once', async () => {
  front.set('flap', { status: 503, fail: 2, pass: 2 });
  const t = await setup('faults-node-flap', { maxExportBatchSize: 20, sampleRate: 0.5 });
  spans(t, 120);
  const s = await settle(t, 'faults-node-flap');
  assert.ok(s.unsampled > 0 && s.unsampled < 120, `unsampled: ${s.unsampled}`);
  assert.equal(s.exported, 120 - s.unsampled);
  assert.equal(s.dropped, 0);
  assert.ok(s.failedRequests >= 1 && s.retried >= 1, JSON.stringify(s));
  front.set('pass');
  await t.shutdown();
});
