// The wasm boundary: compiles the core once per realm, instantiates it per
// tracing setup, and moves strings and bytes through its io buffer (see
// src/js_abi.rs for the ABI). Spans cross twice: start, and end with their
// staged span log (src/core/span_log.rs for the format).

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const compiled = new Map(); // URL href → Promise<WebAssembly.Module>

/** Bit 31 of a handle from `start`: the span is recording. */
export const RECORDING = 0x80000000;

/** Counter names, in the order the core writes them (Pipeline::stats_fields). */
const STAT_NAMES = ['started', 'unsampled', 'ended', 'live', 'queued', 'inFlight', 'exported', 'dropped',
  'droppedQueueFull', 'droppedTooLarge', 'droppedRejected', 'droppedFailed', 'droppedShutdown', 'droppedLiveLimit',
  'droppedRetriesExhausted', 'retried', 'requests', 'beaconsRefused', 'failedRequests', 'staleHandleUses',
  'persisted', 'droppedPersistFailed'];

/**
 * The compiled core: `source` is a WebAssembly.Module (Workers), bytes, a
 * URL, or undefined for the file next to this one of `variant` (see wasmUrl).
 */
export function compile(source, variant) {
  if (source instanceof WebAssembly.Module) return Promise.resolve(source);
  if (ArrayBuffer.isView(source) || source instanceof ArrayBuffer) return WebAssembly.compile(source);
  const url = source ?? wasmUrl(variant);
  const key = String(url);
  let module = compiled.get(key);
  if (!module) {
    module = (async () => {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      // compileStreaming needs the application/wasm type; bytes work anywhere.
      if (typeof WebAssembly.compileStreaming === 'function' && res.headers.get('content-type') === 'application/wasm') {
        return WebAssembly.compileStreaming(res);
      }
      return WebAssembly.compile(await res.arrayBuffer());
    })();
    module.catch(() => compiled.delete(key));
    compiled.set(key, module);
  }
  return module;
}

/**
 * Where the wasm of `variant` sits next to this file: 0 the smallest
 * (OTLP/protobuf), 1 with the gzip encoder, 2 full (gzip, OTLP/JSON, console
 * export, baggage). Literal URLs, so bundlers (Vite, webpack) emit all three.
 */
export function wasmUrl(variant) {
  return variant === 2 ? new URL('./tracelink-full.wasm', import.meta.url)
    : variant === 1 ? new URL('./tracelink-gzip.wasm', import.meta.url) : new URL('./tracelink.wasm', import.meta.url);
}

/** Milliseconds of a monotonic clock. */
const perf = globalThis.performance;
export const mono = perf && typeof perf.now === 'function' ? () => perf.now() : () => Date.now();
let anchor = (perf?.timeOrigin || Date.now() - mono());

/**
 * Wall-clock unix milliseconds with sub-ms resolution: `timeOrigin +
 * performance.now()`, re-anchored on `Date.now()` when they disagree by more
 * than 1 s (a laptop slept, a tab was frozen, Workers' timeOrigin is 0).
 */
export function clock() {
  const m = mono();
  const wall = Date.now();
  const t = anchor + m;
  if (Math.abs(t - wall) <= 1000) return t;
  anchor = wall - m;
  return wall;
}

