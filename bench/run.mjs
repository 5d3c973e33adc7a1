// bench/run.mjs: tracelink vs OpenTelemetry JS web, in one run, as one table.
//
// Builds both sides (bench/build.mjs), starts the OTLP sink (bench/sink.mjs)
// and a page server on 127.0.0.1 (the sink is another origin, as a collector
// is), then drives headless Chromium (playwright-core, /usr/bin/chromium)
// through metrics 1-8 of issue 5. Every measurement opens a fresh browser
// context; sides alternate within each repetition (ABBA...), each page warms
// up before it is timed. Prints ONE table (median, min-max over repetitions)
// and writes bench/results/latest.json with every raw sample. Nothing here
// asserts on a figure.
//
// Knobs (environment):
//   BENCH_QUICK=1        fewer repetitions and calls (a smoke run, ~2 min)
//   TRACELINK_PKG=DIR    tracelink package to measure (default: <repo>/pkg);
//                        not built -> tracelink cells read n/a
//   BENCH_ONLY=2,6       run only these metric numbers (1-8)
//   BENCH_REPS=N         repetitions for every browser metric
//   BENCH_FETCH_PAIRS=N  interleaved traced/plain fetch pairs per repetition (default 2000)
//   BENCH_PROTOCOL=json|protobuf  force one protocol for metrics 2,3,6,7,8
//                        (default: each SDK's default: OTel http/json, tracelink http/protobuf)
//   BENCH_OUT=FILE       results JSON (default bench/results/latest.json for a full
//                        run; quick.json / partial.json for BENCH_QUICK / BENCH_ONLY)
//   CHROMIUM=PATH        browser binary (default /usr/bin/chromium)
//   BENCH_VENV=DIR       Python venv holding rotel for the realism row (default <repo>/.tools/venv)
import { createServer } from 'node:http';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { build } from './build.mjs';
import { startSink } from './sink.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const env = process.env;
const QUICK = env.BENCH_QUICK === '1';
const intEnv = (name, dflt) => (env[name] && Number.isFinite(Number(env[name])) ? Math.max(1, Math.floor(Number(env[name]))) : dflt);
const REPS = env.BENCH_REPS ? intEnv('BENCH_REPS', 1) : null;

/** The slow-network page-hide variant: a poor mobile uplink. */
const SLOW = { rttMs: 150, upKbps: 750, downKbps: 1600 };
const CFG = {
  quick: QUICK,
  spanCost: { reps: REPS ?? (QUICK ? 2 : 5), n: QUICK ? 10000 : 40000, chunk: 2000, warmup: 4000 },
  burst: { reps: REPS ?? (QUICK ? 1 : 3), tight: 100000, yielding: 200000, yieldEvery: 256, timeoutMs: 30000, rotelSpans: 10000 },
  wire: { reps: REPS ?? (QUICK ? 1 : 2), spans: 2048, yieldEvery: 256 },
  encode: { reps: REPS ?? (QUICK ? 1 : 3), spans: 512, iterations: QUICK ? 20 : 60 },
  fetch: { reps: REPS ?? (QUICK ? 1 : 3), pairs: intEnv('BENCH_FETCH_PAIRS', QUICK ? 300 : 2000), warmupPairs: QUICK ? 50 : 200 },
  heap: { reps: REPS ?? (QUICK ? 1 : 2), spans: 200000, yieldEvery: 256, settleMs: 2000 },
  pagehide: {
    reps: REPS ?? (QUICK ? 1 : 3),
    scenarios: [{ k: 100, how: 'close' }, { k: 1000, how: 'close' }, { k: 1000, how: 'navigate' },
      { k: 100, how: 'navigate', throttle: SLOW }, { k: 1000, how: 'navigate', throttle: SLOW }],
    quietMs: 1500, maxWaitMs: 15000,
  },
  protocol: env.BENCH_PROTOCOL === 'json' ? 'http/json' : env.BENCH_PROTOCOL === 'protobuf' ? 'http/protobuf' : null,
  only: env.BENCH_ONLY ? new Set(env.BENCH_ONLY.split(',').map((s) => Number(s.trim()))) : null,
  unitTimeoutMs: 180000,
  // BENCH_TRACELINK_COMPRESS=1: tracelink gzips its exports (its default for a
  // same-origin endpoint; the sink is cross-origin, so off unless asked). OTel JS
  // has no compression in browsers: rows then compare gzip'd with plain.
  tracelinkCompress: env.BENCH_TRACELINK_COMPRESS === '1',
};
const SIDES = ['tracelink', 'otel'];
const LABEL = { tracelink: 'tracelink', otel: 'OTel JS' };
const DEFAULT_PROTOCOL = { tracelink: 'http/protobuf', otel: 'http/json' };
const T0 = Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => process.stderr.write(`[${String(Math.round((Date.now() - T0) / 1000)).padStart(4)}s] ${msg}\n`);

// ---- statistics ------------------------------------------------------------

function quantile(xs, q) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1)); // nearest rank
  return s[i];
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
function summary(values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v));
  if (!xs.length) return null;
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

