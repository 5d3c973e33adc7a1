// Self-test of the peers harness: node --test tests/support/peers.selftest.mjs
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
  corsFront, recorder, request, startBackend, startCollector, startStaticServer, stopAll,
} from './peers.mjs';

const hex = (bytes) => randomBytes(bytes).toString('hex');
const PAGE_ORIGIN = 'http://page.test:8080';

let collector;
let backend;

before(async () => {
  collector = await startCollector();
  backend = await startBackend({ collectorUrl: collector.httpUrl, corsOrigins: [PAGE_ORIGIN] });
});

after(async () => {
  await stopAll();
});

test('a traceparent sent to the backend continues into its server span, read back from the collector', async () => {
  const traceId = hex(16);
  const parent = hex(8);
  const res = await fetch(`${backend.url}/api/ping`, { headers: { traceparent: `00-${traceId}-${parent}-01` } });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.received.traceparent, `00-${traceId}-${parent}-01`);
  assert.equal(body.server_span.trace_id, traceId);
  assert.equal(res.headers.get('traceresponse'), `00-${traceId}-${body.server_span.span_id}-01`);

  const [server] = await collector.waitForSpans((s) => s.traceId === traceId && s.name === 'GET /api/ping');
  assert.equal(server.parentSpanId, parent);
  assert.equal(server.spanId, body.server_span.span_id);
  assert.equal(server.kind, 2); // SERVER
  assert.equal(server.resource['service.name'], 'afirgen-backend');
  assert.deepEqual(collector.processorErrors(), []);
});

test('the backend relays a same-origin OTLP/JSON export to the collector', async () => {
  const traceId = hex(16);
  const spanId = hex(8);
  const res = await request(backend.relayUrl, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: otlpJson(traceId, spanId, 'via relay'),
  });
  assert.equal(res.status, 200);
  const [span] = await collector.waitForSpans((s) => s.traceId === traceId);
  assert.equal(span.spanId, spanId);
  assert.equal(span.name, 'via relay');
});

test('static server: browser MIME types, recorder, CORS front to the collector', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tracelink-static-'));
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>t</title>');
  fs.writeFileSync(path.join(root, 'mod.mjs'), 'export {};');
  fs.writeFileSync(path.join(root, 'x.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  const rec = recorder({ body: { ok: true }, contentType: 'application/json' });
  const front = corsFront({ upstream: collector.httpUrl, allowOrigins: [PAGE_ORIGIN] });
  const site = await startStaticServer({ root, routes: { '/record': rec, '/v1/traces': front } });

  const types = {};
  for (const file of ['/', '/mod.mjs', '/x.wasm']) types[file] = (await request(site.url + file)).headers['content-type'];
  assert.deepEqual(types, {
    '/': 'text/html; charset=utf-8', '/mod.mjs': 'text/javascript; charset=utf-8', '/x.wasm': 'application/wasm',
  });
  assert.equal((await request(`${site.url}/missing.js`)).status, 404);
  assert.equal((await request(`${site.url}/..%2f..%2fetc%2fpasswd`)).status, 403);

  await request(`${site.url}/record?q=1`, { method: 'POST', headers: { traceparent: 'tp', origin: PAGE_ORIGIN }, body: 'hi' });
  const [seen] = await rec.waitFor(1);
  assert.deepEqual([seen.method, seen.path, seen.query, seen.headers.traceparent, seen.body],
    ['POST', '/record', '?q=1', 'tp', 'hi']);

  const preflight = await request(`${site.url}/v1/traces`, { method: 'OPTIONS', headers: {
    origin: PAGE_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers['access-control-allow-origin'], PAGE_ORIGIN);
  assert.equal(preflight.headers['access-control-allow-credentials'], 'true');
  const denied = await request(`${site.url}/v1/traces`, { method: 'OPTIONS', headers: { origin: 'http://evil.test' } });
  assert.equal(denied.status, 403);

  const traceId = hex(16);
  const exported = await request(`${site.url}/v1/traces`, { method: 'POST',
    headers: { origin: PAGE_ORIGIN, 'content-type': 'application/json' }, body: otlpJson(traceId, hex(8), 'via front') });
  assert.equal(exported.status, 200);
  assert.equal(exported.headers['access-control-allow-origin'], PAGE_ORIGIN);
  await collector.waitForSpans((s) => s.traceId === traceId && s.name === 'via front');
  assert.deepEqual(front.requests.map((r) => [r.method, r.status]), [['OPTIONS', 204], ['OPTIONS', 403], ['POST', 200]]);
  await site.stop();
});

test('startup failures name the peer and the reason', async () => {
  await assert.rejects(startBackend({}), /backend: collectorUrl is required/);
  const taken = await startStaticServer({});
  await assert.rejects(startBackend({ collectorUrl: collector.httpUrl, env: { BACKEND_PORT: String(taken.port) } }),
    new RegExp(`backend: port 127.0.0.1:${taken.port} is already in use`));
  await taken.stop();
  // The process dies during startup: the error carries its exit and log tail.
  await assert.rejects(startBackend({ collectorUrl: collector.httpUrl, staticDir: '/nonexistent-dir' }),
    /backend \(demo\/backend\): exited with code 1 before it was ready; log tail[^]*nonexistent-dir/);
});

test('stop() ends the processes', async () => {
  const c = await startCollector();
  await c.stop();
  await assert.rejects(request(c.tracesUrl, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: '{"resourceSpans":[]}' }), /ECONNREFUSED/);
});

function otlpJson(traceId, spanId, name) {
  const now = BigInt(Date.now()) * 1_000_000n;
  return JSON.stringify({ resourceSpans: [{
    resource: { attributes: [{ key: 'service.name', value: { stringValue: 'peers-selftest' } }] },
    scopeSpans: [{ scope: { name: 'selftest' }, spans: [{
      traceId, spanId, name, kind: 3, startTimeUnixNano: String(now - 1_000_000n), endTimeUnixNano: String(now),
    }] }],
  }] });
}
