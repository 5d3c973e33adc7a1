// Deno 2 (`deno add npm:tracelink`). Run with:
//   OTEL_SERVICE_NAME=my-service OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
//   API_URL=http://127.0.0.1:8000 deno run --allow-net --allow-read --allow-env deno.mjs
// --allow-read: the wasm loads from next to tracelink.js (a file: fetch);
// --allow-env: OTEL_* settings (without it they are simply not read).
import { setupTracing } from 'tracelink';

const tracing = await setupTracing({ propagateTo: [Deno.env.get('API_URL')] });

const result = await tracing.traceOperation('ping', async (span) => {
  const res = await tracing.fetch(`${Deno.env.get('API_URL')}/api/ping`); // carries traceparent
  return { traceId: span.traceId, status: res.status };
});
await tracing.flush(); // export before the process exits
console.log(JSON.stringify({ ...result, stats: tracing.stats() }));