/** One instance of the core: one tracing setup. */
export class Core {
  /**
   * `host`: { send(id, bytes, transport, spans) → bool, timer(ms), console?(json) }.
   * Transport 3 asks the host to store the body; it answers with `persisted`.
   * Rejects when the module lacks what `flags` asks for (1 JSON, 2 console, 4 baggage); flag 8 (gzip bodies) needs a build with the encoder (`gzip`).
   */
  static async create(module, host, config) {
    const core = new Core();
    const imports = {
      tl: {
        now: mono,
        // An exception must not unwind through wasm: the request would stay in flight forever.
        send: (id, ptr, len, transport, spans) => {
          try {
            return host.send(id, core.bytes(ptr, len), transport, spans) ? 1 : 0;
          } catch {
            return 0; // not handed over: the core counts it as a network error (retried)
          }
        },
        timer: (ms) => { try { host.timer(ms); } catch { /* the next event re-arms it */ } },
        console: (ptr, len) => host.console?.(decoder.decode(core.bytes(ptr, len))),
      },
    };
    const instance = await WebAssembly.instantiate(module, imports);
    core._x = instance.exports;
    if (!core._x.tl_init) throw new Error('not a tracelink wasm (no tl_init export)');
    core._full = typeof core._x.tl_baggage === 'function';
    if ((config.flags & 4) && !core._full) throw new Error('this setup needs tracelink-full.wasm (OTLP/JSON, console export or baggage)');
    const seed = new Uint8Array(32);
    crypto.getRandomValues(seed);
    core._room(32 + 3 * (config.serviceName.length + config.serviceVersion.length + 8));
    core._u8.set(seed, core._io);
    const n = core._put(32, config.serviceName);
    const v = core._put(32 + n, config.serviceVersion);
    const l = core._put(32 + n + v, 'webjs');
    const init = core._x.tl_init(n, v, l, config.sampleRate, config.flags & 11, config.scheduleDelayMs ?? -1,
      config.maxQueueSize ?? 0, config.maxExportBatchSize ?? 0);
    if (!init) throw new Error('this setup needs tracelink-full.wasm (OTLP/JSON, console export or baggage)');
    core.gzip = (init & 2) !== 0; // bodies are gzip'd (flag 8 and a build with the encoder)
    return core;
  }

  constructor() {
    this._x = null;
    this._u8 = null; // a view of linear memory (renewed when memory grows)
    this._dv = null;
    this._io = 0; // the io buffer's address
    this._cap = 0; // its size
    this.gzip = false;
  }

  /** The io buffer with room for `n` bytes; returns the memory view. */
  _room(n) {
    if (n > this._cap) {
      this._io = this._x.tl_io(n);
      this._cap = Math.max(n, 16384);
    }
    return this._view();
  }

  _view() {
    const buffer = this._x.memory.buffer;
    if (this._u8?.buffer !== buffer) {
      this._u8 = new Uint8Array(buffer);
      this._dv = new DataView(buffer);
    }
    return this._u8;
  }

  /** Writes `s` as UTF-8 at io offset `at` (room must exist); returns its byte length. */
  _put(at, s) {
    return s ? encoder.encodeInto(s, this._u8.subarray(this._io + at, this._io + this._cap)).written : 0;
  }

  /** Writes strings one after the other at the io buffer's start; returns their byte lengths. */
  _strings(...strings) {
    let bound = 0;
    for (const s of strings) bound += 3 * s.length;
    this._room(bound);
    let at = 0;
    return strings.map((s) => { const n = this._put(at, s); at += n; return n; });
  }

  /** A copy of `len` bytes of linear memory at `ptr`. */
  bytes(ptr, len) {
    return this._view().slice(ptr, ptr + len);
  }

  /** The io buffer's first `len` bytes as text. */
  _text(len) {
    return len > 0 ? decoder.decode(this._view().subarray(this._io, this._io + len)) : '';
  }

  resource(key, value) {
    const [k, v] = this._strings(key, value);
    this._x.tl_resource(k, v);
  }

  /** Starts a span → handle (| RECORDING), or 0. */
  start(name, kind, parent, traceparent, tracestate, remote, atMs) {
    if (traceparent) {
      const [n, p, s] = this._strings(name, traceparent, tracestate);
      return this._x.tl_start(kind, parent, n, p, s, remote ? 1 : 0, atMs) >>> 0;
    }
    // The common case, a local parent or none: only the name crosses.
    this._room(3 * name.length);
    return this._x.tl_start(kind, parent, this._put(0, name), 0, 0, 0, atMs) >>> 0;
  }

  /**
   * Ends span `h` at `atMs` after applying its staged log (an array, see
   * _writeLog). Returns [ids (16 trace id + 8 span id + 1 flags bytes) or
   * null, tracestate].
   */
  end(h, log, atMs) {
    const len = log && log.length ? this._writeLog(log) : 0;
    const n = this._x.tl_end(h, len, atMs);
    if (n < 25) return [null, ''];
    const u8 = this._view();
    return [u8.slice(this._io, this._io + 25), n > 25 ? decoder.decode(u8.subarray(this._io + 25, this._io + n)) : ''];
  }

