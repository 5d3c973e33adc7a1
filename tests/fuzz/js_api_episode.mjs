// One episode of the JS API fuzz (tests/fuzz/js_api.fuzz.mjs starts it in a
// child process, so that a finding that leaves the wasm instance unusable
// ends only its episode). Random calls of tracelink's PUBLIC API
// (pkg/tracelink.js, as declared in pkg/tracelink.d.ts) with hostile values,
// against the collector at FUZZ_COLLECTOR_URL and a local echo server.
//
//   node tests/fuzz/js_api_episode.mjs --seed S --iterations N   (FUZZ_JS_TRACE=1 prints every call)
//
// The last line it prints is `RESULT {json}`: iterations run, findings,
// whether the agent became unusable, and the spans it exported.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: argv } = parseArgs({ options: { iterations: { type: 'string' }, seed: { type: 'string' } } });
const ITERATIONS = Number(argv.iterations ?? 2000);
const SEED = Number(argv.seed ?? 1);
const COLLECTOR = process.env.FUZZ_COLLECTOR_URL;
/**
 * Value classes to leave out, to explore past findings not fixed yet
 * (FUZZ_JS_AVOID, comma-separated): `throwing-arrays` (arrays whose element
 * reads throw), `parent-tracestate` (a non-string options.parent.tracestate).
 */
const AVOID = new Set((process.env.FUZZ_JS_AVOID ?? '').split(',').filter(Boolean));
if (!COLLECTOR) throw new Error('FUZZ_COLLECTOR_URL is not set (run tests/fuzz/js_api.fuzz.mjs)');

const root = new URL('../../', import.meta.url);
const wasm = readFileSync(new URL('pkg/tracelink-full.wasm', root));
const { setupTracing } = await import(new URL('pkg/tracelink.js', root));

// ---- seeded randomness (mulberry32) ---------------------------------------

let state = SEED >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
}
const below = (n) => Math.floor(random() * n);
const chance = (p) => random() < p;
const pick = (list) => list[below(list.length)];

// ---- hostile values ---------------------------------------------------------
// Each maker returns [value, label]; the label is how a finding names it.

/** Errors thrown by the fuzzer's own code (traps, getters, callbacks). */
const USER_ERRORS = new WeakSet();
function userError(where) {
  const e = new Error(`fuzz: ${where}`);
  USER_ERRORS.add(e);
  return e;
}
const thrower = (where) => () => { throw userError(where); };

const TRAPS = ['get', 'set', 'has', 'deleteProperty', 'ownKeys', 'getOwnPropertyDescriptor', 'defineProperty',
  'getPrototypeOf', 'setPrototypeOf', 'isExtensible', 'preventExtensions', 'apply', 'construct'];
/** A proxy whose every trap throws (a function target, so apply/construct exist too). */
function throwingProxy(target = function target() {}) {
  return new Proxy(target, Object.fromEntries(TRAPS.map((t) => [t, thrower(`proxy trap ${t}`)])));
}
function revokedProxy() {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}
/** An object whose enumerable property `key` throws when read. */
function throwingGetter(key = 'x') {
  return Object.defineProperty({}, key, { get: thrower(`getter ${key}`), enumerable: true });
}
/** An object that cannot be turned into a string or number. */
function unconvertible() {
  return { toString: thrower('toString'), valueOf: thrower('valueOf'), [Symbol.toPrimitive]: thrower('toPrimitive') };
}
function cyclic() {
  const o = { a: 1 };
  o.self = o;
  o.list = [o];
  return o;
}
function deep(n) {
  let o = { leaf: 1 };
  for (let i = 0; i < n; i++) o = { o };
  return o;
}
/** A Headers-like object whose methods all throw. */
function throwingHeadersLike() {
  return { get: thrower('headers.get'), set: thrower('headers.set'), has: thrower('headers.has'),
    append: thrower('headers.append'), forEach: thrower('headers.forEach'), [Symbol.iterator]: thrower('headers iterator') };
}

const MB = 1 << 20;
const HUGE = { ascii1: 'x'.repeat(MB), utf8_4: 'é'.repeat(2 * MB), surrogates: '\ud800'.repeat(MB / 2) };

