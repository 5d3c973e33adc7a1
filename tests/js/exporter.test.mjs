// The exporter's failure modes, end to end in Node: the wasm policy driven by
// the JS transport against a local OTLP/JSON sink that answers as told.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { gunzipSync } from 'node:zlib';

const root = new URL('../../', import.meta.url);
const wasm = readFileSync(new URL('pkg/tracelink-full.wasm', root));
const { setupTracing } = await import(new URL('pkg/tracelink.js', root));
const servers = [];
after(() => servers.forEach((s) => s.close()));

/** An OTLP/JSON sink: `script` answers each request in turn (the last repeats). */
async function sink(script) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      // Bodies arrive gzip'd when the request says so (the default outside pages).
      const wire = Buffer.concat(chunks);
      const body = (req.headers['content-encoding'] === 'gzip' ? gunzipSync(wire) : wire).toString('utf8');
      const spans = JSON.parse(body).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
      requests.push({ spans, bytes: Buffer.byteLength(body), headers: req.headers, at: Date.now() });
      const [status, headers = {}, reply = '{}'] = script[Math.min(requests.length - 1, script.length - 1)];
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(reply);
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { url: `http://127.0.0.1:${server.address().port}/v1/traces`, requests };
}

async function burst(t, n, name = 'span') {
  for (let i = 0; i < n; i++) t.startSpan(name, { attributes: { i } }).end();
}

const setup = (otlpEndpoint, extra = {}) =>
  setupTracing({ serviceName: 'exporter-tests', otlpEndpoint, protocol: 'http/json', wasm, env: {}, ...extra });

test('503 with Retry-After is retried, then everything arrives once', async () => {
  const s = await sink([[503, { 'retry-after': '1' }], [200]]);
  const t = await setup(s.url, { otlpHeaders: { authorization: 'Bearer collector-only' } });
  await burst(t, 20);
  await t.flush(10000);
  const stats = t.stats();
  assert.equal(s.requests.length, 2);
  assert.equal(s.requests[1].spans.length, 20);
  assert.deepEqual(s.requests[0].spans.map((x) => x.spanId), s.requests[1].spans.map((x) => x.spanId), 'same spans resent');
  assert.equal(s.requests[0].headers.authorization, 'Bearer collector-only', 'otlpHeaders go to the collector');
  assert.equal(stats.exported, 20);
  assert.equal(stats.retried, 1);
  assert.equal(stats.dropped, 0);
  await t.shutdown();
});

test('Retry-After as an HTTP-date: the retry waits for it (read by JS, not wasm)', async () => {
  // A date 4 s ahead (whole seconds: at least 3 s from now); without it the
  // backoff would retry after 0.8 to 1.2 s.
  const at = new Date(Date.now() + 4000).toUTCString();
  const s = await sink([[429, { 'retry-after': at }], [200]]);
  const t = await setup(s.url);
  await burst(t, 5);
  await t.flush(15000);
  assert.equal(s.requests.length, 2);
  const gap = s.requests[1].at - s.requests[0].at;
  assert.ok(gap >= 2500, `retried after ${gap} ms, before the date`);
  assert.equal(t.stats().exported, 5);
  await t.shutdown();
});

test('a server clock in the Date header (read by JS) moves client spans onto the server time line', async () => {
  // No Server-Timing: the Date header is the only server time. It says the
  // server is a minute ahead.
  const app = http.createServer((req, res) => {
    res.setHeader('date', new Date(Date.now() + 60000).toUTCString());
    res.end('ok');
  });
  await new Promise((r) => app.listen(0, '127.0.0.1', r));
  servers.push(app);
  const s = await sink([[200]]);
  const t = await setup(s.url);
  for (let i = 0; i < 3; i++) await (await t.fetch(`http://127.0.0.1:${app.address().port}/`)).text();
  await t.flush(5000);
  const offsets = s.requests.flatMap((r) => r.spans).map((sp) =>
    Number(sp.attributes.find((a) => a.key === 'tracelink.clock_offset_ms')?.value.intValue ?? NaN));
  assert.equal(offsets.length, 3);
  // The first response is one sample (no estimate yet); two agree from the second on. A Date
  // is whole seconds, and servers cache it: the offset is within its 2.5 s precision.
  assert.ok(Number.isNaN(offsets[0]), `first span uncorrected: ${offsets}`);
  for (const o of offsets.slice(1)) assert.ok(Math.abs(o - 60000) <= 3000, `offsets: ${offsets}`);
  await t.shutdown();
});