  /** [traceparent, tracestate] of live span `h`, or null. */
  context(h) {
    const len = this._x.tl_context(h);
    if (!len) return null;
    const text = this._text(len);
    return [text.slice(0, 55), text.slice(55)];
  }

  /** A received traceparent/tracestate validated: [traceparent, tracestate], or null. */
  extract(traceparent, tracestate) {
    const [p, s] = this._strings(traceparent, tracestate);
    const len = this._x.tl_extract(p, s);
    if (!len) return null;
    const text = this._text(len);
    return [text.slice(0, 55), text.slice(55)];
  }

  /** `header` with key=value set (undefined when invalid); without a key: `header` validated. */
  baggage(header, key = '', value = '') {
    if (!this._full) return key ? undefined : '';
    const [h, k, v] = this._strings(header, key, value);
    const len = this._x.tl_baggage(h, k, v);
    return len < 0 ? undefined : this._text(len);
  }

  timer() { this._x.tl_timer(); }
  flush() { this._x.tl_flush(); }
  idle() { return this._x.tl_idle() === 1; }
  pageHidden() { this._x.tl_page_hidden(); }
  pageVisible() { this._x.tl_page_visible(); }
  shutdown() { this._x.tl_shutdown(); }
  /** Whether the store kept request `id` (transport 3). */
  persisted(id, stored) { this._x.tl_persisted(id, stored ? 1 : 0); }
  /** The network went offline / came back. */
  online(on) { this._x.tl_online(on ? 1 : 0); }
  /** Whether the host can store requests now. */
  persist(on) { this._x.tl_persist(on ? 1 : 0); }

  /** Request `id` finished: status (0 network error, 1 timeout), Retry-After, 2xx body bytes. */
  outcome(id, status, retryAfter, body) {
    const ra = retryAfter ?? '';
    const u8 = this._room(3 * ra.length + (body?.length ?? 0));
    const n = this._put(0, ra);
    if (body?.length) u8.set(body, this._io + n);
    this._x.tl_outcome(id, status, n, body?.length ?? 0, Date.now());
  }

  stats() {
    const n = this._x.tl_stats();
    this._view();
    const out = {};
    for (let i = 0; i < n && i < STAT_NAMES.length; i++) out[STAT_NAMES[i]] = this._dv.getFloat64(this._io + 8 * i, true);
    return out;
  }

  /** Bench only: ns to encode a batch (builds with the bench-hooks feature). */
  encodeBench(n, iterations) {
    return typeof this._x.tl_encode_bench === 'function' ? this._x.tl_encode_bench(n, iterations) : undefined;
  }

