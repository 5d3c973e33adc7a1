// Browser end-to-end: headless Chromium loads pkg/ from a page origin, makes
// traced fetches to the real FastAPI + OpenTelemetry backend on ANOTHER
// origin (real CORS), and exports to a real rotel collector, either across
// origins (through a CORS front) or through a same-origin relay path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT, startCollector, startBackend, startStaticServer, corsFront, recorder, stopAll } from '../support/peers.mjs';
import { launchChromium, openPage } from '../support/browser.mjs';

let collector, backend, site, corsCollector, stranger, strangerLog, browser;

before(async () => {
  collector = await startCollector();
  // The page's origin serves the repo (so /pkg/ and the test page) and a
  // same-origin relay at /v1/traces.
  site = await startStaticServer({ root: ROOT, routes: { '/v1/traces': corsFront({ upstream: collector.httpUrl }) } });
  backend = await startBackend({ collectorUrl: collector.httpUrl, corsOrigins: [site.url] });
  corsCollector = await startStaticServer({ routes: { '/v1/traces': corsFront({ upstream: collector.httpUrl, allowOrigins: [site.url] }) } });
  strangerLog = recorder({ body: 'stranger' });
  stranger = await startStaticServer({ routes: { '/*': strangerLog } });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  stopAll();
});

async function page() {
  const p = await openPage(browser, `${site.url}/tests/e2e/pages/index.html`);
  await p.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  return p;
}

async function spansOf(traceId, n, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spans = collector.readSpans().filter((s) => s.traceId === traceId);
    if (spans.length >= n) return spans;
    if (Date.now() > deadline) throw new Error(`trace ${traceId}: ${spans.length}/${n} spans: ${spans.map((s) => s.name)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

for (const [protocol, exportVia] of [['http/protobuf', 'cors'], ['http/json', 'relay']]) {
  test(`browser → backend joins one trace; export ${protocol} via ${exportVia}`, async () => {
    const p = await page();
    const otlpEndpoint = exportVia === 'cors' ? `${corsCollector.url}/v1/traces` : '/v1/traces';
    const out = await p.evaluate(async ({ backendUrl, strangerUrl, otlpEndpoint, protocol }) => {
      const t = await tracelink.setupTracing({
        serviceName: 'e2e-browser', serviceVersion: '1.2.3', otlpEndpoint, protocol,
        propagateTo: [backendUrl], instrumentFetch: true, correlationIdHeader: 'X-Correlation-ID',
      });
      const result = await t.traceOperation('fir.create', { correlationId: 'corr-e2e', attributes: { fir_source: 'e2e' } }, async (span) => {
        const res = await fetch(`${backendUrl}/api/firs`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ complainant: 'A. Tester', description: 'wallet lost at the station', location: 'Platform 2' }),
        });
        const body = await res.json();
        const other = await (await fetch(`${strangerUrl}/probe`)).text();
        return { traceId: span.traceId, opSpanId: span.spanId, status: res.status, body, other,
          traceresponse: res.headers.get('traceresponse'), correlation: res.headers.get('x-correlation-id') };
      });
      await t.flush();
      return { ...result, stats: t.stats() };
    }, { backendUrl: backend.url, strangerUrl: stranger.url, otlpEndpoint, protocol });

    assert.equal(out.status, 201, JSON.stringify(out.body));
    assert.equal(out.other, 'stranger', 'the non-allowlisted request still works');
    assert.equal(out.correlation, 'corr-e2e', 'the backend accepted the browser correlation id');
    assert.equal(out.stats.dropped, 0, JSON.stringify(out.stats));
    assert.equal(out.stats.internalErrors, 0);
    assert.deepEqual(p.pageErrors, []);

    // Frontend op + fetch CLIENT + backend SERVER + at least a db span.
    const spans = await spansOf(out.traceId, 4);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const op = spans.find((s) => s.name === 'fir.create' && s.resource['service.name'] === 'e2e-browser');
    assert.ok(op, 'operation span exported');
    assert.equal(op.parentSpanId, '');
    const client = spans.find((s) => s.kind === 3 && s.resource['service.name'] === 'e2e-browser' && s.attributes['url.full']?.includes('/api/firs'));
    assert.ok(client, 'fetch span exported');
    assert.equal(client.parentSpanId, op.spanId, 'traceOperation span is the parent of the fetch span');
    const server = spans.find((s) => s.kind === 2 && s.resource['service.name'] !== 'e2e-browser');
    assert.ok(server, `backend server span in the same trace: ${spans.map((s) => `${s.name}/${s.kind}`)}`);
    assert.equal(server.parentSpanId, client.spanId, "the backend's server span is a child of the browser fetch span");
    assert.equal(server.attributes.correlation_id, 'corr-e2e');
    assert.equal(client.attributes.correlation_id, 'corr-e2e');
    const backendChildren = spans.filter((s) => s !== server && s.resource['service.name'] === server.resource['service.name']);
    assert.ok(backendChildren.length >= 1, 'backend work spans joined the trace');
    for (const child of backendChildren) {
      let s = child;
      while (s && s !== server) s = byId.get(s.parentSpanId);
      assert.equal(s, server, `${child.name} descends from the server span`);
    }
    // The server's own span came back in `traceresponse` and was recorded.
    assert.equal(out.traceresponse.slice(36, 52), server.spanId);
    assert.equal(client.attributes['tracelink.response.span_id'], server.spanId);
    assert.equal(client.attributes['http.response.status_code'], 201);
    // Headers only where allowed.
    const probe = strangerLog.requests.find((r) => r.path === '/probe');
    assert.ok(probe, 'stranger was called');
    assert.equal(probe.headers.traceparent, undefined, 'no traceparent to a non-allowlisted origin');
    assert.equal(probe.headers['x-correlation-id'], undefined, 'no correlation header to a non-allowlisted origin');
    assert.equal(op.resource['service.version'], '1.2.3');
    await p.close();
  });
}

for (const n of [250, 1000]) test(`page hide delivers every queued span: ${n} spans (${n > 250 ? 'beyond' : 'within'} the 64 KiB keepalive budget)`, async () => {
  const p = await page();
  const traceId = await p.evaluate(async (n) => {
    const t = await tracelink.setupTracing({
      serviceName: 'e2e-pagehide', otlpEndpoint: '/v1/traces', scheduleDelayMillis: 600000, maxExportBatchSize: 2048,
    });
    let id;
    t.traceOperation('burst', (root) => {
      id = root.traceId;
      for (let i = 0; i < n - 1; i++) t.startSpan('queued', { attributes: { i, note: 'queued until the page hides' } }).end();
    });
    globalThis.t = t;
    return id;
  }, n);
  const before = await p.evaluate(() => t.stats());
  if (n <= 250) assert.equal(before.queued, n, 'within the budget, nothing is sent before the page hides');
  else assert.ok(before.queued < n, 'beyond it, a keepalive budget of queued bytes leaves at once');
  // Navigating away fires visibilitychange→hidden and pagehide.
  await p.goto('about:blank');
  const spans = await spansOf(traceId, n, 20000);
  assert.equal(new Set(spans.map((s) => s.spanId)).size, n, 'every span arrived exactly once');
  await p.close();
});
