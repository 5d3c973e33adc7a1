// The wasm boundary: compiles the core once per realm, instantiates it per
// tracing setup, and moves strings and bytes through its io buffer (see
// src/js_abi.rs for the ABI). Spans cross twice: start, and end with their
// staged span log (src/core/span_log.rs for the format).

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const compiled = new Map(); // URL href → Promise<WebAssembly.Module>
const NEEDS_FULL = 'this setup needs tracelink-full.wasm (OTLP/JSON, console export or baggage)';

/** Bit 31 of a handle from `start`: the span is recording. */
export const RECORDING = 0x80000000;

/** Counter names, in the order the core writes them (Pipeline::stats_fields). */
const STAT_NAMES = ('started unsampled ended live queued inFlight exported dropped droppedQueueFull droppedTooLarge '
  + 'droppedRejected droppedFailed droppedShutdown droppedLiveLimit droppedRetriesExhausted retried requests '
  + 'beaconsRefused failedRequests staleHandleUses persisted droppedPersistFailed').split(' ');

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
      return res.headers.get('content-type') === 'application/wasm' && WebAssembly.compileStreaming
        ? WebAssembly.compileStreaming(res) : WebAssembly.compile(await res.arrayBuffer());
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
export const mono = perf?.now ? () => perf.now() : Date.now;
let anchor = perf?.timeOrigin || Date.now() - mono();
let checked = false; // the anchor was checked against Date.now() in this task
/** The monotonic reading behind the last `clock()` (handed to the core with an end: no clock import call). */
export let lastMono = 0;
const later = globalThis.queueMicrotask ?? ((f) => Promise.resolve().then(f));
const uncheck = () => { checked = false; };

/**
 * Wall-clock unix milliseconds with sub-ms resolution: `timeOrigin +
 * performance.now()`, re-anchored on `Date.now()` when they disagree by more
 * than 1 s (a laptop slept, a tab was frozen, Workers' timeOrigin is 0). The
 * two can only drift apart while no script runs, so that is checked once per
 * task (the first call; a microtask clears the mark).
 */
export function clock() {
  const m = lastMono = mono();
  if (checked) return anchor + m;
  checked = true;
  later(uncheck);
  const wall = Date.now();
  const t = anchor + m;
  if (Math.abs(t - wall) <= 1000) return t;
  anchor = wall - m;
  return wall;
}

// The span log writer's state: one write at a time (writes are synchronous).
let u8, dv, pos, lim;
const FULL = {}; // thrown when the io buffer is too small for a log

/** Writes `s` as UTF-8 at `pos` (room checked by the caller); returns its byte length. Short ASCII is copied directly. */
function utf8(s) {
  const len = s.length;
  if (len < 64) {
    let p = pos, i = 0;
    for (; i < len; i++) {
      const c = s.charCodeAt(i);
      if (c > 127) break;
      u8[p++] = c;
    }
    if (i === len) return len;
  }
  return encoder.encodeInto(s, u8.subarray(pos, lim)).written;
}

function leb(n) {
  while (n > 127) { u8[pos++] = (n & 127) | 128; n = Math.floor(n / 128); }
  u8[pos++] = n;
}

/** A span-log `str`: LEB128 length, then UTF-8. */
function str(s) {
  if (pos + 3 * s.length + 16 > lim) throw FULL;
  if (s.length < 64) {
    // The length fits one byte: write the text after it, then the length.
    const at = pos++;
    const n = utf8(s);
    if (n < 128) { u8[at] = n; pos += n; return; }
    pos = at;
  }
  const at = pos;
  pos += 5;
  const n = utf8(s);
  pos = at;
  leb(n);
  u8.copyWithin(pos, at + 5, at + 5 + n);
  pos += n;
}

function f64(x) {
  if (pos + 16 > lim) throw FULL;
  dv.setFloat64(pos, x, true);
  pos += 8;
}

function scalar(tag, v) {
  if (tag === 0) return str(v);
  if (tag === 2) return f64(v);
  if (pos + 16 > lim) throw FULL;
  if (tag === 3) u8[pos++] = v ? 1 : 0;
  else {
    if (typeof v === 'bigint') dv.setBigInt64(pos, v, true);
    else {
      const hi = Math.floor(v / 4294967296);
      dv.setUint32(pos, v - hi * 4294967296, true);
      dv.setInt32(pos + 4, hi, true);
    }
    pos += 8;
  }
}

/** A span-log `value` (a snapshot, see `snapshot`). */
function value(v) {
  if (pos + 16 > lim) throw FULL;
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
}