const STRINGS = [
  ['', "''"], ['ok', "'ok'"], ['\ud800', "'\\ud800' (lone high surrogate)"], ['\udfff', "'\\udfff' (lone low surrogate)"],
  ['a\udc00b\ud83d', "'a\\udc00b\\ud83d'"], ['😀', "'😀'"], ['\0', "'\\0'"], ['a\r\nX-Injected: 1', "'a\\r\\nX-Injected: 1'"],
  ['__proto__', "'__proto__'"], ['constructor', "'constructor'"], ['traceparent', "'traceparent'"],
  ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'a valid traceparent'],
  ['00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00', 'an unsampled traceparent'],
  ['00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01', 'an uppercase traceparent'],
  ['k'.repeat(300) + '=v', 'a 300-char tracestate key'],
];

function hugeString() {
  const k = pick(Object.keys(HUGE));
  return [HUGE[k], `HUGE.${k} (${HUGE[k].length} UTF-16 units)`];
}
function hostileString() {
  return chance(0.02) ? hugeString() : pick(STRINGS);
}

const NUMBERS = [[0, '0'], [-0, '-0'], [1, '1'], [-1, '-1'], [1.5, '1.5'], [NaN, 'NaN'], [Infinity, 'Infinity'],
  [-Infinity, '-Infinity'], [2 ** 53 + 2, '2**53+2'], [Number.MAX_VALUE, 'Number.MAX_VALUE'], [Number.MIN_VALUE, 'Number.MIN_VALUE'],
  [2 ** 32, '2**32'], [-(2 ** 31) - 1, '-(2**31)-1']];
const BIGINTS = [[0n, '0n'], [2n ** 63n - 1n, '2n**63n-1n'], [-(2n ** 63n), '-(2n**63n)'], [2n ** 63n, '2n**63n (above i64)'],
  [-(2n ** 63n) - 1n, '-(2n**63n)-1n (below i64)'], [2n ** 64n, '2n**64n'], [-(2n ** 200n), '-(2n**200n)']];

function hostileObject(depth) {
  switch (below(24)) {
    case 0: return [throwingProxy(), 'throwingProxy()'];
    case 1: return [revokedProxy(), 'revokedProxy()'];
    case 2: return [throwingGetter(), 'throwingGetter()'];
    case 3: return [unconvertible(), 'unconvertible()'];
    case 4: return [cyclic(), 'cyclic()'];
    case 5: return [deep(5000), 'deep(5000)'];
    case 6: return [Object.assign(Object.create(null), { a: 1, b: 'x' }), 'Object.assign(Object.create(null), {a: 1, b: "x"})'];
    case 7: return [Object.freeze({ a: 'x' }), "Object.freeze({a: 'x'})"];
    case 8: return [[], '[]'];
    case 9: return [['a', 1, true], "['a', 1, true] (mixed array)"];
    case 10: return [[1n, 2n ** 70n], '[1n, 2n**70n]'];
    case 11: return [[NaN, -0, Infinity], '[NaN, -0, Infinity]'];
    case 12: return [new Array(100000), 'new Array(100000) (sparse)'];
    case 13: if (AVOID.has('throwing-arrays')) return [['a'], "['a']"];
      return [Object.defineProperty(['a', 'b'], 0, { get: thrower('array element getter') }), 'array with a throwing element getter'];
    case 14: if (AVOID.has('throwing-arrays')) return [['a'], "['a']"];
      return [throwingProxy(['a']), "throwingProxy(['a']) (Array.isArray is true)"];
    case 15: return [Object.freeze(['a', '\ud800']), "Object.freeze(['a', '\\ud800'])"];
    case 16: {
      const e = new Error('boom');
      return [e, "new Error('boom')"];
    }
    case 17: {
      const e = Object.create(Error.prototype); // instanceof Error, no native stack
      for (const k of ['name', 'message', 'stack', 'constructor']) Object.defineProperty(e, k, { get: thrower(`error.${k}`) });
      return [e, 'an Error whose name/message/stack getters throw'];
    }
    case 18: return [{ then: thrower('then') }, 'a thenable whose then() throws'];
    case 19: return [Object.defineProperty({}, 'then', { get: thrower('then getter') }), 'an object whose `then` getter throws'];
    case 20: return [new Map([['traceparent', 'x']]), "new Map([['traceparent', 'x']])"];
    case 21: return [new Uint8Array(8), 'new Uint8Array(8)'];
    case 22: return [Symbol('s'), "Symbol('s')"];
    default: return depth < 2 ? hostileAttributes(depth + 1) : [{}, '{}'];
  }
}

function hostileValue(depth = 0) {
  switch (below(8)) {
    case 0: return pick([[undefined, 'undefined'], [null, 'null'], [true, 'true'], [false, 'false']]);
    case 1: case 2: return hostileString();
    case 3: return pick(NUMBERS);
    case 4: return pick(BIGINTS);
    case 5: return pick([[Symbol('s'), "Symbol('s')"], [Symbol.iterator, 'Symbol.iterator'],
      [() => 1, '() => 1'], [thrower('function value'), 'a throwing function']]);
    default: return hostileObject(depth);
  }
}

