// bench/otel-entry.js: the OpenTelemetry JS web reference setup, driven by
// bench/driver.js. Bundled by bench/build.mjs (esbuild, minified ESM,
// production) into dist/otel/page.js.
//
// Reference setup (what the OpenTelemetry JS docs show for the browser):
//   WebTracerProvider + BatchSpanProcessor (defaults: 5000 ms delay, 512 per
//   batch, queue 2048) + OTLPTraceExporter + FetchInstrumentation, registered
//   globally. Protocol 'http/json' (OTel JS's default) uses
//   exporter-trace-otlp-http; 'http/protobuf' uses exporter-trace-otlp-proto.
//
// The only addition is counting: the exporter's export() is wrapped to count
// spans handed over, exported and failed, because the SDK exposes no
// cumulative counters (BatchSpanProcessor's drop counter resets each time it
// logs its warning). Drops are derived: made - exported - failed - queued - in flight.
import { trace } from '@opentelemetry/api';
import {
  WebTracerProvider, BatchSpanProcessor, SimpleSpanProcessor, InMemorySpanExporter,
} from '@opentelemetry/sdk-trace-web';
import { OTLPTraceExporter as OTLPJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { installDriver, timeMedian } from './driver.js';

const SERVICE = 'bench';

/** The reference setup. Returns the pieces the driver needs. */
function referenceSetup({ endpoint, protocol = 'http/json', scheduleDelayMillis, maxQueueSize }) {
  const Exporter = protocol === 'http/protobuf' ? OTLPProtoExporter : OTLPJsonExporter;
  const exporter = new Exporter({ url: endpoint });
  const bspConfig = {};
  if (scheduleDelayMillis != null) bspConfig.scheduledDelayMillis = scheduleDelayMillis;
  if (maxQueueSize != null) bspConfig.maxQueueSize = maxQueueSize;
  const processor = new BatchSpanProcessor(exporter, bspConfig);
  const provider = new WebTracerProvider({
    resource: resourceFromAttributes({ 'service.name': SERVICE }),
    spanProcessors: [processor],
  });
  provider.register();
  registerInstrumentations({ instrumentations: [new FetchInstrumentation()], tracerProvider: provider });
  return { exporter, processor, provider, tracer: trace.getTracer(SERVICE) };
}

installDriver('otel', {
  async setup(opts) {
    // The unpatched fetch, before FetchInstrumentation wraps it.
    const nativeFetch = globalThis.fetch;
    const protocol = opts.protocol ?? 'http/json';
    const { exporter, processor, provider, tracer } = referenceSetup({ ...opts, protocol });

    const c = { handed: 0, exported: 0, failed: 0, inflight: 0, exports: 0, failedExports: 0 };
    const exportOriginal = exporter.export.bind(exporter);
    exporter.export = (spans, done) => {
      const n = spans.length;
      c.handed += n;
      c.inflight += n;
      c.exports++;
      exportOriginal(spans, (result) => {
        c.inflight -= n;
        if (result.code === 0) c.exported += n;
        else { c.failed += n; c.failedExports++; }
        done(result);
      });
    };
    const queued = () => processor._finishedSpans?.length ?? 0;
    const tracedFetch = globalThis.fetch;
    const plainFetch = tracedFetch.__original ?? nativeFetch;

    return {
      info: { sdk: 'OpenTelemetry JS web 2.12.0 / 0.223.0', protocol },
      tracer,
      flush: () => provider.forceFlush().catch(() => {}),
      idle: () => queued() === 0 && c.inflight === 0 && !processor._isExporting,
      stats() {
        return {
          exported: c.exported, queued: queued(), inflight: c.inflight, failed: c.failed,
          dropped: null, // derived by the driver's caller from `made`
          sdkCounted: false,
          raw: { ...c, queued: queued() },
        };
      },
      memory: () => 0,
      tracedFetch: (url) => globalThis.fetch(url),
      plainFetch: (url) => plainFetch.call(globalThis, url),
      /** Times the exporters' own serializers on `n` real ReadableSpans of the bench shape. */
      async encodeBench(makeSpans, n, iterations) {
        const memory = new InMemorySpanExporter();
        const p = new WebTracerProvider({
          resource: resourceFromAttributes({ 'service.name': SERVICE }),
          spanProcessors: [new SimpleSpanProcessor(memory)],
        });
        makeSpans(p.getTracer(SERVICE), 0, n);
        const spans = memory.getFinishedSpans();
        const out = {};
        for (const [name, serializer] of [['json', JsonTraceSerializer], ['protobuf', ProtobufTraceSerializer]]) {
          const bytes = serializer.serializeRequest(spans)?.byteLength ?? 0;
          out[name] = { ns: timeMedian(() => serializer.serializeRequest(spans), iterations), bytes, spans: spans.length };
        }
        await p.shutdown();
        return out;
      },
    };
  },
});
