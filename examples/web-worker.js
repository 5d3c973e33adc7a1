// A module Web Worker: new Worker('/web-worker.js', { type: 'module' }).
// Served next to the package at /pkg/ (with a bundler: from 'tracelink').
import { setupTracing } from '/pkg/tracelink.js';

// Not awaited at the top: messages that arrive before onmessage is set are lost.
const ready = setupTracing({ serviceName: 'my-web-worker', otlpEndpoint: '/otlp/v1/traces' });

self.onmessage = async ({ data: path }) => {
  const tracing = await ready;
  const result = await tracing.traceOperation('worker job', async (span) => {
    const res = await tracing.fetch(path); // same origin: carries traceparent
    return { traceId: span.traceId, status: res.status, body: await res.json() };
  });
  await tracing.flush(); // before reporting done: the page may terminate() this worker
  self.postMessage(result);
};
