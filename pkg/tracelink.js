// tracelink: the JS face of the wasm core. Everything stateful (ids, spans,
// sampling, W3C formats, OTLP encoding, batching and retries) lives in wasm
// (core.js is the boundary); this file adapts it to JS: options, promises and
// callbacks, the current context (below, and context.js where the runtime
// carries it), the fetch wrapper, the network and timer calls, and page
// lifecycle events.
// Rule: after setup, nothing here throws into application code.
import { Core, clock, lastMono, compile, snapshot, snapshotAll, w3cOf, wasmUrl } from './core.js';

const global = globalThis;
const KINDS = ['internal', 'server', 'client', 'producer', 'consumer'];
const STATUS = ['unset', 'ok', 'error'];
const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'CONNECT', 'TRACE'];
const PERSIST_STATS = 'Sent Dropped DroppedAge DroppedBytes DroppedCorrupt DroppedRefused Stored'.split(' ');
// Transports the core asks for: 1 keepalive, 2 beacon, 3 persist; + 8 gzip'd.
// Span log op codes (src/core/span_log.rs): 1 attribute, 2 event, 3 status,
// 4 rename, 5 HTTP response, 6 HTTP failure, 7 exception.

/** The compiled core, with a clear error when it cannot be loaded. */
async function loadWasm(source, variant) {
  try {
    return await compile(source, variant);
  } catch (e) {
    let from = 'next to tracelink.js';
    try { from = source == null ? String(wasmUrl(variant)) : typeof source === 'string' || source instanceof URL ? source : source.url || 'options.wasm'; } catch { /* no import.meta.url (Workers) */ }
    throw new TypeError(`tracelink: setupTracing: cannot load the wasm from ${from}: ${String(e?.message ?? e).replace(/\.$/, '')}.`
      + " Pass options.wasm: the file's URL or bytes, or a WebAssembly.Module (Workers: import wasm from 'tracelink/tracelink-gzip.wasm';"
      + " with protocol http/json, consoleExport or propagateBaggage: 'tracelink/tracelink-full.wasm')", { cause: e });
  }
}

function fail(message) {
  throw new TypeError(`tracelink: setupTracing: ${message}`);
}

/** Resolves the traces endpoint: a full .../v1/traces URL, or a base URL. */
function tracesUrl(endpoint, isBase) {
  let url;
  try {
    url = new URL(endpoint, global.location?.href);
  } catch {
    fail(`otlpEndpoint is not a valid URL: ${JSON.stringify(endpoint)}`);
  }
  if (!/^https?:$/.test(url.protocol)) fail(`otlpEndpoint must be http(s): ${url.href}`);
  if (isBase || !/\/v1\/traces\/?$/.test(url.pathname)) url.pathname = url.pathname.replace(/\/+$/, '') + '/v1/traces';
  return url.href;
}

