// tracelink: the JS face of the wasm agent. Everything stateful (ids, spans,
// sampling, W3C formats, OTLP encoding, batching and retries) lives in wasm;
// this file adapts it to JS: options, promises and callbacks, the fetch
// wrapper, the network and timer calls, and page lifecycle events.
// Rule: after setup, nothing here throws into application code.
import initWasm, { initSync, Agent } from './tracelink_wasm.js';
import { contextStore } from './context.js';

const global = globalThis;
const KIND = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 };
const STATUS = { unset: 0, ok: 1, error: 2 };
const DEFAULT_REDACTED_QUERY = ['AWSAccessKeyId', 'Signature', 'sig', 'X-Goog-Signature'];
const SEND_FETCH = 0, SEND_KEEPALIVE = 1, SEND_BEACON = 2;

let wasmReady = null; // one instance per JS realm, shared by every tracing setup

/** Loads the wasm once: from a Module / bytes / URL given, else next to this file. */
function loadWasm(source) {
  if (wasmReady) return wasmReady;
  try {
    if (source instanceof WebAssembly.Module || ArrayBuffer.isView(source) || source instanceof ArrayBuffer) {
      // Sync path: edge runtimes hand in a precompiled module (Workers forbid
      // compiling bytes at run time; Node/Deno/Bun may pass bytes).
      initSync({ module: source });
      wasmReady = Promise.resolve();
    } else {
      // Throws in Workers (no import.meta.url); Node's fetch rejects file: URLs.
      source ??= new URL('./tracelink_wasm_bg.wasm', import.meta.url);
      wasmReady = initWasm({ module_or_path: source })
        .then(() => undefined, (e) => { wasmReady = null; throw wasmError(source, e); });
    }
  } catch (e) {
    throw wasmError(source, e);
  }
  return wasmReady;
}

function wasmError(source, e) {
  const from = source == null ? 'next to tracelink.js'
    : typeof source === 'string' || source instanceof URL ? source : source.url || 'options.wasm';
  return new TypeError(`tracelink: setupTracing: cannot load the wasm from ${from}: ${String(e?.message ?? e).replace(/\.$/, '')}.`
    + " Pass options.wasm: the file's URL or bytes, or a WebAssembly.Module (Workers: import wasm from 'tracelink/tracelink_wasm_bg.wasm')", { cause: e });
}

function fail(message) {
  throw new TypeError(`tracelink: setupTracing: ${message}`);
}

function parseBool(v) {
  return typeof v === 'boolean' ? v : typeof v === 'string' ? /^(1|true|yes|on)$/i.test(v.trim()) : undefined;
}

/** `k1=v1,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS / OTEL_RESOURCE_ATTRIBUTES). */
function parseKeyValueList(s) {
  const out = {};
  for (const part of String(s).split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    try {
      out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
    } catch { /* malformed escape: skip the entry */ }
  }
  return out;
}

const ENV_KEYS = ['OTEL_SERVICE_NAME', 'OTEL_RESOURCE_ATTRIBUTES', 'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_TRACES_SAMPLER_ARG', 'OTEL_CONSOLE_EXPORT'];

function readEnv(options) {
  if (options.env != null) {
    if (typeof options.env !== 'object') fail('env must be an object of OTEL_* settings');
    return options.env;
  }
  // process.env where it exists (Node, Bun, Deno). Deno throws (or prompts)
  // on a variable not granted by --allow-env: read only granted ones.
  const env = {};
  let source, deno;
  try { source = global.process?.env; deno = global.Deno?.permissions; } catch { /* no process */ }
  if (source) {
    for (const key of ENV_KEYS) {
      try {
        if (deno && deno.querySync({ name: 'env', variable: key }).state !== 'granted') continue;
        if (typeof source[key] === 'string') env[key] = source[key];
      } catch { /* unreadable: unset */ }
    }
  }
  return env;
}

