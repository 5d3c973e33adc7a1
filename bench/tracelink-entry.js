// bench/tracelink-entry.js: tracelink's side of the benchmark, driven by
// bench/driver.js. Bundled by bench/build.mjs with the same esbuild settings
// as the OTel side into dist/tracelink/page.js; 'tracelink' resolves to
// $TRACELINK_PKG/tracelink.js (default pkg/), which loads
// tracelink.wasm / tracelink-full.wasm from next to the bundle (copied there by build.mjs).
//
// Setup as a user writes it: setupTracing({ serviceName, otlpEndpoint,
// protocol }) with the fetch wrapper used explicitly (t.fetch), trace headers
// allowed everywhere (propagateTo: [/.*/]); all other options at defaults.
import { setupTracing } from 'tracelink';
import { installDriver } from './driver.js';

const SERVICE = 'bench';

/** Bytes of wasm linear memory (it lives outside the JS heap) of a setup's core. */
function wasmMemoryBytes(t) {
  try {
    return t._core?._x?.memory?.buffer?.byteLength ?? 0;
  } catch {
    return 0;
  }
}

function options({ endpoint, protocol, scheduleDelayMillis, maxQueueSize, compress }) {
  const o = { serviceName: SERVICE, otlpEndpoint: endpoint, instrumentFetch: false, propagateTo: [/.*/] };
  if (protocol) o.protocol = protocol;
  if (compress != null) o.compress = compress;
  if (scheduleDelayMillis != null) o.scheduleDelayMillis = scheduleDelayMillis;
  if (maxQueueSize != null) o.maxQueueSize = maxQueueSize;
  return o;
}

installDriver('tracelink', {
  async setup(opts) {
    const nativeFetch = globalThis.fetch;
    const t = await setupTracing(options(opts));
    let memory = wasmMemoryBytes(t);
    const protocol = opts.protocol ?? 'http/protobuf';
    return {
      info: { sdk: 'tracelink', protocol },
      tracer: t,
      flush: () => t.flush(),
      idle() {
        const s = t.stats();
        const agentIdle = t._core ? t._core.idle() : true;
        return agentIdle && s.queued === 0 && (s.inFlight ?? 0) === 0;
      },
      stats() {
        const s = t.stats();
        return {
          exported: s.exported, queued: s.queued, inflight: s.inFlight ?? 0,
          failed: s.droppedFailed ?? 0, dropped: s.dropped, retried: s.retried,
          sdkCounted: true, raw: s,
        };
      },
      memory: async () => (memory = wasmMemoryBytes(t)),
      tracedFetch: (url) => t.fetch(url),
      plainFetch: (url) => nativeFetch.call(globalThis, url),
      /**
       * tracelink has no JS-visible encoder; when the agent exports
       * encodeBench(n, iterations) -> ns per batch, it is timed per encoding.
       */
      async encodeBench(_makeSpans, n, iterations) {
        if (t._core?.encodeBench(1, 1) === undefined) return null;
        const out = {};
        for (const [name, p] of [['json', 'http/json'], ['protobuf', 'http/protobuf']]) {
          const ti = p === protocol ? t : await setupTracing(options({ ...opts, protocol: p, scheduleDelayMillis: 3600000 }));
          out[name] = { ns: Number(ti._core.encodeBench(n, iterations)), bytes: null, spans: n };
          if (ti !== t) await ti.shutdown(1000);
        }
        return out;
      },
    };
  },
});
