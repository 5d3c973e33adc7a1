// Context under concurrency (issue: a parent link is never wrong). Many
// operations are open at once, each making sequential awaited fetches to an
// echo server on 127.0.0.1 that answers after a random 0–20 ms delay with the
// traceparent, correlation id and baggage it received. Per fetch: the headers
// belong to its own operation, never to another; in runtimes with async
// context (AsyncLocalStorage) every fetch joins; in a page (and with the
// task-scoped store forced) the fetches the README lists as unknowable carry
// no context and are counted in stats().parentUnknown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { freePort } from '../support/peers.mjs';
import { launchChromium } from '../support/browser.mjs';
import { FIXTURES, PKG, cleanEnv, lastJson, run, runtime, sandbox, serve, tempDir } from './support.mjs';

const CONTEXT = path.join(FIXTURES, 'context');
let echo, base, project;

/** The echo server: /echo answers with the trace headers it got; also serves the page, pkg/ and a span sink. */
function startEcho() {
  const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/echo') {
      const body = JSON.stringify({ traceparent: req.headers.traceparent ?? null, cid: req.headers['x-correlation-id'] ?? null, baggage: req.headers.baggage ?? null });
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(body), Number(url.searchParams.get('delay')) || 0);
      return;
    }
    if (url.pathname === '/v1/traces') { // a sink: the spans' delivery is another test's subject
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
      return;
    }
    const file = url.pathname.startsWith('/pkg/') ? path.join(PKG, url.pathname.slice(5)) : path.join(CONTEXT, url.pathname.slice(1));
    fs.readFile(file, (err, data) => {
      if (err) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' }).end(data);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

before(async () => {
  echo = await startEcho();
  base = `http://127.0.0.1:${echo.address().port}`;
  project = sandbox({ 'runner.mjs': path.join(CONTEXT, 'runner.mjs'), 'scenario.mjs': path.join(CONTEXT, 'scenario.mjs') });
});

after(() => new Promise((resolve) => { echo?.closeAllConnections?.(); echo?.close(resolve); }));

function assertNeverWrong(out, label) {
  const t = out.tally;
  const detail = `${label}: ${JSON.stringify({ ...t, failures: t.failures.slice(0, 3) }, null, 1)}`;
  assert.ok(t.fetches > 0, detail);
  assert.equal(t.wrong, 0, `no fetch carried another operation's context — ${detail}`);
  assert.equal(t.mustMissed, 0, `every fetch that joins by itself joined — ${detail}`);
}

function assertExact(out, label) {
  assertNeverWrong(out, label);
  assert.equal(out.tally.absent, 0, `${label}: exact context, nothing lost`);
  assert.equal(out.tally.own, out.tally.fetches);
  assert.equal(out.stats.parentUnknown, 0);
}

function assertTaskScoped(out, label, operations) {
  assertNeverWrong(out, label);
  assert.equal(out.traces, operations, `${label}: independent operations started from separate tasks are separate traces`);
  assert.ok(out.tally.absent > 0, `${label}: the unknowable fetches were left without a parent`);
  // Counted: each fetch left without a parent, and each operation started
  // (as a new trace) from a task while other operations were open.
  assert.equal(out.stats.parentUnknown, out.tally.absent + out.startedWhileOthersOpen, `${label}: every span started without a knowable parent is counted`);
}

function command(name, args) {
  switch (name) {
    case 'node': return [process.execPath, ['runner.mjs', ...args]];
    case 'bun': return [runtime('bun'), ['runner.mjs', ...args]];
    case 'deno': return [runtime('deno'), ['run', '--allow-net', '--allow-read', '--allow-env', 'runner.mjs', ...args]];
    default: throw new Error(name);
  }
}

for (const name of ['node', 'deno', 'bun']) {
  test(`${name}: 50 concurrent operations, AsyncLocalStorage: every fetch in its own operation`, async () => {
    const [cmd, args] = command(name, [base, '50']);
    const out = lastJson(await run(cmd, args, { cwd: project, env: cleanEnv(), timeoutMs: 60_000 }));
    assert.equal(out.stats.contextMode, 'AsyncLocalStorage', 'found without a static node: import');
    assertExact(out, name);
    assert.equal(out.traces, 50);
  });
}

test('node: 50 concurrent operations with the browser (task-scoped) store: never a wrong parent', async () => {
  const [cmd, args] = command('node', [base, '50', 'task']);
  const out = lastJson(await run(cmd, args, { cwd: project, env: cleanEnv(), timeoutMs: 60_000 }));
  assert.equal(out.stats.contextMode, 'task');
  assertTaskScoped(out, 'node task store', 50);
});

test('workerd: 30 concurrent requests in one isolate, with and without nodejs_als', async () => {
  const dir = tempDir('tracelink-context-workerd-');
  const ports = { ALS_PORT: await freePort(), PLAIN_PORT: await freePort() };
  const config = fs.readFileSync(path.join(CONTEXT, 'workerd.capnp'), 'utf8')
    .replace(/\$([A-Z_]+)/g, (m, k) => String({ ...ports, ECHO_URL: base }[k] ?? m));
  fs.writeFileSync(path.join(dir, 'config.capnp'), config);
  for (const f of ['worker.js', 'scenario.mjs']) fs.copyFileSync(path.join(CONTEXT, f === 'worker.js' ? 'worker.js' : f), path.join(dir, f));
  for (const f of ['tracelink.js', 'context.js', 'core.js', 'tracelink.wasm', 'tracelink-gzip.wasm', 'tracelink-full.wasm']) fs.copyFileSync(path.join(PKG, f), path.join(dir, f));
  const workerd = await serve(runtime('workerd'), ['serve', 'config.capnp'], { cwd: dir, env: { ...process.env, PWD: dir }, port: ports.PLAIN_PORT });
  try {
    for (const [label, port, exact] of [['nodejs_als', ports.ALS_PORT, true], ['no flags', ports.PLAIN_PORT, false]]) {
      const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => fetch(`http://127.0.0.1:${port}/?op=${i}`)));
      const results = [];
      for (const r of responses) {
        const text = await r.text();
        assert.equal(r.status, 200, `${label}: ${text}\n${workerd.output()}`);
        results.push(JSON.parse(text));
      }
      const { tally } = await import(path.join(CONTEXT, 'scenario.mjs'));
      const stats = (await (await fetch(`http://127.0.0.1:${port}/stats`)).json());
      const out = { tally: tally(results), traces: new Set(results.map((r) => r.traceId)).size, stats, startedWhileOthersOpen: results.filter((r) => r.startedWhileOthersOpen).length };
      assert.equal(stats.contextMode, exact ? 'AsyncLocalStorage' : 'task', label);
      if (exact) assertExact(out, `workerd ${label}`);
      else assertTaskScoped(out, `workerd ${label}`, 30);
      assert.equal(out.traces, 30, `${label}: a trace per request`);
    }
  } finally {
    await workerd.stop();
  }
});

test('Chromium page: 12 overlapping operations started from separate tasks, patched global fetch', async () => {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e));
    await page.goto(`${base}/page.html`);
    const out = await page.evaluate(() => globalThis.runScenario(12));
    assert.equal(out.stats.contextMode, 'task');
    assertTaskScoped(out, 'chromium', 12);
    assert.equal(out.stats.internalErrors, 0);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