// ---- page server -------------------------------------------------------------

const TYPES = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html; charset=utf-8' };

/** Serves the built pages (cross-origin isolated, for 5 us timers) and /ping. */
async function startPageServer(distDir) {
  const pings = { n: 0, traceparent: 0 };
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://page');
    const headers = {
      'Cache-Control': 'no-store',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
    };
    if (url.pathname === '/ping') {
      pings.n++;
      if (req.headers.traceparent) pings.traceparent++;
      res.writeHead(200, { ...headers, 'Content-Type': 'text/plain' });
      return res.end('ok');
    }
    const page = /^\/(otel|tracelink)\.html$/.exec(url.pathname);
    if (page) {
      res.writeHead(200, { ...headers, 'Content-Type': TYPES['.html'] });
      return res.end(`<!doctype html><meta charset="utf-8"><title>bench ${page[1]}</title><script type="module" src="/${page[1]}/page.js"></script>`);
    }
    if (url.pathname === '/blank.html') {
      res.writeHead(200, { ...headers, 'Content-Type': TYPES['.html'] });
      return res.end('<!doctype html><meta charset="utf-8"><title>blank</title>');
    }
    const file = /^\/(otel|tracelink)\/([\w.-]+)$/.exec(url.pathname);
    const path = file && join(distDir, file[1], file[2]);
    if (!path || !existsSync(path)) {
      res.writeHead(404, headers);
      return res.end();
    }
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[extname(path)] ?? 'application/octet-stream' });
    res.end(readFileSync(path));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, pings, close: () => { server.closeAllConnections?.(); server.close(); } };
}

// ---- browser units -------------------------------------------------------------

let browser, sink, pages, rotel = null, runSeq = 0;
const errors = [];

/** Opens side's page in a fresh context and sets it up. */
async function openSide(side, setupOpts) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e?.message ?? e)));
  await page.goto(`${pages.origin}/${side}.html`);
  await page.waitForFunction(() => globalThis.bench !== undefined, null, { timeout: 20000 }).catch(() => {
    throw new Error(`${side} page did not load: ${pageErrors.join('; ') || 'no bench driver'}`);
  });
  const info = await page.evaluate((o) => globalThis.bench.setup(o), side === 'tracelink' && CFG.tracelinkCompress ? { ...setupOpts, compress: true } : setupOpts);
  return { context, page, info, pageErrors };
}

const newRunId = (side, what) => `${what}-${side}-${++runSeq}`;
const protocolFor = (side) => CFG.protocol ?? DEFAULT_PROTOCOL[side];

/** Polls until the side is idle and the sink holds all it exported (or timeout). */
async function waitDelivered(page, runId, base, timeoutMs) {
  const start = Date.now();
  for (;;) {
    const { idle, stats } = await page.evaluate(() => ({ idle: globalThis.bench.idle(), stats: globalThis.bench.stats() }));
    const got = sink.run(runId).spans - base.sinkSpans;
    if (idle && got >= stats.exported - base.exported) return { stats, timedOut: false };
    if (Date.now() - start > timeoutMs) return { stats, timedOut: true };
    await sleep(50);
  }
}

/** Span cost; `protocol` forces one for both sides (equal work), else each side's default. */
const unitSpanCost = (protocol) => async (side) => {
  const id = newRunId(side, 'cost');
  const { context, page } = await openSide(side, { endpoint: sink.url(id), protocol: protocol ?? protocolFor(side) });
  try {
    const { n, chunk, warmup } = CFG.spanCost;
    await page.evaluate(([w, c]) => globalThis.bench.spanCost(w, c), [warmup, chunk]);
    const r = await page.evaluate(([m, c]) => globalThis.bench.spanCost(m, c), [n, chunk]);
    return { value: r.nsPerSpan, ...r };
  } finally {
    await context.close();
  }
};

function unitBurst(kind, protocol) {
  return async (side) => {
    const { tight, yielding, yieldEvery, timeoutMs } = CFG.burst;
    const [n, every] = kind === 'tight' ? [tight, 0] : [yielding, yieldEvery];
    const id = newRunId(side, `burst-${kind}`);
    const { context, page } = await openSide(side, { endpoint: sink.url(id), protocol: protocol ?? protocolFor(side) });
    try {
      // Warm-up: JIT, connection and CORS preflight cache.
      await page.evaluate(() => globalThis.bench.spanBurst(1000, 250));
      await page.evaluate(() => globalThis.bench.flush());
      const warm = await waitDelivered(page, id, { sinkSpans: 0, exported: 0 }, 10000);
      const base = { sinkSpans: sink.run(id).spans, exported: warm.stats.exported, made: warm.stats.made, dropped: warm.stats.dropped };
      const loop = await page.evaluate(([m, e]) => globalThis.bench.spanBurst(m, e), [n, every]);
      const done = await waitDelivered(page, id, base, timeoutMs);
      const run = sink.run(id);
      const delivered = run.spans - base.sinkSpans;
      return {
        value: (100 * delivered) / n,
        delivered, made: n,
        loopMs: loop.t1 - loop.t0,
        deliveredMs: delivered > 0 ? run.lastT - loop.t0 : null,
        timedOut: done.timedOut,
        requests: run.requests.length,
        dropped: done.stats.dropped - base.dropped,
        stats: done.stats,
      };
    } finally {
      await context.close();
    }
  };
}

