// Proof under faults, in headless Chromium: the page exports to a real
// collector (rotel) through a same-origin front that fails on command
// (tests/support/collector-front.mjs), with offline persistence in IndexedDB.
// For each scenario, once the dust settles:
//   started = exported + dropped (by reason) + unsampled + persisted,
//   persisted = sent from the store + dropped from it + still stored (across page loads),
//   no span arrives twice at the collector (by span id), and
//   everything that fit the bounds arrives.
// Counts, not timings. Each scenario has its own browser context (its own IndexedDB).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT, startCollector, startStaticServer, stopAll } from '../support/peers.mjs';
import { collectorFront } from '../support/collector-front.mjs';
import { launchChromium } from '../support/browser.mjs';

let collector, front, site, browser, pageUrl;

before(async () => {
  collector = await startCollector();
  front = collectorFront({ upstream: collector.httpUrl });
  // The page's origin serves the repo and the front at /v1/traces (a same-origin relay).
  site = await startStaticServer({ root: ROOT, routes: { '/v1/traces': front.handler } });
  pageUrl = `${site.url}/tests/e2e/pages/index.html`;
  browser = await launchChromium();
});

after(async () => {
  front?.set('pass');
  await browser?.close();
  await stopAll();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `f()` (may be async) until truthy; 20 s at most. */
async function until(what, f) {
  for (let i = 0; i < 200; i++) {
    if (await f()) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function openPage(context) {
  const page = await context.newPage();
  page.pageErrors = [];
  page.on('pageerror', (e) => page.pageErrors.push(e));
  await page.goto(pageUrl);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  return page;
}

/** setupTracing in the page (as globalThis.t), once persistence has opened (or not). */
async function setup(page, serviceName, options = {}) {
  return page.evaluate(async ([serviceName, options]) => {
    globalThis.t = await tracelink.setupTracing({ serviceName, otlpEndpoint: '/v1/traces', scheduleDelayMillis: 50, ...options });
    while (t.stats().persistence === 'opening') await new Promise((r) => setTimeout(r, 20));
    return t.stats();
  }, [serviceName, options]);
}

const stats = (page) => page.evaluate(() => t.stats());

function spans(page, n, name = 'work') {
  return page.evaluate(([n, name]) => {
    for (let i = 0; i < n; i++) t.startSpan(name, { attributes: { i } }).end();
  }, [n, name]);
}

/** Waits until `pred(stats)` holds in the page; returns the stats. */
async function waitStats(page, what, pred) {
  let s;
  await until(what, async () => pred(s = await stats(page))).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(s)}`);
  });
  return s;
}

/** This page's accounting, once nothing is live, queued or in flight. */
function assertAccounted(s) {
  assert.equal(s.live + s.queued + s.inFlight, 0, `settled: ${JSON.stringify(s)}`);
  assert.equal(s.started, s.exported + s.dropped + s.unsampled + s.persisted,
    `started = exported + dropped + unsampled + persisted: ${JSON.stringify(s)}`);
  assert.equal(s.internalErrors, 0);
}

/** The spans of `serviceName` at the collector once `expected` arrived: each exactly once. */
async function delivered(serviceName, expected) {
  const mine = () => collector.readSpans().filter((x) => x.resource['service.name'] === serviceName);
  await until(`${expected} spans of ${serviceName} at the collector`, () => mine().length >= expected);
  await sleep(300); // a late duplicate would show up now
  const got = mine();
  assert.equal(new Set(got.map((x) => x.spanId)).size, got.length, 'no span delivered twice');
  assert.equal(got.length, expected, 'everything expected arrived, nothing else');
  return got;
}

test('collector down then up: retries exhausted while the page lives are stored, then sent once', async () => {
  const context = await browser.newContext();
  const page = await openPage(context);
  front.set('down');
  assert.equal((await setup(page, 'faults-down')).persistence, 'indexeddb');
  await spans(page, 20);
  // 5 attempts, about 8 s of backoff; then to the store instead of the bin.
  const stored = await waitStats(page, 'the spans stored', (s) => s.persisted === 20);
  assert.equal(stored.droppedRetriesExhausted, 0);
  assert.equal(stored.exported, 0);
  assert.equal(stored.persistedStored, 20);
  front.set('pass');
  await page.evaluate(() => t.flush(10000)); // flush also sends the store
  const s = await stats(page);
  assertAccounted(s);
  assert.equal(s.persistedSent, 20);
  assert.equal(s.persistedStored + s.persistedDropped, 0);
  await delivered('faults-down', 20);
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test('a 429 storm with Retry-After: retried after each pause, nothing lost or doubled', async () => {
  const context = await browser.newContext();
  const page = await openPage(context);
  front.set('status', { status: 429, retryAfter: '1', times: 3 });
  await setup(page, 'faults-429', { maxExportBatchSize: 10 });
  await spans(page, 40);
  await page.evaluate(() => t.flush(20000));
  const s = await stats(page);
  assertAccounted(s);
  assert.equal(s.exported, 40);
  assert.equal(s.failedRequests, 3);
  assert.equal(s.persisted, 0, 'a short Retry-After is waited out, not stored');
  await delivered('faults-429', 40);
  await context.close();
});

test('503 flapping: every span arrives once', async () => {
  const context = await browser.newContext();
  const page = await openPage(context);
  front.set('flap', { status: 503, fail: 2, pass: 2 });
  await setup(page, 'faults-flap', { maxExportBatchSize: 20, sampleRate: 0.5 });
  await spans(page, 120);
  await page.evaluate(() => t.flush(20000));
  const s = await stats(page);
  assertAccounted(s);
  assert.ok(s.unsampled > 0 && s.failedRequests >= 1, JSON.stringify(s));
  assert.equal(s.exported, 120 - s.unsampled);
  front.set('pass');
  await delivered('faults-flap', s.exported);
  await context.close();
});

test('browser offline then online: batches are stored while offline, sent once on the online event', async () => {
  const context = await browser.newContext();
  const page = await openPage(context);
  front.set('pass');
  await setup(page, 'faults-offline', { maxExportBatchSize: 10 });
  await context.setOffline(true);
  await page.waitForFunction(() => navigator.onLine === false);
  await spans(page, 30);
  const offline = await waitStats(page, 'the spans stored', (s) => s.persisted === 30);
  assert.equal(offline.requests, 0, 'nothing was sent while offline');
  assert.equal(offline.persistedStored, 30);
  assertAccounted(offline);
  await context.setOffline(false);
  const s = await waitStats(page, 'the store sent', (x) => x.persistedSent === 30);
  assertAccounted(s);
  assert.equal(s.persistedStored + s.persistedDropped, 0);
  await delivered('faults-offline', 30);
  await context.close();
});

test('navigator.onLine wrongly false: spans are stored, and the first stored body delivered proves the network', async () => {
  const context = await browser.newContext();
  await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'onLine', { get: () => false }));
  const page = await openPage(context);
  front.set('pass');
  await setup(page, 'faults-online-lies');
  await spans(page, 10);
  await waitStats(page, 'the spans stored', (s) => s.persisted === 10);
  await page.evaluate(() => t.flush(10000)); // sends the store: it works, so the network is there
  await spans(page, 5);
  await page.evaluate(() => t.flush(10000));
  const s = await stats(page);
  assertAccounted(s);
  assert.equal(s.persistedSent, 10);
  assert.equal(s.exported, 5, 'sent directly once an answer came');
  await delivered('faults-online-lies', 15);
  await context.close();
});

test('the tab closed in the middle of an export: what was in flight and what was queued arrive once', async () => {
  const context = await browser.newContext();
  const page = await openPage(context);
  front.set('hold');
  await setup(page, 'faults-close', { maxExportBatchSize: 25 });
  await spans(page, 100);
  await until('two exports held at the collector', () => front.held >= 2);
  const s = await stats(page);
  assert.equal(s.started, 100);
  assert.equal(s.inFlight, 50, 'two batches in flight');
  await page.close({ runBeforeUnload: true }); // pagehide: the rest leaves with keepalive
  await until('the page-hide exports held too', () => front.held >= 4);
  front.set('pass');
  await delivered('faults-close', 100);
  await context.close();
});

test('a reload with spans persisted: collector down at page hide, up at the next load: delivered once', async () => {
  const context = await browser.newContext();
  let page = await openPage(context);
  front.set('down');
  await setup(page, 'faults-reload');
  await spans(page, 20);
  // The page has seen the collector fail (a retry pause is running) when it goes.
  const before = await waitStats(page, 'a failed export', (s) => s.failedRequests >= 1);
  assert.equal(before.started, 20);
  assert.equal(before.exported + before.dropped, 0);
  // The page hides: the queue goes to the store. The hide is the event the
  // browser fires, dispatched here so the write can commit before the reload:
  // whether Chromium lets an IndexedDB write begun in an unload's own pagehide
  // commit before it tears the page down is a race (README, Known limitations).
  await page.evaluate(() => dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false })));
  const hidden = await waitStats(page, 'the queue stored', (s) => s.persisted === 20 && s.persistedStored === 20);
  assert.equal(hidden.queued + hidden.inFlight, 0);
  await page.reload();
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  front.set('pass');
  await setup(page, 'faults-reload'); // the next load sends what the last one stored
  const after = await waitStats(page, 'the store sent', (s) => s.persistedSent === 20);
  assert.equal(after.persistedDropped + after.persistedStored, 0, 'page 1 persisted 20 = 20 sent by page 2');
  assert.equal(after.started, 0);
  await delivered('faults-reload', 20);
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

/** Stores `n` spans (batches of 5) in the context's IndexedDB from a page that is then closed. */
async function storeOffline(context, serviceName, n, options = {}) {
  const page = await openPage(context);
  await setup(page, serviceName, { maxExportBatchSize: 5, ...options });
  await context.setOffline(true);
  await page.waitForFunction(() => navigator.onLine === false);
  await spans(page, n);
  const s = await waitStats(page, 'the spans stored', (x) => x.persisted + x.droppedPersistFailed === n);
  await page.close();
  await context.setOffline(false);
  return s;
}

for (const locks of [true, false]) {
  test(`two tabs start together with spans stored: each span sent by exactly one (${locks ? 'Web Locks' : 'no Web Locks: the claim transaction alone'})`, async () => {
    const context = await browser.newContext();
    if (!locks) await context.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined }));
    const name = `faults-tabs-${locks ? 'locks' : 'nolocks'}`;
    front.set('pass');
    await storeOffline(context, name, 60);
    const [a, b] = await Promise.all([openPage(context), openPage(context)]);
    await Promise.all([setup(a, name), setup(b, name)]);
    await until('the store sent', async () => (await stats(a)).persistedSent + (await stats(b)).persistedSent >= 60);
    const [sa, sb] = [await stats(a), await stats(b)];
    assert.equal(sa.persistedSent + sb.persistedSent, 60, `${sa.persistedSent} + ${sb.persistedSent}`);
    assert.equal(sa.persistedDropped + sb.persistedDropped, 0);
    await delivered(name, 60);
    await context.close();
  });
}

test('bounds: the oldest stored spans make room (counted); a body over the bound is refused (counted); expired records are dropped (counted)', async () => {
  const context = await browser.newContext();
  front.set('pass');
  // About three 5-span bodies fit.
  const bound = await storeOffline(context, 'faults-bytes', 30, { persistMaxBytes: 1200 });
  assert.equal(bound.persisted, 30);
  assert.ok(bound.persistedDroppedBytes > 0, JSON.stringify(bound));
  assert.equal(bound.persistedStored + bound.persistedDroppedBytes, 30);
  const kept = bound.persistedStored;
  const page = await openPage(context);
  await setup(page, 'faults-bytes', { persistMaxBytes: 1200 });
  await waitStats(page, 'the store sent', (s) => s.persistedSent === kept);
  const got = await delivered('faults-bytes', kept);
  assert.ok(got.every((x) => x.attributes.i >= 30 - kept), 'the newest were kept');
  await page.close(); // an open page of the origin would send the next records itself (on the online event)

  const tooBig = await storeOffline(context, 'faults-too-big', 10, { persistMaxBytes: 100 });
  assert.equal(tooBig.droppedPersistFailed, 10, 'a body over persistMaxBytes is refused and counted');
  assertAccounted(tooBig);

  await storeOffline(context, 'faults-age', 10, { persistMaxAgeMs: 500 });
  await sleep(700);
  const aged = await openPage(context);
  await setup(aged, 'faults-age', { persistMaxAgeMs: 500 });
  const s = await waitStats(aged, 'the sweep', (x) => x.persistedDroppedAge === 10);
  assert.equal(s.persistedSent, 0);
  await sleep(300);
  assert.equal(collector.readSpans().filter((x) => x.resource['service.name'] === 'faults-age').length, 0);
  await context.close();
});

test('corrupt and foreign records are discarded and counted, never a crash; other setups\' records are left alone', async () => {
  const context = await browser.newContext();
  const page = await openPage(context);
  const endpoint = `${site.url}/v1/traces`;
  await page.evaluate(async (endpoint) => {
    const db = await new Promise((resolve, reject) => {
      const r = indexedDB.open('tracelink-outbox', 1);
      r.onupgradeneeded = () => r.result.createObjectStore('outbox', { keyPath: 'id', autoIncrement: true }).createIndex('key', 'key');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const key = `${endpoint} application/x-protobuf`;
    const tx = db.transaction('outbox', 'readwrite');
    const store = tx.objectStore('outbox');
    store.add({ hello: 'world' }); // foreign
    store.add({ key, endpoint, contentType: 'application/x-protobuf', body: 'not bytes', spans: 3, createdAt: Date.now() }); // corrupt
    store.add({ key, endpoint, contentType: 'application/x-protobuf', body: new Uint8Array([1, 2, 3]), spans: 'many', createdAt: Date.now() }); // corrupt
    // Well-formed but not OTLP: the collector refuses it (400).
    store.add({ key, endpoint, contentType: 'application/x-protobuf', body: new Uint8Array([0xff, 0xff, 0xff]), spans: 4, createdAt: Date.now() });
    // Another setup's (another endpoint), fresh: not ours to send or drop.
    const other = 'https://elsewhere.example/v1/traces';
    store.add({ key: `${other} application/json`, endpoint: other, contentType: 'application/json', body: new Uint8Array([123, 125]), spans: 1, createdAt: Date.now() });
    await new Promise((r) => { tx.oncomplete = r; });
    db.close();
  }, endpoint);
  const s0 = await setup(page, 'faults-corrupt');
  assert.equal(s0.persistence, 'indexeddb');
  const s = await waitStats(page, 'the sweep and the refused send', (x) => x.persistedDroppedCorrupt === 3 && x.persistedDroppedRefused === 4);
  assert.equal(s.persistedSent, 0);
  assert.equal(s.persistedDropped, 7);
  assert.equal(s.internalErrors, 0);
  const left = await page.evaluate(async () => {
    const db = await new Promise((r) => { const q = indexedDB.open('tracelink-outbox', 1); q.onsuccess = () => r(q.result); });
    return new Promise((r) => { const q = db.transaction('outbox').objectStore('outbox').getAll(); q.onsuccess = () => r(q.result.map((x) => x.endpoint)); });
  });
  assert.deepEqual(left, ['https://elsewhere.example/v1/traces']);
  // Tracing works as ever.
  await spans(page, 5);
  await page.evaluate(() => t.flush(10000));
  assertAccounted(await stats(page));
  await delivered('faults-corrupt', 5);
  assert.deepEqual(page.pageErrors, []);
  await context.close();
});

test('where IndexedDB refuses, or a foreign database holds the name, or persist: false: nothing breaks', async () => {
  front.set('pass');
  const refusing = await browser.newContext();
  await refusing.addInitScript(() => {
    // As in private modes and sandboxed frames that refuse storage.
    IDBFactory.prototype.open = function open() { throw new DOMException('The user denied permission to access the database.', 'SecurityError'); };
  });
  const foreign = await browser.newContext();
  const optedOut = await browser.newContext();
  const cases = [[refusing, 'faults-idb-refused', {}, 'unavailable'], [foreign, 'faults-idb-foreign', {}, 'unavailable'],
    [optedOut, 'faults-idb-off', { persist: false }, 'off']];
  for (const [context, name, options, mode] of cases) {
    const page = await openPage(context);
    if (context === foreign) {
      await page.evaluate(() => new Promise((resolve) => {
        const r = indexedDB.open('tracelink-outbox', 1);
        r.onupgradeneeded = () => r.result.createObjectStore('something-else');
        r.onsuccess = () => { r.result.close(); resolve(); };
      }));
    }
    assert.equal((await setup(page, name, options)).persistence, mode, name);
    await spans(page, 5);
    await page.evaluate(() => t.flush(10000));
    const s = await stats(page);
    assertAccounted(s);
    assert.equal(s.exported, 5);
    await delivered(name, 5);
    if (context === optedOut) {
      const dbs = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
      assert.ok(!dbs.includes('tracelink-outbox'), 'persist: false creates no database');
    }
    assert.deepEqual(page.pageErrors, [], name);
    await context.close();
  }
});
