// Shared pieces of the edge-runtime tests: where the runtimes are (npm
// packages in tests/edge/node_modules, installed by scripts/setup.sh), a
// sandbox that installs pkg/ as the `tracelink` package next to a copied
// example, child processes with a deadline, and the trace assertion every
// runtime test makes: the backend's SERVER span is a child of our fetch span.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { ROOT } from '../support/peers.mjs';

export { ROOT };
export const EDGE = fileURLToPath(new URL('./', import.meta.url));
export const PKG = path.join(ROOT, 'pkg');
export const EXAMPLES = path.join(ROOT, 'examples');
export const FIXTURES = path.join(EDGE, 'fixtures');

/** The runtime binary `name` (workerd | deno | bun) from tests/edge/node_modules. */
export function runtime(name) {
  const bin = path.join(EDGE, 'node_modules', '.bin', name);
  if (!fs.existsSync(bin)) {
    throw new Error(`${name} is not installed: run scripts/setup.sh (npm install in tests/edge)`);
  }
  return bin;
}

const temporary = [];
process.on('exit', () => {
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when this process exits. */
export function tempDir(prefix = 'tracelink-edge-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

/**
 * A project directory where `tracelink` resolves to pkg/ (node_modules/tracelink
 * links to it, as after `npm install tracelink`), holding `files`: a map of
 * names to absolute source paths, copied byte for byte.
 */
export function sandbox(files = {}) {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'tracelink'), 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'),
    JSON.stringify({ private: true, type: 'module', dependencies: { tracelink: '*' } }));
  for (const [name, source] of Object.entries(files)) fs.copyFileSync(source, path.join(dir, name));
  return dir;
}

/** An environment without the caller's OTEL_* settings, plus `extra`. */
export function cleanEnv(extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')));
  return { ...env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1', ...extra };
}

/** Runs `command` to completion (killed after `timeoutMs`): { code, signal, stdout, stderr }. */
export function run(command, args, { cwd, env, timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => { clearTimeout(timer); reject(e); });
    child.once('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
  });
}

/** The last stdout line of a finished run, parsed as JSON (fails with the output otherwise). */
export function lastJson(result) {
  const lines = result.stdout.trim().split('\n');
  try {
    assert.equal(result.code, 0);
    return JSON.parse(lines.at(-1));
  } catch {
    assert.fail(`exit ${result.code ?? result.signal}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
  }
}

const servers = new Set();
process.on('exit', () => { for (const s of servers) s.killNow(); });

/**
 * Starts a long-running `command` in its own process group and waits until
 * `port` on 127.0.0.1 accepts connections. Returns { stop(), output() }; every
 * server still running is killed when this process exits.
 */
export async function serve(command, args, { cwd, env, port, timeoutMs = 15_000 } = {}) {
  const log = path.join(tempDir(), 'server.log');
  const fd = fs.openSync(log, 'a');
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', fd, fd], detached: true });
  fs.closeSync(fd);
  child.unref();
  let exited = null;
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => { exited = { code, signal }; resolve(); }));
  const output = () => fs.readFileSync(log, 'utf8');
  const server = {
    output,
    killNow() { if (!exited) try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } },
    async stop() {
      servers.delete(server);
      if (exited) return;
      try { process.kill(-child.pid, 'SIGTERM'); } catch { /* gone */ }
      const timer = setTimeout(() => server.killNow(), 3000);
      await exit;
      clearTimeout(timer);
    },
  };
  servers.add(server);
  const deadline = Date.now() + timeoutMs;
  while (!(await listening(port))) {
    if (exited) throw new Error(`${path.basename(command)} exited (${JSON.stringify(exited)}) before listening:\n${output()}`);
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`${path.basename(command)} not listening on ${port} after ${timeoutMs} ms:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return server;
}

function listening(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** Spans of `traceId` read back from the collector once `where` (default: any) matches `count`. */
export async function traceSpans(collector, traceId, count, timeoutMs = 15_000) {
  return collector.waitForSpans({ where: (s) => s.traceId === traceId, count }, timeoutMs)
    .then(() => collector.readSpans().filter((s) => s.traceId === traceId));
}

/**
 * Asserts a joined trace: each of the backend's `count` SERVER spans in trace
 * `traceId` is the child of a CLIENT fetch span from `service` (so the
 * traceparent our fetch sent named that span), and those fetches succeeded.
 * Returns { spans, clients, servers } (servers in the order of their parents).
 */
export async function assertJoined(collector, traceId, service, count = 1) {
  const ours = (s) => s.resource['service.name'] === service;
  await collector.waitForSpans({ where: (s) => s.traceId === traceId && s.kind === 2 && !ours(s), count }, 15_000);
  const spans = await traceSpans(collector, traceId, 2 * count);
  const names = spans.map((s) => `${s.resource['service.name']}:${s.name}:${s.kind}`).join(', ');
  const clients = spans.filter((s) => s.kind === 3 && ours(s));
  const servers = spans.filter((s) => s.kind === 2 && !ours(s));
  assert.equal(servers.length, count, `backend SERVER spans in ${names}`);
  for (const server of servers) {
    const parent = clients.find((c) => c.spanId === server.parentSpanId);
    assert.ok(parent, `the backend span ${server.name} is a child of a ${service} fetch span (${names})`);
    assert.equal(parent.attributes['http.response.status_code'], 200);
  }
  return { spans, clients, servers };
}

/** Span times as unix milliseconds: [start, end]. */
export function spanMillis(span) {
  return [Number(span.startTimeUnixNano) / 1e6, Number(span.endTimeUnixNano) / 1e6];
}

/** Asserts exporter counters after a flush: all ended spans exported, nothing dropped or broken. */
export function assertAllExported(stats) {
  const s = JSON.stringify(stats);
  assert.ok(stats.ended > 0, s);
  assert.equal(stats.exported, stats.ended, s);
  assert.equal(stats.queued, 0, s);
  assert.equal(stats.inFlight, 0, s);
  assert.equal(stats.dropped, 0, s);
  assert.equal(stats.internalErrors, 0, s);
  assert.equal(stats.broken, false, s);
}