/** An attributes object: a few hostile keys and values, or a hostile object itself. */
function hostileAttributes(depth = 0) {
  if (chance(0.25)) return hostileObject(depth + 1);
  const n = below(5);
  const plain = chance(0.8);
  const o = plain ? {} : Object.create(null);
  const labels = [];
  for (let i = 0; i < n; i++) {
    const [k, kl] = chance(0.7) ? [`k${i}`, `k${i}`] : hostileString();
    const [v, vl] = hostileValue(depth + 1);
    // defineProperty: a key '__proto__' stays an own property, as JSON.parse makes it.
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    labels.push(`${kl}: ${vl}`);
  }
  if (chance(0.1)) Object.defineProperty(o, 'bad', { get: thrower('attribute getter'), enumerable: true }), labels.push('bad: <getter throws>');
  if (chance(0.1)) Object.freeze(o), labels.push('(frozen)');
  return [o, `${plain ? '' : 'null-prototype '}{ ${labels.join(', ')} }`];
}

// ---- findings ---------------------------------------------------------------

const findings = new Map(); // signature -> { check, call, detail, count, iteration }
let iteration = 0;
function finding(check, call, detail = '') {
  const signature = `${check} | ${call.split('(')[0]}`;
  const f = findings.get(signature);
  if (f) { f.count++; return; }
  findings.set(signature, { signature, check, call, detail: String(detail).slice(0, 300), count: 1, seed: SEED, iteration });
}
const describe = (e) => {
  try { return e instanceof Error ? `${e.constructor.name}: ${e.message}` : `${typeof e}: ${String(e)}`; } catch { return typeof e; }
};

// ---- peers --------------------------------------------------------------------

const echo = await new Promise((resolve) => {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', traceresponse: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' });
      res.end(JSON.stringify({ traceparent: req.headers.traceparent ?? null }));
    });
  });
  server.listen(0, '127.0.0.1', () => resolve(server));
});
const ECHO = `http://127.0.0.1:${echo.address().port}`;

/** Every instance tags its spans with this episode, so the collector's count can be checked. */
const EPISODE_TAG = { 'fuzz.episode': String(SEED) };

function validOptions(extra = {}) {
  return {
    serviceName: 'js-api-fuzz', otlpEndpoint: COLLECTOR, propagateTo: [ECHO], propagateBaggage: true,
    correlationIdHeader: 'X-Correlation-ID', resourceAttributes: EPISODE_TAG, wasm, env: {}, scheduleDelayMillis: 50, ...extra,
  };
}

const instances = []; // [tracing, tagged]: tagged = its spans carry EPISODE_TAG
let t = await setupTracing(validOptions());
instances.push([t, true]);

// ---- the calls ---------------------------------------------------------------

const spans = []; // spans handed out: from startSpan and traceOperation callbacks
const pending = []; // [promise, call] of async results still to check
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$/;

const TRACE_CALLS = process.env.FUZZ_JS_TRACE === '1'; // print every call as it starts

/** Set when a call left the agent unusable (its counters gone, or tracing broken): the episode ends. */
let unusable = false;
/** Per instance, the internalErrors value last observed. */
const seenInternalErrors = new WeakMap();
/** Labels of the calls in progress (traceOperation callbacks nest calls). */
const callStack = [];
const BETWEEN = 'asynchronous work between calls (fetch outcomes, export timers, async callbacks)';

/** Attributes any change of `tr`'s counters since the last look to `label`. */
function observe(tr, label) {
  if (unusable) return; // everything after that is a consequence
  let s;
  try {
    s = tr.stats();
  } catch (e) {
    finding('stats() throws', label, describe(e));
    return;
  }
  const seen = seenInternalErrors.get(tr) ?? 0;
  if (s.internalErrors > seen) finding('counts an internal error', label, `internalErrors ${seen} -> ${s.internalErrors}`);
  seenInternalErrors.set(tr, Math.max(seen, s.internalErrors ?? 0));
  if (!unusable && (s.broken || typeof s.started !== 'number')) {
    unusable = true;
    finding(s.broken ? 'tracing broke (a wasm trap)' : 'the agent is unusable afterwards (stats() lost its counters)', label, JSON.stringify(s));
  }
}

/**
 * Runs one synchronous API call and checks it. `allowed(e)` says whether a
 * throw is documented. Returns the result (undefined if it threw).
 */
