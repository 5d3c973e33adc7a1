// instrumentDocumentLoad: the page load as a trace, from Navigation Timing,
// Resource Timing and paint entries:
//
//   documentLoad                 time origin → loadEventEnd
//     documentFetch              the HTML request (fetchStart → responseEnd)
//     resourceFetch × n          scripts, styles, images… loaded by the page
//     firstPaint, firstContentfulPaint   (zero-length: the paint moments)
//
// documentLoad continues the backend's trace of the HTML response when the
// response carries `Server-Timing: traceparent;desc="00-…"` (read from the
// navigation entry) or the page has `<meta name="traceparent" content="00-…">`.
// Settings: { maxResources: 250 }. Fetch and XHR entries are left out (traced
// fetch / XHR spans cover those); so are ignoreUrls and the exporter's URL.

import { pageLoadSpans, unixMs } from './shared.js';

const SKIPPED = new Set(['fetch', 'xmlhttprequest', 'beacon']);
const MILESTONES = ['domInteractive', 'domContentLoadedEventEnd', 'domComplete', 'loadEventEnd'];

export function install(hooks, { maxResources = 250 } = {}) {
  const perf = globalThis.performance;
  const doc = globalThis.document;
  const nav = doc && perf?.getEntriesByType?.('navigation')[0];
  if (!nav) return () => {};
  const tracing = hooks.tracing;
  const root = tracing.startSpan('documentLoad', {
    parent: serverContext(tracing, nav, doc),
    startTime: unixMs(nav.startTime),
    attributes: { 'url.full': hooks.spanUrl(nav.name) ?? undefined, 'browser.navigation.type': nav.type },
  });
  const recording = root.isRecording(); // not sampled (or tracing off): nothing under it either
  pageLoadSpans.set(tracing, recording && root);

  const report = () => hooks.safe(() => {
    const n = perf.getEntriesByType('navigation')[0];
    const loaded = n.loadEventEnd || perf.now();
    if (recording) children(n, loaded);
    root.end(unixMs(loaded));
  });
  const children = (n, loaded) => {
    const child = (name, start, end, attributes) => tracing.startSpan(name, { parent: root, startTime: unixMs(start), attributes }).end(unixMs(end));
    child('documentFetch', n.fetchStart, n.responseEnd, { 'url.full': hooks.spanUrl(n.name) ?? undefined, ...http(n) });
    let dropped = 0;
    for (const r of perf.getEntriesByType('resource')) {
      if (SKIPPED.has(r.initiatorType) || r.startTime > loaded) continue;
      const url = hooks.spanUrl(r.name);
      if (!url) continue;
      if (maxResources-- <= 0) {
        dropped++;
        continue;
      }
      child('resourceFetch', r.startTime, r.responseEnd || r.startTime + r.duration,
        { 'url.full': url, 'browser.resource.initiator_type': r.initiatorType, ...http(r) });
    }
    for (const p of perf.getEntriesByType('paint')) {
      child(p.name === 'first-paint' ? 'firstPaint' : 'firstContentfulPaint', p.startTime, p.startTime);
    }
    for (const m of MILESTONES) root.setAttribute(`browser.navigation_timing.${m}`, n[m]);
    if (dropped) root.setAttribute('tracelink.resources_dropped', dropped);
  };
  // loadEventEnd is set once the load handlers have run: a task after `load`.
  const loaded = () => setTimeout(report);
  if (doc.readyState === 'complete') loaded();
  else addEventListener('load', loaded, { once: true });
  return () => {
    removeEventListener('load', loaded);
    pageLoadSpans.delete(tracing);
  };
}

/** The HTML response's server span: Server-Timing of the navigation entry, or a meta tag. */
function serverContext(tracing, nav, doc) {
  for (const t of nav.serverTiming ?? []) {
    const parent = (t.name === 'traceparent' || t.name === 'trace') && tracing.extractContext({ traceparent: t.description });
    if (parent) return parent;
  }
  const meta = (name) => doc.querySelector(`meta[name="${name}"]`)?.content;
  return tracing.extractContext({ traceparent: meta('traceparent'), tracestate: meta('tracestate') });
}

/** Status and sizes of a timing entry (0 / absent: unknown, e.g. cross-origin without Timing-Allow-Origin). */
function http(entry) {
  return {
    'http.response.status_code': entry.responseStatus || undefined,
    'http.response.body.size': entry.encodedBodySize || undefined,
  };
}