/** An upper bound of the bytes `log` takes (every string at 3 bytes per UTF-16 unit). */
function measure(v) {
  if (typeof v === 'string') return 3 * v.length + 26;
  if (v instanceof Arr) return v.items.reduce((n, x) => n + measure(x), 26);
  if (Array.isArray(v)) return v.reduce((n, x) => n + measure(x), 26);
  return 26;
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
    const instance = await WebAssembly.instantiate(module, {
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
    });
    const x = core._x = instance.exports;
    if (!x.tl_init) throw new Error('not a tracelink wasm (no tl_init export)');
    core._full = !!x.tl_baggage;
    if ((config.flags & 4) && !core._full) throw new Error(NEEDS_FULL);
    const [n, v, l] = core._strings([config.serviceName, config.serviceVersion, 'webjs'], 32);
    crypto.getRandomValues(core._view().subarray(core._io, core._io + 32));
    const init = x.tl_init(n, v, l, config.sampleRate, config.flags & 11, config.scheduleDelayMs ?? -1,
      config.maxQueueSize ?? 0, config.maxExportBatchSize ?? 0);
    if (!init) throw new Error(NEEDS_FULL);
    core.gzip = (init & 2) !== 0; // bodies are gzip'd (flag 8 and a build with the encoder)
    return core;
  }

  constructor() {
    this._x = null;
    this._u8 = new Uint8Array(0); // a view of linear memory (renewed when memory grows)
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

  /** The memory view; growing memory detaches the old buffer (its views turn empty). */
  _view() {
    if (!this._u8.length) {
      const buffer = this._x.memory.buffer;
      this._u8 = new Uint8Array(buffer);
      this._dv = new DataView(buffer);
    }
    return this._u8;
  }

  /** Aims the writer at the io buffer (from offset `at`), with room for `n` bytes. */
  _writer(n, at = 0) {
    u8 = this._room(n);
    dv = this._dv;
    pos = this._io + at;
    lim = this._io + this._cap;
  }

  /** Writes strings one after the other at io offset `at`; returns their byte lengths. */
  _strings(strings, at = 0) {
    let bound = at;
    for (const s of strings) bound += 3 * s.length;
    this._writer(bound, at);
    return strings.map((s) => { const n = utf8(s); pos += n; return n; });
  }

  /** A copy of `len` bytes of linear memory at `ptr`. */
  bytes(ptr, len) {
    return this._view().slice(ptr, ptr + len);
  }

  /** The io buffer's first `len` bytes as text. */
  _text(len) {
    return len > 0 ? decoder.decode(this._view().subarray(this._io, this._io + len)) : '';
  }

  /** [traceparent, tracestate] from the io buffer's first `len` bytes, or null. */
  _w3c(len) {
    if (!len) return null;
    const text = this._text(len);
    return [text.slice(0, 55), text.slice(55)];
  }

  resource(key, value) {
    this._x.tl_resource(...this._strings([key, value]));
  }

  /** Starts a span → handle (| RECORDING), or 0. */
  start(name, kind, parent, traceparent, tracestate, remote, atMs) {
    if (traceparent) {
      const [n, p, s] = this._strings([name, traceparent, tracestate]);
      return this._x.tl_start(kind, parent, n, p, s, remote ? 1 : 0, atMs) >>> 0;
    }
    // The common case, a local parent or none: only the name crosses.
    this._writer(3 * name.length);
    return this._x.tl_start(kind, parent, utf8(name), 0, 0, 0, atMs) >>> 0;
  }

  /**
   * Ends span `h` at `atMs` after applying its staged log (an array, see
   * _writeLog). Returns what the core hands back (16 trace id + 8 span id +
   * 1 flags bytes, then the tracestate) as 13 numbers (byte pairs, the flags
   * last) plus the tracestate when there is one (see w3cOf), or null.
   */
  end(h, log, atMs, nowMono = -1) {
    // A span the core would drop (queue full) ends without its log, unless
    // the log may hold an HTTP response (op 5, a clock sample; a value 5 only
    // costs the write).
    const keep = log && log.length && !(this._x.tl_full() && !log.includes(5));
    const n = this._x.tl_end(h, keep ? this._writeLog(log) : 0, atMs, nowMono);
    if (n < 25) return null;
    // A plain array of byte pairs is cheaper to make than a typed array copy.
    const u = this._view(), o = this._io, ids = new Array(13);
    for (let i = 0; i < 12; i++) ids[i] = u[o + 2 * i] | u[o + 2 * i + 1] << 8;
    ids[12] = u[o + 24];
    if (n > 25) ids.push(decoder.decode(u.subarray(o + 25, o + n)));
    return ids;
  }

  /** [traceparent, tracestate] of live span `h`, or null. */
  context(h) {
    return this._w3c(this._x.tl_context(h));
  }

  /** A received traceparent/tracestate validated: [traceparent, tracestate], or null. */
  extract(traceparent, tracestate) {
    return this._w3c(this._x.tl_extract(...this._strings([traceparent, tracestate])));
  }

  /** `header` with key=value set (undefined when invalid); without a key: `header` validated. */
  baggage(header, key = '', value = '') {
    if (!this._full) return key ? undefined : '';
    const len = this._x.tl_baggage(...this._strings([header, key, value]));
    return len < 0 ? undefined : this._text(len);
  }

  // The calls without io (tl_timer, tl_flush, tl_online…) are made on `_x` directly.
  /** Nothing queued or in flight. */
  idle() { return this._x.tl_idle() === 1; }

  /** Request `id` finished: status (0 network error, 1 timeout), its Retry-After header, 2xx body bytes. */
  outcome(id, status, retryAfter, body) {
    const len = body?.length ?? 0;
    if (len) this._room(len).set(body, this._io);
    this._x.tl_outcome(id, status, retryAfterMs(retryAfter), len);
  }

  stats() {
    const n = this._x.tl_stats();
    this._view();
    const out = {};
    STAT_NAMES.forEach((name, i) => { if (i < n) out[name] = this._dv.getFloat64(this._io + 8 * i, true); });
    return out;
  }

  /** Bench only: ns to encode a batch (builds with the bench-hooks feature). */
  encodeBench(n, iterations) {
    return this._x.tl_encode_bench?.(n, iterations);
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
    // Written optimistically into the buffer as it is; a log that does not
    // fit is measured, and written again into a buffer that fits it.
    this._writer(0);
    try {
      writeOps(log);
    } catch (e) {
      if (e !== FULL) throw e;
      this._writer(measure(log));
      writeOps(log);
    }
    return pos - this._io;
  }
}

