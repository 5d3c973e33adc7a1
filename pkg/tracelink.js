// tracelink: the JS face of the wasm core. Everything stateful (ids, spans,
// sampling, W3C formats, OTLP encoding, batching and retries) lives in wasm
// (core.js is the boundary); this file adapts it to JS: options, promises and
// callbacks, the current context (context.js), the fetch wrapper, the network
// and timer calls, and page lifecycle events.
// Rule: after setup, nothing here throws into application code.
import { Core, RECORDING, clock, compile, snapshot, snapshotAll, w3cOf, wasmUrl } from './core.js';
import { contextStore } from './context.js';

const global = globalThis;
const KIND = { internal: 0, server: 1, client: 2, producer: 3, consumer: 4 };
const STATUS = { unset: 0, ok: 1, error: 2 };
const DEFAULT_REDACTED_QUERY = ['AWSAccessKeyId', 'Signature', 'sig', 'X-Goog-Signature'];
const SEND_KEEPALIVE = 1, SEND_BEACON = 2, SEND_PERSIST = 3, SEND_GZIP = 8;
const HTTP_METHODS = new Set(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE']);
// Span log op codes (src/core/span_log.rs).
const ATTRIBUTE = 1, EVENT = 2, SET_STATUS = 3, RENAME = 4, HTTP_RESPONSE = 5, HTTP_FAILURE = 6, EXCEPTION = 7;

/** The compiled core, with a clear error when it cannot be loaded. */
async function loadWasm(source, full) {
  try {
    return await compile(source, full);
  } catch (e) {
    let from = 'next to tracelink.js';
    try { from = source == null ? String(wasmUrl(full)) : typeof source === 'string' || source instanceof URL ? source : source.url || 'options.wasm'; } catch { /* no import.meta.url (Workers) */ }
    throw new TypeError(`tracelink: setupTracing: cannot load the wasm from ${from}: ${String(e?.message ?? e).replace(/\.$/, '')}.`
      + " Pass options.wasm: the file's URL or bytes, or a WebAssembly.Module (Workers: import wasm from 'tracelink/tracelink.wasm';"
      + " with protocol http/json, consoleExport or propagateBaggage: 'tracelink/tracelink-full.wasm')", { cause: e });
  }
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
  // gzip'd exports: on for a same-origin endpoint (a relay) and in runtimes
  // without CORS; a cross-origin collector must allow Content-Encoding in its
  // CORS settings first, so there it is opt-in.
  let sameOrigin = true;
  try { sameOrigin = !global.location?.origin || new URL(endpoint).origin === global.location.origin; } catch { /* keep */ }
  const compress = options.compress ?? sameOrigin;
  if (typeof compress !== 'boolean') fail('compress must be a boolean');
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
  const persist = options.persist ?? true;
  if (typeof persist !== 'boolean') fail('persist must be a boolean');
  const persistMaxBytes = options.persistMaxBytes ?? 1 << 20;
  if (typeof persistMaxBytes !== 'number' || !(persistMaxBytes > 0)) fail('persistMaxBytes must be a positive number');
  const persistMaxAgeMs = options.persistMaxAgeMs ?? 24 * 3600 * 1000;
  if (typeof persistMaxAgeMs !== 'number' || !(persistMaxAgeMs > 0)) fail('persistMaxAgeMs must be a positive number');
  for (const k of ['scheduleDelayMillis', 'maxQueueSize', 'maxExportBatchSize', 'exportTimeoutMillis']) {
    const v = options[k];
    if (v != null && !(typeof v === 'number' && v >= 0 && v <= 2 ** 31)) fail(`${k} must be a number from 0 to 2^31`);
  }
  const fetchImpl = options.fetch ?? global.fetch;
  if (typeof fetchImpl !== 'function') fail('no fetch function in this runtime (pass options.fetch)');
  const resourceAttributes = { ...resourceEnv, ...(options.resourceAttributes ?? {}) };
  delete resourceAttributes['service.name'];
  delete resourceAttributes['service.version'];

  return {
    serviceName, serviceVersion, endpoint, headers: { ...headers }, json: protocol === 'http/json', sampleRate,
    consoleExport, propagateTo, correlationIdHeader, redact: new Set(redact.map((s) => s.toLowerCase())),
    instrumentFetch, propagateBaggage, fetchImpl, resourceAttributes, ignoreUrls, instrumentations, compress,
    scheduleDelayMs: options.scheduleDelayMillis, maxQueueSize: options.maxQueueSize,
    maxExportBatchSize: options.maxExportBatchSize, exportTimeoutMs: options.exportTimeoutMillis,
    persist, persistMaxBytes, persistMaxAgeMs,
  };
}

/**
 * Starts tracing. Resolves to a {@link Tracing} handle. Rejects (TypeError)
 * only for invalid options or when the wasm cannot be loaded.
 */
export async function setupTracing(options = {}) {
  const config = normalize(options);
  const store = await contextStore(options.asyncContext);
  // The small default wasm encodes OTLP/protobuf; JSON, console export and
  // baggage come with the full one, downloaded only by setups that use them.
  const full = config.json || config.consoleExport || config.propagateBaggage;
  const module = await loadWasm(options.wasm, full);
  const tracing = new Tracing(config, store);
  try {
    tracing._core = await Core.create(module, {
      send: (id, body, transport, spans) => tracing._send(id, body, transport, spans),
      timer: (ms) => tracing._schedule(ms),
      console: (json) => console.debug('[tracelink] span', json),
    }, {
      serviceName: config.serviceName, serviceVersion: config.serviceVersion, sampleRate: config.sampleRate,
      flags: (config.json ? 1 : 0) | (config.consoleExport ? 2 : 0) | (full ? 4 : 0) | (config.compress ? 8 : 0),
      scheduleDelayMs: config.scheduleDelayMs, maxQueueSize: config.maxQueueSize, maxExportBatchSize: config.maxExportBatchSize,
    });
  } catch (e) {
    throw new TypeError(`tracelink: setupTracing: ${String(e?.message ?? e)}`
      + (full ? " (Workers: import wasm from 'tracelink/tracelink-full.wasm')" : ''), { cause: e });
  }
  tracing._start_();
  let hooks = null; // what instrumentations use (instrument/hooks.js), loaded with the first
  for (const [name, settings] of config.instrumentations) {
    const instrumentation = await INSTRUMENTATIONS[name]();
    hooks ??= (await import('./instrument/hooks.js')).hooks(tracing, Span);
    const uninstall = tracing._safe(() => instrumentation.install(hooks, settings));
    if (typeof uninstall === 'function') tracing._uninstall.push(uninstall);
  }
  return tracing;
}

/**
 * Opt-in instrumentations: each a module loaded only when its option is set
 * (a literal dynamic import, so bundlers split it out of the default bundle).
 * A module exports `install(hooks, settings) → uninstall()`; `hooks` is
 * `instrument/hooks.js`, loaded with the first.
 */
const INSTRUMENTATIONS = {
  instrumentXhr: () => import('./instrument/xhr.js'),
  instrumentDocumentLoad: () => import('./instrument/document-load.js'),
  instrumentNavigation: () => import('./instrument/navigation.js'),
  instrumentInteractions: () => import('./instrument/interactions.js'),
  instrumentErrors: () => import('./instrument/errors.js'),
  instrumentWebVitals: () => import('./instrument/web-vitals.js'),
};


/** [type, message, stack] of a thrown value; parts that refuse to be read are left empty. */
function errorParts(err) {
  const read = (f) => { try { return text(f(), ''); } catch { return ''; } };
  let isError = false;
  try { isError = err instanceof Error || (err !== null && typeof err === 'object' && 'message' in err); } catch { /* a proxy */ }
  if (isError) return [read(() => err.name ?? err.constructor?.name ?? 'Error') || 'Error', read(() => err.message ?? ''), read(() => err.stack ?? '')];
  return ['', text(err, ''), ''];
}

/** `String(v)`, or `fallback` for a value that refuses conversion (hostile input is ignored, not an error of ours). */
function text(v, fallback = '') {
  try {
    return String(v);
  } catch {
    return fallback;
  }
}

/** Stages an attribute on context `c` (ignored as OpenTelemetry does for other types). */
/** Stages every attribute of `attributes`; an object that refuses reads gives what could be read. */
function stageAll(c, attributes) {
  if (!attributes || typeof attributes !== 'object') return;
  try {
    for (const k in attributes) stage(c, k, attributes[k]);
  } catch { /* hostile getters or proxy traps: the rest is ignored */ }
}

function stage(c, key, value) {
  if (!c.rec || typeof key !== 'string' || key === '') return;
  const v = snapshot(value);
  if (v !== undefined) c.log.push(ATTRIBUTE, key, v);
}

/**
 * A span. Methods never throw; they do nothing once the span has ended.
 * What is recorded on it is staged in JS and crosses into wasm once, at `end`.
 */
export class Span {
  constructor(tracing, ctx) {
    this._t = tracing;
    this._c = ctx; // the context this span is current in: { t, h, rec, log, cid, baggage, tp, ts, remote }
  }
  /** Sets an attribute (string, number, boolean, bigint or a homogeneous array). */
  setAttribute(key, value) {
    if (this._c?.rec) stage(this._c, key, value);
    return this;
  }
  /** Sets several attributes. */
  setAttributes(attributes) {
    if (this._c?.rec) stageAll(this._c, attributes);
    return this;
  }
  /** Adds a timestamped event with optional attributes. */
  addEvent(name, attributes) {
    const c = this._c;
    if (c?.rec) c.log.push(EVENT, clock(), text(name, 'event'), snapshotAll(attributes));
    return this;
  }
  /** Sets the status: 'ok' | 'error' | 'unset' (or {code, message}). */
  setStatus(code, message) {
    const c = this._c;
    if (c?.rec) {
      try {
        if (code && typeof code === 'object') ({ code, message } = code);
        const s = typeof code === 'number' ? code : STATUS[text(code).toLowerCase()];
        if (s === 0 || s === 1 || s === 2) c.log.push(SET_STATUS, s, message == null ? '' : text(message));
      } catch { /* a status object that refuses reads: ignored */ }
    }
    return this;
  }
  /** Records an exception event (type, message, stack) and sets ERROR status. */
  recordException(error) {
    if (this._c) this._t._safe(() => this._t._fail(this._c, error));
    return this;
  }
  /** Renames the span. */
  updateName(name) {
    const c = this._c;
    if (c?.rec) c.log.push(RENAME, text(name, 'span'));
    return this;
  }
  /** Ends the span (now, or at `endTime`: unix ms or a Date); later calls do nothing. */
  end(endTime) {
    if (this._c) this._t._safe(() => this._t._end(this._c, timeMs(endTime)));
  }
  /** Whether the span is live and sampled. */
  isRecording() {
    return !!this._c?.rec;
  }
  /** This span's 32-hex trace id ('' once ended). */
  get traceId() { return this._t._w3c(this._c)?.[0].slice(3, 35) ?? ''; }
  /** This span's 16-hex span id ('' once ended). */
  get spanId() { return this._t._w3c(this._c)?.[0].slice(36, 52) ?? ''; }
  /** The W3C traceparent of this span ('' once ended). */
  get traceparent() { return this._t._w3c(this._c)?.[0] ?? ''; }
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
    this._core = null; // the wasm core (core.js), set by setupTracing
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
    this._gzipHeaders = { ...this._exportHeaders, 'content-encoding': 'gzip' };
    this._outbox = null; // the offline store (persist.js), once open
    this._persistence = 'off'; // stats().persistence
    this._stopped = false;
  }

  /** Starts what needs the core: resource, lifecycle listeners, patches. */
  _start_() {
    for (const [k, v] of Object.entries(this._config.resourceAttributes)) {
      if (typeof v === 'string') this._core.resource(k, v);
    }
    this._listen();
    if (!this._store.exact) this._unpatchBodies = followBodies(this);
    if (this._config.instrumentFetch) this.instrumentFetch();
    this._openOutbox();
  }

  /**
   * Offline persistence (persist.js), where IndexedDB exists and `persist`
   * is not false. Opens in the background: setup does not wait for it. Once
   * open, the core may hand over what it cannot send, and what earlier pages
   * stored is sent now.
   */
  _openOutbox() {
    const c = this._config;
    let idb = null;
    try { idb = global.indexedDB ?? null; } catch { /* access refused (sandboxed frame) */ }
    if (!c.persist || !idb) {
      this._persistence = c.persist ? 'unavailable' : 'off';
      return;
    }
    this._persistence = 'opening';
    import('./persist.js')
      .then((m) => m.openOutbox({ indexedDB: idb, endpoint: c.endpoint, contentType: this._exportHeaders['content-type'],
        maxBytes: c.persistMaxBytes, maxAgeMs: c.persistMaxAgeMs, send: (body) => this._post(body, false).then(([status]) => {
          // An answer proves the network is there, whatever navigator.onLine said.
          if (status >= 200 && status < 300) this._safe(() => this._core.online(true));
          return status;
        }) }))
      .then((outbox) => {
        if (this._stopped || this._broken) return outbox.close();
        this._outbox = outbox;
        this._persistence = 'indexeddb';
        this._safe(() => this._core.persist(true));
        this._drain();
      }, () => {
        this._persistence = 'unavailable'; // IndexedDB refused (private mode, blocked storage)
      });
  }

  /** Sends what earlier pages (or this one) stored; resolves when done, never rejects. */
  _drain() {
    return this._outbox && !this._broken ? this._outbox.drain() : Promise.resolve();
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
    const w = c.t._w3c(c, true);
    if (!w) return null;
    return { t: this, h: 0, rec: false, log: null, cid: c.cid, baggage: c.baggage, tp: w[0], ts: w[1], ids: null, done: false, remote: c.remote };
  }

  /** [traceparent, tracestate] of `ctx`: live, or (with `ended`) as it was when it ended. */
  _w3c(ctx, ended = false) {
    if (!ctx) return null;
    if (ctx.done) return ended ? [traceparentOf(ctx), ctx.ts] : null;
    if (!ctx.h) return ctx.tp ? [ctx.tp, ctx.ts] : null; // a remote context
    return this._safe(() => this._core.context(ctx.h)) ?? null;
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
    const live = parent && parent.h && !parent.done;
    const raw = this._core.start(name, kind, live ? parent.h : 0, live || !parent ? '' : traceparentOf(parent),
      live || !parent ? '' : parent.ts, !!parent?.remote, Number.isNaN(atMs) ? clock() : atMs);
    if (!raw) return null;
    const rec = raw >= RECORDING;
    const ctx = { t: this, h: raw & 0x7fffffff, rec, log: rec ? [] : null, cid: cid ?? parent?.cid,
      baggage: parent ? parent.baggage : this._baggage, tp: '', ts: '', ids: null, done: false, remote: false };
    if (rec && ctx.cid != null) ctx.log.push(ATTRIBUTE, 'correlation_id', ctx.cid);
    return ctx;
  }

  /** `options.parent` (a Span, an extracted context, or null) or the implicit parent. */
  _parentFrom(options) {
    if (!options || !('parent' in options) || options.parent === undefined) return this._implicitParent();
    const p = options.parent;
    if (p === null) return null;
    let isSpan = false, tp;
    try {
      isSpan = p instanceof Span;
      tp = !isSpan && typeof p === 'object' ? p.traceparent : undefined;
    } catch {
      return this._implicitParent(); // a parent that refuses reads is ignored
    }
    if (isSpan) return p._c && p._c.t !== this ? this._adopt(p._c) : p._c;
    if (typeof tp === 'string') {
      // An extracted remote context: started under, never made live here.
      let baggage = this._baggage, ts = '';
      try {
        if (typeof p.baggage === 'string') baggage = p.baggage;
        if (typeof p.tracestate === 'string') ts = p.tracestate;
      } catch { /* unreadable extras: the traceparent alone */ }
      return { t: this, h: 0, rec: false, log: null, cid: undefined, baggage, tp, ts, ids: null, done: false, remote: true };
    }
    return this._implicitParent();
  }

  _start(name, options) {
    // Options are read once, up front: an options object that refuses reads
    // is ignored (hostile input, not an error of ours), never half-applied.
    let kind = 0, cid, startTime, attributes, parentOptions = options;
    try {
      kind = KIND[text(options?.kind ?? 'internal').toLowerCase()] ?? 0;
      cid = options?.correlationId;
      cid = cid == null ? undefined : text(cid, undefined);
      startTime = options?.startTime;
      attributes = options?.attributes;
      parentOptions = options && 'parent' in options ? { parent: options.parent } : undefined;
    } catch {
      parentOptions = undefined;
    }
    const ctx = this._startIn(text(name, 'span'), kind, this._parentFrom(parentOptions), cid, timeMs(startTime));
    if (ctx?.rec) stageAll(ctx, attributes);
    return ctx;
  }

  /** Records `error` on `ctx`: an exception event and ERROR status. */
  _fail(ctx, error) {
    if (error !== null && (typeof error === 'object' || typeof error === 'function')) this._recordedErrors.add(error);
    if (!ctx.rec) return;
    const [type, message, stack] = errorParts(error);
    ctx.log.push(EXCEPTION, clock(), type, message, stack);
  }

  /**
   * Ends the span of `ctx` (its log crosses now). The core hands back the
   * span's ids and tracestate, so work that outlives the span still names it
   * as its parent (the traceparent is formatted only if that happens).
   */
  _end(ctx, atMs = NaN) {
    if (!ctx || !ctx.h || ctx.done) return;
    const log = ctx.log;
    ctx.log = null;
    ctx.rec = false;
    ctx.done = true;
    ctx.ids = this._core.end(ctx.h, log, Number.isNaN(atMs) ? clock() : atMs);
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
      this._safe(() => this._core.timer());
      this._settleFlush();
    }, ms);
    // Never keep a Node/Bun/Deno process alive just for the export timer.
    this._timer?.unref?.();
  }

  /** Sends one OTLP request the core asked for (or stores it: transport 3), and reports its outcome. */
  _send(id, body, transport, spans) {
    const gzip = (transport & SEND_GZIP) !== 0;
    transport &= ~SEND_GZIP;
    if (transport === SEND_PERSIST) {
      const outbox = this._outbox;
      if (!outbox) return false;
      const p = outbox.store(body, spans).then((stored) => {
        this._inflight.delete(p);
        this._safe(() => this._core.persisted(id, stored));
        this._settleFlush();
      });
      this._inflight.add(p);
      return true;
    }
    if (transport === SEND_BEACON) {
      // sendBeacon cannot carry headers: JSON/protobuf types go as a Blob type.
      const nav = global.navigator;
      try {
        return typeof nav?.sendBeacon === 'function'
          && nav.sendBeacon(this._config.endpoint, new Blob([body], { type: this._exportHeaders['content-type'] }));
      } catch {
        return false;
      }
    }
    const p = this._post(body, transport === SEND_KEEPALIVE, gzip).then(([status, retryAfter, bytes]) => {
      this._inflight.delete(p);
      this._safe(() => this._core.outcome(id, status, retryAfter, bytes));
      // The collector takes exports again: send what was stored meanwhile.
      if (status >= 200 && status < 300 && this._outbox?.pending()) this._drain();
      this._settleFlush();
    });
    this._inflight.add(p);
    return true;
  }

  /**
   * POSTs an OTLP body to the collector. Resolves (never rejects) with
   * [status, Retry-After, 2xx body bytes]; status 0 without an answer, 1 on timeout.
   */
  _post(body, keepalive, gzip = false) {
    const controller = typeof AbortController === 'function' ? new AbortController() : null;
    const timeout = setTimeout(() => controller?.abort(), this._config.exportTimeoutMs ?? 30000);
    timeout?.unref?.();
    const headers = gzip ? this._gzipHeaders : this._exportHeaders;
    const init = { method: 'POST', headers, body, signal: controller?.signal };
    // keepalive only matters where a page can unload under the request; edge
    // runtimes have no use for it (and some reject unknown fetch fields).
    if (keepalive && global.document) init.keepalive = true;
    return Promise.resolve()
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
      .finally(() => clearTimeout(timeout));
  }

  _settleFlush() {
    if (!this._flushWaiters.length) return;
    const idle = this._broken || this._safe(() => this._core.idle());
    if (idle) for (const resolve of this._flushWaiters.splice(0)) resolve();
  }

  _listen() {
    const target = global.addEventListener ? global : null;
    if (!target) return;
    const hidden = () => this._safe(() => this._core.pageHidden());
    const visibility = () => {
      const state = global.document?.visibilityState;
      if (state === 'hidden') hidden();
      else if (state === 'visible') this._safe(() => this._core.pageVisible());
    };
    const add = (t, type, f) => {
      try { t.addEventListener(type, f, { capture: true }); this._listeners.push([t, type, f]); } catch { /* not an EventTarget */ }
    };
    if (global.document?.addEventListener) add(global.document, 'visibilitychange', visibility);
    add(target, 'pagehide', hidden);
    // The network: offline, batches go to the store (when there is one)
    // instead of failing; back online, the queue and the store are sent.
    add(target, 'offline', () => this._safe(() => this._core.online(false)));
    add(target, 'online', () => { this._safe(() => this._core.online(true)); this._drain(); });
    let offline = false;
    try { offline = global.navigator?.onLine === false; } catch { /* no navigator */ }
    if (offline) this._safe(() => this._core.online(false));
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

  /** `url.full` for a span: no userinfo, sensitive query values redacted. */
  _spanUrl(url) {
    if (!url.username && !url.password && !url.search) return url.href;
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

  /** Starts the CLIENT span of an HTTP request under `parent` → its context, or null. */
  _httpStart(method, url, parent) {
    const known = HTTP_METHODS.has(method);
    const ctx = this._startIn(known ? method : 'HTTP', 2, parent, undefined);
    if (ctx?.rec) {
      ctx.log.push(ATTRIBUTE, 'http.request.method', known ? method : '_OTHER');
      if (!known) ctx.log.push(ATTRIBUTE, 'http.request.method_original', method);
      ctx.log.push(ATTRIBUTE, 'url.full', this._spanUrl(url), ATTRIBUTE, 'server.address', url.hostname,
        ATTRIBUTE, 'server.port', url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80);
    }
    return ctx;
  }

  /** Ends an HTTP span: the response's status and the server span it names. */
  _httpEnd(ctx, status, traceresponse, serverTiming, date) {
    if (ctx.rec) ctx.log.push(HTTP_RESPONSE, status, traceresponse ?? '', serverTiming ?? '', date ?? '', clock());
    this._end(ctx);
  }

  /** Ends an HTTP span whose request failed. */
  _httpFail(ctx, type, message) {
    if (ctx.rec) ctx.log.push(HTTP_FAILURE, clock(), type || 'Error', message);
    this._end(ctx);
  }

  /** The trace headers for `ctx` to `url`: [name, value] pairs (none where they may not go). */
  _traceHeaders(ctx, url) {
    if (!this._mayPropagate(url)) return [];
    const w = this._core.context(ctx.h);
    if (!w) return [];
    const headers = [['traceparent', w[0]]];
    if (w[1]) headers.push(['tracestate', w[1]]);
    if (this._config.propagateBaggage && ctx.baggage) headers.push(['baggage', ctx.baggage]);
    if (this._config.correlationIdHeader && ctx.cid != null) headers.push([this._config.correlationIdHeader, ctx.cid]);
    return headers;
  }

  /** The traced fetch: `args` exactly as the caller passed them; `parent` a context, null, or undefined (current). */
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
      ctx = this._httpStart(method, url, parent === undefined ? this._implicitParent() : parent);
      if (ctx) traced = this._withTraceHeaders(input, init, isRequest, ctx, this._traceHeaders(ctx, url));
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
      if (ctx) this._safe(() => { this._fail(ctx, e); this._end(ctx); });
      throw e;
    }
    if (!ctx) return this._follow(promise, caller);
    return this._follow(promise.then(
      (res) => {
        this._safe(() => this._httpEnd(ctx, res.status, res.headers.get('traceresponse'), res.headers.get('server-timing'), res.headers.get('date')));
        return res;
      },
      (err) => {
        this._safe(() => {
          const [type, message] = errorParts(err);
          this._httpFail(ctx, type, message);
        });
        throw err;
      },
    ), caller);
  }

  /**
   * The fetch arguments with trace headers added, without touching the
   * caller's objects: a caller `traceparent` is kept, never duplicated.
   */
  _withTraceHeaders(input, init, isRequest, ctx, add) {
    if (!add.length) return undefined;
    const source = init && init.headers !== undefined ? init.headers : isRequest ? input.headers : undefined;
    const headers = new Headers(source);
    let callerTraceparent = false;
    for (const [name, value] of add) {
      if (!headers.has(name)) headers.set(name, value);
      else if (name === 'traceparent') callerTraceparent = true;
    }
    if (callerTraceparent) stage(ctx, 'tracelink.caller_traceparent', true);
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
    const span = new Span(this, ctx);
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
      this._safe(() => this._fail(ctx, e));
      finish();
      throw e;
    }
    if (isThenable(result)) {
      let chained;
      try {
        chained = result.then(
          (v) => { finish(); return v; },
          (e) => { this._safe(() => this._fail(ctx, e)); finish(); throw e; },
        );
      } catch (e) {
        // A thenable whose `then` throws: the caller gets it back as it is
        // (what it would get without tracelink); the span records the error.
        this._safe(() => this._fail(ctx, e));
        finish();
        return result;
      }
      return chained instanceof Promise ? this._follow(chained, caller) : chained;
    }
    finish();
    return result;
  }

  /** Starts a span (child of the current one unless `options.parent` says otherwise). */
  startSpan(name, options) {
    return new Span(this, this._safe(() => this._start(name, options)) ?? null);
  }

  /** The current span (a no-op span when there is none). */
  currentSpan() {
    return new Span(this, this._current());
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
      const w = this._w3c(ctx, true);
      if (!w) return;
      const [tp, ts] = w;
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
      const w = this._core.extract(tp, typeof ts === 'string' ? ts : '');
      if (!w) return null;
      const [traceparent, tracestate] = w;
      const bag = get('baggage');
      const baggage = typeof bag === 'string' ? this._core.baggage(bag) : '';
      return { traceId: traceparent.slice(3, 35), spanId: traceparent.slice(36, 52), traceFlags: parseInt(traceparent.slice(53, 55), 16), traceparent, tracestate, baggage };
    }) ?? null;
  }

  /**
   * Sets a W3C baggage entry in the current context (inherited by spans
   * started in it from now on), or, outside any operation, for work outside
   * operations. It travels on traced fetches only with `propagateBaggage:
   * true`, and only where trace headers may go. Returns false (and changes
   * nothing) for an invalid key or value, or without `propagateBaggage`.
   */
  setBaggage(key, value) {
    return this._safe(() => {
      const ctx = this._current();
      const next = this._core.baggage(ctx ? ctx.baggage : this._baggage, text(key), text(value));
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
   * is empty and nothing is in flight (what could not be sent is stored, with
   * persistence, and one attempt is made to send the store too), or after
   * `timeoutMs` (default 30 s). In Workers: `ctx.waitUntil(tracing.flush())`.
   */
  flush(timeoutMs = 30000) {
    const caller = this._current();
    let ms = 30000;
    try { if (Number.isFinite(+timeoutMs) && +timeoutMs >= 0) ms = +timeoutMs; } catch { /* not a number: the default */ }
    timeoutMs = ms;
    return this._follow(new Promise((resolve) => {
      if (this._broken) return resolve();
      // This timer is deliberately not unref'd: while a flush is awaited,
      // Node/Deno/Bun must not exit under it (the export timers are unref'd).
      let timer;
      const done = () => {
        const drained = this._outbox?.pending() ? this._drain() : null;
        if (!drained) { clearTimeout(timer); resolve(); return; }
        drained.then(() => { clearTimeout(timer); resolve(); });
      };
      this._flushWaiters.push(done);
      timer = setTimeout(() => {
        const i = this._flushWaiters.indexOf(done);
        if (i >= 0) this._flushWaiters.splice(i, 1);
        resolve();
      }, timeoutMs);
      this._safe(() => this._core.flush());
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
    this._safe(() => this._core.shutdown());
    if (this._timer !== null) clearTimeout(this._timer);
    this._stopped = true;
    this._safe(() => this._core.persist(false));
    this._outbox?.close();
  }

  /**
   * Counters: spans started/ended/queued/exported, drops by reason, requests
   * retried and failed, internal errors, spans started without a parent
   * because the context could not be known (`parentUnknown`), and the
   * context mechanism in use (`contextMode`). Nothing is dropped without a count.
   * Offline persistence: `persistence` ('indexeddb', 'opening', 'off',
   * 'unavailable'), spans handed to the store (`persisted`) or refused by it
   * (`droppedPersistFailed`), and for the store: spans sent from it
   * (`persistedSent`), dropped from it by reason (`persistedDroppedAge`,
   * `…Bytes`, `…Corrupt` (records), `…Refused`, total `persistedDropped`),
   * and still in it (`persistedStored`, as last seen).
   */
  stats() {
    const s = this._safe(() => this._core.stats()) ?? {};
    Object.assign(s, this._outbox?.stats() ?? { persistedSent: 0, persistedDropped: 0, persistedDroppedAge: 0,
      persistedDroppedBytes: 0, persistedDroppedCorrupt: 0, persistedDroppedRefused: 0, persistedStored: 0 });
    s.persistence = this._persistence;
    s.internalErrors = this._internalErrors;
    s.broken = this._broken;
    s.parentUnknown = this._parentUnknown;
    s.contextMode = this._store.name;
    return s;
  }
}

/** The traceparent of an ended span's context (and its tracestate), from what the core handed back. */
function traceparentOf(ctx) {
  if (!ctx.tp && ctx.ids) [ctx.tp, ctx.ts] = w3cOf(ctx.ids);
  return ctx.tp;
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
