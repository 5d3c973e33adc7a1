// Server-side runtimes from npm (Deno, Bun) and the system Node 20: the
// README examples run exactly as written (examples/*.mjs copied into a project
// where `tracelink` is pkg/), and every way of handing in the wasm works.
// Each traced fetch must join the real FastAPI + OpenTelemetry backend's trace,
// and every span must reach the real rotel collector.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startCollector, startBackend, stopAll } from '../support/peers.mjs';
import { EXAMPLES, FIXTURES, assertAllExported, assertJoined, cleanEnv, lastJson, run, runtime, sandbox, spanMillis } from './support.mjs';

let collector, backend, project;

before(async () => {
  collector = await startCollector();
  backend = await startBackend({ collectorUrl: collector.httpUrl });
  project = sandbox({
    'node.mjs': path.join(EXAMPLES, 'node.mjs'),
    'deno.mjs': path.join(EXAMPLES, 'deno.mjs'),
    'bun.mjs': path.join(EXAMPLES, 'bun.mjs'),
    'load.mjs': path.join(FIXTURES, 'load.mjs'),
    'env.mjs': path.join(FIXTURES, 'env.mjs'),
  });
});

after(() => stopAll());

/** The command line that runs `script` in `name`, as the README shows it. */
function command(name, script) {
  switch (name) {
    case 'node': return [process.execPath, [script]];
    case 'bun': return [runtime('bun'), [script]];
    case 'deno': return [runtime('deno'), ['run', '--allow-net', '--allow-read', '--allow-env', script]];
    default: throw new Error(name);
  }
}

for (const name of ['node', 'deno', 'bun']) {
  test(`${name}: examples/${name}.mjs as written joins the backend trace and exports everything`, async () => {
    const service = `example-${name}`;
    const [cmd, args] = command(name, `${name}.mjs`);
    const out = lastJson(await run(cmd, args, {
      cwd: project,
      env: cleanEnv({ OTEL_SERVICE_NAME: service, OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpUrl, API_URL: backend.url }),
    }));
    assert.equal(out.status, 200);
    assert.match(out.traceId, /^[0-9a-f]{32}$/);
    assertAllExported(out.stats);
    assert.equal(out.stats.exported, 2, 'the operation and its fetch');
    const { spans, clients } = await assertJoined(collector, out.traceId, service);
    const op = spans.find((s) => s.name === 'ping');
    assert.equal(clients[0].parentSpanId, op.spanId, 'the fetch span is a child of the operation');
    assert.equal(op.resource['service.name'], service, 'OTEL_SERVICE_NAME from the environment');
  });
}

// What each runtime accepts as options.wasm. Node's fetch cannot read file:
// URLs, so there (only) the URL and default forms must fail, with a hint.
const MODES = ['bytes', 'buffer', 'module', 'url', 'default'];
for (const name of ['node', 'deno', 'bun']) {
  for (const mode of MODES) {
    const fails = name === 'node' && (mode === 'url' || mode === 'default');
    test(`${name}: wasm as ${mode} ${fails ? 'rejects with a hint' : 'loads, traces fetch, exports, flushes'}`, async () => {
      const [cmd, args] = command(name, 'load.mjs');
      const out = lastJson(await run(cmd, [...args, mode, backend.url, collector.httpUrl], { cwd: project, env: cleanEnv() }));
      if (fails) {
        assert.equal(out.setupError?.name, 'TypeError', JSON.stringify(out));
        assert.match(out.setupError.message, /cannot load the wasm from file:.*tracelink(-gzip)?\.wasm: fetch failed\. Pass options\.wasm/);
        return;
      }
      assert.equal(out.setupError, undefined, JSON.stringify(out.setupError));
      assert.equal(out.runtime, name);
      assert.equal(out.status, 200);
      assertAllExported(out.stats);
      assert.equal(out.stats.exported, 3, 'the operation and its two fetches');
      const { spans, clients, servers } = await assertJoined(collector, out.traceId, `load-${name}-${mode}`, 2);
      const pinged = servers.find((s) => s.spanId === out.ping.server_span.span_id);
      assert.equal(out.ping.received.traceparent.slice(36, 52), pinged.parentSpanId, 'the header named our fetch span');
      const op = spans.find((s) => s.name === 'load.check');
      assert.ok(clients.every((c) => c.parentSpanId === op.spanId), 'both fetch forms are children of the operation');
      for (const s of spans) {
        const [start, end] = spanMillis(s);
        assert.ok(Math.abs(start - out.now) < 5000, `${s.name} starts near the wall clock`);
        assert.ok(end >= start);
      }
    });
  }
}

test('deno: OTEL_* variables are read only when --allow-env grants them (no throw, no prompt)', async () => {
  const env = cleanEnv({ OTEL_SERVICE_NAME: 'from-env', OTEL_EXPORTER_OTLP_ENDPOINT: collector.httpUrl });
  const deno = (allow) => run(runtime('deno'), ['run', '--allow-read', '--allow-net', ...allow, 'env.mjs'], { cwd: project, env });
  assert.deepEqual(lastJson(await deno([])), {
    explicit: 'ok',
    fromEnv: 'TypeError: tracelink: setupTracing: serviceName must be a non-empty string (or set OTEL_SERVICE_NAME)',
  });
  assert.deepEqual(lastJson(await deno(['--allow-env=OTEL_SERVICE_NAME'])).fromEnv,
    'TypeError: tracelink: setupTracing: otlpEndpoint is required (or set OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT)');
  assert.deepEqual(lastJson(await deno(['--allow-env=OTEL_SERVICE_NAME,OTEL_EXPORTER_OTLP_ENDPOINT'])), { explicit: 'ok', fromEnv: 'ok' });
});