/** Resolves the traces endpoint: a full .../v1/traces URL, or a base URL. */
function tracesUrl(endpoint, isBase) {
  let url;
  try {
    url = new URL(endpoint, global.location?.href);
  } catch {
    fail(`otlpEndpoint is not a valid URL: ${JSON.stringify(endpoint)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`otlpEndpoint must be http(s): ${url.href}`);
  if (isBase || !/\/v1\/traces\/?$/.test(url.pathname)) {
    url.pathname = url.pathname.replace(/\/+$/, '') + '/v1/traces';
  }
  return url.href;
}

/** Validates options (explicit options win over OTEL_* env) into one config. */
function normalize(options) {
  if (options == null || typeof options !== 'object') fail('options must be an object');
  const env = readEnv(options);
  const resourceEnv = env.OTEL_RESOURCE_ATTRIBUTES ? parseKeyValueList(env.OTEL_RESOURCE_ATTRIBUTES) : {};
  const serviceName = options.serviceName ?? env.OTEL_SERVICE_NAME ?? resourceEnv['service.name'];
  if (typeof serviceName !== 'string' || !serviceName) fail('serviceName must be a non-empty string (or set OTEL_SERVICE_NAME)');
  const serviceVersion = options.serviceVersion ?? resourceEnv['service.version'] ?? '';
  if (typeof serviceVersion !== 'string') fail('serviceVersion must be a string');

  let endpoint;
  if (options.otlpEndpoint != null) {
    if (typeof options.otlpEndpoint !== 'string' && !(options.otlpEndpoint instanceof URL)) fail('otlpEndpoint must be a string or URL');
    endpoint = tracesUrl(String(options.otlpEndpoint), false);
  } else if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) {
    endpoint = tracesUrl(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, false);
  } else if (env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    endpoint = tracesUrl(env.OTEL_EXPORTER_OTLP_ENDPOINT, true);
  } else {
    fail('otlpEndpoint is required (or set OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT)');
  }

  const headers = options.otlpHeaders ?? (env.OTEL_EXPORTER_OTLP_TRACES_HEADERS || env.OTEL_EXPORTER_OTLP_HEADERS
    ? parseKeyValueList(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS || env.OTEL_EXPORTER_OTLP_HEADERS) : {});
  if (typeof headers !== 'object' || Array.isArray(headers)) fail('otlpHeaders must be an object of header names to values');
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v !== 'string') fail(`otlpHeaders[${JSON.stringify(k)}] must be a string`);
  }

  const protocol = options.protocol ?? env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') fail(`protocol must be 'http/protobuf' or 'http/json', got ${JSON.stringify(protocol)}`);

  let sampleRate = options.sampleRate ?? (env.OTEL_TRACES_SAMPLER_ARG != null ? Number(env.OTEL_TRACES_SAMPLER_ARG) : 1);
  if (typeof sampleRate !== 'number' || !(sampleRate >= 0 && sampleRate <= 1)) fail('sampleRate must be a number from 0 to 1');

  const consoleExport = options.consoleExport ?? parseBool(env.OTEL_CONSOLE_EXPORT) ?? false;
  if (typeof consoleExport !== 'boolean') fail('consoleExport must be a boolean');

  const propagateTo = options.propagateTo ?? [];
  if (!Array.isArray(propagateTo) || !propagateTo.every((p) => typeof p === 'string' || p instanceof RegExp)) {
    fail('propagateTo must be an array of URL prefixes (strings) and RegExps');
  }
  const correlationIdHeader = options.correlationIdHeader;
  if (correlationIdHeader != null && (typeof correlationIdHeader !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(correlationIdHeader))) {
    fail('correlationIdHeader must be a valid HTTP header name');
  }
  const redact = options.redactQueryParams ?? DEFAULT_REDACTED_QUERY;
  if (!Array.isArray(redact) || !redact.every((p) => typeof p === 'string')) fail('redactQueryParams must be an array of strings');
  const instrumentFetch = options.instrumentFetch ?? false;
  if (typeof instrumentFetch !== 'boolean') fail('instrumentFetch must be a boolean');
  const propagateBaggage = options.propagateBaggage ?? false;
  if (typeof propagateBaggage !== 'boolean') fail('propagateBaggage must be a boolean');
  const ignoreUrls = options.ignoreUrls ?? [];
  if (!Array.isArray(ignoreUrls) || !ignoreUrls.every((p) => typeof p === 'string' || p instanceof RegExp)) {
    fail('ignoreUrls must be an array of URL prefixes (strings) and RegExps');
  }
  const instrumentations = [];
  for (const name of Object.keys(INSTRUMENTATIONS)) {
    const v = options[name];
    if (v == null || v === false) continue;
    if (v !== true && (typeof v !== 'object' || Array.isArray(v))) fail(`${name} must be a boolean or an options object`);
    instrumentations.push([name, v === true ? {} : { ...v }]);
  }
  const fetchImpl = options.fetch ?? global.fetch;
  if (typeof fetchImpl !== 'function') fail('no fetch function in this runtime (pass options.fetch)');
  const resourceAttributes = { ...resourceEnv, ...(options.resourceAttributes ?? {}) };
  delete resourceAttributes['service.name'];
  delete resourceAttributes['service.version'];

  return {
    serviceName, serviceVersion, endpoint, headers: { ...headers }, json: protocol === 'http/json', sampleRate,
    consoleExport, propagateTo, correlationIdHeader, redact: new Set(redact.map((s) => s.toLowerCase())),
    instrumentFetch, propagateBaggage, fetchImpl, resourceAttributes, ignoreUrls, instrumentations,
    scheduleDelayMs: options.scheduleDelayMillis, maxQueueSize: options.maxQueueSize,
    maxExportBatchSize: options.maxExportBatchSize, exportTimeoutMs: options.exportTimeoutMillis,
  };
}

/**
 * Starts tracing. Resolves to a {@link Tracing} handle. Rejects (TypeError)
 * only for invalid options or when the wasm cannot be loaded.
 */
export async function setupTracing(options = {}) {
  const config = normalize(options);
  const store = await contextStore(options.asyncContext);
  await loadWasm(options.wasm);
  const tracing = new Tracing(config, store);
  for (const [name, settings] of config.instrumentations) {
    const module = await INSTRUMENTATIONS[name]();
    const uninstall = tracing._safe(() => module.install(tracing._hooks(), settings));
    if (typeof uninstall === 'function') tracing._uninstall.push(uninstall);
  }
  return tracing;
}

/**
 * Opt-in instrumentations: each a module loaded only when its option is set
 * (a literal dynamic import, so bundlers split it out of the default bundle).
 * A module exports `install(hooks, settings) → uninstall()`; `hooks` is
 * `Tracing._hooks()`.
 */
const INSTRUMENTATIONS = {
  instrumentXhr: () => import('./instrument/xhr.js'),
  instrumentDocumentLoad: () => import('./instrument/document-load.js'),
  instrumentNavigation: () => import('./instrument/navigation.js'),
  instrumentInteractions: () => import('./instrument/interactions.js'),
  instrumentErrors: () => import('./instrument/errors.js'),
  instrumentWebVitals: () => import('./instrument/web-vitals.js'),
};

// ---- added for pkg/instrument (branch `instrument`) -------------------------
/**
 * Task store only (an exact store carries the context itself): `ctx` is
 * current, from now until `event`'s dispatch ends, wherever the store would
 * answer what it answered at entry (`base`); an operation run or re-entered
 * inside still wins. Exact: a dispatch the browser starts as a task begins
 * with an empty microtask queue, so everything that runs until it ends (the
 * listeners, and the microtasks they queue, which run between listeners) was
 * started by this event's listeners; a dispatch from script runs only its
 * listeners. Once the dispatch is over (eventPhase NONE) it no longer applies.
 */
function enterEvent(store, ctx, event) {
  if (!ctx || store.exact || !(event?.eventPhase > 0)) return false;
  let scopes = store.eventScopes;
  if (!scopes) {
    scopes = store.eventScopes = [];
    const get = store.get;
    store.get = function () {
      let c = get.call(this);
      for (let i = 0; i < scopes.length; i++) {
        const s = scopes[i];
        if (!s.event.eventPhase) scopes.splice(i--, 1);
        else if (c === s.base) c = s.ctx;
      }
      return c;
    };
  }
  scopes.push({ event, ctx, base: store.get() });
  return true;
}
// ---- end of the pkg/instrument addition --------------------------------------

/** Sets `key` to `value` on span `h` (0 = the staged event attributes). */
function setAttr(agent, h, key, value) {
  if (typeof key !== 'string' || key === '') return;
  switch (typeof value) {
    case 'string': agent.attrStr(h, key, value); break;
    case 'number':
      if (Number.isSafeInteger(value)) agent.attrInt(h, key, value);
      else agent.attrF64(h, key, value);
      break;
    case 'boolean': agent.attrBool(h, key, value); break;
    case 'bigint':
      if (value >= -(2n ** 63n) && value < 2n ** 63n) agent.attrBigInt(h, key, value);
      else agent.attrStr(h, key, value.toString());
      break;
    case 'object':
      if (Array.isArray(value)) agent.attrArray(h, key, value);
      break;
    default: // undefined, functions, symbols: ignored, as in OpenTelemetry
  }
}

function errorParts(err) {
  if (err instanceof Error || (err && typeof err === 'object' && 'message' in err)) {
    return [String(err.name ?? err.constructor?.name ?? 'Error'), String(err.message ?? ''), String(err.stack ?? '')];
  }
  return ['', String(err), ''];
}

/** A span. Methods never throw; they do nothing once the span has ended. */
export class Span {
  constructor(tracing, ctx) {
    this._t = tracing;
    this._c = ctx; // the context this span is current in (see context.js)
    this._h = ctx ? ctx.h : 0;
  }
  /** Sets an attribute (string, number, boolean, bigint or a homogeneous array). */
  setAttribute(key, value) {
    if (!this._h) return this;
    this._t._safe(() => setAttr(this._t._agent, this._h, key, value));
    return this;
  }
  /** Sets several attributes. */
  setAttributes(attributes) {
    if (!this._h) return this;
    this._t._safe(() => { for (const k in attributes) setAttr(this._t._agent, this._h, k, attributes[k]); });
    return this;
  }
  /** Adds a timestamped event with optional attributes. */
  addEvent(name, attributes) {
    if (!this._h) return this;
    this._t._safe(() => this._t._event(this._h, name, attributes));
    return this;
  }
  /** Sets the status: 'ok' | 'error' | 'unset' (or {code, message}). */
  setStatus(code, message) {
    if (!this._h) return this;
    this._t._safe(() => {
      if (code && typeof code === 'object') ({ code, message } = code);
      const c = typeof code === 'number' ? code : STATUS[String(code).toLowerCase()];
      if (c !== undefined) this._t._agent.status(this._h, c, message == null ? '' : String(message));
    });
    return this;
  }
  /** Records an exception event (type, message, stack) and sets ERROR status. */
  recordException(error) {
    if (!this._h) return this;
    this._t._safe(() => this._t._fail(this._h, error));
    return this;
  }
  /** Renames the span. */
  updateName(name) {
    if (!this._h) return this;
    this._t._safe(() => this._t._agent.rename(this._h, String(name)));
    return this;
  }
  /** Ends the span (now, or at `endTime`: unix ms or a Date); later calls do nothing. */
  end(endTime) {
    if (this._h) this._t._safe(() => this._t._end(this._c, timeMs(endTime)));
  }
  /** Whether the span is live and sampled. */
  isRecording() {
    return this._t._safe(() => this._t._agent.isRecording(this._h)) ?? false;
  }
  /** This span's 32-hex trace id ('' once ended). */
  get traceId() { return this._t._safe(() => this._t._agent.traceId(this._h)) ?? ''; }
  /** This span's 16-hex span id ('' once ended). */
  get spanId() { return this._t._safe(() => this._t._agent.spanId(this._h)) ?? ''; }
  /** The W3C traceparent of this span ('' once ended). */
  get traceparent() { return this._t._safe(() => this._t._agent.traceparent(this._h)) ?? ''; }
  /**
   * Runs `fn(...args)` with this span current (like OpenTelemetry's
   * `context.with`): spans, fetches, correlation id and baggage inside it
   * belong to this span. Returns what `fn` returns.
   */
  run(fn, ...args) {
    return this._t._run(this._c, fn, args);
  }
  /** A traced fetch whose parent is this span (for concurrent code). */
  fetch(...args) {
    return this._t._fetch(args, this._c);
  }
}

/** The handle `setupTracing` resolves to. */
export class Tracing {
  constructor(config, store) {
    this._config = config;
    this._store = store; // where the current context lives (context.js)
    this._baggage = ''; // baggage of work outside any operation
    this._open = 0; // operations started and not yet ended
    this._parentUnknown = 0;
    this._inflight = new Set();
    this._flushWaiters = [];
    this._internalErrors = 0;
    this._broken = false;
    this._timer = null;
    this._realFetch = config.fetchImpl;
    this._patched = null;
    this._listeners = [];
    this._unpatchBodies = null;
    this._uninstall = []; // undo functions of the installed instrumentations
    this._recordedErrors = new WeakSet(); // errors recorded by traceOperation: never recorded twice
    this._exportHeaders = { ...config.headers, 'content-type': config.json ? 'application/json' : 'application/x-protobuf' };
    this._agent = new Agent(
      {
        serviceName: config.serviceName,
        serviceVersion: config.serviceVersion,
        sampleRate: config.sampleRate,
        json: config.json,
        scheduleDelayMs: config.scheduleDelayMs,
        maxQueueSize: config.maxQueueSize,
        maxExportBatchSize: config.maxExportBatchSize,
        sdkLanguage: 'webjs',
      },
      (id, body, transport) => this._send(id, body, transport),
      (ms) => this._schedule(ms),
      config.consoleExport ? (json) => console.debug('[tracelink] span', json) : null,
    );
    for (const [k, v] of Object.entries(config.resourceAttributes)) {
      if (typeof v === 'string') this._agent.resourceAttr(k, v);
    }
    this._listen();
    if (!store.exact) this._unpatchBodies = followBodies(this);
    if (config.instrumentFetch) this.instrumentFetch();
  }

  // ---- internal plumbing -------------------------------------------------

  /** Runs `f`, turning any failure into a counted internal error. */
  _safe(f) {
    if (this._broken) return undefined;
    try {
      return f();
    } catch (e) {
      this._internalErrors++;
      // A wasm trap (RuntimeError) leaves the instance unusable: stop tracing,
      // keep the app running (fetch passes straight through).
      if (e instanceof WebAssembly.RuntimeError) this._broken = true;
      return undefined;
    }
  }

  /** The current context, or null. */
  _current() {
    let c;
    try { c = this._store.get(); } catch { return null; }
    return c && c.t !== this ? this._adopt(c) : c;
  }

  /** A context of another Tracing (two setups in one realm) as a W3C parent of ours. */
  _adopt(c) {
    if (!c || typeof c !== 'object' || !(c.t instanceof Tracing)) return null;
    const tp = c.tp || c.t._safe(() => c.t._agent.traceparent(c.h));
    if (!tp) return null;
    const ts = c.tp ? c.ts : c.t._safe(() => c.t._agent.tracestate(c.h)) ?? '';
    return { t: this, h: 0, cid: c.cid, baggage: c.baggage, tp, ts, remote: c.remote };
  }

  /**
   * The parent context for a span started now without an explicit parent:
   * the current one. With no current context while an operation is open, the
   * task store cannot know which one the caller belongs to: no parent, counted.
   */
  _implicitParent() {
    const c = this._current();
    if (!c && this._open > 0 && !this._store.exact) this._parentUnknown++;
    return c;
  }

  /** Starts a span under `parent` (a context or null) → its context, or null. */
  _startIn(name, kind, parent, cid, atMs = NaN) {
    const h = this._agent.start(name, kind, parent ? parent.h : 0, parent ? parent.tp : '', parent ? parent.ts : '', !!parent?.remote, atMs);
    return this._ctxFor(h, parent, cid);
  }

  /** The context of new span `h` under `parent`: correlation id and baggage inherited. */
  _ctxFor(h, parent, cid) {
    if (!h) return null;
    cid = cid ?? parent?.cid;
    if (cid != null) this._agent.attrStr(h, 'correlation_id', cid);
    return { t: this, h, cid, baggage: parent ? parent.baggage : this._baggage, tp: '', ts: '', remote: false };
  }

  /** `options.parent` (a Span, an extracted context, or null) or the implicit parent. */
  _parentFrom(options) {
    if (!options || !('parent' in options) || options.parent === undefined) return this._implicitParent();
    const p = options.parent;
    if (p === null) return null;
    if (p instanceof Span) return p._c && p._c.t !== this ? this._adopt(p._c) : p._c;
    if (typeof p === 'object' && typeof p.traceparent === 'string') {
      // An extracted remote context: started under, never made live here.
      return { t: this, h: 0, cid: undefined, baggage: typeof p.baggage === 'string' ? p.baggage : this._baggage,
        tp: p.traceparent, ts: typeof p.tracestate === 'string' ? p.tracestate : '', remote: true };
    }
    return this._implicitParent();
  }

  _start(name, options) {
    const kind = KIND[String(options?.kind ?? 'internal').toLowerCase()] ?? 0;
    const cid = options?.correlationId;
    const ctx = this._startIn(String(name), kind, this._parentFrom(options), cid == null ? undefined : String(cid), timeMs(options?.startTime));
    const attrs = options?.attributes;
    if (ctx && attrs && typeof attrs === 'object') for (const k in attrs) setAttr(this._agent, ctx.h, k, attrs[k]);
    return ctx;
  }

  _event(h, name, attributes) {
    if (attributes && typeof attributes === 'object') {
      for (const k in attributes) setAttr(this._agent, 0, k, attributes[k]);
    }
    this._agent.event(h, String(name));
  }

  _fail(h, error) {
    if (error !== null && (typeof error === 'object' || typeof error === 'function')) this._recordedErrors.add(error);
    const [type, message, stack] = errorParts(error);
    this._agent.exception(h, type, message, stack);
    this._agent.status(h, STATUS.error, message);
  }

  /** Ends the span of `ctx`, keeping its W3C context for work that outlives it. */
  _end(ctx, atMs = NaN) {
    if (!ctx || !ctx.h || ctx.tp) return;
    const agent = this._agent;
    const tp = agent.traceparent(ctx.h);
    if (!tp) return;
    ctx.tp = tp;
    ctx.ts = agent.tracestate(ctx.h);
    agent.end(ctx.h, atMs);
  }

  /** Runs `fn(...args)` with `ctx` current; a promise it returns re-enters the caller's context. */
  _run(ctx, fn, args) {
    if (typeof fn !== 'function') throw new TypeError('tracelink: run(fn): fn must be a function');
    if (!ctx || this._broken) return fn(...args);
    const caller = this._current();
    const result = this._store.run(ctx, fn, args);
    return isThenable(result) && result instanceof Promise ? this._follow(result, caller) : result;
  }

  /** `promise`, settling with `ctx` current for its continuations (task store only). */
  _follow(promise, ctx) {
    try {
      return this._store.follow(promise, ctx);
    } catch {
      return promise;
    }
  }
  _schedule(ms) {
    if (this._timer !== null) clearTimeout(this._timer);
    this._timer = ms < 0 ? null : setTimeout(() => {
      this._timer = null;
      this._safe(() => this._agent.onTimer());
      this._settleFlush();
    }, ms);
    // Never keep a Node/Bun/Deno process alive just for the export timer.
    this._timer?.unref?.();
  }

  /** Sends one OTLP request the agent asked for, and reports its outcome. */
  _send(id, body, transport) {
    if (transport === SEND_BEACON) {
      // sendBeacon cannot carry headers: JSON/protobuf types go as a Blob type.
      const nav = global.navigator;
      let ok = false;
      try {
        ok = typeof nav?.sendBeacon === 'function'
          && nav.sendBeacon(this._config.endpoint, new Blob([body], { type: this._exportHeaders['content-type'] }));
      } catch { ok = false; }
      return ok;
    }
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    const timeout = setTimeout(() => controller?.abort(), this._config.exportTimeoutMs ?? 30000);
    timeout?.unref?.();
    const init = { method: 'POST', headers: this._exportHeaders, body, signal: controller?.signal };
    // keepalive only matters where a page can unload under the request; edge
    // runtimes have no use for it (and some reject unknown fetch fields).
    if (transport === SEND_KEEPALIVE && global.document) init.keepalive = true;
    const p = Promise.resolve()
      .then(() => this._realFetch.call(global, this._config.endpoint, init))
      .then(async (res) => {
        let bytes = null;
        if (res.status >= 200 && res.status < 300) {
          try { bytes = new Uint8Array(await res.arrayBuffer()); } catch { bytes = null; }
        } else {
          try { await res.body?.cancel(); } catch { /* connection already gone */ }
        }
        return [res.status, res.headers.get('retry-after'), bytes];
      })
      .catch((e) => [e?.name === 'AbortError' ? 1 : 0, null, null])
      .then(([status, retryAfter, bytes]) => {
        clearTimeout(timeout);
        this._inflight.delete(p);
        this._safe(() => this._agent.onOutcome(id, status, retryAfter ?? undefined, bytes ?? undefined));
        this._settleFlush();
      });
    this._inflight.add(p);
    return true;
  }

  _settleFlush() {
    if (!this._flushWaiters.length) return;
    const idle = this._broken || this._safe(() => this._agent.idle());
    if (idle) for (const resolve of this._flushWaiters.splice(0)) resolve();
  }

  _listen() {
    const target = global.addEventListener ? global : null;
    if (!target) return;
    const hidden = () => this._safe(() => this._agent.pageHidden());
    const visibility = () => {
      const state = global.document?.visibilityState;
      if (state === 'hidden') hidden();
      else if (state === 'visible') this._safe(() => this._agent.pageVisible());
    };
    const add = (t, type, f) => {
      try { t.addEventListener(type, f, { capture: true }); this._listeners.push([t, type, f]); } catch { /* not an EventTarget */ }
    };
    if (global.document?.addEventListener) add(global.document, 'visibilitychange', visibility);
    add(target, 'pagehide', hidden);
  }

  // ---- traced fetch -------------------------------------------------------

  /** Whether trace headers may go to `url` (same origin, or allow-listed). */
  _mayPropagate(url) {
    const origin = global.location?.origin;
    if (origin && origin !== 'null' && url.origin === origin) return true;
    const href = url.href;
    for (const p of this._config.propagateTo) {
      if (typeof p === 'string') {
        if (href === p || href.startsWith(p.endsWith('/') ? p : p + '/') || url.origin === p) return true;
      } else {
        p.lastIndex = 0;
        if (p.test(href)) return true;
      }
    }
    return false;
  }

  /** Whether requests to `url` are never traced: the exporter's own, and `ignoreUrls`. */
  _ignored(url) {
    if (url.href === this._config.endpoint) return true;
    for (const p of this._config.ignoreUrls) {
      if (typeof p === 'string' ? url.href.startsWith(p) : (p.lastIndex = 0, p.test(url.href))) return true;
    }
    return false;
  }

  /**
   * The interface opt-in instrumentation modules (pkg/instrument/) use: the
   * context rules, the traced fetch's HTTP semantics for other clients, and
   * the error bookkeeping. Internal: not part of the public API.
   */
  _hooks() {
    return {
      tracing: this,
      /** Whether the context is exact (AsyncLocalStorage) or task-scoped (browsers). */
      exact: this._store.exact,
      current: () => this._current(),
      /** Runs fn(...args) with `ctx` (a span's context) current in its synchronous extent. */
      run: (ctx, fn, args = []) => (ctx ? this._store.run(ctx, fn, args) : fn(...args)),
      /** A promise settling like `promise`, whose continuations re-enter `ctx` (task store). */
      follow: (promise, ctx) => this._follow(promise, ctx),
      /** The context of a Span (to pass as a parent, or to `run`). */
      contextOf: (span) => (span instanceof Span ? span._c : null),
      /**
       * An HTTP CLIENT span for `method` `url` under `parent` (a context; null for
       * a new trace; undefined: the current one), with the traced fetch's
       * semantics. Returns null when the URL is not traced, else
       * { span, headers }: the [name, value] pairs to add to the request (none
       * where trace headers may not go).
       */
      httpStart: (method, url, parent) => this._safe(() => {
        const u = new URL(String(url), global.location?.href);
        if (this._ignored(u)) return null;
        const ctx = this._fetchStart(String(method || 'GET').toUpperCase(), u, parent === undefined ? this._implicitParent() : parent);
        if (!ctx) return null;
        const headers = [];
        if (this._mayPropagate(u)) {
          const tp = this._agent.traceparent(ctx.h);
          const ts = this._agent.tracestate(ctx.h);
          if (tp) headers.push(['traceparent', tp]);
          if (ts) headers.push(['tracestate', ts]);
          if (this._config.propagateBaggage && ctx.baggage) headers.push(['baggage', ctx.baggage]);
          if (this._config.correlationIdHeader && ctx.cid != null) headers.push([this._config.correlationIdHeader, ctx.cid]);
        }
        return { span: new Span(this, ctx), headers };
      }) ?? null,
      /** Ends an HTTP span: status, and the server's span read back from its response headers. */
      httpEnd: (span, status, traceresponse = '', serverTiming = '') => this._safe(() => {
        if (span?._h) this._agent.fetchEnd(span._h, status, traceresponse ?? '', serverTiming ?? '');
      }),
      /** Ends an HTTP span whose request failed (network error, abort, timeout). */
      httpFail: (span, type, message = '') => this._safe(() => {
        if (span?._h) this._agent.fetchFail(span._h, String(type || 'Error'), String(message));
      }),
      /** Whether `error` was already recorded on a span (by traceOperation or recordException). */
      wasRecorded: (error) => error !== null && (typeof error === 'object' || typeof error === 'function') && this._recordedErrors.has(error),
      /** Runs f, counting (never throwing) any failure. */
      safe: (f) => this._safe(f),
      // ---- added for pkg/instrument (branch `instrument`) -------------------
      /** `url.full` for `url` as the traced fetch records it (no userinfo, query values redacted); null for ignoreUrls and the exporter. */
      spanUrl: (url) => this._safe(() => {
        const u = new URL(String(url), global.location?.href);
        return this._ignored(u) ? null : this._spanUrl(u);
      }) ?? null,
      /**
       * Makes `ctx` current for the rest of the dispatch of `event` (an Event
       * being dispatched now): the listeners after the caller's and the
       * microtasks they queue. See enterEvent below. Returns whether it applied.
       */
      enterEvent: (ctx, event) => this._safe(() => enterEvent(this._store, ctx, event)) ?? false,
      // ---- end of the pkg/instrument addition -------------------------------
    };
  }

  /** `url.full` for a span: no userinfo, sensitive query values redacted. */
  _spanUrl(url) {
    const u = new URL(url.href);
    u.username = '';
    u.password = '';
    if (u.search && this._config.redact.size) {
      let changed = false;
      const entries = [...u.searchParams].map(([k, v]) => {
        if (!this._config.redact.has(k.toLowerCase())) return [k, v];
        changed = true;
        return [k, 'REDACTED'];
      });
      if (changed) u.search = new URLSearchParams(entries).toString();
    }
    return u.href;
  }

  /** The traced fetch: `args` exactly as the caller passed them; `parent` a context or null. */
  _fetch(args, parent) {
    const realFetch = this._realFetch;
    if (this._broken || args.length === 0) return realFetch.apply(global, args);
    const caller = this._current();
    const [input, init] = args;
    let ctx = null;
    let traced;
    try {
      const isRequest = typeof Request === 'function' && input instanceof Request;
      const url = new URL(isRequest ? input.url : input instanceof URL ? input.href : String(input), global.location?.href);
      if (this._ignored(url)) return realFetch.apply(global, args); // never the exporter, nor ignoreUrls
      const method = String((init && init.method) || (isRequest ? input.method : 'GET')).toUpperCase();
      ctx = this._fetchStart(method, url, parent === undefined ? this._implicitParent() : parent);
      if (ctx && this._mayPropagate(url)) traced = this._withTraceHeaders(input, init, isRequest, ctx);
    } catch (e) {
      // Invalid caller input (bad URL, header name...) is the real fetch's to
      // reject, below; only a fault of our own counts.
      if (e instanceof WebAssembly.RuntimeError) {
        this._internalErrors++;
        this._broken = true;
      }
      traced = undefined;
    }
    let promise;
    try {
      promise = traced ? realFetch.call(global, traced[0], traced[1]) : realFetch.apply(global, args);
    } catch (e) {
      // A fetch that throws synchronously (non-standard): keep its behaviour.
      if (ctx) this._safe(() => { this._fail(ctx.h, e); this._agent.end(ctx.h, NaN); });
      throw e;
    }
    if (!ctx) return this._follow(promise, caller);
    const h = ctx.h;
    return this._follow(promise.then(
      (res) => {
        this._safe(() => {
          this._agent.fetchEnd(h, res.status, res.headers.get('traceresponse') ?? '', res.headers.get('server-timing') ?? '');
        });
        return res;
      },
      (err) => {
        this._safe(() => {
          const [type, message] = errorParts(err);
          this._agent.fetchFail(h, type || 'Error', message);
        });
        throw err;
      },
    ), caller);
  }

  /** Starts the CLIENT span of a fetch under `parent` → its context, or null. */
  _fetchStart(method, url, parent) {
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    const h = this._agent.fetchStart(method, this._spanUrl(url), url.hostname, port,
      parent ? parent.h : 0, parent ? parent.tp : '', parent ? parent.ts : '', !!parent?.remote);
    return this._ctxFor(h, parent, undefined);
  }

  /**
   * The fetch arguments with trace headers added, without touching the
   * caller's objects: a caller `traceparent` is kept, never duplicated.
   */
  _withTraceHeaders(input, init, isRequest, ctx) {
    const traceparent = this._agent.traceparent(ctx.h);
    if (!traceparent) return undefined;
    const source = init && init.headers !== undefined ? init.headers : isRequest ? input.headers : undefined;
    const headers = new Headers(source);
    const add = (name, value) => { if (value && !headers.has(name)) headers.set(name, value); };
    add('traceparent', traceparent);
    add('tracestate', this._agent.tracestate(ctx.h));
    if (this._config.propagateBaggage) add('baggage', ctx.baggage);
    if (this._config.correlationIdHeader) add(this._config.correlationIdHeader, ctx.cid);
    if (headers.get('traceparent') !== traceparent) this._agent.attrBool(ctx.h, 'tracelink.caller_traceparent', true);
    // fetch(input, init) is new Request(input, init): passing a Request with
    // an init that only replaces its headers keeps everything else.
    if (!init) return [input, { headers }];
    // Copy the init dictionary field by field through [[Get]], so getters and
    // inherited fields (even a Request used as init) keep their meaning.
    const copy = { ...init };
    for (const k of INIT_KEYS) if (!(k in copy) && k in init) copy[k] = init[k];
    copy.headers = headers;
    return [input, copy];
  }

  // ---- public API ---------------------------------------------------------

  /**
   * Runs `fn(span)` inside a new span, current for everything `fn` does
   * (see the README's context rules). A throw or rejection is recorded
   * (exception event, ERROR status) and rethrown unchanged. `options` may be
   * omitted.
   */
  traceOperation(name, options, fn) {
    if (typeof options === 'function') [options, fn] = [undefined, options];
    if (typeof fn !== 'function') throw new TypeError('tracelink: traceOperation(name, [options], fn): fn must be a function');
    const caller = this._current();
    const ctx = this._safe(() => this._start(name, options)) ?? null;
    const span = ctx ? new Span(this, ctx) : NO_SPAN_FOR(this);
    if (!ctx) return fn(span);
    this._open++;
    let ended = false;
    const finish = () => {
      if (ended) return;
      ended = true;
      this._open--;
      this._safe(() => this._end(ctx));
    };
    let result;
    try {
      result = this._store.run(ctx, fn, [span]);
    } catch (e) {
      this._safe(() => this._fail(ctx.h, e));
      finish();
      throw e;
    }
    if (isThenable(result)) {
      let chained;
      try {
        chained = result.then(
          (v) => { finish(); return v; },
          (e) => { this._safe(() => this._fail(ctx.h, e)); finish(); throw e; },
        );
      } catch (e) {
        // A thenable whose `then` throws: as `await` would, reject with it.
        this._safe(() => this._fail(ctx.h, e));
        finish();
        return Promise.reject(e);
      }
      return chained instanceof Promise ? this._follow(chained, caller) : chained;
    }
    finish();
    return result;
  }

  /** Starts a span (child of the current one unless `options.parent` says otherwise). */
  startSpan(name, options) {
    const ctx = this._safe(() => this._start(name, options)) ?? null;
    return ctx ? new Span(this, ctx) : NO_SPAN_FOR(this);
  }

  /** The current span (a no-op span when there is none). */
  currentSpan() {
    const ctx = this._current();
    return ctx ? new Span(this, ctx) : NO_SPAN_FOR(this);
  }

  /** Runs `fn(...args)` with `span` current: `span.run(fn, ...args)`. */
  withSpan(span, fn, ...args) {
    if (!(span instanceof Span)) throw new TypeError('tracelink: withSpan(span, fn): span must be a Span');
    return this._run(span._c, fn, args);
  }

  /** Adds attributes to the current span. */
  addTraceAttributes(attributes) {
    this.currentSpan().setAttributes(attributes);
  }

  /** Adds an event to the current span. */
  addTraceEvent(name, attributes) {
    this.currentSpan().addEvent(name, attributes);
  }

  /** The current trace id (32 hex), or '' outside any span. */
  currentTraceId() {
    return this.currentSpan().traceId;
  }

  /** The current correlation id, or undefined. */
  currentCorrelationId() {
    return this._current()?.cid;
  }

  /**
   * Writes `traceparent` / `tracestate` (and `baggage` with
   * `propagateBaggage`) of the current span into `carrier` (a Headers object
   * or a plain object) and returns it. Never throws.
   */
  injectContext(carrier = {}) {
    const ctx = this._current();
    if (!ctx) return carrier;
    this._safe(() => {
      const tp = ctx.tp || this._agent.traceparent(ctx.h);
      if (!tp) return;
      const ts = ctx.tp ? ctx.ts : this._agent.tracestate(ctx.h);
      const bag = this._config.propagateBaggage ? ctx.baggage : '';
      try {
        if (typeof Headers === 'function' && carrier instanceof Headers) {
          carrier.set('traceparent', tp);
          if (ts) carrier.set('tracestate', ts);
          if (bag) carrier.set('baggage', bag);
        } else if (carrier != null && (typeof carrier === 'object' || typeof carrier === 'function')) {
          carrier.traceparent = tp;
          if (ts) carrier.tracestate = ts;
          if (bag) carrier.baggage = bag;
        }
      } catch { /* a carrier that refuses writes: left as it is */ }
    });
    return carrier;
  }

  /**
   * Reads a W3C context from headers (Headers, plain object, or Map). Returns
   * `{ traceId, spanId, traceFlags, traceparent, tracestate, baggage }` to
   * pass as `options.parent`, or `null` when there is no valid `traceparent`.
   */
  extractContext(headers) {
    return this._safe(() => {
      const get = (name) => {
        try {
          if (!headers || (typeof headers !== 'object' && typeof headers !== 'function')) return undefined;
          if (typeof headers.get === 'function') return headers.get(name) ?? undefined;
          for (const k in headers) if (k.toLowerCase() === name) return headers[k];
        } catch { /* a carrier whose reads throw: nothing there */ }
        return undefined;
      };
      const tp = get('traceparent');
      if (typeof tp !== 'string') return null;
      const ts = get('tracestate');
      const normalized = this._agent.normalizeTraceparent(tp, typeof ts === 'string' ? ts : '');
      if (!normalized) return null;
      const [traceparent, tracestate] = normalized.split('\n');
      const bag = get('baggage');
      const baggage = typeof bag === 'string' ? this._agent.normalizeBaggage(bag) : '';
      return { traceId: traceparent.slice(3, 35), spanId: traceparent.slice(36, 52), traceFlags: parseInt(traceparent.slice(53, 55), 16), traceparent, tracestate, baggage };
    }) ?? null;
  }

  /**
   * Sets a W3C baggage entry in the current context (inherited by spans
   * started in it from now on), or, outside any operation, for work outside
   * operations. It travels on traced fetches only with `propagateBaggage:
   * true`, and only where trace headers may go. Returns false (and changes
   * nothing) for an invalid key or value.
   */
  setBaggage(key, value) {
    return this._safe(() => {
      const ctx = this._current();
      const next = this._agent.baggageWith(ctx ? ctx.baggage : this._baggage, String(key), String(value));
      if (next === undefined) return false;
      if (ctx) ctx.baggage = next;
      else this._baggage = next;
      return true;
    }) ?? false;
  }

  /** A traced `fetch` (same arguments and result as the real one). */
  fetch(...args) {
    return this._fetch(args, undefined);
  }

  /** Replaces `globalThis.fetch` with the traced one (undo: `restoreFetch`). */
  instrumentFetch() {
    if (this._patched) return;
    const original = global.fetch;
    const tracing = this;
    // Same name and arity as the real one; arguments passed through as given.
    const traced = function fetch(input) { // eslint-disable-line no-unused-vars
      return tracing._fetch(arguments, undefined);
    };
    this._patched = { original, traced };
    global.fetch = traced;
  }

  /** Puts back the `fetch` that `instrumentFetch` replaced. */
  restoreFetch() {
    if (!this._patched) return;
    if (global.fetch === this._patched.traced) global.fetch = this._patched.original;
    this._patched = null;
  }

  /**
   * Exports everything ended so far. Resolves (never rejects) once the queue
   * is empty and nothing is in flight, or after `timeoutMs` (default 30 s).
   * In Workers: `ctx.waitUntil(tracing.flush())`.
   */
  flush(timeoutMs = 30000) {
    const caller = this._current();
    return this._follow(new Promise((resolve) => {
      if (this._broken) return resolve();
      // This timer is deliberately not unref'd: while a flush is awaited,
      // Node/Deno/Bun must not exit under it (the export timers are unref'd).
      let timer;
      const done = () => { clearTimeout(timer); resolve(); };
      this._flushWaiters.push(done);
      timer = setTimeout(() => {
        const i = this._flushWaiters.indexOf(done);
        if (i >= 0) this._flushWaiters.splice(i, 1);
        resolve();
      }, timeoutMs);
      this._safe(() => this._agent.flush());
      this._settleFlush();
    }), caller);
  }

  /** Flushes, then stops: restores fetch, removes listeners; later spans are dropped (counted). */
  async shutdown(timeoutMs) {
    this.restoreFetch();
    for (const uninstall of this._uninstall.splice(0)) this._safe(uninstall);
    this._unpatchBodies?.();
    this._unpatchBodies = null;
    for (const [t, type, f] of this._listeners.splice(0)) t.removeEventListener(type, f, { capture: true });
    await this.flush(timeoutMs);
    this._safe(() => this._agent.shutdown());
    if (this._timer !== null) clearTimeout(this._timer);
  }

  /**
   * Counters: spans started/ended/queued/exported, drops by reason, requests
   * retried and failed, internal errors, spans started without a parent
   * because the context could not be known (`parentUnknown`), and the
   * context mechanism in use (`contextMode`). Nothing is dropped without a count.
   */
  stats() {
    const s = this._safe(() => this._agent.stats()) ?? {};
    s.internalErrors = this._internalErrors;
    s.broken = this._broken;
    s.parentUnknown = this._parentUnknown;
    s.contextMode = this._store.name;
    return s;
  }
}

/** A span time option (unix ms number or Date) as unix ms; NaN for "now". */
function timeMs(t) {
  const ms = t instanceof Date ? t.getTime() : t;
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : NaN;
}

function isThenable(v) {
  try {
    return v != null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
  } catch {
    return false;
  }
}

/** A span that records nothing (tracing off or failed), still usable by app code. */
function NO_SPAN_FOR(tracing) {
  return new Span(tracing, null);
}

const BODY_METHODS = ['arrayBuffer', 'blob', 'bytes', 'formData', 'json', 'text'];

/**
 * Task store only: reading a response body inside an operation re-enters the
 * operation when the body arrives, so `await (await fetch(a)).json(); await
 * fetch(b)` keeps `b` in the operation. The methods stay the same functions
 * to callers (same name, arity, receiver checks and results). Returns the undo.
 */
function followBodies(tracing) {
  const proto = global.Response?.prototype;
  if (!proto) return null;
  const originals = [];
  for (const name of BODY_METHODS) {
    const original = proto[name];
    if (typeof original !== 'function') continue;
    const wrapped = {
      [name]() {
        const caller = tracing._current();
        const result = original.apply(this, arguments);
        return caller && !tracing._broken && result instanceof Promise ? tracing._follow(result, caller) : result;
      },
    }[name];
    try {
      Object.defineProperty(proto, name, { ...Object.getOwnPropertyDescriptor(proto, name), value: wrapped });
      originals.push([name, original, wrapped]);
    } catch { /* frozen prototype: bodies just don't re-enter */ }
  }
  return () => {
    for (const [name, original, wrapped] of originals) {
      if (proto[name] === wrapped) Object.defineProperty(proto, name, { ...Object.getOwnPropertyDescriptor(proto, name), value: original });
    }
  };
}

const INIT_KEYS = ['method', 'body', 'referrer', 'referrerPolicy', 'mode', 'credentials', 'cache', 'redirect',
  'integrity', 'keepalive', 'signal', 'duplex', 'priority', 'window'];
