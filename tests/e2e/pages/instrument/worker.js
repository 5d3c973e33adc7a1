// A module Web Worker: XMLHttpRequest traced inside an operation. Every
// instrumentation is enabled; the ones that need a page install as no-ops.
import { setupTracing } from '/pkg/tracelink.js';

const ready = setupTracing({
  serviceName: 'e2e-instrument-worker', otlpEndpoint: '/otlp/v1/traces', instrumentXhr: true, instrumentDocumentLoad: true,
  instrumentNavigation: true, instrumentInteractions: true, instrumentErrors: true, instrumentWebVitals: true,
});

self.onmessage = async () => {
  const tracing = await ready;
  const out = await tracing.traceOperation('worker xhr', () => new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('GET', '/api/ping?via=worker');
    xhr.responseType = 'json';
    xhr.onload = () => resolve({ status: xhr.status, received: xhr.response.received });
    xhr.send();
  }));
  await tracing.flush();
  self.postMessage({ ...out, stats: tracing.stats() });
};
