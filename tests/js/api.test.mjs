// The npm package (pkg/) in Node 20: the JS API, traced fetch and the
// exporter, against a real rotel collector and real local HTTP servers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { startCollector, stopAll } from '../support/peers.mjs';

const root = new URL('../../', import.meta.url);
const wasm = readFileSync(new URL('pkg/tracelink-full.wasm', root));
const { setupTracing } = await import(new URL('pkg/tracelink.js', root));

let collector;
let backend; // records the headers of every request it gets
const received = [];

function listen(handler) {
  return new Promise((resolve) => {
    const server = http.createServer(handler);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
const urlOf = (server) => `http://127.0.0.1:${server.address().port}`;

before(async () => {
  collector = await startCollector();
  backend = await listen((req, res) => {
    received.push({ url: req.url, headers: req.headers });
    if (req.url.startsWith('/status/')) {
      res.writeHead(Number(req.url.slice(8)), { 'content-type': 'text/plain' });
      return res.end('status');
    }
    if (req.url.startsWith('/traceresponse')) {
      res.writeHead(200, { traceresponse: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
      return res.end('ok');
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-echo': req.headers['x-app'] ?? '' });
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => res.end(JSON.stringify({ method: req.method, body })));
  });
});

after(async () => {
  backend?.close();
  stopAll();
});

async function tracing(extra = {}) {
  return setupTracing({
    serviceName: 'node-tests',
    serviceVersion: '9.9.9',
    otlpEndpoint: `${collector.httpUrl}/v1/traces`,
    propagateTo: [urlOf(backend)],
    wasm,
    env: {},
    ...extra,
  });
}

/** Spans read back from the collector matching `pred`, once at least `n` arrived. */
async function spansWhere(pred, n = 1, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const spans = collector.readSpans().filter(pred);
    if (spans.length >= n) return spans;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} span(s); have ${spans.length}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function lastReceived(path) {
  return [...received].reverse().find((r) => r.url === path);
}

test('setupTracing rejects bad options with clear TypeErrors', async () => {
  const cases = [
    [{ serviceName: 'x', env: {}, wasm }, /otlpEndpoint is required/],
    [{ serviceName: 'x', otlpEndpoint: 'not a url', env: {}, wasm }, /not a valid URL/],
    [{ serviceName: 'x', otlpEndpoint: 'ftp://h/v1/traces', env: {}, wasm }, /must be http/],
    [{ serviceName: '', otlpEndpoint: 'http://127.0.0.1:1', env: {}, wasm }, /serviceName/],
    [{ serviceName: 'x', otlpEndpoint: 'http://127.0.0.1:1', protocol: 'grpc', env: {}, wasm }, /protocol/],
    [{ serviceName: 'x', otlpEndpoint: 'http://127.0.0.1:1', sampleRate: 2, env: {}, wasm }, /sampleRate/],
    [{ serviceName: 'x', otlpEndpoint: 'http://127.0.0.1:1', propagateTo: 'x', env: {}, wasm }, /propagateTo/],
    [{ serviceName: 'x', otlpEndpoint: 'http://127.0.0.1:1', otlpHeaders: { a: 1 }, env: {}, wasm }, /otlpHeaders/],
    [{ serviceName: 'x', otlpEndpoint: 'http://127.0.0.1:1', correlationIdHeader: 'bad header', env: {}, wasm }, /correlationIdHeader/],
    [null, /options must be an object/],
  ];
  for (const [options, message] of cases) {
    await assert.rejects(setupTracing(options), (e) => e instanceof TypeError && message.test(e.message), String(message));
  }
  const t = await tracing();
  assert.throws(() => t.traceOperation('x', {}, 'not a function'), TypeError);
  await t.shutdown();
});

test('OTEL_* settings come from an env object; explicit options win', async () => {
  const env = {
    OTEL_SERVICE_NAME: 'from-env',
    OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpUrl,
    OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=secret%20value',
    OTEL_TRACES_SAMPLER_ARG: '1',
    OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=test',
  };
  const t = await setupTracing({ env, wasm });
  const span = t.startSpan('env-span');
  const traceId = span.traceId;
  span.end();
  await t.flush();
  const [got] = await spansWhere((s) => s.traceId === traceId, 1);
  assert.equal(got.resource['service.name'], 'from-env');
  assert.equal(got.resource['deployment.environment'], 'test');
  await t.shutdown();

  const t2 = await setupTracing({ env, wasm, serviceName: 'explicit' });
  const s2 = t2.startSpan('explicit-span');
  const id2 = s2.traceId;
  s2.end();
  await t2.flush();
  const [got2] = await spansWhere((s) => s.traceId === id2, 1);
  assert.equal(got2.resource['service.name'], 'explicit');
  await t2.shutdown();
});

for (const protocol of ['http/protobuf', 'http/json']) {
  test(`traceOperation nests spans and fetches, and exports them (${protocol})`, async () => {
    const t = await tracing({ protocol, correlationIdHeader: 'X-Correlation-ID' });
    let innerTraceId;
    const result = await t.traceOperation('fir.create', { attributes: { fir_id: 'F1', n: 3, ok: true, ratio: 0.5, tags: ['a', 'b'] }, correlationId: 'corr-1' }, async (span) => {
      assert.equal(t.currentTraceId(), span.traceId);
      t.addTraceAttributes({ step: 'validate' });
      t.addTraceEvent('validation_started', { fields: 3 });
      await new Promise((r) => setTimeout(r, 5));
      const res = await t.fetch(`${urlOf(backend)}/api/${protocol.slice(5)}`, { method: 'POST', body: 'hi', headers: { 'x-app': '1' } });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).body, 'hi');
      innerTraceId = t.currentTraceId();
      return 42;
    });
    assert.equal(result, 42);
    assert.equal(t.currentTraceId(), '', 'no current span after the operation');
    const got = lastReceived(`/api/${protocol.slice(5)}`);
    assert.match(got.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-03$/);
    assert.equal(got.headers.traceparent.slice(3, 35), innerTraceId);
    assert.equal(got.headers['x-correlation-id'], 'corr-1');
    assert.equal(got.headers['x-app'], '1', 'caller headers kept');
    await t.flush();
    const spans = await spansWhere((s) => s.traceId === innerTraceId, 2);
    const op = spans.find((s) => s.name === 'fir.create');
    const client = spans.find((s) => s.name === 'POST');
    assert.ok(op && client, 'operation and fetch spans exported');
    assert.equal(op.parentSpanId, '');
    assert.equal(client.parentSpanId, op.spanId, 'fetch span is a child of the operation');
    assert.equal(client.kind, 3);
    assert.equal(got.headers.traceparent.slice(36, 52), client.spanId, 'the header names the fetch span');
    assert.deepEqual(
      { fir_id: op.attributes.fir_id, n: op.attributes.n, ok: op.attributes.ok, ratio: op.attributes.ratio, tags: op.attributes.tags, step: op.attributes.step, corr: op.attributes.correlation_id },
      { fir_id: 'F1', n: 3, ok: true, ratio: 0.5, tags: ['a', 'b'], step: 'validate', corr: 'corr-1' },
    );
    assert.equal(op.events[0].name, 'validation_started');
    assert.equal(client.attributes['http.request.method'], 'POST');
    assert.equal(client.attributes['http.response.status_code'], 200);
    assert.equal(client.attributes['server.address'], '127.0.0.1');
    assert.equal(client.attributes.correlation_id, 'corr-1');
    assert.ok(op.startTimeUnixNano <= client.startTimeUnixNano && client.endTimeUnixNano <= op.endTimeUnixNano);
    assert.equal(op.resource['service.version'], '9.9.9');
    assert.equal(op.resource['telemetry.sdk.name'], 'tracelink');
    const stats = t.stats();
    assert.ok(stats.exported >= 2, JSON.stringify(stats));
    assert.equal(stats.dropped, 0);
    await t.shutdown();
  });
}

test('errors are recorded and rethrown unchanged (sync and async)', async () => {
  const t = await tracing();
  const boom = new RangeError('sync boom');
  let syncId;
  assert.throws(() => t.traceOperation('sync.fail', (s) => { syncId = s.traceId; throw boom; }), (e) => e === boom);
  const rejection = new Error('async boom');
  let asyncId;
  await assert.rejects(t.traceOperation('async.fail', async (s) => { asyncId = s.traceId; throw rejection; }), (e) => e === rejection);
  assert.equal(t.traceOperation('sync.ok', () => 'v'), 'v');
  await t.flush();
  const [s1] = await spansWhere((s) => s.traceId === syncId, 1);
  const [s2] = await spansWhere((s) => s.traceId === asyncId, 1);
  for (const [s, type, message] of [[s1, 'RangeError', 'sync boom'], [s2, 'Error', 'async boom']]) {
    assert.equal(s.status.code, 2);
    assert.equal(s.status.message, message);
    assert.equal(s.events[0].name, 'exception');
    assert.equal(s.events[0].attributes['exception.type'], type);
    assert.match(s.events[0].attributes['exception.stacktrace'], /boom/);
  }
  await t.shutdown();
});

test('headers go only where allowed; a caller traceparent is not duplicated', async () => {
  const other = await listen((req, res) => { received.push({ url: '/other' + req.url, headers: req.headers }); res.end('x'); });
  const t = await tracing();
  await t.traceOperation('op', async () => {
    await (await t.fetch(`${urlOf(other)}/x`)).text();
    await (await t.fetch(`${urlOf(backend)}/own`, { headers: { traceparent: '00-11111111111111111111111111111111-2222222222222222-01' } })).text();
    await (await t.fetch(new Request(`${urlOf(backend)}/req`, { headers: { 'x-app': 'r' } }))).text();
  });
  assert.equal(lastReceived('/other/x').headers.traceparent, undefined, 'no header to a non-allowlisted origin');
  const own = lastReceived('/own').headers.traceparent;
  assert.equal(own, '00-11111111111111111111111111111111-2222222222222222-01');
  const req = lastReceived('/req').headers;
  assert.match(req.traceparent, /^00-/);
  assert.equal(req['x-app'], 'r', 'Request headers kept');
  other.close();
  await t.shutdown();
});

test('traced fetch behaves like fetch on errors, aborts and HTTP errors', async () => {
  const t = await tracing();
  const closed = await listen(() => {});
  const deadUrl = urlOf(closed);
  closed.close();
  const plainErr = await fetch(deadUrl).catch((e) => e);
  const tracedErr = await t.fetch(deadUrl).catch((e) => e);
  assert.equal(tracedErr.constructor, plainErr.constructor);
  assert.equal(tracedErr.message, plainErr.message);

  const controller = new AbortController();
  controller.abort(new Error('stop'));
  const plainAbort = await fetch(`${urlOf(backend)}/a`, { signal: controller.signal }).catch((e) => e);
  const tracedAbort = await t.fetch(`${urlOf(backend)}/a`, { signal: controller.signal }).catch((e) => e);
  assert.equal(plainAbort, controller.signal.reason);
  assert.equal(tracedAbort, controller.signal.reason, 'the abort reason itself, unchanged');

  const res = await t.fetch(`${urlOf(backend)}/status/503`);
  assert.equal(res.status, 503);
  assert.equal(await res.text(), 'status');
  let id;
  await t.traceOperation('errors', async (s) => {
    id = s.traceId;
    await t.fetch(`${urlOf(backend)}/status/404`);
    await t.fetch(deadUrl).catch(() => {});
  });
  await t.flush();
  const spans = await spansWhere((s) => s.traceId === id, 3);
  const http404 = spans.find((s) => s.attributes['http.response.status_code'] === 404);
  assert.equal(http404.attributes['error.type'], '404');
  assert.equal(http404.status.code, 2);
  const net = spans.find((s) => s.kind === 3 && s.attributes['http.response.status_code'] === undefined);
  assert.equal(net.attributes['error.type'], 'TypeError');
  await t.shutdown();
});

test('url.full drops userinfo and redacts sensitive query values; response trace header is read', async () => {
  const t = await tracing({ redactQueryParams: ['token'] });
  let id;
  await t.traceOperation('urls', async (s) => {
    id = s.traceId;
    const u = new URL(`${urlOf(backend)}/traceresponse?token=abc&keep=1`);
    await t.fetch(u);
  });
  await t.flush();
  const [client] = await spansWhere((s) => s.traceId === id && s.kind === 3, 1);
  assert.equal(client.attributes['url.full'], `${urlOf(backend)}/traceresponse?token=REDACTED&keep=1`);
  assert.equal(client.attributes["tracelink.response.span_id"], "b7ad6b7169203331", JSON.stringify(client));
  assert.equal(client.links.length, 1, 'linked to the server trace that did not join ours');
  await t.shutdown();
});

test('injectContext / extractContext round-trip and remote parents', async () => {
  const t = await tracing();
  const carrier = t.traceOperation('inject', () => t.injectContext({}));
  assert.match(carrier.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-03$/);
  const ctx = t.extractContext({ TraceParent: carrier.traceparent, tracestate: 'vendor=x' });
  assert.equal(ctx.traceId, carrier.traceparent.slice(3, 35));
  assert.equal(ctx.tracestate, 'vendor=x');
  assert.equal(t.extractContext({ traceparent: '00-0000000000000000000000000000000-01' }), null);
  assert.equal(t.extractContext(new Headers({ traceparent: 'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' })), null);
  const child = t.startSpan('server-side', { parent: ctx, kind: 'server' });
  assert.equal(child.traceId, ctx.traceId);
  child.end();
  await t.flush();
  const [got] = await spansWhere((s) => s.name === 'server-side' && s.traceId === ctx.traceId, 1);
  assert.equal(got.parentSpanId, ctx.spanId);
  assert.equal(got.kind, 2);
  assert.equal(got.traceState, 'vendor=x');
  await t.shutdown();
});

test('instrumentFetch patches globalThis.fetch and restoreFetch undoes it', async () => {
  const original = globalThis.fetch;
  const t = await tracing({ instrumentFetch: true });
  assert.notEqual(globalThis.fetch, original);
  await t.traceOperation('patched', async () => { await (await fetch(`${urlOf(backend)}/patched`)).text(); });
  assert.match(lastReceived('/patched').headers.traceparent, /^00-/);
  t.restoreFetch();
  assert.equal(globalThis.fetch, original);
  await t.shutdown();
});

test('a span never ended twice; API misuse never throws', async () => {
  const t = await tracing();
  const s = t.startSpan('once');
  s.end();
  s.end();
  s.setAttribute('late', 1).addEvent('late').setStatus('error', 'x').recordException(new Error('x'));
  s.setAttribute(undefined, 1).setAttribute('obj', { a: 1 }).setAttribute('fn', () => 1);
  t.addTraceAttributes({ nothing: 'current' });
  assert.equal(s.traceId, '');
  assert.equal(t.stats().internalErrors, 0);
  await t.shutdown();
});

test('baggage goes only where allowed, percent-encoded, and only when enabled', async () => {
  const other = await listen((req, res) => { received.push({ url: '/bag-other' + req.url, headers: req.headers }); res.end('x'); });
  const t = await tracing({ propagateBaggage: true });
  assert.equal(t.setBaggage('user.tier', 'gold plus'), true);
  assert.equal(t.setBaggage('bad key', 'x'), false);
  await t.traceOperation('bag', async () => {
    await (await t.fetch(`${urlOf(backend)}/bag`)).text();
    await (await t.fetch(`${urlOf(other)}/x`)).text();
  });
  assert.equal(lastReceived('/bag').headers.baggage, 'user.tier=gold%20plus');
  assert.equal(lastReceived('/bag-other/x').headers.baggage, undefined);
  await t.shutdown();
  const off = await tracing();
  off.setBaggage('k', 'v');
  await off.traceOperation('nobag', async () => { await (await off.fetch(`${urlOf(backend)}/nobag`)).text(); });
  assert.equal(lastReceived('/nobag').headers.baggage, undefined, 'off unless propagateBaggage');
  other.close();
  await off.shutdown();
});

test('context: baggage and correlation id belong to their operation; span.run / withSpan re-enter; extract carries baggage', async () => {
  const t = await tracing({ propagateBaggage: true, correlationIdHeader: 'x-correlation-id' });
  assert.equal(t.stats().contextMode, 'AsyncLocalStorage');
  t.setBaggage('scope', 'outside');
  let held;
  await Promise.all(['a', 'b'].map((name) => t.traceOperation(name, { correlationId: `cid-${name}` }, async (span) => {
    t.setBaggage('op', name);
    if (name === 'a') held = span;
    await new Promise((r) => setTimeout(r, name === 'a' ? 20 : 5));
    assert.equal(t.currentCorrelationId(), `cid-${name}`);
    await (await t.fetch(`${urlOf(backend)}/ctx-${name}`)).text();
  })));
  for (const name of ['a', 'b']) {
    const h = lastReceived(`/ctx-${name}`).headers;
    assert.equal(h['x-correlation-id'], `cid-${name}`);
    assert.deepEqual(h.baggage.split(',').sort(), [`op=${name}`, 'scope=outside']);
  }
  // After `a` ended, its span still parents work run in it (by its W3C context).
  await t.withSpan(held, async () => { await (await t.fetch(`${urlOf(backend)}/ctx-late`)).text(); });
  assert.equal(lastReceived('/ctx-late').headers.traceparent.slice(3, 35), held._c.tp.slice(3, 35));
  assert.equal(lastReceived('/ctx-late').headers['x-correlation-id'], 'cid-a');
  const remote = t.extractContext({ traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', baggage: 'k=v%20w,bad key=1' });
  assert.equal(remote.baggage, 'k=v%20w');
  await t.traceOperation('server', { kind: 'server', parent: remote }, async () => {
    await (await t.fetch(`${urlOf(backend)}/ctx-remote`)).text();
  });
  const h = lastReceived('/ctx-remote').headers;
  assert.equal(h.traceparent.slice(3, 35), '0af7651916cd43dd8448eb211c80319c');
  assert.equal(h.baggage, 'k=v%20w');
  assert.equal(t.stats().internalErrors, 0);
  await t.shutdown();
});

test('inject/extract never throw into the caller, whatever the carrier', async () => {
  const t = await tracing();
  const hostile = new Proxy({}, { set() { throw new Error('no writes'); }, get() { throw new Error('no reads'); }, ownKeys() { throw new Error('no keys'); } });
  await t.traceOperation('carriers', () => {
    assert.equal(t.injectContext(hostile), hostile);
    assert.equal(t.injectContext(Object.freeze({})).traceparent, undefined);
    assert.equal(t.injectContext(null), null);
    assert.match(t.injectContext({}).traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]$/);
  });
  assert.equal(t.extractContext(hostile), null);
  assert.equal(t.extractContext({ get: () => { throw new Error('x'); } }), null);
  assert.equal(t.extractContext(42), null);
  assert.equal(t.stats().internalErrors, 0);
  await t.shutdown();
});

test('stats() names the core counters in the core order (pipeline::STAT_NAMES)', async () => {
  const rust = readFileSync(new URL('src/core/pipeline.rs', root), 'utf8');
  const names = [...rust.match(/pub const STAT_NAMES: \[&str; \d+\] = \[([^\]]*)\]/)[1].matchAll(/"(\w+)"/g)].map((m) => m[1]);
  const t = await tracing();
  t.startSpan('counted').end();
  const s = t.stats();
  assert.deepEqual(Object.keys(s).slice(0, names.length), names);
  assert.equal(s.started, 1);
  assert.equal(s.ended, 1);
  await t.shutdown();
});

test('exports are gzip\'d (Content-Encoding) outside pages by default, plain with compress: false or a wasm without the encoder; rotel reads both', async () => {
  const seen = [];
  const front = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      seen.push({ encoding: req.headers['content-encoding'] ?? '', bytes: body.length });
      const headers = { 'content-type': req.headers['content-type'] };
      if (req.headers['content-encoding']) headers['content-encoding'] = req.headers['content-encoding'];
      const up = await fetch(`${collector.httpUrl}/v1/traces`, { method: 'POST', headers, body });
      res.writeHead(up.status).end(Buffer.from(await up.arrayBuffer()));
    });
  });
  await new Promise((r) => front.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${front.address().port}/v1/traces`;
  const ids = {};
  const gzipWasm = readFileSync(new URL('pkg/tracelink-gzip.wasm', root));
  const plainWasm = readFileSync(new URL('pkg/tracelink.wasm', root));
  // [wasm, compress option, expected Content-Encoding]
  const cases = [[wasm, undefined, 'gzip'], [gzipWasm, undefined, 'gzip'], [plainWasm, undefined, ''], [wasm, false, '']];
  for (const [i, [w, compress, encoding]] of cases.entries()) {
    const t = await setupTracing({ serviceName: 'gzip-check', otlpEndpoint: url, wasm: w, env: {}, ...(compress === false ? { compress } : {}) });
    const before = seen.length;
    const traceIds = [];
    for (let i = 0; i < 100; i++) {
      const s = t.startSpan('gz', { attributes: { i, 'app.page': '/orders/list' } });
      traceIds.push(s.traceId);
      s.end();
    }
    await t.flush();
    assert.equal(t.stats().exported, 100, JSON.stringify(t.stats()));
    ids[i] = traceIds;
    await t.shutdown();
    assert.ok(seen.length > before);
    for (const r of seen.slice(before)) assert.equal(r.encoding, encoding, `wasm ${w.length} B, compress ${compress}`);
  }
  // Asking for gzip with a wasm that has no encoder is a clear error, not silently plain.
  await assert.rejects(setupTracing({ serviceName: 'gzip-check', otlpEndpoint: url, wasm: plainWasm, env: {}, compress: true }),
    (e) => e instanceof TypeError && /compress: true needs tracelink-gzip\.wasm/.test(e.message));
  front.close();
  assert.equal(seen[0].encoding, 'gzip', 'default outside pages: gzip');
  assert.equal(seen.at(-1).encoding, '', 'compress: false: plain');
  assert.ok(seen[0].bytes * 2 < seen.at(-1).bytes, `gzip'd ${seen[0].bytes} B vs plain ${seen.at(-1).bytes} B`);
  for (const list of Object.values(ids)) {
    await collector.waitForSpans({ where: (s) => list.includes(s.traceId), count: list.length }, 15000);
  }
});