test('HTTP-dates and Retry-After values are read as RFC 9110 says', async () => {
  const { httpDate, retryAfterMs } = await import(new URL('pkg/core.js', root));
  assert.equal(httpDate('Sun, 06 Nov 1994 08:49:37 GMT'), 784111777000);
  assert.equal(httpDate(' Thu, 01 Jan 1970 00:00:00 GMT\t'), 0);
  assert.equal(httpDate('Tue, 29 Feb 2000 00:00:00 GMT'), 951782400000);
  // Only IMF-fixdate: not the obsolete forms, nor what Date.parse would guess at.
  for (const v of ['Sunday, 06-Nov-94 08:49:37 GMT', 'Sun Nov  6 08:49:37 1994', 'Sun, 6 Nov 1994 08:49:37 GMT',
    'Sun, 31 Feb 2021 00:00:00 GMT', 'Sun, 06 Nov 1994 25:49:37 GMT', 'Sun, 06 Nov 1994 08:49:37 UTC', '1994-11-06', '', null, 42]) {
    assert.ok(Number.isNaN(httpDate(v)), JSON.stringify(v));
  }
  assert.equal(retryAfterMs('120'), 120000);
  assert.equal(retryAfterMs(' 007 '), 7000);
  assert.equal(retryAfterMs('Sun, 06 Nov 1994 08:49:37 GMT'), 0, 'a past date: now');
  const ahead = retryAfterMs(new Date(Date.now() + 60000).toUTCString());
  assert.ok(ahead > 58000 && ahead <= 60000, String(ahead));
  for (const v of ['-1', '1.5', 'soon', '', null]) assert.ok(Number.isNaN(retryAfterMs(v)), JSON.stringify(v));
});

test('400 is not retried: the batch is dropped and counted', async () => {
  const s = await sink([[400]]);
  const t = await setup(s.url);
  await burst(t, 7);
  await t.flush(5000);
  const stats = t.stats();
  assert.equal(s.requests.length, 1);
  assert.equal(stats.droppedFailed, 7);
  assert.equal(stats.failedRequests, 1);
  assert.equal(stats.dropped, 7);
  assert.equal(stats.retried, 0);
  await t.shutdown();
});

test('partial success: rejected spans are counted, the rest exported, no retry', async () => {
  const s = await sink([[200, {}, '{"partialSuccess":{"rejectedSpans":"3","errorMessage":"too old"}}']]);
  const t = await setup(s.url);
  await burst(t, 10);
  await t.flush(5000);
  const stats = t.stats();
  assert.equal(s.requests.length, 1);
  assert.equal(stats.droppedRejected, 3);
  assert.equal(stats.exported, 7);
  await t.shutdown();
});

test('batches split by count; every span exported exactly once', async () => {
  const s = await sink([[200]]);
  const t = await setup(s.url, { maxExportBatchSize: 50 });
  await burst(t, 120);
  await t.flush(5000);
  assert.deepEqual(s.requests.map((r) => r.spans.length).sort((a, b) => a - b), [20, 50, 50]);
  const ids = new Set(s.requests.flatMap((r) => r.spans.map((x) => x.spanId)));
  assert.equal(ids.size, 120);
  assert.equal(t.stats().exported, 120);
  await t.shutdown();
});

test('collector down: the queue stays bounded and every drop is counted', async () => {
  const dead = http.createServer();
  await new Promise((r) => dead.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${dead.address().port}/v1/traces`;
  dead.close();
  const t = await setup(url, { maxQueueSize: 100 });
  await burst(t, 5000);
  await t.flush(300); // resolves at its timeout: nothing can be delivered
  const s = t.stats();
  assert.equal(s.started, 5000);
  // maxQueueSize bounds what waits (as OpenTelemetry's); at most 2 requests
  // are in flight, each with at most what the queue held, and their spans go
  // back to the queue when they fail.
  assert.ok(s.queued + s.inFlight <= 3 * 100, JSON.stringify(s));
  assert.ok(s.droppedQueueFull >= 4700, JSON.stringify(s));
  assert.equal(s.exported + s.queued + s.inFlight + s.dropped, 5000, 'every span is accounted for');
  await t.shutdown(50);
  const end = t.stats();
  assert.equal(end.exported + end.queued + end.inFlight + end.dropped, 5000);
});

test('await flush() holds a Node process until it settles, even while exports wait to retry', async () => {
  const { execFileSync } = await import('node:child_process');
  const dead = http.createServer();
  await new Promise((r) => dead.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${dead.address().port}/v1/traces`;
  dead.close();
  const script = `
    import { readFileSync } from 'node:fs';
    const { setupTracing } = await import(${JSON.stringify(new URL('pkg/tracelink.js', root).href)});
    const t = await setupTracing({ serviceName: 'exit', otlpEndpoint: ${JSON.stringify(url)}, wasm: readFileSync(${JSON.stringify(new URL('pkg/tracelink-full.wasm', root).pathname)}), env: {} });
    t.startSpan('s').end();
    await t.flush(800);
    console.log(JSON.stringify(t.stats()));
  `;
  // Before the fix, the unref'd timers let Node exit with the flush pending (code 13).
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const stats = JSON.parse(out.trim());
  assert.ok(stats.retried >= 1, 'it was retrying while the flush waited');
  assert.equal(stats.queued + stats.inFlight + stats.exported + stats.dropped, 1, 'the span is accounted for');
});