function call(label, fn, allowed = () => false, tr = t) {
  observe(tr, callStack.length ? callStack[callStack.length - 1] : BETWEEN);
  if (TRACE_CALLS) console.log(`  [${iteration}] ${'  '.repeat(callStack.length)}${label}`);
  callStack.push(label);
  let result;
  try {
    result = fn();
  } catch (e) {
    if (!allowed(e)) finding('throws into the caller', label, describe(e));
  } finally {
    callStack.pop();
  }
  observe(tr, label);
  return result;
}

function track(promise, label, check) {
  pending.push([promise, label, check]);
}

function checkSpanIds(span, label) {
  try {
    const { traceId, spanId, traceparent } = span;
    if (traceId !== '' && !HEX32.test(traceId)) finding('malformed traceId', label, traceId);
    if (spanId !== '' && !HEX16.test(spanId)) finding('malformed spanId', label, spanId);
    if (traceparent !== '' && !TRACEPARENT.test(traceparent)) finding('malformed traceparent', label, traceparent);
  } catch (e) {
    finding('span id getters throw', label, describe(e));
  }
}

function randomSpan() {
  return spans.length ? pick(spans) : null;
}

function spanOptions() {
  if (chance(0.15)) return hostileValue();
  const o = {};
  const labels = [];
  if (chance(0.5)) { const [a, l] = hostileAttributes(); o.attributes = a; labels.push(`attributes: ${l}`); }
  if (chance(0.3)) { const [k, l] = chance(0.5) ? [pick(['internal', 'SERVER', 'client', 'producer', 'consumer']), 'a kind'] : hostileValue(); o.kind = k; labels.push(`kind: ${l}`); }
  if (chance(0.3)) {
    const [p, l] = parentValue();
    o.parent = p;
    labels.push(`parent: ${l}`);
  }
  if (chance(0.2)) { const [c, l] = hostileValue(); o.correlationId = c; labels.push(`correlationId: ${l}`); }
  return [o, `{ ${labels.join(', ')} }`];
}

function parentValue() {
  switch (below(6)) {
    case 0: return [null, 'null'];
    case 1: { const s = randomSpan(); return [s, 'a Span']; }
    case 2: {
      const [ts, tsl] = AVOID.has('parent-tracestate') ? hostileString() : hostileValue();
      return [{ traceparent: pick(STRINGS)[0], tracestate: ts }, `{ traceparent, tracestate: ${tsl} }`];
    }
    case 3: {
      const ctx = call('extractContext(valid headers)', () => t.extractContext({ traceparent: pick(STRINGS.slice(11, 14))[0], tracestate: 'a=1' }));
      return [ctx, 'an extracted context'];
    }
    case 4: return [{ traceparent: unconvertible() }, '{ traceparent: unconvertible() }'];
    default: return hostileValue();
  }
}

function carrier() {
  switch (below(9)) {
    case 0: return [{}, '{}'];
    case 1: return [new Headers({ a: 'b' }), 'new Headers()'];
    case 2: return [Object.freeze({}), 'Object.freeze({})'];
    case 3: return [throwingProxy({}), 'throwingProxy({})'];
    case 4: return [throwingHeadersLike(), 'a Headers-like object whose methods throw'];
    case 5: return [Object.defineProperty({}, 'traceparent', { set: thrower('traceparent setter') }), 'an object whose traceparent setter throws'];
    case 6: return [Object.create(null), 'Object.create(null)'];
    case 7: return [undefined, 'undefined'];
    default: return hostileValue();
  }
}

function headersForExtract() {
  const valid = pick(STRINGS.slice(11, 14))[0];
  switch (below(9)) {
    case 0: return [{ traceparent: valid, tracestate: 'rojo=1,congo=2' }, '{ traceparent, tracestate }'];
    case 1: return [new Headers({ traceparent: valid }), 'new Headers({ traceparent })'];
    case 2: return [new Map([['traceparent', valid]]), 'new Map([[traceparent]])'];
    case 3: return [throwingProxy({}), 'throwingProxy({})'];
    case 4: return [throwingHeadersLike(), 'a Headers-like object whose methods throw'];
    case 5: return [{ traceparent: valid, tracestate: unconvertible() }, '{ traceparent, tracestate: unconvertible() }'];
    case 6: return [Object.assign(Object.create(null), { TraceParent: valid }), 'null-prototype { TraceParent }'];
    case 7: return [{ traceparent: hugeString()[0] }, '{ traceparent: HUGE }'];
    default: return hostileValue();
  }
}

