// JS API fuzz: random calls of tracelink's PUBLIC API (pkg/tracelink.js, as
// declared in pkg/tracelink.d.ts) with hostile values, in Node, against a real
// rotel collector and a local echo server.
//
//   node tests/fuzz/js_api.fuzz.mjs [--iterations N] [--seed S]
//   (or FUZZ_JS_ITERATIONS / FUZZ_JS_SEED; default 20000 iterations, random seed;
//   FUZZ_JS_AVOID=throwing-arrays,parent-tracestate leaves out value classes of
//   findings not fixed yet, to explore past them)
//
// The calls run in episodes, each a child process (tests/fuzz/js_api_episode.mjs)
// with its own seed (S, S+1, ...): a finding that leaves the wasm instance
// unusable ends its episode, and the next one starts fresh. The episode with
// seed X reproduces alone, call for call: --seed X --iterations I (add
// FUZZ_JS_TRACE=1 to print every call).
//
// Hostile values: proxies whose every trap throws, revoked proxies, getters
// and toString/valueOf/Symbol.toPrimitive that throw, MB-sized strings, lone
// surrogates, BigInts outside i64, NaN/±Infinity/-0, symbols, cyclic and
// deeply nested objects, null-prototype and frozen objects, sparse arrays,
// Headers-like carriers whose methods throw, thenables whose `then` throws.
//
// Checked after every call:
// - nothing tracelink does throws into the caller, except the documented
//   TypeErrors of setupTracing (a rejection) and traceOperation without a
//   function; an error the caller's own code threw inside traceOperation is
//   rethrown as the very same object; promises settle (fetch: a Response, or
//   the error the real fetch gives: TypeError, DOMException, or the caller's
//   own error; flush: resolves, never rejects);
// - `stats().internalErrors` does not grow, tracing is not `broken`, and
//   stats() keeps its counters;
// - returned ids and traceparents are well-formed.
// At the end of an episode (every span ended, every instance flushed):
// - started = exported + queued + inFlight + (dropped - droppedLiveLimit) + unsampled
//   (a start refused at the live-span limit is counted in droppedLiveLimit, not
//   in started), dropped = the sum of the dropped* reasons, nothing live,
//   nothing queued or in flight;
// - the collector received exactly the spans the episode exported, no span id twice.
//
// Every finding is printed once (deduplicated by check and call) with the
// call that caused it and the episode that reproduces it. Exit status 1 when
// anything was found.
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startCollector, stopAll } from '../support/peers.mjs';

const { values: argv } = parseArgs({ options: { iterations: { type: 'string' }, seed: { type: 'string' } } });
const ITERATIONS = Number(argv.iterations ?? process.env.FUZZ_JS_ITERATIONS ?? 20000);
const SEED = Number(argv.seed ?? process.env.FUZZ_JS_SEED ?? randomInt(2 ** 31));
const EPISODE = fileURLToPath(new URL('js_api_episode.mjs', import.meta.url));
console.log(`js api fuzz: seed ${SEED}, ${ITERATIONS} iterations `
  + `(reproduce: node tests/fuzz/js_api.fuzz.mjs --seed ${SEED} --iterations ${ITERATIONS})`);

const collector = await startCollector();

/** Runs one episode; resolves with its RESULT object. */
function episode(seed, iterations) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [EPISODE, '--seed', String(seed), '--iterations', String(iterations)], {
      env: { ...process.env, FUZZ_COLLECTOR_URL: collector.tracesUrl },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (line) {
        resolve(JSON.parse(line.slice(7)));
        return;
      }
      // The episode died (its own error, or the process was killed): a finding
      // of its own; the run goes on with the next episode.
      const last = out.match(/\[(\d+)\][^\n]*\n?$/)?.[1];
      resolve({
        seed, iterations: Number(last ?? 1), unusable: true, settled: false, exportedTagged: 0, main: {},
        findings: [{ signature: `episode died | ${signal ?? code}`, check: `the episode process died (${signal ?? code})`,
          call: 'see its stderr above', detail: '', count: 1, seed, iteration: Number(last ?? 1) }],
      });
    });
  });
}

const started = Date.now();
const findings = new Map();
let done = 0;
let episodes = 0;
let unusableEpisodes = 0;
let spansStarted = 0;
let spansExported = 0;
for (let seed = SEED; done < ITERATIONS; seed++) {
  const r = await episode(seed, ITERATIONS - done);
  episodes++;
  done += Math.max(r.iterations, 1);
  spansStarted += r.main.started ?? 0;
  spansExported += r.exportedTagged;
  if (r.unusable) unusableEpisodes++;
  for (const f of r.findings) {
    const known = findings.get(f.signature);
    if (known) known.count += f.count;
    else findings.set(f.signature, f);
  }
  if (r.settled) {
    // What the collector decoded from this episode's instances.
    const tagged = (s) => s.resource?.['fuzz.episode'] === String(seed);
    let received;
    try {
      received = await collector.waitForSpans({ where: tagged, count: r.exportedTagged }, 15000);
    } catch {
      received = collector.readSpans().filter(tagged);
    }
    if (r.exportedTagged === 0) received = collector.readSpans().filter(tagged);
    const record = (check, detail) => {
      const signature = `${check} | collector`;
      if (!findings.has(signature)) findings.set(signature, { signature, check, call: 'collector', detail, count: 1, seed, iteration: r.iterations });
    };
    if (received.length !== r.exportedTagged) record('the collector received a different number of spans than exported', `${received.length} received, ${r.exportedTagged} exported`);
    if (new Set(received.map((s) => s.spanId)).size !== received.length) record('a span was delivered twice', `${received.length} spans`);
  }
  if (episodes % 10 === 0) console.log(`  ${done} iterations, ${episodes} episodes, ${findings.size} distinct findings`);
}
stopAll();

const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`js api fuzz: ${done} iterations in ${episodes} episodes (${unusableEpisodes} ended early: agent unusable), ${seconds} s; `
  + `main instances started ${spansStarted} spans; ${spansExported} exported and checked at the collector`);
if (findings.size === 0) {
  console.log('js api fuzz: 0 findings');
  process.exit(0);
}
console.log(`js api fuzz: ${findings.size} distinct findings:`);
for (const f of findings.values()) {
  console.log(`- ${f.check}: ${f.call}${f.detail ? ` -> ${f.detail}` : ''}`
    + ` [${f.count}x; reproduce: --seed ${f.seed} --iterations ${f.iteration}]`);
}
process.exit(1);