/** Validates options (explicit options win over `d`, the defaults from OTEL_* settings) into one config. */
function normalize(options, d) {
  /** Option `name` (else `dflt`), checked by `ok`; else a TypeError saying it `must` be. */
  const opt = (name, dflt, ok, must) => {
    const v = options[name] ?? dflt;
    if (!ok(v)) fail(`${name} must be ${must}`);
    return v;
  };
  const bool = (name, dflt = false) => opt(name, dflt, (v) => typeof v === 'boolean', 'a boolean');
  const list = (name, dflt, re) => opt(name, dflt, (v) => Array.isArray(v) && v.every((p) => typeof p === 'string' || (re && p instanceof RegExp)),
    re ? 'an array of URL prefixes (strings) and RegExps' : 'an array of strings');
  const positive = (name, dflt) => opt(name, dflt, (v) => typeof v === 'number' && v > 0, 'a positive number');

  const serviceName = opt('serviceName', d.serviceName, (v) => typeof v === 'string' && v,
    'a non-empty string (or set OTEL_SERVICE_NAME)');
  const serviceVersion = opt('serviceVersion', d.serviceVersion ?? '', (v) => typeof v === 'string', 'a string');
  const e = options.otlpEndpoint;
  if (e != null && typeof e !== 'string' && !(e instanceof URL)) fail('otlpEndpoint must be a string or URL');
  const endpoint = e != null ? tracesUrl(String(e)) : d.otlpEndpoint ? tracesUrl(d.otlpEndpoint, d.otlpBase) : fail('otlpEndpoint is required (or set OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT)');
  const headers = opt('otlpHeaders', d.otlpHeaders ?? {},
    (v) => typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string'), 'an object of header names to string values');
  const protocol = opt('protocol', d.protocol ?? 'http/protobuf',
    (v) => v === 'http/protobuf' || v === 'http/json', "'http/protobuf' or 'http/json'");
  const sampleRate = opt('sampleRate', d.sampleRate ?? 1,
    (v) => typeof v === 'number' && v >= 0 && v <= 1, 'a number from 0 to 1');
  const consoleExport = bool('consoleExport', d.consoleExport);
  const propagateTo = list('propagateTo', [], true);
  const correlationIdHeader = opt('correlationIdHeader', undefined,
    (v) => v == null || (typeof v === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(v)), 'a valid HTTP header name');
  const redact = list('redactQueryParams', ['AWSAccessKeyId', 'Signature', 'sig', 'X-Goog-Signature']);
  const instrumentFetch = bool('instrumentFetch');
  const propagateBaggage = bool('propagateBaggage');
  // gzip'd exports: on for a same-origin endpoint (a relay) and in runtimes
  // without CORS; a cross-origin collector must allow Content-Encoding in its
  // CORS settings first, so there it is opt-in.
  let sameOrigin = true;
  try { sameOrigin = !global.location?.origin || new URL(endpoint).origin === global.location.origin; } catch { /* keep */ }
  const compress = bool('compress', sameOrigin);
  const ignoreUrls = list('ignoreUrls', [], true);
  const instrumentations = [];
  for (const name in INSTRUMENTATIONS) {
    const v = opt(name, false, (v) => v === true || v === false || (typeof v === 'object' && !Array.isArray(v)), 'a boolean or an options object');
    if (v) instrumentations.push([name, v === true ? {} : { ...v }]);
  }
  const persist = bool('persist', true);
  const persistMaxBytes = positive('persistMaxBytes', 1 << 20);
  const persistMaxAgeMs = positive('persistMaxAgeMs', 864e5);
  for (const k of ['scheduleDelayMillis', 'maxQueueSize', 'maxExportBatchSize', 'exportTimeoutMillis']) {
    opt(k, 0, (v) => typeof v === 'number' && v >= 0 && v <= 2 ** 31, 'a number from 0 to 2^31');
  }
  const fetchImpl = options.fetch ?? global.fetch;
  if (typeof fetchImpl !== 'function') fail('no fetch function in this runtime (pass options.fetch)');
  const resourceAttributes = { ...d.resourceAttributes, ...options.resourceAttributes };
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

/** Whether the runtime may carry context exactly (context.js finds out): TC39 AsyncContext, or a server runtime's AsyncLocalStorage. */
function mayBeExact(g) {
  try {
    const p = g.process;
    return !!(g.AsyncContext || p?.getBuiltinModule || p?.versions?.node || g.Deno?.version || g.Bun || g.navigator?.userAgent === 'Cloudflare-Workers');
  } catch {
    return false;
  }
}

/**
 * Starts tracing. Resolves to a {@link Tracing} handle. Rejects (TypeError)
 * only for invalid options or when the wasm cannot be loaded.
 */
export async function setupTracing(options = {}) {
  if (options == null || typeof options !== 'object') fail('options must be an object');
  // OTEL_* settings: options.env, or process.env where it exists (server
  // runtimes: a page reads none, and does not download context.js for them).
  let processEnv;
  try { processEnv = global.process?.env; } catch { /* none */ }
  const config = normalize(options, options.env != null || processEnv ? (await import('./context.js')).envDefaults(options) : {});
  const option = options.asyncContext;
  // The store: exact where the runtime may have one (context.js, downloaded
  // only then), else the task store; `asyncContext: false` forces the latter.
  const store = option !== false && (option != null || mayBeExact(global))
    ? await (await import('./context.js')).contextStore(option) ?? taskStore : taskStore;
  // The small default wasm encodes OTLP/protobuf; the gzip encoder, and JSON,
  // console export and baggage, come with bigger ones, downloaded only by
  // setups that use them (core.js wasmUrl: 0 plain, 1 gzip, 2 full).
  const full = config.json || config.consoleExport || config.propagateBaggage;
  const tracing = new Tracing(config, store);
  await tracing._init(await loadWasm(options.wasm, full ? 2 : config.compress ? 1 : 0), full, options.compress);
  let hooks = null; // what instrumentations use (instrument/hooks.js), loaded with the first
  for (const [name, settings] of config.instrumentations) {
    const instrumentation = await INSTRUMENTATIONS[name]();
    hooks ??= (await import('./instrument/hooks.js')).hooks(tracing, Span);
    tracing._install(instrumentation, hooks, settings);
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

/**
 * The browser store (task-scoped; context.js has the exact ones). `follow(promise, ctx)` returns a native promise that
 * settles like `promise`; when it settles, `ctx` is current for exactly the
 * reactions registered on it by then (an `await` continuation included):
 *
 *   queue: [enter ctx] [reaction 1] … [reaction n] [leave]
 *
 * Both markers are queued in the same synchronous step as the settlement, so
 * no other job can run between them; jobs those reactions queue run after
 * `leave`, without a context.
 */
class TaskStore {
  constructor() {
    this.exact = false;
    this.name = 'task';
    this._cur = null;
  }
  get() {
    return this._cur;
  }
  run(ctx, fn, args) {
    const previous = this._cur;
    this._cur = ctx;
    try {
      return fn(...args);
    } finally {
      this._cur = previous;
    }
  }
  follow(promise, ctx) {
    if (!ctx) return promise;
    return new Promise((resolve, reject) => {
      const settle = (f, v) => {
        queueMicrotask(() => { this._cur = ctx; });
        f(v);
        queueMicrotask(() => { this._cur = null; });
      };
      promise.then((v) => settle(resolve, v), (e) => settle(reject, e));
    });
  }
}

const taskStore = new TaskStore(); // one per realm: "current" is realm-wide here

/** [type, message, stack] of a thrown value; parts that refuse to be read are left empty. */
function errorParts(err) {
  const read = (f) => { try { return text(f()); } catch { return ''; } };
  let isError = false;
  try { isError = err instanceof Error || (err !== null && typeof err === 'object' && 'message' in err); } catch { /* a proxy */ }
  if (isError) return [read(() => err.name ?? err.constructor?.name ?? 'Error') || 'Error', read(() => err.message ?? ''), read(() => err.stack ?? '')];
  return ['', text(err), ''];
}

/** `String(v)`, or `fallback` for a value that refuses conversion (hostile input is ignored, not an error of ours). */
function text(v, fallback = '') {
  try {
    return String(v);
  } catch {
    return fallback;
  }
}

/** Stages every attribute of `attributes` on context `c`; an object that refuses reads gives what could be read. */
function stageAll(c, attributes) {
  if (!attributes || typeof attributes !== 'object') return;
  try {
    for (const k in attributes) stage(c, k, attributes[k]);
  } catch { /* hostile getters or proxy traps: the rest is ignored */ }
}

/** Stages an attribute on context `c` (ignored as OpenTelemetry does for other types). */
function stage(c, key, value) {
  if (!c.rec || typeof key !== 'string' || key === '') return;
  const v = snapshot(value);
  if (v !== undefined) c.log.push(1, key, v);
}

/**
 * A span's context: what "current" holds. `h` is the core's handle (0 for a
 * remote or adopted context, which carries `tp`/`ts` instead); `log` the
 * staged span log while it is recording; `ids` what the core handed back at
 * its end.
 */
class Ctx {
  constructor(t, h, rec, cid, baggage, tp = '', ts = '', remote = false) {
    this.t = t;
    this.h = h;
    this.rec = rec;
    this.log = rec ? [] : null;
    this.cid = cid;
    this.baggage = baggage;
    this.tp = tp;
    this.ts = ts;
    this.ids = null;
    this.done = false;
    this.remote = remote;
  }
}

/**
 * A span. Methods never throw; they do nothing once the span has ended.
 * What is recorded on it is staged in JS and crosses into wasm once, at `end`.
 */
export class Span {
  constructor(tracing, ctx) {
    this._t = tracing;
    this._c = ctx; // the context this span is current in (a Ctx), or null
  }
  /** Sets an attribute (string, number, boolean, bigint or a homogeneous array). */
  setAttribute(key, value) {
    if (this._c) stage(this._c, key, value);
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
    if (c?.rec) c.log.push(2, clock(), text(name, 'event'), snapshotAll(attributes));
    return this;
  }
  /** Sets the status: 'ok' | 'error' | 'unset' (or {code, message}). */
  setStatus(code, message) {
    const c = this._c;
    if (c?.rec) {
      try {
        if (code && typeof code === 'object') ({ code, message } = code);
        const s = typeof code === 'number' ? code : STATUS.indexOf(text(code).toLowerCase());
        if (s === 0 || s === 1 || s === 2) c.log.push(3, s, message == null ? '' : text(message));
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
    if (c?.rec) c.log.push(4, text(name, 'span'));
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
  get traceId() { return this.traceparent.slice(3, 35); }
  /** This span's 16-hex span id ('' once ended). */
  get spanId() { return this.traceparent.slice(36, 52); }
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
  #config;
  #baggage = ''; // baggage of work outside any operation
  #open = 0; // operations started and not yet ended
  #parentUnknown = 0;
  #flushWaiters = [];
  #internalErrors = 0;
  #timer = null;
  #realFetch;
  #patched = null;
  #listeners = [];
  #unpatchBodies = null;
  #uninstall = []; // undo functions of the installed instrumentations
  #exportHeaders;
  #outbox = null; // the offline store (persist.js), once open
  #persistence = 'off'; // stats().persistence
  #stopped = false;

  constructor(config, store) {
    this.#config = config;
    this._store = store; // where the current context lives (TaskStore, or context.js)
    this._core = null; // the wasm core (core.js)
    this._recordedErrors = new WeakSet(); // errors recorded by traceOperation: never recorded twice
    this._broken = false; // a wasm trap stopped tracing
    this.#realFetch = config.fetchImpl;
    this.#exportHeaders = { ...config.headers, 'content-type': config.json ? 'application/json' : 'application/x-protobuf' };
  }

  /** Instantiates the core from `module`, then starts what needs it: resource, lifecycle listeners, patches. */
  async _init(module, full, compressAsked) {
    const c = this.#config;
    try {
      this._core = await Core.create(module, {
        send: (id, body, transport, spans) => this.#send(id, body, transport, spans),
        timer: (ms) => this.#schedule(ms),
        console: (json) => console.debug('[tracelink] span', json),
      }, {
        serviceName: c.serviceName, serviceVersion: c.serviceVersion, sampleRate: c.sampleRate,
        flags: (c.json ? 1 : 0) | (c.consoleExport ? 2 : 0) | (full ? 4 : 0) | (c.compress ? 8 : 0),
        scheduleDelayMs: c.scheduleDelayMs, maxQueueSize: c.maxQueueSize, maxExportBatchSize: c.maxExportBatchSize,
      });
    } catch (e) {
      throw new TypeError(`tracelink: setupTracing: ${String(e?.message ?? e)}`
        + (full ? " (Workers: import wasm from 'tracelink/tracelink-full.wasm')" : ''), { cause: e });
    }
    if (c.compress && !this._core.gzip) {
      // options.wasm without the gzip encoder: plain bodies, unless asked for.
      if (compressAsked) {
        this._core._x.tl_shutdown();
        throw new TypeError('tracelink: setupTracing: compress: true needs tracelink-gzip.wasm or tracelink-full.wasm (options.wasm has no gzip encoder)');
      }
      c.compress = false;
    }
    for (const [k, v] of Object.entries(c.resourceAttributes)) {
      if (typeof v === 'string') this._core.resource(k, v);
    }
    this.#listen();
    if (!this._store.exact) this.#unpatchBodies = followBodies(this);
    if (c.instrumentFetch) this.instrumentFetch();
    this.#openOutbox();
  }

  /** Installs an instrumentation module; its undo runs at shutdown. */
  _install(instrumentation, hooks, settings) {
    const uninstall = this._safe(() => instrumentation.install(hooks, settings));
    if (typeof uninstall === 'function') this.#uninstall.push(uninstall);
  }

  /** Runs `f` on the core unless tracing broke (a counted internal error then). */
  #core(f) {
    return this._safe(() => f(this._core));
  }

  /** Calls the core's export `name` (src/js_abi: tl_*) unless tracing broke (a counted internal error then). */
  #x(name, ...args) {
    return this._safe(() => this._core._x[name](...args));
  }

  /**
   * Offline persistence (persist.js), where IndexedDB exists and `persist`
   * is not false. Opens in the background: setup does not wait for it. Once
   * open, the core may hand over what it cannot send, and what earlier pages
   * stored is sent now.
   */
  #openOutbox() {
    const c = this.#config;
    let idb = null;
    try { idb = global.indexedDB ?? null; } catch { /* access refused (sandboxed frame) */ }
    if (!c.persist || !idb) {
      this.#persistence = c.persist ? 'unavailable' : 'off';
      return;
    }
    this.#persistence = 'opening';
    import('./persist.js')
      .then((m) => m.openOutbox({ indexedDB: idb, endpoint: c.endpoint, contentType: this.#exportHeaders['content-type'],
        maxBytes: c.persistMaxBytes, maxAgeMs: c.persistMaxAgeMs, send: (body) => this.#post(body).then(([status]) => {
          // An answer proves the network is there, whatever navigator.onLine said.
          if (status >= 200 && status < 300) this.#x('tl_online', 1);
          return status;
        }) }))
      .then((outbox) => {
        if (this.#stopped || this._broken) return outbox.close();
        this.#outbox = outbox;
        this.#persistence = 'indexeddb';
        this.#x('tl_persist', 1);
        this.#drain();
      }, () => {
        this.#persistence = 'unavailable'; // IndexedDB refused (private mode, blocked storage)
      });
  }

  /** Sends what earlier pages (or this one) stored; resolves when done, never rejects. */
  #drain() {
    return this.#outbox && !this._broken ? this.#outbox.drain() : Promise.resolve();
  }

  // ---- internal plumbing -------------------------------------------------

  /** Runs `f`, turning any failure into a counted internal error. */
  _safe(f) {
    if (this._broken) return undefined;
    try {
      return f();
    } catch (e) {
      this.#fault(e);
      return undefined;
    }
  }

  /** Counts an internal error. A wasm trap (RuntimeError) leaves the instance unusable: tracing stops, the app runs on (fetch passes straight through). */
  #fault(e) {
    this.#internalErrors++;
    if (e instanceof WebAssembly.RuntimeError) this._broken = true;
  }

  /** The current context, or null. */
  _current() {
    let c;
    try { c = this._store.get(); } catch { return null; }
    return c && c.t !== this ? this.#adopt(c) : c;
  }

  /** A context of another Tracing (two setups in one realm) as a W3C parent of ours. */
  #adopt(c) {
    if (!c || typeof c !== 'object' || !(c.t instanceof Tracing)) return null;
    const w = c.t._w3c(c, true);
    return w && new Ctx(this, 0, false, c.cid, c.baggage, w[0], w[1], c.remote);
  }

  /** [traceparent, tracestate] of `ctx`: live, or (with `ended`) as it was when it ended. */
  _w3c(ctx, ended) {
    if (!ctx) return null;
    if (ctx.done) return ended ? [traceparentOf(ctx), ctx.ts] : null;
    if (!ctx.h) return ctx.tp ? [ctx.tp, ctx.ts] : null; // a remote context
    return this.#core((k) => k.context(ctx.h)) ?? null;
  }

  /**
   * The parent context for a span started now without an explicit parent:
   * the current one. With no current context while an operation is open, the
   * task store cannot know which one the caller belongs to: no parent, counted.
   */
  _implicitParent() {
    const c = this._current();
    if (!c && this.#open > 0 && !this._store.exact) this.#parentUnknown++;
    return c;
  }

  /** Starts a span under `parent` (a context or null) → its context, or null. */
  #startIn(name, kind, parent, cid, atMs = NaN) {
    const live = parent && parent.h && !parent.done;
    const raw = this._core.start(name, kind, live ? parent.h : 0, live || !parent ? '' : traceparentOf(parent),
      live || !parent ? '' : parent.ts, parent?.remote, atMs === atMs ? atMs : clock());
    if (!raw) return null;
    const ctx = new Ctx(this, raw & 0x7fffffff, raw > 0x7fffffff, cid ?? parent?.cid, parent ? parent.baggage : this.#baggage);
    if (ctx.rec && ctx.cid != null) ctx.log.push(1, 'correlation_id', ctx.cid);
    return ctx;
  }

  /** Parent option `p` (a Span, an extracted context, or null; undefined: the implicit parent) as a context. */
  #parentFrom(p) {
    if (p === null) return null;
    let isSpan = false, tp;
    try {
      isSpan = p instanceof Span;
      tp = !isSpan && typeof p === 'object' ? p.traceparent : undefined;
    } catch {
      return this._implicitParent(); // a parent that refuses reads is ignored
    }
    if (isSpan) return p._c && p._c.t !== this ? this.#adopt(p._c) : p._c;
    if (typeof tp === 'string') {
      // An extracted remote context: started under, never made live here.
      let baggage = this.#baggage, ts = '';
      try {
        if (typeof p.baggage === 'string') baggage = p.baggage;
        if (typeof p.tracestate === 'string') ts = p.tracestate;
      } catch { /* unreadable extras: the traceparent alone */ }
      return new Ctx(this, 0, false, undefined, baggage, tp, ts, true);
    }
    return this._implicitParent();
  }

  #start(name, options) {
    // Options are read once, up front: an options object that refuses reads
    // is ignored (hostile input, not an error of ours), never half-applied.
    let kind = 0, cid, startTime, attributes, parent;
    if (options != null) {
      try {
        const k = options.kind;
        if (k != null) kind = Math.max(0, KINDS.indexOf(text(k).toLowerCase()));
        cid = options.correlationId;
        cid = cid == null ? undefined : text(cid, undefined);
        startTime = options.startTime;
        attributes = options.attributes;
        if ('parent' in options) parent = options.parent;
      } catch { /* the rest ignored */ }
    }
    const ctx = this.#startIn(text(name, 'span'), kind, parent === undefined ? this._implicitParent() : this.#parentFrom(parent), cid, timeMs(startTime));
    if (ctx?.rec) stageAll(ctx, attributes);
    return ctx;
  }

  /** Records `error` on `ctx`: an exception event and ERROR status. */
  _fail(ctx, error) {
    if (error !== null && (typeof error === 'object' || typeof error === 'function')) this._recordedErrors.add(error);
    if (ctx.rec) ctx.log.push(7, clock(), ...errorParts(error));
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
    // The clock reading just taken is the core's "now" too (-1: it reads its own).
    ctx.ids = atMs === atMs ? this._core.end(ctx.h, log, atMs) : this._core.end(ctx.h, log, clock(), lastMono);
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

  #schedule(ms) {
    clearTimeout(this.#timer);
    this.#timer = ms < 0 ? null : setTimeout(() => {
      this.#timer = null;
      this.#x('tl_timer');
      this.#settleFlush();
    }, timerMs(ms)); // the core re-arms a timer that fired early
    // Never keep a Node/Bun/Deno process alive just for the export timer.
    this.#timer?.unref?.();
  }

  /** Sends one OTLP request the core asked for (or stores it: transport 3), and reports its outcome. */
  #send(id, body, transport, spans) {
    let p;
    const how = transport & 7; // 1 keepalive, 2 beacon, 3 store; + 8: gzip'd
    if (how === 3) {
      const outbox = this.#outbox;
      if (!outbox) return false;
      p = outbox.store(body, spans).then((stored) => this.#x('tl_persisted', id, stored ? 1 : 0));
    } else if (how === 2) {
      // sendBeacon cannot carry headers: JSON/protobuf types go as a Blob type.
      try {
        return global.navigator.sendBeacon(this.#config.endpoint, new Blob([body], { type: this.#exportHeaders['content-type'] }));
      } catch {
        return false;
      }
    } else {
      p = this.#post(body, how === 1, transport & 8).then(([status, retryAfter, bytes]) => {
        this.#core((k) => k.outcome(id, status, retryAfter, bytes));
        // The collector takes exports again: send what was stored meanwhile.
        if (status >= 200 && status < 300 && this.#outbox?.pending()) this.#drain();
      });
    }
    p.then(() => this.#settleFlush());
    return true;
  }

  /**
   * POSTs an OTLP body to the collector. Resolves (never rejects) with
   * [status, Retry-After, 2xx body bytes]; status 0 without an answer, 1 on timeout.
   */
  #post(body, keepalive, gzip) {
    const controller = global.AbortController ? new AbortController() : null;
    const timeout = setTimeout(() => controller?.abort(), timerMs(this.#config.exportTimeoutMs ?? 30000));
    timeout?.unref?.();
    const headers = gzip ? { ...this.#exportHeaders, 'content-encoding': 'gzip' } : this.#exportHeaders;
    const init = { method: 'POST', headers, body, signal: controller?.signal };
    // keepalive only matters where a page can unload under the request; edge
    // runtimes have no use for it (and some reject unknown fetch fields).
    if (keepalive && global.document) init.keepalive = true;
    return Promise.resolve()
      .then(() => this.#realFetch.call(global, this.#config.endpoint, init))
      .then(async (res) => {
        let bytes = null;
        try {
          if (res.status >= 200 && res.status < 300) bytes = new Uint8Array(await res.arrayBuffer());
          else await res.body?.cancel();
        } catch { /* no body, or the connection is already gone */ }
        return [res.status, res.headers.get('retry-after'), bytes];
      })
      .catch((e) => [e?.name === 'AbortError' ? 1 : 0, null, null])
      .finally(() => clearTimeout(timeout));
  }

  #settleFlush() {
    if (this.#flushWaiters.length && (this._broken || this.#core((k) => k.idle()))) {
      for (const resolve of this.#flushWaiters.splice(0)) resolve();
    }
  }

  #listen() {
    const target = global.addEventListener ? global : null;
    if (!target) return;
    const doc = global.document;
    const add = (t, type, f) => {
      try { t.addEventListener(type, f, { capture: true }); this.#listeners.push([t, type, f]); } catch { /* not an EventTarget */ }
    };
    const hidden = () => this.#x('tl_page_hidden');
    if (doc?.addEventListener) {
      add(doc, 'visibilitychange', () => {
        const state = doc.visibilityState;
        if (state === 'hidden') hidden();
        else if (state === 'visible') this.#x('tl_page_visible');
      });
    }
    add(target, 'pagehide', hidden);
    // The network: offline, batches go to the store (when there is one)
    // instead of failing; back online, the queue and the store are sent.
    const online = (on) => this.#x('tl_online', on);
    add(target, 'offline', () => online(0));
    add(target, 'online', () => { online(1); this.#drain(); });
    let offline = false;
    try { offline = global.navigator?.onLine === false; } catch { /* no navigator */ }
    if (offline) online(0);
  }

  // ---- traced fetch -------------------------------------------------------

  /** Whether trace headers may go to `url` (same origin, or allow-listed). */
  #mayPropagate(url) {
    const origin = global.location?.origin;
    return (origin && origin !== 'null' && url.origin === origin) || matches(this.#config.propagateTo, url.href,
      (href, p) => href === p || href.startsWith(p.endsWith('/') ? p : p + '/') || url.origin === p);
  }

  /** Whether requests to `url` are never traced: the exporter's own, and `ignoreUrls`. */
  _ignored(url) {
    return url.href === this.#config.endpoint || matches(this.#config.ignoreUrls, url.href, (href, p) => href.startsWith(p));
  }

  /** `url.full` for a span: no userinfo, sensitive query values redacted. */
  _spanUrl(url) {
    if (!url.username && !url.password && !url.search) return url.href;
    const u = new URL(url.href);
    u.username = '';
    u.password = '';
    const redact = this.#config.redact;
    if (u.search && redact.size) {
      let changed = false;
      const entries = [...u.searchParams].map(([k, v]) => redact.has(k.toLowerCase()) ? (changed = true, [k, 'REDACTED']) : [k, v]);
      if (changed) u.search = new URLSearchParams(entries).toString();
    }
    return u.href;
  }

  /** Starts the CLIENT span of an HTTP request under `parent` → its context, or null. */
  _httpStart(method, url, parent) {
    const known = HTTP_METHODS.includes(method);
    const ctx = this.#startIn(known ? method : 'HTTP', 2, parent);
    if (ctx?.rec) {
      ctx.log.push(1, 'http.request.method', known ? method : '_OTHER');
      if (!known) ctx.log.push(1, 'http.request.method_original', method);
      ctx.log.push(1, 'url.full', this._spanUrl(url), 1, 'server.address', url.hostname,
        1, 'server.port', url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80);
    }
    return ctx;
  }

  /** Ends an HTTP span: the response's status, the server span it names, the server's clock (Server-Timing, Date). */
  _httpEnd(ctx, status, traceresponse, serverTiming, date) {
    if (ctx.rec) ctx.log.push(5, status, traceresponse ?? '', serverTiming ?? '', date ?? '', clock());
    this._end(ctx);
  }

  /** Ends an HTTP span whose request failed. */
  _httpFail(ctx, type, message) {
    if (ctx.rec) ctx.log.push(6, clock(), type || 'Error', message);
    this._end(ctx);
  }

  /** The trace headers for `ctx` to `url`: [name, value] pairs (none where they may not go). */
  _traceHeaders(ctx, url) {
    const w = this.#mayPropagate(url) && this._core.context(ctx.h);
    if (!w) return [];
    const { propagateBaggage, correlationIdHeader } = this.#config;
    const headers = [['traceparent', w[0]]];
    if (w[1]) headers.push(['tracestate', w[1]]);
    if (propagateBaggage && ctx.baggage) headers.push(['baggage', ctx.baggage]);
    if (correlationIdHeader && ctx.cid != null) headers.push([correlationIdHeader, ctx.cid]);
    return headers;
  }

  /** The traced fetch: `args` exactly as the caller passed them; `parent` a context, null, or undefined (current). */
  _fetch(args, parent) {
    const realFetch = this.#realFetch;
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
      if (ctx) traced = withTraceHeaders(input, init, isRequest, ctx, this._traceHeaders(ctx, url));
    } catch (e) {
      // Invalid caller input (bad URL, header name...) is the real fetch's to
      // reject, below; only a fault of our own counts.
      if (e instanceof WebAssembly.RuntimeError) this.#fault(e);
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
    return this._follow(ctx ? promise.then(
      (res) => {
        this._safe(() => this._httpEnd(ctx, res.status, res.headers.get('traceresponse'), res.headers.get('server-timing'), res.headers.get('date')));
        return res;
      },
      (err) => {
        this._safe(() => this._httpFail(ctx, ...errorParts(err)));
        throw err;
      },
    ) : promise, caller);
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
    const ctx = this._safe(() => this.#start(name, options)) ?? null;
    const span = new Span(this, ctx);
    if (!ctx) return fn(span);
    this.#open++;
    let ended = false;
    const finish = (e, failed) => {
      if (failed) this._safe(() => this._fail(ctx, e));
      if (ended) return;
      ended = true;
      this.#open--;
      this._safe(() => this._end(ctx));
    };
    let result;
    try {
      result = this._store.run(ctx, fn, [span]);
    } catch (e) {
      finish(e, true);
      throw e;
    }
    if (isThenable(result)) {
      let chained;
      try {
        chained = result.then(
          (v) => { finish(); return v; },
          (e) => { finish(e, true); throw e; },
        );
      } catch (e) {
        // A thenable whose `then` throws: the caller gets it back as it is
        // (what it would get without tracelink); the span records the error.
        finish(e, true);
        return result;
      }
      return chained instanceof Promise ? this._follow(chained, caller) : chained;
    }
    finish();
    return result;
  }

  /** Starts a span (child of the current one unless `options.parent` says otherwise). */
  startSpan(name, options) {
    let ctx = null;
    if (!this._broken) {
      try {
        ctx = this.#start(name, options);
      } catch (e) {
        this.#fault(e);
      }
    }
    return new Span(this, ctx);
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
    const w = this._safe(() => this._w3c(ctx, true));
    if (w) {
      const values = [['traceparent', w[0]], ['tracestate', w[1]], ['baggage', this.#config.propagateBaggage ? ctx.baggage : '']];
      try {
        const isHeaders = typeof Headers === 'function' && carrier instanceof Headers;
        if (isHeaders || (carrier != null && (typeof carrier === 'object' || typeof carrier === 'function'))) {
          for (const [k, v] of values) if (v) isHeaders ? carrier.set(k, v) : carrier[k] = v;
        }
      } catch { /* a carrier that refuses writes: left as it is */ }
    }
    return carrier;
  }

  /**
   * Reads a W3C context from headers (Headers, plain object, or Map). Returns
   * `{ traceId, spanId, traceFlags, traceparent, tracestate, baggage }` to
   * pass as `options.parent`, or `null` when there is no valid `traceparent`.
   */
  extractContext(headers) {
    const get = (name) => {
      try {
        if (!headers || (typeof headers !== 'object' && typeof headers !== 'function')) return undefined;
        if (typeof headers.get === 'function') return headers.get(name);
        for (const k in headers) if (k.toLowerCase() === name) return headers[k];
      } catch { /* a carrier whose reads throw: nothing there */ }
    };
    const str = (v) => (typeof v === 'string' ? v : '');
    return this.#core((k) => {
      const tp = get('traceparent');
      const w = typeof tp === 'string' && k.extract(tp, str(get('tracestate')));
      if (!w) return null;
      const [traceparent, tracestate] = w;
      const bag = get('baggage');
      return { traceId: traceparent.slice(3, 35), spanId: traceparent.slice(36, 52), traceFlags: parseInt(traceparent.slice(53, 55), 16),
        traceparent, tracestate, baggage: typeof bag === 'string' ? k.baggage(bag) : '' };
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
    return this.#core((k) => {
      const ctx = this._current();
      const next = k.baggage(ctx ? ctx.baggage : this.#baggage, text(key), text(value));
      if (next === undefined) return false;
      if (ctx) ctx.baggage = next;
      else this.#baggage = next;
      return true;
    }) ?? false;
  }

  /** A traced `fetch` (same arguments and result as the real one). */
  fetch(...args) {
    return this._fetch(args);
  }

  /** Replaces `globalThis.fetch` with the traced one (undo: `restoreFetch`). */
  instrumentFetch() {
    if (this.#patched) return;
    const tracing = this;
    // Same name and arity as the real one; arguments passed through as given.
    const traced = function fetch(input) { // eslint-disable-line no-unused-vars
      return tracing._fetch(arguments);
    };
    this.#patched = [global.fetch, traced];
    global.fetch = traced;
  }

  /** Puts back the `fetch` that `instrumentFetch` replaced. */
  restoreFetch() {
    const p = this.#patched;
    if (p && global.fetch === p[1]) global.fetch = p[0];
    this.#patched = null;
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
    try { if (+timeoutMs >= 0 && +timeoutMs < Infinity) ms = +timeoutMs; } catch { /* not a number: the default */ }
    return this._follow(new Promise((resolve) => {
      if (this._broken) return resolve();
      // This timer is deliberately not unref'd: while a flush is awaited,
      // Node/Deno/Bun must not exit under it (the export timers are unref'd).
      const end = () => { clearTimeout(timer); resolve(); };
      const done = () => {
        if (this.#outbox?.pending()) this.#drain().then(end);
        else end();
      };
      done.end = end; // shutdown settles what can complete no more
      const timer = setTimeout(() => {
        const waiters = this.#flushWaiters;
        if (waiters.includes(done)) waiters.splice(waiters.indexOf(done), 1);
        resolve();
      }, timerMs(ms));
      this.#flushWaiters.push(done);
      this.#x('tl_flush');
      this.#settleFlush();
    }), caller);
  }

  /** Flushes, then stops: restores fetch, removes listeners; later spans are dropped (counted). */
  async shutdown(timeoutMs) {
    this.restoreFetch();
    for (const uninstall of this.#uninstall.splice(0)) this._safe(uninstall);
    this.#unpatchBodies?.();
    this.#unpatchBodies = null;
    for (const [t, type, f] of this.#listeners.splice(0)) t.removeEventListener(type, f, { capture: true });
    await this.flush(timeoutMs);
    this.#x('tl_shutdown');
    clearTimeout(this.#timer);
    this.#stopped = true;
    this.#x('tl_persist', 0);
    this.#outbox?.close();
    // Flushes still waiting (a longer timeout than this shutdown's) can
    // complete no more: they resolve now, as flush always does, never rejecting.
    for (const done of this.#flushWaiters.splice(0)) done.end();
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
    const s = this.#core((k) => k.stats()) ?? {};
    const outbox = this.#outbox?.stats();
    for (const k of PERSIST_STATS) s['persisted' + k] = 0;
    return Object.assign(s, outbox, { persistence: this.#persistence, internalErrors: this.#internalErrors,
      broken: this._broken, parentUnknown: this.#parentUnknown, contextMode: this._store.name });
  }
}

/** Whether `href` matches a pattern of `list`: a RegExp, or a string by `byString(href, p)`. */
function matches(list, href, byString) {
  return list.some((p) => (typeof p === 'string' ? byString(href, p) : (p.lastIndex = 0, p.test(href))));
}

/**
 * The fetch arguments with trace headers added, without touching the
 * caller's objects: a caller `traceparent` is kept, never duplicated.
 */
function withTraceHeaders(input, init, isRequest, ctx, add) {
  if (!add.length) return undefined;
  const headers = new Headers(init && init.headers !== undefined ? init.headers : isRequest ? input.headers : undefined);
  for (const [name, value] of add) {
    if (!headers.has(name)) headers.set(name, value);
    else if (name === 'traceparent') stage(ctx, 'tracelink.caller_traceparent', true);
  }
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

/** The traceparent of an ended span's context (and its tracestate), from what the core handed back. */
function traceparentOf(ctx) {
  if (!ctx.tp && ctx.ids) [ctx.tp, ctx.ts] = w3cOf(ctx.ids);
  return ctx.tp;
}

/** A span time option (unix ms number or Date) as unix ms; NaN for "now". */
/** A delay setTimeout can hold: it runs longer ones (over ~24.8 days) at once. */
function timerMs(ms) {
  return Math.min(ms, 2147483647);
}

function timeMs(t) {
  const ms = t instanceof Date ? t.getTime() : t;
  return typeof ms === 'number' && ms > 0 && ms < Infinity ? ms : NaN;
}

function isThenable(v) {
  try {
    return v != null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
  } catch {
    return false;
  }
}

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
  const define = (name, value) => Object.defineProperty(proto, name, { ...Object.getOwnPropertyDescriptor(proto, name), value });
  for (const name of ['arrayBuffer', 'blob', 'bytes', 'formData', 'json', 'text']) {
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
      define(name, wrapped);
      originals.push([name, original, wrapped]);
    } catch { /* frozen prototype: bodies just don't re-enter */ }
  }
  return () => {
    for (const [name, original, wrapped] of originals) if (proto[name] === wrapped) define(name, original);
  };
}

const INIT_KEYS = ['method', 'body', 'referrer', 'referrerPolicy', 'mode', 'credentials', 'cache', 'redirect',
  'integrity', 'keepalive', 'signal', 'duplex', 'priority', 'window'];
