// bench/node-context.mjs: what the context mechanism costs in a server
// runtime (Node), tracelink on both of its context stores with the same work:
// AsyncLocalStorage (exact; what Node, Deno, Bun and Workers with nodejs_als
// use) and the task-scoped store (what browsers use). Run by scripts/bench.sh
// after the browser table; prints a table, writes bench/results/node-context.json.
//   - span cost: traceOperation(fn) with the bench's span shape inside
//     (5 attributes, 3 setAttribute, 1 event), ns per operation, in chunks
//     the queue holds (every span kept and exported)
//   - traced fetch added latency: `await tracing.fetch(url)` inside an
//     operation vs a plain fetch to the same 127.0.0.1 server, median of pairs
// Medians over repetitions; no timing is asserted anywhere.
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const PKG = resolve(process.env.TRACELINK_PKG || join(HERE, '..', 'pkg'));
const QUICK = process.env.BENCH_QUICK === '1';
const REPS = QUICK ? 3 : 7;
const OPS = QUICK ? 5000 : 20000;
const PAIRS = QUICK ? 300 : 1500;
const CHUNK = 1000;
const { setupTracing } = await import(join(PKG, 'tracelink.js'));
const wasm = readFileSync(join(PKG, 'tracelink.wasm'));

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const server = http.createServer((req, res) => {
  req.resume();
  if (req.url === '/v1/traces') { req.on('end', () => res.writeHead(200).end()); return; }
  res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${server.address().port}`;

async function measure(asyncContext) {
  const tracing = await setupTracing({
    serviceName: 'node-context-bench', otlpEndpoint: `${base}/v1/traces`, wasm, propagateTo: [base], env: {},
    ...(asyncContext === false ? { asyncContext: false } : {}),
  });
  const mode = tracing.stats().contextMode;
  const work = (span) => {
    span.setAttributes({ a1: 'value-1', a2: 'value-2', a3: 'value-3', a4: 4, a5: true });
    span.setAttribute('s1', 'x').setAttribute('s2', 'y').setAttribute('s3', 'z');
    span.addEvent('bench.event', { k: 'v' });
  };
  const cost = [];
  for (let rep = 0; rep < REPS; rep++) {
    // Chunks below the 2048-span queue, flushed (untimed) in between: every
    // span is kept and exported, none is the cheaper dropped kind.
    let ns = 0;
    for (let done = 0; done < OPS; done += CHUNK) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < CHUNK; i++) tracing.traceOperation('bench.op', work);
      ns += Number(process.hrtime.bigint() - t0);
      await tracing.flush();
    }
    cost.push(ns / OPS);
  }
  const added = [];
  for (let rep = 0; rep < REPS; rep++) {
    const diffs = [];
    for (let i = 0; i < PAIRS; i++) {
      const a = process.hrtime.bigint();
      await (await fetch(`${base}/x`)).text();
      const b = process.hrtime.bigint();
      await tracing.traceOperation('bench.fetch', async () => { await (await tracing.fetch(`${base}/x`)).text(); });
      const c = process.hrtime.bigint();
      diffs.push(Number(c - b - (b - a)) / 1000);
    }
    added.push(median(diffs));
    await tracing.flush();
  }
  const stats = tracing.stats();
  await tracing.shutdown();
  return { mode, spanCostNs: median(cost), spanCostRange: [Math.min(...cost), Math.max(...cost)], fetchAddedUs: median(added),
    fetchAddedRange: [Math.min(...added), Math.max(...added)], dropped: stats.dropped, parentUnknown: stats.parentUnknown };
}

const results = [await measure(undefined), await measure(false)];
server.close();
const fmt = (v) => (Math.abs(v) >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));
const rows = [
  '| Node 20, tracelink, same work on both stores | AsyncLocalStorage | task-scoped | ratio |',
  '|---|---:|---:|---:|',
  `| traceOperation with the bench span shape, ns/op (median of ${REPS}×${OPS}) | ${fmt(results[0].spanCostNs)} | ${fmt(results[1].spanCostNs)} | ${(results[0].spanCostNs / results[1].spanCostNs).toFixed(2)}× |`,
  `| traced fetch in an operation, added latency vs plain fetch, µs (median of ${REPS}×${PAIRS} pairs) | ${fmt(results[0].fetchAddedUs)} | ${fmt(results[1].fetchAddedUs)} | ${(results[0].fetchAddedUs / Math.max(results[1].fetchAddedUs, 1e-9)).toFixed(2)}× |`,
].join('\n');
process.stdout.write(`\n${rows}\n\n- ${new Date().toISOString().slice(0, 10)} · Node ${process.version} · modes: ${results.map((r) => r.mode).join(', ')} · dropped ${results.map((r) => r.dropped).join('/')}\n`);
const out = join(HERE, 'results', QUICK ? 'node-context.quick.json' : 'node-context.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, reps: REPS, ops: OPS, pairs: PAIRS, results, tableMarkdown: rows }, null, 1)}\n`);
