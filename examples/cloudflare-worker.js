// Cloudflare Worker (wrangler, or workerd). The .wasm import is a precompiled
// WebAssembly.Module: Workers refuse to compile wasm from bytes at run time.
// Bindings (wrangler.toml [vars] / secrets): OTEL_SERVICE_NAME,
// OTEL_EXPORTER_OTLP_ENDPOINT (and _HEADERS for auth), API_URL.
import wasm from 'tracelink/tracelink-gzip.wasm';
import { setupTracing } from 'tracelink';

let ready; // one tracing setup per isolate, shared by its requests

export default {
  async fetch(request, env, ctx) {
    ready ??= setupTracing({ wasm, env, propagateTo: [env.API_URL] }); // OTEL_* from env
    const tracing = await ready; // concurrent first requests share one setup
    const parent = tracing.extractContext(request.headers); // continue the caller's trace, if any
    const response = await tracing.traceOperation(`${request.method} worker`, { kind: 'server', parent }, async (span) => {
      const res = await tracing.fetch(`${env.API_URL}/api/ping`); // carries traceparent
      return Response.json({ traceId: span.traceId, status: res.status });
    });
    ctx.waitUntil(tracing.flush()); // export after the response: un-awaited work is cancelled
    return response;
  },
};