function writeOps(log) {
  for (let i = 0; i < log.length;) {
    const op = log[i++];
    if (pos + 16 > lim) throw FULL;
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
      case 5: leb(log[i++]); str(log[i++]); str(log[i++]); f64(httpDate(log[i++])); f64(log[i++]); break;
      case 6: f64(log[i++]); str(log[i++]); str(log[i++]); break;
      default: f64(log[i++]); str(log[i++]); str(log[i++]); str(log[i++]); break; // 7
    }
  }
}

/**
 * Unix ms of an HTTP-date header value (`Date`, `Retry-After`) in the
 * IMF-fixdate form RFC 9110 requires (`Sun, 06 Nov 1994 08:49:37 GMT`), or
 * NaN. The runtime's Date.parse reads it and toUTCString, which writes
 * exactly that form, checks it (no lenient guesses), so the wasm carries no
 * date parser (Rust hosts use the core's parse_http_date, same form).
 */
export function httpDate(v) {
  v = typeof v === 'string' ? v.trim() : '';
  const t = Date.parse(v);
  return new Date(t).toUTCString() === v ? t : NaN;
}

/** A Retry-After header as a delay in ms: delta-seconds or an HTTP-date (a past one is 0); NaN for none. */
export function retryAfterMs(v) {
  const s = typeof v === 'string' ? v.trim() : '';
  return /^\d+$/.test(s) ? s * 1000 : Math.max(0, httpDate(s) - Date.now());
}

/** [traceparent, tracestate] of what `Core.end` handed back. */
export function w3cOf(ids) {
  let hex = '';
  for (let i = 0; i < 13; i++) {
    const lo = ids[i] & 255, hi = ids[i] >> 8;
    hex += (lo < 16 ? '0' : '') + lo.toString(16) + (i < 12 ? (hi < 16 ? '0' : '') + hi.toString(16) : '');
  }
  return [`00-${hex.slice(0, 32)}-${hex.slice(32, 48)}-${hex.slice(48)}`, ids[13] ?? ''];
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
    const same = items.filter((x) => typeof x === (first === 'boolean' || first === 'number' ? first : 'string'));
    return new Arr(first === 'boolean' ? 3 : first !== 'number' ? 0 : same.every(Number.isSafeInteger) ? 1 : 2, same);
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