function unitWire(protocol) {
  return async (side) => {
    const id = newRunId(side, `wire-${protocol.slice(5)}`);
    const { context, page } = await openSide(side, { endpoint: sink.url(id, { gzip: true }), protocol });
    try {
      await page.evaluate(([m, e]) => globalThis.bench.spanBurst(m, e), [CFG.wire.spans, CFG.wire.yieldEvery]);
      await page.evaluate(() => globalThis.bench.flush());
      await waitDelivered(page, id, { sinkSpans: 0, exported: 0 }, 20000);
      const r = sink.run(id);
      const ok = r.requests.filter((q) => q.status === 200);
      return {
        value: r.spans ? r.bytes / r.spans : null,
        gzipPerSpan: r.gzipSpans ? r.gzipBytes / r.gzipSpans : null,
        headerBytesPerRequest: ok.length ? r.headerBytes / ok.length : null,
        spans: r.spans, requests: ok.length, bytes: r.bytes, gzipBytes: r.gzipBytes,
        encodings: [...new Set(ok.map((q) => q.encoding || 'identity'))],
        shapes: r.shapes, errors: r.errors,
        firstJson: r.firstJson,
      };
    } finally {
      await context.close();
    }
  };
}

async function unitEncode(side) {
  const id = newRunId(side, 'encode');
  const { context, page } = await openSide(side, { endpoint: sink.url(id), protocol: protocolFor(side) });
  try {
    const r = await page.evaluate(([n, it]) => globalThis.bench.encodeBench(n, it), [CFG.encode.spans, CFG.encode.iterations]);
    return r ? { value: r.json?.ns ?? null, ...r } : null;
  } finally {
    await context.close();
  }
}

const round4 = (x) => Math.round(x * 1e4) / 1e4;

async function unitFetch(side) {
  const id = newRunId(side, 'fetch');
  const { context, page } = await openSide(side, { endpoint: sink.url(id), protocol: protocolFor(side) });
  try {
    const url = `${pages.origin}/ping`;
    await page.evaluate(([u, p]) => globalThis.bench.fetchLatency(u, p), [url, CFG.fetch.warmupPairs]);
    pages.pings.n = 0;
    pages.pings.traceparent = 0;
    const { traced, plain } = await page.evaluate(([u, p]) => globalThis.bench.fetchLatency(u, p), [url, CFG.fetch.pairs]);
    const us = (ms) => ms * 1000;
    return {
      value: us(median(traced) - median(plain)),
      addedP99Us: us(quantile(traced, 0.99) - quantile(plain, 0.99)),
      tracedMedianUs: us(median(traced)), plainMedianUs: us(median(plain)),
      tracedP99Us: us(quantile(traced, 0.99)), plainP99Us: us(quantile(plain, 0.99)),
      pairs: traced.length,
      traceparentSent: pages.pings.traceparent,
      tracedMs: traced.map(round4), plainMs: plain.map(round4), // raw samples (timer resolution 5 us)
    };
  } finally {
    await context.close();
  }
}

async function unitHeap(side) {
  const id = newRunId(side, 'heap');
  const { spans, yieldEvery, settleMs } = CFG.heap;
  const { context, page } = await openSide(side, { endpoint: sink.url(id, { mode: 'down' }), protocol: protocolFor(side) });
  try {
    const cdp = await context.newCDPSession(page);
    const heap = async () => {
      await cdp.send('HeapProfiler.collectGarbage');
      const h = await cdp.send('Runtime.getHeapUsage');
      const wasm = await page.evaluate(() => globalThis.bench.memory());
      return { ...h, wasm };
    };
    const h0 = await heap();
    const loop = await page.evaluate(([m, e]) => globalThis.bench.spanBurst(m, e), [spans, yieldEvery]);
    const h1 = await heap();
    const s1 = await page.evaluate(() => globalThis.bench.stats());
    await sleep(settleMs);
    const h2 = await heap();
    const s2 = await page.evaluate(() => globalThis.bench.stats());
    const growth = (h) => (h.usedSize - h0.usedSize) + (h.wasm - h0.wasm);
    return {
      value: growth(h1) / 1024,
      afterSettleKiB: growth(h2) / 1024,
      jsGrowthKiB: (h1.usedSize - h0.usedSize) / 1024,
      wasmGrowthKiB: (h1.wasm - h0.wasm) / 1024,
      dropped: s1.dropped, droppedAfterSettle: s2.dropped, sdkCounted: s1.sdkCounted,
      made: s1.made, loopMs: loop.t1 - loop.t0,
      connectionsRefused: sink.run(id).refused,
      heap: [h0, h1, h2], stats: [s1, s2],
    };
  } finally {
    await context.close();
  }
}

