// Bun (`bun add tracelink`). Run with:
//   OTEL_SERVICE_NAME=my-service OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
//   API_URL=http://127.0.0.1:8000 bun bun.mjs
// Bun's fetch reads file: URLs: the wasm loads from next to tracelink.js.
import { setupTracing } from 'tracelink';

const tracing = await setupTracing({ propagateTo: [process.env.API_URL] }); // OTEL_* from process.env

const result = await tracing.traceOperation('ping', async (span) => {
  const res = await tracing.fetch(`${process.env.API_URL}/api/ping`); // carries traceparent
  return { traceId: span.traceId, status: res.status };
});
await tracing.flush(); // export before the process exits
console.log(JSON.stringify({ ...result, stats: tracing.stats() }));