function fetchArgs() {
  // Inputs point at the echo server (or are invalid): the fuzz never
  // contacts anything else.
  const input = pick([
    [ECHO + '/a?sig=secret', 'ECHO url string'],
    [new URL(ECHO + '/b'), 'new URL(ECHO)'],
    [new Request(ECHO + '/c', { method: 'POST', body: 'x' }), 'new Request(ECHO, POST)'],
    ['not a url \ud800', 'an invalid URL'],
    [unconvertible(), 'unconvertible()'],
    [throwingProxy({}), 'throwingProxy({})'],
    [ECHO + '/' + 'q'.repeat(20000), 'a 20 kB URL'],
  ]);
  const init = pick([
    [undefined, 'undefined'],
    [{ method: 'POST', body: HUGE.ascii1 }, '{ method: POST, body: 1 MB }'],
    [{ headers: throwingProxy({}) }, '{ headers: throwingProxy({}) }'],
    [{ headers: throwingHeadersLike() }, '{ headers: Headers-like, methods throw }'],
    [{ headers: Object.freeze({ a: 'b', traceparent: 'junk' }) }, '{ headers: frozen { traceparent: junk } }'],
    [{ headers: [['x-a', '1']] }, '{ headers: [[x-a, 1]] }'],
    [{ signal: AbortSignal.abort(userError('abort reason')) }, '{ signal: aborted with a user reason }'],
    [throwingProxy({}), 'throwingProxy({}) as init'],
    [{ method: unconvertible() }, '{ method: unconvertible() }'],
    [{ headers: { 'x-ok': '\ud800' } }, "{ headers: { 'x-ok': lone surrogate } }"],
  ]);
  return [[input[0], init[0]], `${input[1]}, ${init[1]}`];
}

/** Checks a traced fetch's promise: a Response, or what the real fetch rejects with. */
function trackFetch(promise, label) {
  if (promise === undefined) return; // it threw: already reported
  if (!promise || typeof promise.then !== 'function') {
    finding('fetch returns no promise', label);
    return;
  }
  track(promise.then(
    (res) => { if (!(res instanceof Response)) finding('fetch resolves to a non-Response', label); else return res.arrayBuffer(); },
    (e) => {
      if (!(e instanceof TypeError || e instanceof DOMException || USER_ERRORS.has(e))) finding('fetch rejects with a foreign error', label, describe(e));
    },
  ), label);
}

const spanMethods = [
  (s) => { const [k, kl] = hostileString(); const [v, vl] = hostileValue(); call(`span.setAttribute(${kl}, ${vl})`, () => s.setAttribute(k, v)); },
  (s) => { const [a, l] = hostileAttributes(); call(`span.setAttributes(${l})`, () => s.setAttributes(a)); },
  (s) => { const [n, nl] = hostileValue(); const [a, l] = hostileAttributes(); call(`span.addEvent(${nl}, ${l})`, () => s.addEvent(n, a)); },
  (s) => {
    const [c, cl] = chance(0.5) ? pick([['ok', "'ok'"], ['error', "'error'"], ['UNSET', "'UNSET'"], [{ code: 'error', message: unconvertible() }, '{ code: error, message: unconvertible() }'], [7, '7']]) : hostileValue();
    const [m, ml] = hostileValue();
    call(`span.setStatus(${cl}, ${ml})`, () => s.setStatus(c, m));
  },
  (s) => { const [e, l] = hostileValue(); call(`span.recordException(${l})`, () => s.recordException(e)); },
  (s) => { const [n, l] = hostileValue(); call(`span.updateName(${l})`, () => s.updateName(n)); },
  (s) => { call('span.end()', () => s.end()); },
  (s) => { const r = call('span.isRecording()', () => s.isRecording()); if (typeof r !== 'boolean') finding('isRecording() is not a boolean', 'span.isRecording()'); },
  (s) => { checkSpanIds(s, 'span.traceId / spanId / traceparent'); },
  (s) => { const [args, l] = fetchArgs(); trackFetch(call(`span.fetch(${l})`, () => s.fetch(...args)), `span.fetch(${l})`); },
];