function unitPageHide({ k, how, throttle }) {
  return async (side) => {
    const id = newRunId(side, `hide-${how}-${k}${throttle ? '-slow' : ''}`);
    const { context, page } = await openSide(side, { endpoint: sink.url(id), protocol: protocolFor(side) });
    try {
      // Warm-up as a page that has exported before (preflight cached, JIT warm).
      await page.evaluate(() => globalThis.bench.spanBurst(20, 0));
      await page.evaluate(() => globalThis.bench.flush());
      await waitDelivered(page, id, { sinkSpans: 0, exported: 0 }, 10000);
      const base = sink.run(id).spans;
      if (throttle) {
        // A slow uplink (CDP network emulation): a request whose body is still
        // uploading when the document goes away is lost unless it is keepalive.
        const cdp = await context.newCDPSession(page);
        await cdp.send('Network.enable');
        await cdp.send('Network.emulateNetworkConditions', {
          offline: false, latency: throttle.rttMs, uploadThroughput: (throttle.upKbps * 1000) / 8, downloadThroughput: (throttle.downKbps * 1000) / 8,
        });
      }
      await page.evaluate((m) => globalThis.bench.queueSpans(m), k);
      const beforeHide = sink.run(id).spans - base;
      if (how === 'close') await page.close({ runBeforeUnload: true });
      else await page.goto(`${pages.origin}/blank.html`);
      // Wait for arrivals to settle: nothing new for quietMs and no upload under way.
      const start = Date.now();
      let last = sink.run(id).spans, lastChange = Date.now();
      while (Date.now() - start < CFG.pagehide.maxWaitMs && (Date.now() - lastChange < CFG.pagehide.quietMs || sink.run(id).pending > 0)) {
        await sleep(100);
        const now = sink.run(id).spans;
        if (now !== last) { last = now; lastChange = Date.now(); }
      }
      const arrived = sink.run(id).spans - base;
      const r = sink.run(id);
      return { value: (100 * arrived) / k, arrived, k, beforeHide, requests: r.requests.length, aborted: r.aborted, waitedMs: Date.now() - start };
    } finally {
      await context.close();
    }
  };
}

/** Starts rotel (a real OTLP collector, blackhole exporter) from the project venv; null + reason if absent. */
async function startRotel() {
  const venv = resolve(env.BENCH_VENV || join(ROOT, '.tools', 'venv'));
  const py = join(venv, 'bin', 'python');
  if (!existsSync(py)) return { reason: `no ${venv} (scripts/setup.sh installs rotel there)` };
  let agent, libdir, version;
  try {
    const run = (code) => execFileSync(py, ['-c', code], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    agent = run('import rotel.agent as a; print(a.Agent.agent_path)');
    libdir = run('import sysconfig; print(sysconfig.get_config_var("LIBDIR"))');
    version = run('import importlib.metadata as m; print(m.version("rotel"))');
  } catch {
    return { reason: `rotel is not installed in ${venv}` };
  }
  // Two distinct free ports: both held open while the second is picked (a
  // port closed first can be handed out again, and rotel then fails to bind).
  const servers = [createServer(), createServer()];
  for (const srv of servers) await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const ports = servers.map((srv) => srv.address().port);
  for (const srv of servers) await new Promise((r) => srv.close(r));
  const child = spawn(agent, ['start', '--otlp-http-endpoint', `127.0.0.1:${ports[0]}`, '--otlp-grpc-endpoint', `127.0.0.1:${ports[1]}`, '--exporter', 'blackhole'], {
    env: { ...process.env, LD_LIBRARY_PATH: libdir + (env.LD_LIBRARY_PATH ? `:${env.LD_LIBRARY_PATH}` : '') },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-2000); });
  const url = `http://127.0.0.1:${ports[0]}/v1/traces`;
  for (let i = 0; i < 100 && child.exitCode === null; i++) {
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceSpans":[]}' });
      if (res.ok) return { url, version, pid: child.pid, stop: () => { if (child.exitCode === null) child.kill('SIGTERM'); } };
    } catch { /* not up yet */ }
    await sleep(100);
  }
  if (child.exitCode === null) child.kill('SIGTERM');
  return { reason: `rotel did not start: ${stderr.trim().split('\n').pop() ?? ''}` };
}

/** Realism: spans through the sink (as CORS front) into rotel; counts what rotel accepted (200). */
async function unitRotel(side) {
  if (!rotel?.url) return null;
  const id = newRunId(side, 'rotel');
  const { context, page } = await openSide(side, { endpoint: sink.url(id, { forward: rotel.url }), protocol: protocolFor(side) });
  try {
    const n = CFG.burst.rotelSpans;
    const loop = await page.evaluate(([m, e]) => globalThis.bench.spanBurst(m, e), [n, CFG.burst.yieldEvery]);
    await page.evaluate(() => globalThis.bench.flush());
    await waitDelivered(page, id, { sinkSpans: 0, exported: 0 }, CFG.burst.timeoutMs);
    const r = sink.run(id);
    return {
      value: (100 * r.spans) / n, accepted: r.spans, made: n,
      deliveredMs: r.spans ? r.lastT - loop.t0 : null,
      requests: r.requests.length, rejected: r.requests.filter((q) => q.status !== 200).length,
      upstreamErrors: r.upstreamErrors,
    };
  } finally {
    await context.close();
  }
}