test('consoleExport prints each kept span as OTLP JSON (the same span the collector gets)', async () => {
  const printed = [];
  const debug = console.debug;
  console.debug = (...args) => printed.push(args);
  let traceId;
  try {
    const t = await setupTracing({ serviceName: 'console-check', otlpEndpoint: `${collector.httpUrl}/v1/traces`, wasm, env: {}, consoleExport: true });
    const s = t.startSpan('printed', { attributes: { 'app.k': 'v', 'app.n': 7 } });
    traceId = s.traceId;
    s.addEvent('e', { x: true });
    s.setStatus('error', 'boom');
    s.end();
    await t.flush();
    await t.shutdown();
  } finally {
    console.debug = debug;
  }
  const spans = printed.filter((a) => a[0] === '[tracelink] span').map((a) => JSON.parse(a[1]));
  assert.equal(spans.length, 1, JSON.stringify(printed));
  const [span] = spans;
  assert.equal(span.traceId, traceId);
  assert.equal(span.name, 'printed');
  assert.deepEqual(span.attributes.find((a) => a.key === 'app.n').value, { intValue: '7' });
  assert.equal(span.events[0].name, 'e');
  assert.deepEqual(span.status, { code: 2, message: 'boom' });
  const got = await collector.waitForSpans({ where: (x) => x.traceId === traceId, count: 1 }, 15000);
  assert.equal(got[0].name, 'printed');
});