/** One random call; `depth` > 0 inside a traceOperation callback. */
function randomCall(depth = 0) {
  const r = below(100);
  if (r < 14) {
    const s = randomSpan();
    if (s) pick(spanMethods)(s);
    return;
  }
  if (r < 26) {
    const [n, nl] = chance(0.7) ? ['op', "'op'"] : hostileValue();
    const [o, ol] = spanOptions();
    const s = call(`startSpan(${nl}, ${ol})`, () => t.startSpan(n, o));
    if (s) {
      checkSpanIds(s, `startSpan(${nl}, ${ol})`);
      spans.push(s);
      if (spans.length > 200) spans.splice(0, 100).forEach((x) => call('span.end()', () => x.end()));
    } else {
      finding('startSpan returns no span', `startSpan(${nl}, ${ol})`);
    }
    return;
  }
  if (r < 46) return traceOperation(depth);
  if (r < 52) { const [a, l] = hostileAttributes(); call(`addTraceAttributes(${l})`, () => t.addTraceAttributes(a)); return; }
  if (r < 58) { const [n, nl] = hostileValue(); const [a, l] = hostileAttributes(); call(`addTraceEvent(${nl}, ${l})`, () => t.addTraceEvent(n, a)); return; }
  if (r < 62) { const id = call('currentTraceId()', () => t.currentTraceId()); if (id !== '' && !HEX32.test(id)) finding('malformed currentTraceId', 'currentTraceId()', id); return; }
  if (r < 72) {
    const [c, l] = carrier();
    const label = `injectContext(${l})${depth ? ' inside traceOperation' : ''}`;
    const out = call(label, () => t.injectContext(c));
    if (c !== undefined && !Object.is(out, c)) finding('injectContext does not return its carrier', label);
    return;
  }
  if (r < 80) {
    const [h, l] = headersForExtract();
    const label = `extractContext(${l})`;
    const ctx = call(label, () => t.extractContext(h));
    if (ctx !== null && ctx !== undefined && !TRACEPARENT.test(ctx.traceparent)) finding('extractContext returns a malformed traceparent', label, ctx.traceparent);
    return;
  }
  if (r < 86) {
    const [k, kl] = hostileValue();
    const [v, vl] = hostileValue();
    const label = `setBaggage(${kl}, ${vl})`;
    const ok = call(label, () => t.setBaggage(k, v));
    if (typeof ok !== 'boolean') finding('setBaggage does not return a boolean', label, describe(ok));
    return;
  }
  if (r < 92) {
    const [args, l] = fetchArgs();
    trackFetch(call(`fetch(${l})`, () => t.fetch(...args)), `fetch(${l})`);
    return;
  }
  if (r < 94) { flushCall(); return; }
  if (r < 97) { statsCall(); return; }
  if (r < 98 && depth === 0) { instrumentCall(); return; }
  if (depth === 0) setupCall();
}

function flushCall() {
  const [ms, l] = chance(0.5) ? [undefined, ''] : hostileValue();
  const label = `flush(${l})`;
  const p = call(label, () => t.flush(ms));
  if (!p || typeof p.then !== 'function') return finding('flush returns no promise', label);
  track(p.then(() => {}, (e) => finding('flush rejects', label, describe(e))), label);
}

function statsCall() {
  const s = call('stats()', () => t.stats());
  if (!s || typeof s !== 'object') return finding('stats() is not an object', 'stats()');
  for (const [k, v] of Object.entries(s)) {
    if (k === 'broken' || k === 'contextMode' || k === 'persistence') continue; // a flag and two mode names
    if (!Number.isSafeInteger(v) || v < 0) finding('stats() counter is not a non-negative integer', `stats().${k}`, v);
  }
}

function instrumentCall() {
  if (chance(0.5)) {
    call('instrumentFetch()', () => t.instrumentFetch());
    const [args, l] = fetchArgs();
    trackFetch(call(`globalThis.fetch(${l}) (instrumented)`, () => globalThis.fetch(...args)), `globalThis.fetch(${l}) (instrumented)`);
  }
  call('restoreFetch()', () => t.restoreFetch());
}