// ---- the metrics --------------------------------------------------------------

const fmtInt = (v) => Math.round(v).toLocaleString('en-US');
const fmt1 = (v) => (Math.abs(v) >= 100 ? fmtInt(v) : v.toFixed(1));
const fmtPct = (v) => `${v >= 99.95 || v === 0 ? v.toFixed(0) : v < 10 ? v.toFixed(2) : v.toFixed(1)}%`;
const fmtKB = (v) => `${(v / 1000).toFixed(1)} kB`;

/**
 * Each metric: units to run per side per repetition (name -> unit), and the
 * table rows derived from the samples (row.get(sample) -> number).
 */
const hideKey = (sc) => `${sc.how}-${sc.k}${sc.throttle ? '-slow' : ''}`;

function metrics() {
  const b = CFG.burst, h = CFG.heap;
  const p = (side) => protocolFor(side).slice(5);
  return [
    { no: 1, title: 'shipped size', units: {} },
    {
      // Equal work: both sides on the same protocol (the rows that compare),
      // then each side's default (what a user gets without choosing).
      no: 2, title: 'span cost', reps: CFG.spanCost.reps,
      units: { 'cost-protobuf': unitSpanCost('http/protobuf'), 'cost-json': unitSpanCost('http/json'), cost: unitSpanCost(null) },
      rows: [
        { unit: 'cost-protobuf', label: '2. span cost (5 attrs + 3 setAttribute + 1 event + end), ns/span, both http/protobuf', fmt: fmt1, get: (s) => s.value },
        { unit: 'cost-json', label: '2. span cost, ns/span, both http/json', fmt: fmt1, get: (s) => s.value },
        { unit: 'cost', label: `2. span cost, ns/span, defaults (tracelink ${p('tracelink')}, OTel JS ${p('otel')})`, fmt: fmt1, get: (s) => s.value },
      ],
    },
    {
      no: 3, title: 'delivery under a burst', reps: b.reps,
      units: { 'tight-protobuf': unitBurst('tight', 'http/protobuf'), 'tight-json': unitBurst('tight', 'http/json'), yielding: unitBurst('yielding'), rotel: unitRotel },
      rows: [
        { unit: 'tight-protobuf', label: `3. ${b.tight / 1000}k tight loop, both http/protobuf: delivered`, fmt: fmtPct, get: (s) => s.value },
        { unit: 'tight-protobuf', label: `3. ${b.tight / 1000}k tight loop, both http/protobuf: time to all delivered, ms`, fmt: fmtInt, get: (s) => s.deliveredMs },
        { unit: 'tight-protobuf', label: `3. ${b.tight / 1000}k tight loop, both http/protobuf: dropped and counted by the SDK`, fmt: fmtInt, get: (s) => s.dropped },
        { unit: 'tight-json', label: `3. ${b.tight / 1000}k tight loop, both http/json: delivered`, fmt: fmtPct, get: (s) => s.value },
        { unit: 'tight-json', label: `3. ${b.tight / 1000}k tight loop, both http/json: time to all delivered, ms`, fmt: fmtInt, get: (s) => s.deliveredMs },
        { unit: 'yielding', label: `3. ${b.yielding / 1000}k loop yielding every ${b.yieldEvery}, defaults: delivered`, fmt: fmtPct, get: (s) => s.value },
        { unit: 'yielding', label: `3. ${b.yielding / 1000}k loop yielding every ${b.yieldEvery}, defaults: time to all delivered, ms`, fmt: fmtInt, get: (s) => s.deliveredMs },
        { unit: 'rotel', label: `3. realism: ${b.rotelSpans / 1000}k spans yielding every ${b.yieldEvery} into rotel ${rotel?.version ?? ''} (real collector): accepted`, fmt: fmtPct, get: (s) => s.value, na: 'n/a (no rotel)', naOtel: 'n/a (no rotel)' },
      ],
    },
    {
      no: 4, title: 'wire bytes per span', reps: CFG.wire.reps,
      units: { json: unitWire('http/json'), protobuf: unitWire('http/protobuf') },
      rows: [
        { unit: 'json', label: '4. wire bytes/span, OTLP/JSON', fmt: fmt1, get: (s) => s.value },
        { unit: 'json', label: '4. wire bytes/span, OTLP/JSON gzip\'d', fmt: fmt1, get: (s) => s.gzipPerSpan },
        { unit: 'protobuf', label: '4. wire bytes/span, OTLP/protobuf', fmt: fmt1, get: (s) => s.value },
        { unit: 'protobuf', label: '4. wire bytes/span, OTLP/protobuf gzip\'d', fmt: fmt1, get: (s) => s.gzipPerSpan },
      ],
    },
    {
      no: 5, title: 'encode cost', reps: CFG.encode.reps, units: { encode: unitEncode },
      rows: [
        { unit: 'encode', label: `5. encode a ${CFG.encode.spans}-span batch, OTLP/JSON, us`, fmt: fmt1, get: (s) => s.json?.ns / 1000, na: 'n/a (pending)' },
        { unit: 'encode', label: `5. encode a ${CFG.encode.spans}-span batch, OTLP/protobuf, us`, fmt: fmt1, get: (s) => s.protobuf?.ns / 1000, na: 'n/a (pending)' },
      ],
    },
    {
      no: 6, title: 'traced fetch latency', reps: CFG.fetch.reps, units: { fetch: unitFetch },
      rows: [
        { unit: 'fetch', label: `6. traced fetch added latency (task-scoped context, re-entry on settle), median of ${CFG.fetch.pairs} pairs, us`, fmt: fmt1, get: (s) => s.value },
        { unit: 'fetch', label: `6. traced fetch added latency, p99 of ${CFG.fetch.pairs} pairs, us`, fmt: fmt1, get: (s) => s.addedP99Us },
      ],
    },
    {
      no: 7, title: 'collector down', reps: h.reps, units: { heap: unitHeap },
      rows: [
        { unit: 'heap', label: `7. collector down, ${h.spans / 1000}k spans: heap growth (JS heap + wasm memory), KiB`, fmt: fmtInt, get: (s) => s.value },
        { unit: 'heap', label: `7. collector down, ${h.spans / 1000}k spans: dropped`, fmt: fmtInt, get: (s) => s.dropped, note: (side, s) => (!s ? 'n/a' : s.sdkCounted ? 'counted by the SDK' : 'derived (made − exported − queued − in flight); the SDK keeps no count') },
      ],
    },
    {
      no: 8, title: 'page hide', reps: CFG.pagehide.reps,
      units: Object.fromEntries(CFG.pagehide.scenarios.map((sc) => [hideKey(sc), unitPageHide(sc)])),
      rows: CFG.pagehide.scenarios.map((sc) => ({
        unit: hideKey(sc),
        label: `8. page hide (${sc.how === 'close' ? 'tab closed' : 'navigated away'}${sc.throttle ? `, slow uplink ${sc.throttle.upKbps} kbit/s ${sc.throttle.rttMs} ms RTT` : ''}): ${sc.k} spans made just before, arrived`,
        fmt: fmtPct, get: (s) => s.value,
      })),
    },
  ].map((m) => ({ ...m, protocols: { tracelink: p('tracelink'), otel: p('otel') } }));
}

