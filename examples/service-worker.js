// A module Service Worker:
//   navigator.serviceWorker.register('/service-worker.js', { type: 'module' })
// Served next to the package at /pkg/ (with a bundler: from 'tracelink').
import { setupTracing } from '/pkg/tracelink.js';

// Service workers forbid top-level await: keep the promise.
const ready = setupTracing({ serviceName: 'my-service-worker', otlpEndpoint: '/otlp/v1/traces' });

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  if (event.request.url.startsWith(`${self.location.origin}/api/`)) event.respondWith(traced(event));
});

async function traced(event) {
  const tracing = await ready;
  try {
    return await tracing.fetch(event.request); // carries traceparent
  } finally {
    event.waitUntil(tracing.flush()); // keep the worker alive until the spans are exported
  }
}