  /**
   * Writes a staged span log into the io buffer; returns its length. `log` is
   * a flat array of ops whose values are already snapshots (see `snapshot`):
   * [1, key, value] attribute, [2, timeMs, name, [k, v, …]] event, [3, code,
   * message] status, [4, name] rename, [5, status, traceresponse,
   * serverTiming, date, timeMs] HTTP response, [6, timeMs, type, message] HTTP failure,
   * [7, timeMs, type, message, stack] exception.
   */
  _writeLog(log) {
    // Room: every string at 3 bytes per UTF-16 unit plus its length prefix.
    let bound = 16;
    const measure = (v) => {
      if (typeof v === 'string') bound += 3 * v.length + 5;
      else if (v instanceof Arr) for (const x of v.items) bound += typeof x === 'string' ? 3 * x.length + 5 : 9;
      else if (Array.isArray(v)) for (const x of v) measure(x);
      bound += 10;
    };
    for (const v of log) measure(v);
    const u8 = this._room(bound);
    const dv = this._dv;
    const io = this._io;
    const end = io + this._cap;
    let pos = io;
    const leb = (n) => {
      while (n > 127) { u8[pos++] = (n & 127) | 128; n = Math.floor(n / 128); }
      u8[pos++] = n;
    };
    const str = (s) => {
      // Short ASCII strings (most keys) are written directly; others by
      // encodeInto after a 5-byte length slot, then moved next to their length.
      const len = s.length;
      if (len < 128) {
        let i = 0;
        while (i < len && s.charCodeAt(i) < 128) i++;
        if (i === len) {
          u8[pos++] = len;
          for (i = 0; i < len; i++) u8[pos++] = s.charCodeAt(i);
          return;
        }
      }
      const at = pos;
      const { written } = encoder.encodeInto(s, u8.subarray(at + 5, end));
      leb(written);
      u8.copyWithin(pos, at + 5, at + 5 + written);
      pos += written;
    };
    const f64 = (x) => { dv.setFloat64(pos, x, true); pos += 8; };
    const scalar = (tag, v) => {
      if (tag === 0) str(v);
      else if (tag === 1) {
        if (typeof v === 'bigint') dv.setBigInt64(pos, v, true);
        else {
          const hi = Math.floor(v / 4294967296);
          dv.setUint32(pos, v - hi * 4294967296, true);
          dv.setInt32(pos + 4, hi, true);
        }
        pos += 8;
      } else if (tag === 2) f64(v);
      else u8[pos++] = v ? 1 : 0;
    };
    const value = (v) => {
      if (v instanceof Arr) {
        u8[pos++] = 4;
        u8[pos++] = v.elem;
        leb(v.items.length);
        for (const x of v.items) scalar(v.elem, x);
        return;
      }
      const tag = tagOf(v);
      u8[pos++] = tag;
      scalar(tag, v);
    };
    for (let i = 0; i < log.length;) {
      const op = log[i++];
      u8[pos++] = op;
      switch (op) {
        case 1: str(log[i++]); value(log[i++]); break;
        case 2: {
          f64(log[i++]);
          str(log[i++]);
          const kv = log[i++];
          leb(kv.length / 2);
          for (let j = 0; j < kv.length; j += 2) { str(kv[j]); value(kv[j + 1]); }
          break;
        }
        case 3: u8[pos++] = log[i++]; str(log[i++]); break;
        case 4: str(log[i++]); break;
        case 5: leb(log[i++]); str(log[i++]); str(log[i++]); str(log[i++]); f64(log[i++]); break;
        case 6: f64(log[i++]); str(log[i++]); str(log[i++]); break;
        default: f64(log[i++]); str(log[i++]); str(log[i++]); str(log[i++]); break; // 7
      }
    }
    return pos - io;
  }
}

/** A homogeneous array attribute value, copied when it was set. */
class Arr {
  constructor(elem, items) {
    this.elem = elem;
    this.items = items;
  }
}

/**
 * The value to stage for attribute value `v`, copied now (arrays are copied
 * as OpenTelemetry does), or undefined for what OpenTelemetry ignores
 * (undefined, objects, functions, symbols). BigInts beyond i64 become strings.
 * Arrays are homogeneous: the element type of the first defined element,
 * others skipped; integers stay integers only if all are. Hostile arrays
 * (proxies that throw) are skipped.
 */
export function snapshot(v) {
  switch (typeof v) {
    case 'string': case 'number': case 'boolean': return v;
    case 'bigint': return v >= -(2n ** 63n) && v < 2n ** 63n ? v : v.toString();
    case 'object': break;
    default: return undefined;
  }
  try {
    if (!Array.isArray(v)) return undefined;
    const items = [];
    for (let i = 0; i < v.length && i < 1024; i++) if (v[i] != null) items.push(v[i]);
    const first = typeof items[0];
    if (first === 'boolean') return new Arr(3, items.filter((x) => typeof x === 'boolean'));
    if (first === 'number') {
      const nums = items.filter((x) => typeof x === 'number');
      return new Arr(nums.every(Number.isSafeInteger) ? 1 : 2, nums);
    }
    return new Arr(0, items.filter((x) => typeof x === 'string'));
  } catch {
    return undefined;
  }
}

/**
 * Attributes of an event as a flat [key, value, …] array of snapshots; a
 * hostile object (throwing getters or traps) gives what could be read.
 */
export function snapshotAll(attributes) {
  const out = [];
  if (!attributes || typeof attributes !== 'object') return out;
  try {
    for (const k in attributes) {
      const v = snapshot(attributes[k]);
      if (k !== '' && v !== undefined) out.push(k, v);
    }
  } catch { /* keep what was read */ }
  return out;
}

/** The span-log type tag of a staged scalar: 0 string, 1 integer, 2 double, 3 boolean. */
function tagOf(v) {
  switch (typeof v) {
    case 'string': return 0;
    case 'number': return Number.isSafeInteger(v) ? 1 : 2;
    case 'bigint': return 1;
    default: return 3;
  }
}