function sizeRows(sizes) {
  const rows = [];
  const one = (v) => (v == null ? null : { median: v, min: v, max: v, n: 1 });
  for (const [key, label] of [['raw', 'raw'], ['gzip', 'gzip -9'], ['brotli', 'brotli']]) {
    rows.push({
      label: `1. default page setup (JS bundle + wasm), ${label}; OTel JS with the OTLP/protobuf exporter`,
      fmt: fmtKB, tracelink: one(sizes.tracelink?.total[key]), otel: one(sizes.otelProto.total[key]),
    });
  }
  rows.push({ label: '1. default page setup, gzip -9; OTel JS with its default OTLP/JSON exporter', fmt: fmtKB,
    tracelink: one(sizes.tracelink?.total.gzip), otel: one(sizes.otel.total.gzip) });
  if (sizes.tracelink?.withPersist) {
    rows.push({ label: '1. default page setup with persist.js (loaded after setup where IndexedDB exists), gzip -9; OTel JS with the OTLP/protobuf exporter (it has no persistence)',
      fmt: fmtKB, tracelink: one(sizes.tracelink.withPersist.gzip), otel: one(sizes.otelProto.total.gzip) });
  }
  for (const [key, name] of [['elastic', 'Elastic APM RUM 5.17.5'], ['sentry', 'Sentry browser + tracing'], ['faro', 'Grafana Faro + tracing']]) {
    if (sizes[key]) rows.push({ label: `1. default page setup, gzip -9; vs ${name} (in the OTel JS column)`, fmt: fmtKB, tracelink: one(sizes.tracelink?.total.gzip), otel: one(sizes[key].total.gzip) });
  }
  for (const r of sizes.tracelinkOptIns ?? []) {
    rows.push({ label: `1. ${r.what.replace(/^opt-in: /, 'opt-in, added gzip -9: ')}`, fmt: (v) => `+${fmtKB(v)}`, tracelink: one(r.gzip), otel: null, naOtel: '—' });
  }
  return rows;
}

function cell(sum, fmt, na = 'n/a') {
  if (!sum) return na;
  if (sum.n === 1 || sum.min === sum.max) return fmt(sum.median);
  return `${fmt(sum.median)} (${fmt(sum.min)}–${fmt(sum.max)})`;
}
function ratio(a, b) {
  if (!a || !b || !Number.isFinite(a.median) || !Number.isFinite(b.median) || a.median < 0 || b.median <= 0) return 'n/a';
  const r = a.median / b.median;
  return `${r >= 10 ? r.toFixed(0) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}×`;
}

