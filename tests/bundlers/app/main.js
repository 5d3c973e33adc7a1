// A small app as a user writes it: import the package by name, set tracing up
// with a same-origin OTLP relay, trace an operation around a fetch. The page
// publishes the outcome as `window.appResult` (a promise) for the test.
import { setupTracing } from 'tracelink';

async function main() {
  const serviceName = document.documentElement.dataset.service;
  const tracing = await setupTracing({ serviceName, otlpEndpoint: '/otlp/v1/traces', instrumentFetch: true });
  const result = await tracing.traceOperation('bundled.ping', async (span) => {
    const res = await fetch('/api/ping');
    return { traceId: span.traceId, status: res.status, body: await res.json() };
  });
  await tracing.flush();
  return { ...result, stats: tracing.stats() };
}

window.appResult = main().catch((e) => ({ error: String(e?.stack ?? e) }));