/** setupTracing with one hostile option: resolves, or rejects with a TypeError. */
function setupCall() {
  const keys = ['serviceName', 'serviceVersion', 'otlpEndpoint', 'otlpHeaders', 'protocol', 'consoleExport', 'propagateTo',
    'propagateBaggage', 'instrumentFetch', 'sampleRate', 'correlationIdHeader', 'redactQueryParams', 'resourceAttributes',
    'env', 'fetch', 'scheduleDelayMillis', 'maxQueueSize', 'maxExportBatchSize', 'exportTimeoutMillis'];
  let options;
  let label;
  let key = null;
  if (chance(0.1)) {
    [options, label] = hostileValue();
    label = `setupTracing(${label})`;
  } else {
    key = pick(keys);
    const [v, vl] = key === 'sampleRate' && chance(0.5) ? [0, '0'] : hostileValue();
    options = validOptions({ [key]: v, instrumentFetch: key === 'instrumentFetch' ? v : false, consoleExport: key === 'consoleExport' ? v : false });
    label = `setupTracing({ ...valid, ${key}: ${vl} })`;
  }
  let p;
  try {
    p = setupTracing(options);
  } catch (e) {
    finding('setupTracing throws synchronously', label, describe(e));
    return;
  }
  track(p.then(
    (tr) => {
      instances.push([tr, key !== null && key !== 'resourceAttributes']);
      try { tr.restoreFetch(); } catch (e) { finding('throws into the caller', 'restoreFetch()', describe(e)); }
      // Now and then, make the new instance the one the fuzz drives (not one
      // with a hostile fetch of its own: that fetch's results are the app's).
      if (key !== 'fetch' && chance(0.3)) t = tr;
    },
    (e) => {
      if (!(e instanceof TypeError) && !USER_ERRORS.has(e)) finding('setupTracing rejects with a non-TypeError', label, describe(e));
    },
  ), label);
}

/** traceOperation with a random callback; checks rethrow identity and misuse TypeErrors. */
function traceOperation(depth) {
  const [n, nl] = chance(0.7) ? ['op', "'op'"] : hostileValue();
  const withOptions = chance(0.6);
  const [o, ol] = withOptions ? spanOptions() : [undefined, ''];
  let kind = below(8);
  const err = userError('callback');
  let fnLabel;
  let fn;
  switch (kind) {
    case 0: fnLabel = 'sync fn'; fn = (span) => { spans.push(span); if (depth < 2) for (let i = below(4); i > 0; i--) randomCall(depth + 1); return 42; }; break;
    case 1: fnLabel = 'sync throwing fn'; fn = (span) => { spans.push(span); if (depth < 2) randomCall(depth + 1); throw err; }; break;
    case 2: fnLabel = 'async fn'; fn = async (span) => { if (depth < 2) randomCall(depth + 1); await null; if (depth < 2) randomCall(depth + 1); return span; }; break;
    case 3: fnLabel = 'async rejecting fn'; fn = async () => { if (depth < 2) randomCall(depth + 1); await null; throw err; }; break;
    case 4: fnLabel = 'fn returning a thenable whose then() throws'; fn = () => ({ then: thrower('result.then') }); break;
    case 5: fnLabel = 'fn returning an object whose `then` getter throws'; fn = () => Object.defineProperty({}, 'then', { get: thrower('result then getter') }); break;
    case 6: fnLabel = 'fn returning a hostile value'; fn = () => hostileValue()[0]; break;
    default: { const [v, vl] = hostileValue(); fnLabel = `non-function ${vl}`; fn = v; }
  }
  // traceOperation(name, fn) and traceOperation(name, options, fn); a
  // function passed as options is the callback (the two-argument form).
  const effectiveFn = withOptions && typeof o === 'function' ? o : fn;
  if (effectiveFn !== fn) { kind = 6; fnLabel = `options ${ol} as the callback`; }
  const label = `traceOperation(${nl}${withOptions ? `, ${ol}` : ''}, ${fnLabel})`;
  const misuse = typeof effectiveFn !== 'function';
  // The operation's span must be ended when the call returns (sync) or its
  // promise settles (async), and a sync call must leave the current span as it was.
  let opSpan = null;
  if (typeof fn === 'function' && effectiveFn === fn) {
    const inner = fn;
    fn = (span) => { opSpan = span; return inner(span); };
  }
  let currentBefore;
  try { currentBefore = t.currentTraceId(); } catch { /* reported by other calls */ }
  const ended = (when) => {
    try {
      if (opSpan && opSpan.traceId !== '') finding('the operation span is never ended', `${label} ${when}`);
    } catch (e) { finding('span id getters throw', label, describe(e)); }
  };
  const allowed = (e) => (misuse && e instanceof TypeError) || e === err || (USER_ERRORS.has(e) && kind >= 4);
  let threw = false;
  const result = call(label, () => {
    try {
      return withOptions ? t.traceOperation(n, o, fn) : t.traceOperation(n, fn);
    } catch (e) {
      threw = true;
      if (kind === 1 && e !== err) finding('rethrows a different error', label, describe(e));
      throw e;
    }
  }, allowed);
  if (misuse && !threw) finding('traceOperation without a function does not throw a TypeError', label);
  if (kind !== 2 && kind !== 3) {
    ended('(after it returned)');
    try {
      if (t.currentTraceId() !== currentBefore) finding('the current span is not restored', label);
    } catch { /* reported by other calls */ }
  }
  if (kind === 1 && !threw) finding('swallows the callback error', label);
  if (kind === 0 && result !== 42) finding('does not return the callback result', label, describe(result));
  if (kind === 2 || kind === 3) {
    if (!result || typeof result.then !== 'function') return finding('async callback: no promise returned', label);
    track(result.then(
      () => { if (kind === 3) finding('swallows the async callback error', label); },
      (e) => { if (kind === 2 || e !== err) finding('async: rejects with a different error', label, describe(e)); },
    ).then(() => ended('(after its promise settled)')), label);
  }
}