// ---- main --------------------------------------------------------------------------

function machine(browserVersion) {
  const cpus = os.cpus();
  const git = (...a) => { try { return execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return null; } };
  const pkgVersion = (name) => { try { return JSON.parse(readFileSync(join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version; } catch { return null; } };
  return {
    nproc: os.availableParallelism?.() ?? cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    chromium: browserVersion,
    playwrightCore: pkgVersion('playwright-core'),
    esbuild: pkgVersion('esbuild'),
    opentelemetry: {
      'sdk-trace-web': pkgVersion('@opentelemetry/sdk-trace-web'),
      'exporter-trace-otlp-http': pkgVersion('@opentelemetry/exporter-trace-otlp-http'),
      'instrumentation-fetch': pkgVersion('@opentelemetry/instrumentation-fetch'),
      api: pkgVersion('@opentelemetry/api'),
    },
    tracelinkCommit: git('rev-parse', '--short', 'HEAD'),
    tracelinkDirty: git('status', '--porcelain') ? true : false,
  };
}

async function main() {
  const pkgDir = resolve(env.TRACELINK_PKG || join(ROOT, 'pkg'));
  log(`building (esbuild, minified ESM, production); tracelink package: ${pkgDir}`);
  const built = await build({ pkgDir, outDir: join(HERE, 'dist') });
  const available = { otel: true, tracelink: built.tracelink.ok };
  if (!built.tracelink.ok) log(`tracelink side unavailable: ${built.tracelink.reason} -> its cells read n/a`);
  if (built.tracelink.ok) {
    built.tracelinkWasmSha256 = createHash('sha256').update(readFileSync(join(pkgDir, 'tracelink.wasm'))).digest('hex').slice(0, 16);
  }

  sink = await startSink();
  pages = await startPageServer(join(HERE, 'dist'));
  if (!CFG.only || CFG.only.has(3)) {
    rotel = await startRotel();
    log(rotel.url ? `rotel ${rotel.version} at ${rotel.url} (pid ${rotel.pid})` : `rotel row n/a: ${rotel.reason}`);
  }
  browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows'],
  });
  const browserVersion = browser.version();
  log(`Chromium ${browserVersion}; sink ${sink.origin}; pages ${pages.origin}`);

  // Warm the browser and servers once per side (compile caches, sockets).
  const sideInfo = {};
  for (const side of SIDES) {
    if (!available[side]) continue;
    try {
      const { context, info } = await openSide(side, { endpoint: sink.url(`warm-${side}`), protocol: protocolFor(side) });
      sideInfo[side] = info;
      await context.close();
    } catch (e) {
      available[side] = false;
      errors.push({ side, unit: 'load', error: String(e?.message ?? e) });
      log(`${side}: page failed to load: ${e?.message ?? e} -> its cells read n/a`);
    }
  }

  const ms = metrics().filter((m) => !CFG.only || CFG.only.has(m.no));
  const samples = {};
  for (const m of ms) {
    for (const [unitName, fn] of Object.entries(m.units)) {
      const key = `${m.no}.${unitName}`;
      samples[key] = { tracelink: [], otel: [] };
      for (let rep = 0; rep < m.reps; rep++) {
        const order = rep % 2 === 0 ? SIDES : [...SIDES].reverse();
        for (const side of order) {
          if (!available[side]) continue;
          let s = null;
          let timer;
          try {
            s = await Promise.race([
              fn(side),
              new Promise((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out after ${CFG.unitTimeoutMs} ms`)), CFG.unitTimeoutMs); }),
            ]);
          } catch (e) {
            errors.push({ side, unit: key, rep, error: String(e?.message ?? e) });
            log(`${key} ${side} rep ${rep + 1}: ERROR ${e?.message ?? e}`);
          } finally {
            clearTimeout(timer);
          }
          samples[key][side].push(s);
          if (s) log(`${key} ${LABEL[side]} rep ${rep + 1}/${m.reps}: ${typeof s.value === 'number' ? +s.value.toFixed(2) : s.value}`);
          else if (side === 'tracelink' && key.startsWith('5.')) log(`${key} tracelink: no encodeBench export yet (n/a)`);
        }
      }
    }
  }
  await browser.close();
  await sink.close();
  pages.close();
  rotel?.stop?.();

  // ---- the table ----
  const rows = [];
  if (!CFG.only || CFG.only.has(1)) rows.push(...sizeRows(built.sizes));
  for (const m of ms) {
    for (const r of m.rows ?? []) {
      const sum = (side) => summary((samples[`${m.no}.${r.unit}`]?.[side] ?? []).filter(Boolean).map(r.get));
      const lastSample = (side) => (samples[`${m.no}.${r.unit}`]?.[side] ?? []).find(Boolean);
      rows.push({
        label: r.label, fmt: r.fmt, na: r.na, naOtel: r.naOtel,
        tracelink: available.tracelink ? sum('tracelink') : null,
        otel: sum('otel'),
        notes: r.note ? { tracelink: r.note('tracelink', lastSample('tracelink')), otel: r.note('otel', lastSample('otel')) } : undefined,
      });
    }
  }
  const table = [
    '| metric | tracelink | OTel JS | ratio |',
    '|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.label} | ${cell(r.tracelink, r.fmt, available.tracelink ? r.na : 'n/a')} | ${cell(r.otel, r.fmt, r.naOtel)} | ${ratio(r.tracelink, r.otel)} |`),
  ].join('\n');
  const runSeconds = Math.round((Date.now() - T0) / 1000);
  const mach = machine(browserVersion);
  const protoNote = CFG.protocol
    ? `protocol ${CFG.protocol} for both in 2, 3, 6, 7, 8`
    : 'rows labelled "both http/…" run both SDKs on that protocol (equal work); other rows of 2, 3, 6, 7, 8 use each SDK\'s default protocol (tracelink http/protobuf, OTel JS http/json)';
  const notes = [
    `${new Date().toISOString().slice(0, 10)} · ${mach.cpuModel} × ${mach.nproc} · Node ${mach.node} · Chromium ${browserVersion} (headless) · ${runSeconds} s${QUICK ? ' · QUICK mode' : ''}`,
    `median (min–max) over repetitions; ratio = tracelink / OTel JS; ${protoNote}.`,
  ];
  for (const r of rows) {
    if (r.notes) notes.push(`${r.label.replace(/^\d+\. /, '')}: tracelink ${r.notes.tracelink ?? 'n/a'}; OTel JS ${r.notes.otel ?? 'n/a'}.`);
  }
  // Fairness checks: the same span shape reached the sink from both; trace headers really went out.
  const first = (key, side) => (samples[key]?.[side] ?? []).find(Boolean);
  const shape = (side) => {
    const sh = { ...(first('4.json', side)?.shapes ?? {}) };
    for (const [k, v] of Object.entries(first('4.protobuf', side)?.shapes ?? {})) sh[k] = (sh[k] ?? 0) + v;
    return Object.keys(sh).length ? Object.entries(sh).map(([k, v]) => `${v}× ${k}`).join(', ') : 'n/a';
  };
  if (samples['4.json']) notes.push(`span shapes at the sink (attributes/events per span): tracelink ${shape('tracelink')}; OTel JS ${shape('otel')}.`);
  if (samples['6.fetch']) {
    const prop = (side) => { const f = first('6.fetch', side); return f ? `${f.traceparentSent}/${f.pairs}` : 'n/a'; };
    notes.push(`traced fetches that carried traceparent to the server: tracelink ${prop('tracelink')}; OTel JS ${prop('otel')}; pages cross-origin isolated (5 µs timers): ${Object.values(sideInfo).every((i) => i.crossOriginIsolated)}.`);
  }
  for (const side of SIDES) {
    const rej = (samples['3.rotel']?.[side] ?? []).filter(Boolean).flatMap((x) => x.upstreamErrors);
    if (rej.length) notes.push(`rotel rejected ${LABEL[side]} requests: ${rej[0]}`);
  }
  if (samples['3.rotel'] && !rotel?.url) notes.push(`rotel row n/a: ${rotel?.reason}.`);
  if (!available.tracelink) notes.push(`tracelink: n/a (${built.tracelink.reason ?? 'page failed to load'}).`);
  if (errors.length) notes.push(`${errors.length} unit(s) failed; see errors in the JSON.`);

  process.stdout.write(`\n${table}\n\n${notes.map((n) => `- ${n}`).join('\n')}\n`);

  // Only a full run replaces latest.json (the figures the README quotes).
  const outFile = env.BENCH_OUT || join(HERE, 'results', CFG.only ? 'partial.json' : QUICK ? 'quick.json' : 'latest.json');
  mkdirSync(dirname(outFile), { recursive: true });
  const json = {
    date: new Date().toISOString(),
    runSeconds,
    machine: mach,
    config: { ...CFG, only: CFG.only ? [...CFG.only] : null, defaultProtocol: DEFAULT_PROTOCOL },
    rotel: rotel ? { version: rotel.version ?? null, reason: rotel.reason ?? null } : null,
    build: { esbuild: built.esbuild, esbuildOptions: (await import('./build.mjs')).ESBUILD_OPTIONS, tracelink: built.tracelink, pkgDir, tracelinkWasmSha256: built.tracelinkWasmSha256 ?? null, sizes: built.sizes },
    sides: sideInfo,
    table: rows.map((r) => ({ metric: r.label, tracelink: r.tracelink, otel: r.otel, ratio: ratio(r.tracelink, r.otel), notes: r.notes })),
    tableMarkdown: table,
    notes,
    samples,
    errors,
  };
  writeFileSync(outFile, `${JSON.stringify(json, null, 1)}\n`);
  log(`wrote ${outFile}`);
}

main().catch(async (e) => {
  process.stderr.write(`bench: ${e?.stack ?? e}\n`);
  try { await browser?.close(); } catch { /* already gone */ }
  rotel?.stop?.();
  process.exit(1);
});
