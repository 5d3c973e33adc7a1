// The FIR desk demo: tracelink used the way an app would use it.
import { setupTracing } from './pkg/tracelink.js';

const $ = (id) => document.getElementById(id);
const config = await fetch('./api/config').then((r) => r.json()).catch(() => ({}));

const tracing = await setupTracing({
  serviceName: 'afirgen-frontend',
  serviceVersion: '1.0.0',
  otlpEndpoint: './otlp/v1/traces', // same-origin relay on the backend: no CORS preflight, no ad blocker
  instrumentFetch: true,
  instrumentDocumentLoad: true, // the page load, joined to the backend span that served index.html
  instrumentInteractions: true, // each click / submit a root span; its operation and fetches beneath
  correlationIdHeader: 'X-Correlation-ID',
  scheduleDelayMillis: 500,
});
globalThis.tracing = tracing; // for the console and the end-to-end test

function show(op, span, correlationId, body, failed) {
  $('op').textContent = op;
  $('trace-id').textContent = span.traceId;
  $('correlation-id').textContent = correlationId;
  const link = $('trace-link');
  if (config.viewerUrl) {
    link.href = `${config.viewerUrl}/trace/${span.traceId}`;
    link.textContent = 'open this trace in Jaeger UI';
  }
  $('output').textContent = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
  $('output').className = failed ? 'error' : '';
}

/** Runs one button's work as a traced operation with its own correlation id. */
async function operation(name, attributes, work) {
  const correlationId = crypto.randomUUID();
  try {
    await tracing.traceOperation(name, { attributes, correlationId }, async (span) => {
      let body;
      try {
        body = await work(span);
      } finally {
        show(name, span, correlationId, body ?? '(failed)', body === undefined);
      }
    });
  } catch (e) {
    $('output').textContent = String(e);
    $('output').className = 'error';
  }
  document.body.dataset.lastTraceId = $('trace-id').textContent;
  document.body.dataset.lastCorrelationId = correlationId;
  document.body.dataset.operations = String(Number(document.body.dataset.operations ?? 0) + 1);
}

async function json(res) {
  const body = await res.json();
  if (!res.ok) throw new Error(`${res.status}: ${JSON.stringify(body)}`);
  return body;
}

$('create-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const form = Object.fromEntries(new FormData(e.target));
  operation('fir.create', { 'fir.location': form.location }, async () => {
    tracing.addTraceEvent('validation_started', { fields: 3 });
    const body = await json(await fetch('./api/firs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(form),
    }));
    $('fir-id').value = body.fir_id;
    tracing.addTraceAttributes({ fir_id: body.fir_id });
    return body;
  });
});

$('fetch').addEventListener('click', () => {
  const id = $('fir-id').value.trim();
  operation('fir.fetch', { fir_id: id }, async () => json(await fetch(`./api/firs/${encodeURIComponent(id)}`)));
});

$('summary').addEventListener('click', () => {
  const id = $('fir-id').value.trim();
  operation('fir.summary', { fir_id: id }, async () =>
    json(await fetch(`./api/firs/${encodeURIComponent(id)}/summary`, { method: 'POST' })));
});

setInterval(() => {
  const s = tracing.stats();
  $('stats').textContent = `${s.exported} spans exported · ${s.queued} queued · ${s.dropped} dropped · ${s.retried} retried`;
}, 500);
$('stats').textContent = 'ready';
document.body.dataset.ready = 'true';
