// Runs tests/otel_wasm.rs (the Rust OpenTelemetry API on wasm32) against real peers, in
// Node and then in headless Chromium, and checks what the collector decoded afterwards.
//
//   node tests/support/otel-wasm-peers.mjs [node|chromium ...]   (default: both)
//
// Peers on free 127.0.0.1 ports: rotel (a real OTLP collector), behind a CORS front at
// /v1/traces (the Chromium test page is another origin), and /echo, which answers with the
// trace headers it received (JSON) and a `traceresponse` naming a server span in the
// caller's trace, as an instrumented backend does; a second /echo on another origin is not
// allowlisted. The URLs reach the test through TRACELINK_TEST_PEER / TRACELINK_TEST_OTHER at
// build time (wasm has no environment). Exit code: the first failure.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ROOT, startCollector, startStaticServer, corsFront, stopAll } from './peers.mjs';

const runners = process.argv.slice(2).length ? process.argv.slice(2) : ['node', 'chromium'];

function echo(req, res) {
  const origin = req.headers.origin;
  const cors = origin ? { 'access-control-allow-origin': origin, vary: 'Origin' } : {};
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { ...cors, 'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': req.headers['access-control-request-headers'] ?? '', 'content-length': 0 });
    return res.end();
  }
  const got = {};
  for (const name of ['traceparent', 'tracestate', 'baggage']) if (req.headers[name]) got[name] = req.headers[name];
  const headers = { ...cors, 'content-type': 'application/json', 'access-control-expose-headers': 'traceresponse' };
  const tp = /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/.exec(got.traceparent ?? '');
  if (tp) headers.traceresponse = `00-${tp[1]}-${randomBytes(8).toString('hex')}-${tp[2]}`;
  const body = JSON.stringify(got);
  res.writeHead(200, { ...headers, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function run(command, args, env) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'inherit' });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.on('error', () => resolve(1));
  });
}

async function waitFor(read, check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = read();
    try { check(value); return value; } catch (e) { if (Date.now() > deadline) throw e; }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** What the collector must have decoded from one runner's test run. */
function checkSpans(all, runner) {
  const spans = all.filter((s) => s.resource['test.runner'] === runner || (runner === 'chromium' && s.name === 'wasm.queued'));
  const named = (n) => spans.filter((s) => s.name === n);
  assert.equal(named('wasm.root').length, 2, `${runner}: one root per protocol`);
  for (const child of named('wasm.child')) {
    const root = named('wasm.root').find((r) => r.spanId === child.parentSpanId);
    assert.ok(root, `${runner}: wasm.child's parent is a wasm.root`);
    assert.equal(child.traceId, root.traceId);
    assert.equal(child.kind, 4, 'PRODUCER');
    assert.deepEqual([child.attributes.i, child.attributes.s, child.attributes.f], [1, 'x', 0.5]);
    assert.equal(child.events[0]?.name, 'started');
    assert.equal(child.status.code, 2);
    assert.equal(child.resource['service.name'], 'otel-wasm-test');
    assert.equal(child.resource['telemetry.sdk.language'], 'rust');
  }
  const action = named('wasm.fetch.action')[0];
  assert.ok(action, `${runner}: the fetch action span`);
  const client = spans.find((s) => s.kind === 3 && s.parentSpanId === action.spanId);
  assert.ok(client, `${runner}: a CLIENT span under the action`);
  assert.match(client.attributes['url.full'], /\/echo\?sig=REDACTED&x=1$/);
  assert.equal(client.attributes['http.response.status_code'], 200);
  assert.match(client.attributes['tracelink.response.span_id'] ?? '', /^[0-9a-f]{16}$/, 'server span read back');
  const failed = spans.find((s) => s.kind === 3 && s.attributes['server.port'] === 9);
  assert.ok(failed?.attributes['error.type'], `${runner}: the refused fetch recorded error.type`);
  assert.equal(failed.status.code, 2);
  const backdated = named('wasm.backdated')[0];
  assert.ok(backdated, 'explicit timestamps');
  const took = Number(backdated.endTimeUnixNano) - Number(backdated.startTimeUnixNano); // read back as doubles
  assert.ok(Math.abs(took - 5e6) < 1e3, `explicit start and end kept as given: ${took} ns`);
  assert.ok(Date.now() * 1e6 - Number(backdated.startTimeUnixNano) > 3.5e12, 'an hour ago');
  const outer = named('wasm.tracing.outer')[0];
  const inner = named('wasm.tracing.inner')[0];
  assert.ok(outer && inner, `${runner}: tracing spans`);
  assert.equal(inner.parentSpanId, outer.spanId, 'tracing span nesting survives the await');
  assert.equal(outer.attributes.user, 'u1');
  assert.ok(inner.events.some((e) => e.attributes.answer === 42), 'tracing event on the span');
  if (runner === 'chromium') assert.equal(named('wasm.queued').length, 20, 'page hide delivered every queued span');
}

const collector = await startCollector();
const site = await startStaticServer({ routes: { '/v1/traces': corsFront({ upstream: collector.httpUrl }), '/echo': echo } });
const other = await startStaticServer({ routes: { '/echo': echo } }); // another origin, not allowlisted
let failed = 0;
try {
  for (const runner of runners) {
    console.log(`\n--- tests/otel_wasm.rs in ${runner}`);
    const code = await run('cargo', ['test', '--target', 'wasm32-unknown-unknown', '--features', 'opentelemetry', '--test', 'otel_wasm'], {
      TRACELINK_TEST_PEER: site.url,
      TRACELINK_TEST_OTHER: other.url,
      ...(runner === 'chromium' ? { WASM_BINDGEN_USE_BROWSER: '1' } : {}),
    });
    if (code !== 0) { failed = code; break; }
    await waitFor(() => collector.readSpans(), (spans) => checkSpans(spans, runner));
    assert.deepEqual(collector.processorErrors(), []);
    console.log(`--- ${runner}: the collector decoded every span the tests exported`);
  }
} catch (e) {
  console.error(e);
  failed = 1;
} finally {
  await stopAll();
}
process.exit(failed);
