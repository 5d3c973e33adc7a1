// Browser workers in headless Chromium: examples/web-worker.js and
// examples/service-worker.js, as written, served by the real FastAPI +
// OpenTelemetry backend (same origin: the page, the workers, /pkg/, /api/ and
// the OTLP relay /otlp/v1/traces to the real rotel collector). Each worker's
// traced fetch must join the backend's trace, and its spans must arrive
// although the worker may be stopped right after (the flush pattern).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startCollector, startBackend, stopAll } from '../support/peers.mjs';
import { launchChromium } from '../support/browser.mjs';
import { EXAMPLES, FIXTURES, PKG, assertJoined, tempDir } from './support.mjs';

let collector, backend, browser;

before(async () => {
  collector = await startCollector();
  const site = tempDir('tracelink-workers-site-');
  fs.copyFileSync(path.join(FIXTURES, 'browser', 'index.html'), path.join(site, 'index.html'));
  for (const f of ['web-worker.js', 'service-worker.js']) fs.copyFileSync(path.join(EXAMPLES, f), path.join(site, f));
  backend = await startBackend({ collectorUrl: collector.httpUrl, staticDir: site, pkgDir: PKG, corsOrigins: '' });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stopAll();
});

/** A fresh browser context (no service worker left from another test) on the page. */
async function openPage() {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  context.on('weberror', (e) => errors.push(e.error()));
  await page.goto(`${backend.url}/`);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  return { context, page, errors };
}

test('Web Worker (examples/web-worker.js): traced fetch joins the backend trace; flushed before done', async () => {
  const { context, page, errors } = await openPage();
  // The page terminates the worker as soon as it answers.
  const outs = [await page.evaluate(() => runWebWorker('/api/ping')), await page.evaluate(() => runWebWorker('/api/ping'))];
  for (const out of outs) {
    assert.equal(out.status, 200);
    assert.equal(out.body.received.traceparent.slice(3, 35), out.traceId);
    const { spans, clients, servers } = await assertJoined(collector, out.traceId, 'my-web-worker');
    const op = spans.find((s) => s.name === 'worker job');
    assert.equal(clients[0].parentSpanId, op.spanId, 'the fetch is a child of the worker operation');
    assert.equal(servers[0].spanId, out.body.server_span.span_id);
    assert.equal(clients[0].attributes['url.full'], `${backend.url}/api/ping`, 'the relative URL resolved against the worker');
  }
  assert.deepEqual(errors, []);
  await context.close();
});

test('Service Worker (examples/service-worker.js): the page\'s fetches go out traced; waitUntil(flush()) exports', async () => {
  const { context, page, errors } = await openPage();
  const script = await page.evaluate(() => installServiceWorker());
  assert.equal(script, `${backend.url}/service-worker.js`);
  const outs = await page.evaluate(() => Promise.all([1, 2, 3].map(async () => (await fetch('/api/ping')).json())));
  // Stop the service worker well before its 1 s export timer: only what the
  // waitUntil(flush()) exported survives (as when the browser stops an idle worker).
  await new Promise((r) => setTimeout(r, 300));
  const cdp = await context.newCDPSession(page);
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  const traceIds = new Set();
  for (const out of outs) {
    const traceparent = out.received.traceparent;
    assert.match(traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]$/, 'the service worker added traceparent');
    const traceId = traceparent.slice(3, 35);
    traceIds.add(traceId);
    const { clients, servers } = await assertJoined(collector, traceId, 'my-service-worker');
    assert.equal(clients[0].spanId, traceparent.slice(36, 52), 'the header named the service worker fetch span');
    assert.equal(clients[0].parentSpanId, '', 'a root span: the page sent no context');
    assert.equal(servers[0].spanId, out.server_span.span_id);
  }
  assert.equal(traceIds.size, 3);
  assert.deepEqual(errors, []);
  await context.close();
});