test('delays beyond setTimeout\'s range wait (never run at once): flush(2**32), scheduleDelayMillis 2**31', async () => {
  // An export endpoint that holds the first request until released.
  let release;
  const held = new Promise((r) => { release = r; });
  const sink = await listen((req, res) => {
    req.resume();
    req.on('end', () => held.then(() => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end()));
  });
  const t = await setupTracing({ serviceName: 'long-delay', otlpEndpoint: `${urlOf(sink)}/v1/traces`, wasm, env: {},
    scheduleDelayMillis: 2 ** 31, compress: false });
  let warned = false;
  const onWarning = (w) => { if (w.name === 'TimeoutOverflowWarning') warned = true; };
  process.on('warning', onWarning);
  t.startSpan('waits').end();
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(t.stats().requests, 0, 'the span waits for its (long) schedule');
  let settled = false;
  const flushed = t.flush(2 ** 32).then(() => { settled = true; });
  await new Promise((r) => setTimeout(r, 300));
  process.off('warning', onWarning);
  assert.equal(warned, false, 'setTimeout got a delay it cannot hold');
  assert.equal(settled, false, 'flush(2**32) resolved before the export finished');
  release();
  await flushed;
  assert.equal(t.stats().exported, 1);
  await t.shutdown();
  sink.close();
});

test('shutdown settles flushes still waiting (they resolve, never hang past it)', async () => {
  const sink = await listen((req) => { req.resume(); }); // never answers
  const t = await setupTracing({ serviceName: 'hung', otlpEndpoint: `${urlOf(sink)}/v1/traces`, wasm, env: {}, compress: false,
    exportTimeoutMillis: 120000 });
  t.startSpan('stuck').end();
  let settled = false;
  const flushed = t.flush(120000).then(() => { settled = true; });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(settled, false, 'the export is still in flight');
  await t.shutdown(50);
  // Not a timing bound: without the fix the flush waits out its 120 s timeout.
  const first = await Promise.race([flushed.then(() => 'flush'), new Promise((r) => setTimeout(r, 10000, 'still waiting'))]);
  assert.equal(first, 'flush');
  sink.closeAllConnections?.();
  sink.close();
});
