// Real peers for tracelink's end-to-end tests and demo, on free 127.0.0.1 ports:
//
//   startCollector()     rotel, a real OpenTelemetry collector (Python wheel in .tools/venv),
//                        with every span it decodes read back from a JSONL file, optionally
//                        forwarding over OTLP/gRPC (to the viewer)
//   startViewer()        the demo's trace viewer (demo/viewer: Jaeger UI offline + JSON API)
//   startBackend()       the FIR desk FastAPI backend (demo/backend), OpenTelemetry-instrumented
//   startTracelinkApp()  a small FastAPI app joined to browser traces by instrument_app alone
//   startStaticServer()  files with browser-correct MIME types, plus test handlers:
//                        recorder() (records requests) and corsFront() (CORS in front of rotel)
//
// Every process started here is stopped by stop() / stopAll(), and killed when this
// Node process exits (normally, by an uncaught error, or on SIGINT/SIGTERM/SIGHUP).
// freePort() and request() (plain HTTP without connection reuse) are exported for tests.
// A long-running program (scripts/demo.mjs) calls delegateStopSignals() to stop peers
// gracefully on its own signal handlers instead.
// Node stdlib only. Python side: scripts/setup.sh creates .tools/venv.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HOST = '127.0.0.1';
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VENV_PYTHON = path.join(ROOT, '.tools', 'venv', 'bin', 'python');
const PROCESSOR = path.join(ROOT, 'tests', 'peers', 'rotel_dump_processor.py');
const STOP_GRACE_MS = 5000;

// ---------------------------------------------------------------------------------------------
// Ports

const handedOut = new Set();

/** A TCP port on 127.0.0.1 that nothing listens on now (and not handed out before by us). */
export async function freePort() {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.on('error', reject);
      server.listen(0, HOST, () => {
        const { port } = server.address();
        server.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: no unused port after 20 attempts');
}

function isListening(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

async function requireFree(what, port) {
  if (await isListening(port)) {
    throw new Error(`${what}: port ${HOST}:${port} is already in use by another process`);
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes: registry, cleanup, readiness

const live = new Set(); // { stop(), killNow() } for processes and servers

let cleanupInstalled = false;
let signalsDelegated = false;
function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', (code) => {
    killAllNow();
    removeWorkDirs(code);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      if (signalsDelegated) return; // the caller's own handler stops the peers
      killAllNow();
      // Default action (terminate with this signal) unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

function killAllNow() {
  for (const peer of live) peer.killNow();
  live.clear();
}

/**
 * For a long-running caller with its own SIGINT/SIGTERM/SIGHUP handlers that stop the peers
 * gracefully (stop() / stopAll()): this module's handlers then leave the peers alone. The
 * last resort stays: whatever is still running when this Node process exits is SIGKILLed.
 */
export function delegateStopSignals() {
  installCleanup();
  signalsDelegated = true;
}

/** Stop every peer started by this module (processes get SIGTERM, then SIGKILL). */
export function stopAll() {
  return Promise.all([...live].map((peer) => peer.stop()));
}

function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

const workDirs = new Set();

function workDir() {
  installCleanup();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tracelink-peers-'));
  workDirs.add(dir);
  return dir;
}

/**
 * Removes the peers' log directories when this process exits cleanly; they
 * stay after a failure (the error names them) or with TRACELINK_KEEP_PEER_LOGS=1.
 */
function removeWorkDirs(code) {
  if (code !== 0 || process.env.TRACELINK_KEEP_PEER_LOGS === '1') return;
  for (const dir of workDirs) {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch { /* already gone */ }
  }
}

/** Spawn `command` in its own process group, output to `logFile`, tracked for cleanup. */
function launch(what, command, args, { env, cwd, logFile }) {
  installCleanup();
  const fd = fs.openSync(logFile, 'a');
  let child;
  try {
    child = spawn(command, args, { env, cwd, stdio: ['ignore', fd, fd], detached: true });
  } finally {
    fs.closeSync(fd);
  }
  child.unref(); // a forgotten peer must not keep the test process alive: exit cleanup kills it
  const proc = { what, child, logFile, exit: null };
  proc.exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => { proc.exit = { code, signal }; live.delete(proc); resolve(proc.exit); });
    child.once('error', (error) => { proc.exit = { error }; live.delete(proc); resolve(proc.exit); });
  });
  const signalGroup = (signal) => {
    try { process.kill(-child.pid, signal); } catch { /* already gone */ }
  };
  proc.killNow = () => { if (!proc.exit) signalGroup('SIGKILL'); };
  let stopping = null;
  proc.stop = () => {
    stopping ??= (async () => {
      if (proc.exit) return proc.exit;
      child.ref(); // keep Node alive until the peer has shut down cleanly
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), STOP_GRACE_MS);
      const exit = await proc.exited;
      clearTimeout(timer);
      return exit;
    })();
    return stopping;
  };
  live.add(proc);
  return proc;
}

