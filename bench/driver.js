// bench/driver.js: the page-side driver both bench pages share, so both
// sides run the very same loops on the very same span shape. Each side's
// entry (otel-entry.js, tracelink-entry.js) supplies an adapter:
//
//   adapter.setup({ endpoint, protocol, scheduleDelayMillis?, maxQueueSize? }) -> Promise<side>
//   side.tracer        object with startSpan(name, { attributes }) -> span
//                      (span: setAttribute, addEvent, end); called directly, no wrapper
//   side.flush()       -> Promise (export everything queued)
//   side.stats()       -> { exported, queued, inflight, dropped, failed, retried, sdkCounted, raw }
//   side.idle()        -> nothing queued or in flight
//   side.tracedFetch(url) / side.plainFetch(url) -> Promise<Response>
//   side.encodeBench(makeSpans, n, iterations) -> Promise<{ json, protobuf } | null>
//   side.memory()      -> bytes outside the JS heap the SDK holds (wasm memory), or 0
//   side.info          -> { sdk, protocol, ... }
//
// It installs `globalThis.bench` (see below); bench/run.mjs drives it with
// page.evaluate. Nothing here asserts anything: it returns figures.

/** Wall-clock ms with sub-ms precision, comparable with the sink's clock. */
const wall = () => performance.timeOrigin + performance.now();

/**
 * The one span shape of the benchmark: start with 5 attributes, 3 x
 * setAttribute, 1 event with 1 attribute, end. Spans are roots (no parent).
 */
export function makeSpans(tracer, from, n) {
  const end = from + n;
  for (let i = from; i < end; i++) {
    const s = tracer.startSpan('bench.op', {
      attributes: {
        'app.name': 'checkout',
        'app.items': i,
        'app.ratio': 0.25,
        'app.cached': false,
        'http.route': '/api/items/:id',
      },
    });
    s.setAttribute('app.step', 'validate');
    s.setAttribute('app.count', i);
    s.setAttribute('app.ok', true);
    s.addEvent('e', { k: 'v' });
    s.end();
  }
}

/** Yields to the event loop (timers, network callbacks run). */
const yieldTask = () => new Promise((resolve) => setTimeout(resolve, 0));

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Installs `globalThis.bench` for `sideName` ('tracelink' | 'otel') over `adapter`. */
export function installDriver(sideName, adapter) {
  let side = null;
  let made = 0; // spans this driver created since setup (fetch spans excluded)

  const need = () => {
    if (!side) throw new Error('bench.setup() first');
    return side;
  };
  /** The side's counters plus `made`; drops are derived when the SDK keeps no count. */
  const stats = () => {
    const s = need().stats();
    if (s.dropped == null) s.dropped = made - s.exported - s.queued - s.inflight;
    return { made, ...s };
  };

  const bench = {
    side: sideName,

    /** Sets the SDK up against `endpoint`. Resolves to side.info. */
    async setup(opts) {
      side = await adapter.setup(opts);
      made = 0;
      return { ...side.info, crossOriginIsolated: globalThis.crossOriginIsolated === true, userAgent: navigator.userAgent };
    },

    /**
     * Makes `n` spans; with `yieldEvery` > 0, yields to the event loop
     * (setTimeout 0) after every `yieldEvery` spans. Returns wall-clock
     * start/end of the loop.
     */
    async spanBurst(n, yieldEvery = 0) {
      const { tracer } = need();
      const t0 = wall();
      if (!yieldEvery) {
        makeSpans(tracer, made, n);
        made += n;
      } else {
        for (let done = 0; done < n; done += yieldEvery) {
          const k = Math.min(yieldEvery, n - done);
          makeSpans(tracer, made, k);
          made += k;
          await yieldTask();
        }
      }
      return { t0, t1: wall(), made: n };
    },

    /**
     * Span cost, all in: makes `n` spans in chunks of `chunk` (below both
     * SDKs' 2048-span queue, so nothing is dropped) and times each chunk's
     * loop plus the synchronous part of the flush that follows it, which is
     * where both SDKs encode (OTel JS serialises a batch when it hands it to
     * the exporter; tracelink encodes each span at end() and frames the
     * request at flush). The network part of the flush is awaited untimed.
     * Returns ns per span.
     */
    async spanCost(n, chunk = 2000) {
      const s = need();
      let ms = 0;
      const before = stats();
      for (let done = 0; done < n; done += chunk) {
        const k = Math.min(chunk, n - done);
        const t0 = performance.now();
        makeSpans(s.tracer, made, k);
        const flushed = s.flush();
        ms += performance.now() - t0;
        made += k;
        await flushed;
      }
      const after = stats();
      return { nsPerSpan: (ms * 1e6) / n, n, chunk, dropped: after.dropped - before.dropped };
    },

    /** Makes `k` spans and returns at once (for the page-hide test). */
    queueSpans(k) {
      makeSpans(need().tracer, made, k);
      made += k;
      return k;
    },

    flush: () => need().flush(),
    idle: () => need().idle(),
    /** Counters: `made` by this driver plus the side's own (normalised) counters. */
    stats,
    memory: () => need().memory(),
    tracedFetch: (url) => need().tracedFetch(url),
    plainFetch: (url) => need().plainFetch(url),

    /**
     * `pairs` interleaved traced/plain fetches of `url` (order alternates
     * per pair), each timed from call to body read. Returns both series (ms).
     */
    async fetchLatency(url, pairs) {
      const s = need();
      const traced = new Array(pairs), plain = new Array(pairs);
      const one = async (f) => {
        const t0 = performance.now();
        const res = await f(url);
        await res.arrayBuffer();
        return performance.now() - t0;
      };
      const tf = (u) => s.tracedFetch(u), pf = (u) => s.plainFetch(u);
      for (let i = 0; i < pairs; i++) {
        if (i & 1) {
          plain[i] = await one(pf);
          traced[i] = await one(tf);
        } else {
          traced[i] = await one(tf);
          plain[i] = await one(pf);
        }
      }
      return { traced, plain };
    },

    /** Encode cost of an `n`-span batch per encoding: { json: {ns, bytes}, protobuf: {...} } or null. */
    encodeBench: (n, iterations) => need().encodeBench(makeSpans, n, iterations),
  };
  globalThis.bench = bench;
  return bench;
}

/** Times `fn` `iterations` times after a few warm-up calls; median ns per call. */
export function timeMedian(fn, iterations, warmup = 5) {
  for (let i = 0; i < warmup; i++) fn();
  const xs = [];
  for (let i = 0; i < iterations; i++) {
    const t0 = performance.now();
    fn();
    xs.push((performance.now() - t0) * 1e6);
  }
  return median(xs);
}
