// Node 20+ (`npm install tracelink`). Run with:
//   OTEL_SERVICE_NAME=my-service OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
//   API_URL=http://127.0.0.1:8000 node node.mjs
// Node's fetch cannot read file: URLs, so the wasm goes in as bytes.
import { readFile } from 'node:fs/promises';
import { setupTracing } from 'tracelink';

const wasm = await readFile(new URL(import.meta.resolve('tracelink/tracelink-gzip.wasm')));
const tracing = await setupTracing({ wasm, propagateTo: [process.env.API_URL] }); // OTEL_* from process.env

const result = await tracing.traceOperation('ping', async (span) => {
  const res = await tracing.fetch(`${process.env.API_URL}/api/ping`); // carries traceparent
  return { traceId: span.traceId, status: res.status };
});
await tracing.flush(); // export before the process exits
console.log(JSON.stringify({ ...result, stats: tracing.stats() }));