function describeExit(exit) {
  if (exit.error) return `could not start (${exit.error.message})`;
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
}

function startupError(proc, port, detail) {
  const log = tail(proc.logFile);
  const inUse = /address already in use|addrinuse|os error 98/i.test(log);
  const why = inUse ? `port ${HOST}:${port} is already in use` : detail;
  return new Error(`${proc.what}: ${why}; log tail (${proc.logFile}):\n${log}`);
}

/** Poll `probe()` until it returns true; fail fast, with the log tail, when the process dies. */
async function waitReady(proc, port, probe, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exit) throw startupError(proc, port, `${describeExit(proc.exit)} before it was ready`);
    let ok = false;
    try { ok = await probe(); } catch { /* not listening yet */ }
    // The answer counts only if our process is still the one listening.
    if (ok && !proc.exit) return;
    await sleep(50);
  }
  await proc.stop();
  throw startupError(proc, port, `not ready after ${timeoutMs} ms`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A plain HTTP/1.1 request without connection reuse: { status, headers, body: Buffer }. */
export function request(url, { method = 'GET', headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`timeout: ${method} ${url}`)));
    req.end(body);
  });
}

function requireVenv() {
  if (!fs.existsSync(VENV_PYTHON)) {
    throw new Error(`${VENV_PYTHON} is missing: run scripts/setup.sh (it creates the Python peers' venv)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Collector: rotel

let agentInfo = null;
function rotelAgent() {
  if (agentInfo) return agentInfo;
  requireVenv();
  const [agent, libdir] = execFileSync(VENV_PYTHON, ['-c',
    'import rotel.agent as a, sysconfig; print(a.Agent.agent_path); print(sysconfig.get_config_var("LIBDIR") or "")',
  ], { encoding: 'utf8' }).trim().split('\n');
  // rotel-agent embeds CPython (for the span processor) through libpython3.X.so.1.0. When
  // the system has none (no Debian libpython3.X), use the venv interpreter's own lib dir.
  let needsLibdir = false;
  try {
    needsLibdir = /libpython\S* => not found/.test(execFileSync('ldd', [agent], { encoding: 'utf8' }));
  } catch { /* no ldd: assume the loader finds it */ }
  agentInfo = { agent, libdir: needsLibdir ? libdir : null };
  return agentInfo;
}

/** A typed OTLP value from the read-back ({intValue: 5}) as plain JSON (5). */
function plainValue(v) {
  if (v === null || typeof v !== 'object') return v;
  if ('arrayValue' in v) return v.arrayValue.map(plainValue);
  if ('kvlistValue' in v) return Object.fromEntries(Object.entries(v.kvlistValue).map(([k, x]) => [k, plainValue(x)]));
  return Object.values(v)[0];
}
const plainAttributes = (kvs) => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, plainValue(kv.value)]));

/**
 * The processor's typed record with attributes as {key: value} maps, the
 * resource as its attribute map, and a missing status as UNSET.
 */
export function flattenSpan(record) {
  return {
    ...record,
    resource: plainAttributes(record.resource?.attributes),
    attributes: plainAttributes(record.attributes),
    events: (record.events ?? []).map((e) => ({ ...e, attributes: plainAttributes(e.attributes) })),
    links: (record.links ?? []).map((l) => ({ ...l, attributes: plainAttributes(l.attributes) })),
    status: record.status ?? { code: 0, message: '' },
  };
}

/**
 * Start rotel receiving OTLP/HTTP and OTLP/gRPC (on free ports unless `httpPort` / `grpcPort`
 * are given). By default it exports nowhere; with `forwardGrpc` ('127.0.0.1:PORT' or
 * 'http://127.0.0.1:PORT', e.g. a viewer's grpcAddress) it forwards every span there over
 * OTLP/gRPC. With `readBack` (default true) every span it decodes is also appended to
 * `spansFile` (JSONL, one span per line: traceId, spanId, parentSpanId, name, kind,
 * attributes, events, links, status, resource, scope, ...); `readBack: false` runs no
 * span processor (readSpans() then stays empty).
 *
 * Returns { httpUrl, tracesUrl, grpcPort, spansFile, logFile, readSpans(), processorErrors(),
 *           waitForSpans(what, timeoutMs), exited, stop() }; `exited` resolves with
 *           { code, signal } (or { error }) when the process ends.
 */
export async function startCollector({ spansFile, httpPort, grpcPort, forwardGrpc, readBack = true } = {}) {
  const { agent, libdir } = rotelAgent();
  if (readBack && !fs.existsSync(PROCESSOR)) throw new Error(`collector: span processor ${PROCESSOR} is missing`);
  const dir = workDir();
  spansFile ??= path.join(dir, 'spans.jsonl');
  fs.writeFileSync(spansFile, '');
  httpPort ||= await freePort();
  grpcPort ||= await freePort();
  await requireFree('collector (OTLP/HTTP)', httpPort);
  await requireFree('collector (OTLP/gRPC)', grpcPort);

  const env = { ...process.env, TRACELINK_SPANS_FILE: spansFile };
  if (libdir) env.LD_LIBRARY_PATH = [libdir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');
  const exporter = forwardGrpc
    ? ['--exporter', 'otlp', '--otlp-exporter-protocol', 'grpc',
      '--otlp-exporter-endpoint', /^https?:\/\//.test(forwardGrpc) ? forwardGrpc : `http://${forwardGrpc}`]
    : ['--exporter', 'blackhole'];
  const proc = launch('collector (rotel)', agent, [
    'start',
    '--otlp-http-endpoint', `${HOST}:${httpPort}`,
    '--otlp-grpc-endpoint', `${HOST}:${grpcPort}`,
    ...(readBack ? ['--otlp-with-trace-processor', PROCESSOR] : []),
    ...exporter,
    '--batch-timeout', '50ms',
  ], { env, cwd: dir, logFile: path.join(dir, 'rotel.out') });

  const httpUrl = `http://${HOST}:${httpPort}`;
  const tracesUrl = `${httpUrl}/v1/traces`;
  await waitReady(proc, httpPort, async () => (await request(tracesUrl, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceSpans":[]}',
  })).status === 200, 15_000);

  const parse = () => {
    const spans = [];
    const errors = [];
    for (const line of fs.readFileSync(spansFile, 'utf8').split('\n')) {
      if (!line) continue;
      let record;
      try { record = JSON.parse(line); } catch { continue; } // a line still being written
      if (record.processor_error) errors.push(record);
      else spans.push(flattenSpan(record));
    }
    return { spans, errors };
  };

  return {
    httpUrl,
    tracesUrl,
    grpcPort,
    spansFile,
    logFile: proc.logFile,
    /** Every span received so far, in arrival order. */
    readSpans: () => parse().spans,
    /** Failures inside the read-back processor (should stay empty). */
    processorErrors: () => parse().errors,
    /**
     * Wait until spans arrive: `what` is a count (resolves with all spans once there are that
     * many), a predicate over one span (resolves with the matching spans once one matches), or
     * { where, count } (resolves once `count` spans match `where`).
     */
    async waitForSpans(what, timeoutMs = 10_000) {
      const where = typeof what === 'function' ? what : what?.where ?? (() => true);
      const count = typeof what === 'number' ? what : what?.count ?? 1;
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { spans, errors } = parse();
        if (errors.length) throw new Error(`collector: span processor failed: ${JSON.stringify(errors[0])}`);
        const matching = spans.filter(where);
        if (matching.length >= count) return matching;
        if (proc.exit) {
          throw new Error(`collector (rotel) ${describeExit(proc.exit)}; log tail:\n${tail(proc.logFile)}`);
        }
        if (Date.now() > deadline) {
          const names = [...new Set(spans.map((s) => s.name))].slice(0, 20).join(', ');
          throw new Error(`collector: ${matching.length}/${count} matching spans after ${timeoutMs} ms ` +
            `(${spans.length} received: ${names || 'none'})`);
        }
        await sleep(50);
      }
    },
    exited: proc.exited,
    stop: proc.stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Viewer: demo/viewer (Jaeger UI offline over an in-memory store)

const VIEWER_BIN = path.join(ROOT, 'demo', 'viewer', 'target', 'release', 'tracelink-viewer');
const VIEWER_BANNER = /^viewer ui=(\S+) grpc=(\S+) http=(\S+)$/m;

/**
 * Start the trace viewer (`demo/viewer`, built by scripts/setup.sh) with its Jaeger UI and JSON
 * API on `uiPort`, OTLP/gRPC on `grpcPort` and OTLP/HTTP on `httpPort` (each a free port when
 * not given). Ready once its first stdout line (every listener bound) has been printed.
 *
 * Returns { uiUrl, grpcAddress ('127.0.0.1:PORT', for startCollector's forwardGrpc), httpUrl,
 *           tracesUrl, logFile, trace(traceId), waitForTrace(traceId, until, timeoutMs),
 *           exited, stop() }. trace() is the Jaeger API's trace object
 *           ({ traceID, spans, processes }) or null; waitForTrace() polls until it exists
 *           and `until(trace)` (default: any trace) is true.
 */
export async function startViewer({ uiPort, grpcPort, httpPort, maxTraces } = {}) {
  if (!fs.existsSync(VIEWER_BIN)) {
    throw new Error(`viewer: ${VIEWER_BIN} is missing: run scripts/setup.sh (it builds demo/viewer)`);
  }
  uiPort ||= await freePort();
  grpcPort ||= await freePort();
  httpPort ||= await freePort();
  await requireFree('viewer (Jaeger UI)', uiPort);
  await requireFree('viewer (OTLP/gRPC)', grpcPort);
  await requireFree('viewer (OTLP/HTTP)', httpPort);
  const dir = workDir();
  const args = ['--ui', `${HOST}:${uiPort}`, '--grpc', `${HOST}:${grpcPort}`, '--http', `${HOST}:${httpPort}`];
  if (maxTraces) args.push('--max-traces', String(maxTraces));
  const proc = launch('viewer (demo/viewer)', VIEWER_BIN, args,
    { env: { ...process.env }, cwd: dir, logFile: path.join(dir, 'viewer.out') });
  let banner = null;
  await waitReady(proc, uiPort, async () => {
    banner = fs.readFileSync(proc.logFile, 'utf8').match(VIEWER_BANNER);
    return banner !== null;
  }, 15_000);
  const [, uiUrl, grpcAddress, httpUrl] = banner;

  const trace = async (traceId) => {
    const res = await request(`${uiUrl}/api/traces/${traceId}`);
    if (res.status === 404) return null;
    if (res.status !== 200) throw new Error(`viewer: GET /api/traces/${traceId}: ${res.status} ${res.body}`);
    return JSON.parse(res.body.toString('utf8')).data?.[0] ?? null;
  };
  return {
    uiUrl,
    grpcAddress,
    httpUrl,
    tracesUrl: `${httpUrl}/v1/traces`,
    logFile: proc.logFile,
    trace,
    async waitForTrace(traceId, until = () => true, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = await trace(traceId);
        if (found && until(found)) return found;
        if (proc.exit) throw new Error(`viewer ${describeExit(proc.exit)}; log tail:\n${tail(proc.logFile)}`);
        if (Date.now() > deadline) {
          const names = (found?.spans ?? []).map((s) => s.operationName).join(', ');
          throw new Error(`viewer: trace ${traceId} ${found ? `incomplete after ${timeoutMs} ms (spans: ${names})`
            : `not found after ${timeoutMs} ms`}`);
        }
        await sleep(100);
      }
    },
    exited: proc.exited,
    stop: proc.stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Backend: demo/backend (FastAPI + OpenTelemetry)

/**
 * Start the FIR desk backend (`python -m demo.backend`) exporting to the collector at
 * `collectorUrl` (base URL or full /v1/traces URL), which is also the only target of its
 * same-origin relay `POST /otlp/v1/traces`.
 *
 * corsOrigins: '*', an origin, or an array of origins (default '*'; [] or '' = no CORS).
 * staticDir / pkgDir: served at / and /pkg/. env: extra variables (see demo/backend/settings.py);
 * a BACKEND_PORT there replaces the free port.
 * Returns { url, port, relayUrl, logFile, exited, stop() }.
 */
export async function startBackend({ collectorUrl, corsOrigins = '*', staticDir, pkgDir, env = {} } = {}) {
  if (!collectorUrl) throw new Error('backend: collectorUrl is required (e.g. collector.httpUrl)');
  requireVenv();
  const tracesUrl = collectorUrl.replace(/\/+$/, '').replace(/(\/v1\/traces)?$/, '/v1/traces');
  const port = env.BACKEND_PORT ? Number(env.BACKEND_PORT) : await freePort();
  await requireFree('backend', port);
  const dir = workDir();
  const vars = {
    ...process.env,
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
    BACKEND_HOST: HOST,
    BACKEND_PORT: String(port),
    OTLP_TRACES_ENDPOINT: tracesUrl,
    CORS_ORIGINS: Array.isArray(corsOrigins) ? corsOrigins.join(',') : corsOrigins,
    ...(staticDir ? { STATIC_DIR: path.resolve(staticDir) } : {}),
    ...(pkgDir ? { PKG_DIR: path.resolve(pkgDir) } : {}),
    ...env,
  };
  const proc = launch('backend (demo/backend)', VENV_PYTHON, ['-m', 'demo.backend'],
    { env: vars, cwd: ROOT, logFile: path.join(dir, 'backend.out') });
  const url = `http://${HOST}:${port}`;
  await waitReady(proc, port, async () => (await request(`${url}/healthz`)).status === 200, 30_000);
  return { url, port, relayUrl: `${url}/otlp/v1/traces`, logFile: proc.logFile, exited: proc.exited, stop: proc.stop };
}

const TRACELINK_APP = path.join(ROOT, 'tests', 'peers', 'cross_origin_app.py');

/**
 * Start a small FastAPI app set up only with tracelink-backend's `instrument_app`
 * (tests/peers/cross_origin_app.py): OpenTelemetry SDK exporting to `collectorUrl` (base URL),
 * CORS for `allowOrigins`, the OTLP relay at /otlp/v1/traces forwarding there. It imports
 * tracelink_backend from this checkout's python/, whatever the venv's editable install points at.
 * Returns { url, port, relayUrl, logFile, log(), exited, stop() }; log() is its output so far
 * (uvicorn's access log lists every request, preflights included).
 */
export async function startTracelinkApp({ collectorUrl, allowOrigins = [], service } = {}) {
  if (!collectorUrl) throw new Error('tracelink app: collectorUrl is required (e.g. collector.httpUrl)');
  requireVenv();
  const port = await freePort();
  await requireFree('tracelink app', port);
  const dir = workDir();
  const env = { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1',
    PYTHONPATH: [path.join(ROOT, 'python'), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) };
  const args = [TRACELINK_APP, '--port', String(port), '--collector', collectorUrl.replace(/\/v1\/traces\/?$/, ''),
    ...allowOrigins.flatMap((origin) => ['--allow-origin', origin]), ...(service ? ['--service', service] : [])];
  const proc = launch('tracelink app (tests/peers/cross_origin_app.py)', VENV_PYTHON, args,
    { env, cwd: ROOT, logFile: path.join(dir, 'tracelink-app.out') });
  const url = `http://${HOST}:${port}`;
  await waitReady(proc, port, async () => (await request(`${url}/healthz`)).status === 200, 30_000);
  return { url, port, relayUrl: `${url}/otlp/v1/traces`, logFile: proc.logFile,
    log: () => fs.readFileSync(proc.logFile, 'utf8'), exited: proc.exited, stop: proc.stop };
}

// ---------------------------------------------------------------------------------------------
// Static server with test handlers

const MIME = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.map': 'application/json',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
};

/**
 * Serve `root` (optional) on a free port, with `routes` taking precedence: an object
 * { '/path': handler } where a key ending in '/*' matches by prefix. A handler is
 * `(req, res, { url, body })` with the request body already read into a Buffer.
 * `headers` are added to every file response (e.g. COOP/COEP).
 * Returns { url, port, route(path, handler), stop() }.
 */
export async function startStaticServer({ root, routes = {}, headers = {} } = {}) {
  const table = new Map(Object.entries(routes));
  const base = root ? path.resolve(root) : null;
  const server = http.createServer(async (req, res) => {
    try {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const url = new URL(req.url, `http://${req.headers.host || HOST}`);
      const handler = table.get(url.pathname) ?? [...table].find(([key]) =>
        key.endsWith('/*') && url.pathname.startsWith(key.slice(0, -1)))?.[1];
      if (handler) return await handler(req, res, { url, body: Buffer.concat(chunks) });
      if (!base) return send(res, 404, 'not found');
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed');
      let pathname;
      try { pathname = decodeURIComponent(url.pathname); } catch { return send(res, 400, 'bad path'); }
      let file = path.join(base, pathname);
      if (file !== base && !file.startsWith(base + path.sep)) return send(res, 403, 'forbidden');
      if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) return send(res, 404, 'not found');
      const data = fs.readFileSync(file);
      res.writeHead(200, {
        'content-type': MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
        'content-length': data.length,
        'cache-control': 'no-store',
        ...headers,
      });
      res.end(req.method === 'HEAD' ? undefined : data);
    } catch (error) {
      if (!res.headersSent) send(res, 500, String(error?.stack ?? error));
      else res.destroy();
    }
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  server.unref();
  installCleanup();
  const { port } = server.address();
  let stopping = null;
  const peer = {
    stop: () => {
      stopping ??= new Promise((resolve) => {
        live.delete(peer);
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return stopping;
    },
    killNow: () => server.close(),
  };
  live.add(peer);
  return {
    url: `http://${HOST}:${port}`,
    port,
    route(key, handler) { table.set(key, handler); },
    stop: peer.stop,
  };
}

function send(res, status, text, extraHeaders = {}) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text),
    ...extraHeaders });
  res.end(text);
}

function originAllowed(origin, allowOrigins) {
  if (!origin) return false;
  const list = Array.isArray(allowOrigins) ? allowOrigins : [allowOrigins];
  return list.includes('*') || list.includes(origin);
}

function corsHeaders(origin, credentials) {
  return {
    'access-control-allow-origin': origin,
    ...(credentials ? { 'access-control-allow-credentials': 'true' } : {}),
    vary: 'Origin',
  };
}

/**
 * A handler that records every request ({ method, path, query, headers, body, at }) in
 * `.requests` and answers `status` with `body`. With `cors` (default) it answers preflights
 * for any origin and header, and lets pages read its responses (credentials allowed).
 * `.waitFor(predicate|count, timeoutMs)` resolves with the matching requests.
 */
export function recorder({ status = 200, body = '', contentType = 'text/plain', cors = true } = {}) {
  const requests = [];
  const handler = (req, res, { url, body: received }) => {
    requests.push({ method: req.method, path: url.pathname, query: url.search, headers: { ...req.headers },
      body: received.toString('utf8'), at: Date.now() });
    const origin = req.headers.origin;
    const allow = cors && origin ? corsHeaders(origin, true) : {};
    if (cors && req.method === 'OPTIONS') {
      res.writeHead(204, { ...allow, 'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? '*',
        'access-control-max-age': '600', 'content-length': 0 });
      return res.end();
    }
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    send(res, status, text, { ...allow, 'content-type': contentType,
      ...(cors && origin ? { 'access-control-expose-headers': '*' } : {}) });
  };
  handler.requests = requests;
  handler.waitFor = (what = 1, timeoutMs = 10_000) => waitForRecords(requests, what, timeoutMs, 'recorder');
  return handler;
}

/**
 * CORS in front of a collector without CORS support (rotel): answers preflights from
 * `allowOrigins` ('*' or a list; the request's Origin is reflected, never '*'), and forwards
 * POST bodies unchanged to `upstream` + the request path (mount it at '/v1/traces'), adding
 * Access-Control-Allow-Origin (+ Allow-Credentials, needed by sendBeacon, unless
 * `allowCredentials: false`). Every request is logged in `.requests`.
 */
export function corsFront({ upstream, allowOrigins = '*', allowCredentials = true } = {}) {
  if (!upstream) throw new Error('corsFront: upstream (collector base URL) is required');
  const target = upstream.replace(/\/+$/, '');
  const requests = [];
  const handler = async (req, res, { url, body }) => {
    const origin = req.headers.origin;
    const allowed = originAllowed(origin, allowOrigins);
    const entry = { method: req.method, path: url.pathname, origin, headers: { ...req.headers }, bytes: body.length,
      at: Date.now() };
    requests.push(entry);
    if (req.method === 'OPTIONS') {
      if (!allowed) { entry.status = 403; return send(res, 403, 'origin not allowed'); }
      res.writeHead(204, { ...corsHeaders(origin, allowCredentials),
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'content-type',
        'access-control-max-age': '600', 'content-length': 0 });
      entry.status = 204;
      return res.end();
    }
    if (req.method !== 'POST') { entry.status = 405; return send(res, 405, 'POST only'); }
    const forward = {};
    for (const name of ['content-type', 'content-encoding', 'user-agent']) {
      if (req.headers[name]) forward[name] = req.headers[name];
    }
    let reply;
    try {
      reply = await request(target + url.pathname + url.search, { method: 'POST', headers: forward, body });
    } catch (error) {
      reply = { status: 502, headers: { 'content-type': 'text/plain' }, body: Buffer.from(String(error.message)) };
    }
    entry.status = reply.status;
    res.writeHead(reply.status, { ...(allowed ? corsHeaders(origin, allowCredentials) : {}),
      ...(reply.headers['content-type'] ? { 'content-type': reply.headers['content-type'] } : {}),
      'content-length': reply.body.length });
    res.end(reply.body);
  };
  handler.requests = requests;
  handler.waitFor = (what = 1, timeoutMs = 10_000) => waitForRecords(requests, what, timeoutMs, 'corsFront');
  return handler;
}

async function waitForRecords(records, what, timeoutMs, label) {
  const where = typeof what === 'function' ? what : () => true;
  const count = typeof what === 'number' ? what : 1;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const matching = records.filter(where);
    if (matching.length >= count) return matching;
    if (Date.now() > deadline) {
      throw new Error(`${label}: ${matching.length}/${count} matching requests after ${timeoutMs} ms ` +
        `(${records.length} received)`);
    }
    await sleep(25);
  }
}
