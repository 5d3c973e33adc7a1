// instrumentWebVitals: TTFB, FCP, LCP, INP and CLS from PerformanceObserver,
// each reported once per page as its own span, as soon as it is final:
// TTFB at once, FCP at the first contentful paint, LCP at the first input or
// page hide, INP and CLS at page hide (visibilitychange → hidden, pagehide).
//
// A span per metric (`LCP`, `INP`, …) is a child of the page-load span when
// instrumentDocumentLoad is on (one trace per page view). Its time range is
// what the metric measures (TTFB, FCP, LCP: navigation start → the moment;
// INP: the interaction's input → its next paint; CLS: the worst burst of
// shifts), with attributes browser.web_vital.{name,value,rating} (and the
// element or event type where there is one) and the OpenTelemetry
// `browser.web_vital` event {name, value, delta, id}. A page hidden before it
// painted reports no FCP/LCP (as the web-vitals library does); a page
// restored from the back/forward cache reports nothing more.

import { describe, listen, pageLoadSpans, unixMs } from './shared.js';

/** [good up to, needs improvement up to] (web.dev thresholds). */
const LIMITS = { ttfb: [800, 1800], fcp: [1800, 3000], lcp: [2500, 4000], inp: [200, 500], cls: [0.1, 0.25] };

export function install(hooks) {
  const doc = globalThis.document;
  const PO = globalThis.PerformanceObserver;
  const nav = doc && PO && performance.getEntriesByType?.('navigation')[0];
  const parent = pageLoadSpans.get(hooks.tracing); // false: the page load is not sampled
  if (!nav || parent === false) return () => {};
  const activation = nav.activationStart || 0;
  let hiddenAt = doc.visibilityState === 'hidden' ? 0 : Infinity;
  const reported = new Set();
  const undo = [];

  const report = (name, value, start, end, attributes) => {
    if (reported.has(name)) return;
    reported.add(name);
    const [good, poor] = LIMITS[name];
    const span = hooks.tracing.startSpan(name.toUpperCase(), {
      parent: parent || null,
      startTime: unixMs(start),
      attributes: {
        'browser.web_vital.name': name,
        'browser.web_vital.value': value,
        'browser.web_vital.rating': value <= good ? 'good' : value <= poor ? 'needs-improvement' : 'poor',
        ...attributes,
      },
    });
    span.addEvent('browser.web_vital', { name, value, delta: value, id: span.spanId });
    span.end(unixMs(end));
  };
  /** Observes `type` (buffered) → the observer, or undefined where the type is unsupported. */
  const observe = (type, f, options) => {
    try {
      const o = new PO((list) => hooks.safe(() => list.getEntries().forEach(f)));
      o.observe({ type, buffered: true, ...options });
      undo.push(() => o.disconnect());
      return { flush: () => hooks.safe(() => o.takeRecords().forEach(f)) };
    } catch { /* not supported here */ }
  };
  const sinceStart = (t) => Math.max(t - activation, 0);

  report('ttfb', sinceStart(nav.responseStart), activation, Math.max(nav.responseStart, activation));

  observe('paint', (e) => {
    if (e.name === 'first-contentful-paint' && e.startTime < hiddenAt) report('fcp', sinceStart(e.startTime), activation, e.startTime);
  });

  let lcp;
  const lcpObserver = observe('largest-contentful-paint', (e) => { if (e.startTime < hiddenAt) lcp = e; });
  const finalLcp = () => {
    lcpObserver?.flush();
    if (lcp) report('lcp', sinceStart(lcp.startTime), activation, lcp.startTime, { 'browser.web_vital.element': describe(lcp.element) });
  };
  // LCP stops at the first input; report it then (after the input's own work).
  const onInput = () => {
    stopInput();
    setTimeout(() => hooks.safe(finalLcp));
  };
  const inputs = [listen(globalThis, 'keydown', onInput), listen(globalThis, 'pointerdown', onInput)];
  const stopInput = () => inputs.forEach((f) => f());
  undo.push(stopInput);

  // INP: the longest interaction, or for pages with many, about the 98th percentile
  // (one per 50 interactions skipped), from the 10 longest kept.
  const longest = []; // { id, duration, entry }, longest first
  const ids = new Set();
  const onEvent = (e) => {
    if (!e.interactionId) return;
    ids.add(e.interactionId);
    const known = longest.find((l) => l.id === e.interactionId);
    if (known) {
      if (e.duration > known.duration) Object.assign(known, { duration: e.duration, entry: e });
    } else {
      longest.push({ id: e.interactionId, duration: e.duration, entry: e });
    }
    longest.sort((a, b) => b.duration - a.duration).splice(10);
  };
  const inpObservers = [observe('event', onEvent, { durationThreshold: 40 }), observe('first-input', onEvent)];

  // CLS: the largest session window of shifts (< 1 s apart, < 5 s in all) not caused by input.
  let cls = 0;
  let clsRange = [activation, activation];
  let session = 0;
  let first;
  let last;
  const clsObserver = observe('layout-shift', (e) => {
    if (e.hadRecentInput) return;
    if (last && e.startTime - last.startTime < 1000 && e.startTime - first.startTime < 5000) session += e.value;
    else [session, first] = [e.value, e];
    last = e;
    if (session > cls) [cls, clsRange] = [session, [first.startTime, e.startTime]];
  });

  const onHide = (e) => hooks.safe(() => {
    if (e.type !== 'pagehide' && doc.visibilityState !== 'hidden') return;
    hiddenAt = Math.min(hiddenAt, performance.now());
    finalLcp();
    inpObservers.forEach((o) => o?.flush());
    const count = performance.interactionCount || ids.size;
    const inp = longest[Math.min(longest.length - 1, Math.floor(count / 50))];
    if (inp) {
      report('inp', inp.duration, inp.entry.startTime, inp.entry.startTime + inp.duration, {
        'browser.web_vital.event_type': inp.entry.name, 'browser.web_vital.element': describe(inp.entry.target),
      });
    }
    if (clsObserver) {
      clsObserver.flush();
      report('cls', cls, ...clsRange);
    }
  });
  undo.push(listen(doc, 'visibilitychange', onHide), listen(globalThis, 'pagehide', onHide));
  return () => undo.splice(0).forEach((f) => f());
}