// ---- run -----------------------------------------------------------------------

const GUARD_MS = 30000;
function withGuard(promise, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((resolve) => { timer = setTimeout(() => { finding('never settles', what); resolve(); }, GUARD_MS); }),
  ]).finally(() => clearTimeout(timer));
}

async function settlePending() {
  const batch = pending.splice(0);
  observe(t, BETWEEN);
  await Promise.all(batch.map(([p, label]) => withGuard(
    Promise.resolve(p).catch((e) => finding('check failed', label, describe(e))).then(() => observe(t, `${label}, as it settled`)),
    label,
  )));
}

process.on('unhandledRejection', (e) => finding('unhandled rejection', 'during the run', describe(e)));

for (iteration = 1; iteration <= ITERATIONS && !unusable; iteration++) {
  randomCall();
  if (!unusable && (iteration % 50 === 0 || pending.length > 40)) await settlePending();
}
const ran = Math.min(iteration, ITERATIONS + 1) - 1;
// An unusable agent leaves flushes waiting for their timeouts: nothing left to check.
// Async operations still running make calls of their own (a fetch after an
// await): settle until nothing new is pending, so none is still in flight
// when the accounting below runs.
if (!unusable) {
  do await settlePending(); while (pending.length > 0);
}

// ---- accounting ----------------------------------------------------------------------

let exportedTagged = 0;
let settled = !unusable;
if (!unusable) {
  for (const s of spans) call('span.end()', () => s.end());
  for (const [tr, tagged] of instances) {
    const isMain = tr === instances[0][0];
    try { tr.restoreFetch(); } catch (e) { finding('throws into the caller', 'restoreFetch()', describe(e)); }
    // Instances set up with hostile options (a fetch that throws, odd
    // headers) may still be retrying: they get less time, and only the
    // main one must drain.
    await withGuard(tr.flush(isMain ? 20000 : 3000).catch((e) => finding('flush rejects', 'final flush()', describe(e))), 'final flush()');
    const s = tr.stats();
    const detail = JSON.stringify(s);
    if (typeof s.started !== 'number') { finding('stats() has no counters at the end', 'stats()', detail); settled = false; continue; }
    const reasons = Object.entries(s).filter(([k]) => /^dropped./.test(k)).reduce((n, [, v]) => n + v, 0);
    if (s.dropped !== reasons) finding('dropped is not the sum of its reasons', 'stats()', detail);
    if (s.live !== 0) finding('spans still live after every span handed out was ended', 'stats().live', detail);
    if (s.queued !== 0 || s.inFlight !== 0) {
      settled = false;
      if (isMain) finding('flush resolved with spans queued or in flight', 'final flush()', detail);
    }
    // Live spans (reported above) may be sampled or not: with some left, the
    // sum can only be bounded.
    const accounted = s.exported + s.queued + s.inFlight + (s.dropped - s.droppedLiveLimit) + s.unsampled;
    if (s.live === 0 ? s.started !== accounted : s.started < accounted || s.started > accounted + s.live) {
      finding('started != exported + queued + inFlight + dropped + unsampled', 'stats()', detail);
    }
    if (s.internalErrors !== 0) finding('internalErrors is not 0 at the end', 'stats()', detail);
    if (tagged) exportedTagged += s.exported;
    await withGuard(tr.shutdown(3000).catch((e) => finding('shutdown rejects', 'shutdown()', describe(e))), 'shutdown()');
    const after = tr.stats();
    if (after.queued !== 0 || after.inFlight !== 0) settled = false;
    if (tagged) exportedTagged += after.exported - s.exported;
  }
}
echo.close();
const main = instances[0][0].stats();
console.log('RESULT ' + JSON.stringify({
  seed: SEED, iterations: ran, unusable, settled, exportedTagged, instances: instances.length,
  main: { started: main.started, exported: main.exported, unsampled: main.unsampled, dropped: main.dropped },
  findings: [...findings.values()],
}));
process.exit(0);
