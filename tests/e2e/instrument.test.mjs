// Opt-in instrumentations end to end: headless Chromium loads a page that the
// real FastAPI + OpenTelemetry backend serves (so the HTML response names its
// server span in Server-Timing), the page exports through the backend's
// same-origin relay to rotel, and each test checks the spans one
// instrumentation must produce and their parent links.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT, startCollector, startBackend, stopAll } from '../support/peers.mjs';
import { launchChromium, openPage } from '../support/browser.mjs';

const BACKEND = 'afirgen-backend'; // the backend's service.name
let collector, backend, browser;

before(async () => {
  collector = await startCollector();
  backend = await startBackend({
    collectorUrl: collector.httpUrl, corsOrigins: [],
    // Its index.html is the document the backend traces (Server-Timing).
    staticDir: path.join(ROOT, 'tests/e2e/pages/instrument'), pkgDir: path.join(ROOT, 'pkg'),
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  stopAll();
});

/** The test page with setupTracing `options`, ready. */
async function open(options) {
  const p = await openPage(browser, `${backend.url}/index.html?options=${encodeURIComponent(JSON.stringify(options))}`);
  await p.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  return p;
}

/** Waits for `count` spans of service `service` matching `where`; returns all spans of that service. */
async function spansOf(service, where, count = 1) {
  await collector.waitForSpans({ where: (s) => s.resource['service.name'] === service && where(s), count }, 20_000);
  return collector.readSpans().filter((s) => s.resource['service.name'] === service);
}

const only = (spans, where, what) => {
  const found = spans.filter(where);
  assert.equal(found.length, 1, `${what}: ${found.length} spans: ${spans.map((s) => s.name)}`);
  return found[0];
};
const fetchOf = (spans, via) => only(spans, (s) => s.kind === 3 && s.attributes['url.full']?.endsWith(`via=${via}`), `client span via=${via}`);
/** The backend's SERVER span that answered `client` (once exported). */
async function serverOf(client) {
  const where = (s) => s.resource['service.name'] === BACKEND && s.kind === 2 && s.parentSpanId === client.spanId;
  await collector.waitForSpans(where, 20_000);
  return only(collector.readSpans(), where, `server span under ${client.attributes['url.full']}`);
}
const exceptions = (span) => span.events.filter((e) => e.name === 'exception').map((e) => `${e.attributes['exception.type']}: ${e.attributes['exception.message']}`);

test('page load: documentLoad continues the backend span of the HTML response; web vitals after page hide', async () => {
  const service = 'e2e-pageload';
  const p = await open({ serviceName: service, instrumentDocumentLoad: true, instrumentWebVitals: true, instrumentInteractions: true });
  // An interaction that takes 80 ms of handler work (INP), and the first input (final LCP).
  await p.evaluate(() => document.querySelector('.plain').addEventListener('click', () => {
    const end = performance.now() + 80;
    while (performance.now() < end);
  }));
  await p.click('.plain');
  await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 50))));
  assert.deepEqual(p.pageErrors, []);
  await p.goto('about:blank'); // page hide: INP and CLS are final now
  const vitals = ['TTFB', 'FCP', 'LCP', 'INP', 'CLS'];
  const spans = await spansOf(service, (s) => vitals.includes(s.name), vitals.length);

  const load = only(spans, (s) => s.name === 'documentLoad', 'documentLoad');
  assert.match(load.attributes['url.full'], /\/index\.html\?options=/);
  assert.equal(load.attributes['browser.navigation.type'], 'navigate');
  assert.ok(load.attributes['browser.navigation_timing.loadEventEnd'] > 0);
  // Joined: the parent is the backend's server span of GET /index.html.
  const server = only(collector.readSpans(), (s) => s.spanId === load.parentSpanId, 'documentLoad parent');
  assert.equal(server.resource['service.name'], BACKEND);
  assert.equal(server.kind, 2);
  assert.equal(server.traceId, load.traceId);
  assert.match(JSON.stringify(server.attributes), /index\.html/);

  const inLoad = spans.filter((s) => s.parentSpanId === load.spanId);
  const names = inLoad.map((s) => s.name);
  for (const n of ['documentFetch', 'firstPaint', 'firstContentfulPaint', ...vitals]) assert.ok(names.includes(n), `${n} under documentLoad: ${names}`);
  const fetchSpan = only(inLoad, (s) => s.name === 'documentFetch', 'documentFetch');
  assert.equal(fetchSpan.attributes['http.response.status_code'], 200);
  const css = only(inLoad, (s) => s.name === 'resourceFetch' && s.attributes['url.full'].endsWith('/instrument.css'), 'the stylesheet');
  assert.equal(css.attributes['browser.resource.initiator_type'], 'link');
  assert.ok(inLoad.some((s) => s.name === 'resourceFetch' && s.attributes['url.full'].endsWith('/pkg/tracelink.js')), 'the module script');
  assert.ok(!inLoad.some((s) => /\/otlp\//.test(s.attributes['url.full'] ?? '')), 'no exporter request');

  for (const name of vitals) {
    const v = only(inLoad, (s) => s.name === name, name);
    const value = v.attributes['browser.web_vital.value'];
    assert.equal(v.attributes['browser.web_vital.name'], name.toLowerCase());
    assert.ok(typeof value === 'number' && value >= 0, `${name} = ${value}`);
    assert.ok(['good', 'needs-improvement', 'poor'].includes(v.attributes['browser.web_vital.rating']));
    const event = only(v.events, (e) => e.name === 'browser.web_vital', `${name} event`);
    assert.deepEqual(Object.keys(event.attributes).sort(), ['delta', 'id', 'name', 'value']);
    assert.equal(event.attributes.name, name.toLowerCase());
    assert.equal(event.attributes.value, value);
  }
  const inp = only(inLoad, (s) => s.name === 'INP', 'INP');
  assert.ok(inp.attributes['browser.web_vital.value'] >= 80, 'INP covers the 80 ms handler');
  assert.equal(inp.attributes['browser.web_vital.element'], 'button');
  // The click itself (named from its text: no id): a root span of its own trace.
  const click = only(spans, (s) => s.name === 'click Plain button text', 'click span');
  assert.equal(click.parentSpanId, '');
  assert.notEqual(click.traceId, load.traceId);
  await p.close();
});

test("interactions + XHR: a click's fetch and axios-style XHRs are the click span's children and join the backend", async () => {
  const service = 'e2e-click';
  const p = await open({ serviceName: service, instrumentInteractions: true, instrumentXhr: true, instrumentFetch: true });
  await p.evaluate(() => {
    // What axios's XHR adapter does: a promise settled from the XHR's loadend handler.
    const axiosGet = (url) => new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('GET', url, true);
      xhr.setRequestHeader('Accept', 'application/json, text/plain, */*');
      xhr.onloadend = () => resolve({ status: xhr.status, data: JSON.parse(xhr.responseText) });
      xhr.onerror = () => reject(new Error('Network Error'));
      xhr.send(null);
    });
    document.getElementById('create').addEventListener('click', async () => {
      fetch('/api/ping?via=fetch');
      const first = await axiosGet('/api/ping?via=xhr-1');
      const second = await axiosGet('/api/ping?via=xhr-2'); // sent from the first one's continuation
      globalThis.result = { first: first.data.received, second: second.data.received };
    });
  });
  await p.click('#create');
  await p.waitForFunction(() => globalThis.result);
  const out = await p.evaluate(async () => { await tracing.flush(); return { result, stats: tracing.stats() }; });
  assert.equal(out.stats.internalErrors, 0);
  const spans = await spansOf(service, (s) => s.kind === 3, 3);

  const click = only(spans, (s) => s.name === 'click create report', 'click span');
  assert.equal(click.parentSpanId, '', 'a root span');
  assert.equal(click.attributes['browser.interaction.target'], 'button#create');
  for (const via of ['fetch', 'xhr-1', 'xhr-2']) {
    const client = fetchOf(spans, via);
    assert.equal(client.parentSpanId, click.spanId, `${via}: child of the click`);
    assert.equal(client.traceId, click.traceId);
    const server = await serverOf(client);
    assert.equal(server.traceId, click.traceId, `${via}: the backend joined`);
    if (via !== 'fetch') {
      assert.equal(client.name, 'GET');
      assert.equal(client.attributes['http.response.status_code'], 200);
      assert.equal(client.attributes['tracelink.response.span_id'], server.spanId, 'server span read back');
    }
  }
  // The backend received exactly one traceparent each, the XHR's own.
  assert.equal(out.result.first.traceparent.slice(36, 52), fetchOf(spans, 'xhr-1').spanId);
  assert.equal(out.result.second.traceparent.slice(36, 52), fetchOf(spans, 'xhr-2').spanId);
  assert.deepEqual(p.pageErrors, []);
  await p.close();
});

test('interactions: a form submit is a root span named from the form, never from its values', async () => {
  const service = 'e2e-submit';
  const p = await open({ serviceName: service, instrumentInteractions: true, instrumentFetch: true });
  await p.evaluate(() => document.getElementById('search').addEventListener('submit', (e) => {
    e.preventDefault();
    fetch('/api/ping?via=submit').then(() => { globalThis.done = true; });
  }));
  await p.click('#search button');
  await p.waitForFunction(() => globalThis.done);
  await p.evaluate(() => tracing.flush());
  const spans = await spansOf(service, (s) => s.kind === 3);
  const submit = only(spans, (s) => s.name === 'submit search', 'submit span');
  assert.equal(submit.parentSpanId, '');
  assert.equal(fetchOf(spans, 'submit').parentSpanId, submit.spanId);
  assert.ok(!spans.some((s) => s.name.startsWith('click')), 'the submit button click is the submit span, not a span of its own');
  assert.doesNotMatch(JSON.stringify(spans), /never recorded/, 'no form value in any span');
  await p.click('#blank'); // not a control: no span
  await p.evaluate(() => tracing.flush());
  assert.ok(!collector.readSpans().some((s) => s.name.startsWith('click not a control')));
  await p.close();
});

test('errors: on the current span, or a standalone span; an error traceOperation recorded is not recorded again', async () => {
  const service = 'e2e-errors';
  const p = await open({ serviceName: service, instrumentInteractions: true, instrumentErrors: true });
  await p.evaluate(() => {
    document.getElementById('boom').addEventListener('click', () => { throw new TypeError('thrown in a click handler'); });
  });
  await p.click('#boom');
  await p.evaluate(() => new Promise((resolve) => {
    setTimeout(() => { throw new EvalError('thrown in a timer'); });
    setTimeout(() => Promise.reject(new RangeError('rejected outside any span')));
    tracing.traceOperation('op.fails', async () => { throw new SyntaxError('recorded by traceOperation'); }); // unhandled
    setTimeout(resolve, 100);
  }));
  await p.evaluate(() => tracing.flush());
  const spans = await spansOf(service, (s) => ['error', 'unhandledrejection'].includes(s.name), 2);

  const click = only(spans, (s) => s.name === 'click boom', 'click span');
  assert.deepEqual(exceptions(click), ['TypeError: thrown in a click handler']);
  assert.equal(click.status.code, 2);
  const timer = only(spans, (s) => s.name === 'error', 'standalone error span');
  assert.deepEqual(exceptions(timer), ['EvalError: thrown in a timer']);
  assert.equal(timer.parentSpanId, '');
  assert.match(timer.events[0].attributes['exception.stacktrace'], /index\.html|EvalError/);
  const rejection = only(spans, (s) => s.name === 'unhandledrejection', 'standalone rejection span');
  assert.deepEqual(exceptions(rejection), ['RangeError: rejected outside any span']);
  const op = only(spans, (s) => s.name === 'op.fails', 'operation');
  assert.deepEqual(exceptions(op), ['SyntaxError: recorded by traceOperation'], 'recorded once');
  assert.equal(p.pageErrors.length, 4, 'the browser still reports every error itself');
  await p.close();
});

for (const navigationApi of [true, false]) {
  test(`navigation (${navigationApi ? 'Navigation API' : 'History API only'}): route changes and their fetches`, async () => {
    const service = `e2e-navigation-${navigationApi ? 'api' : 'history'}`;
    const p = await open({ serviceName: service, instrumentInteractions: true, instrumentFetch: true, instrumentNavigation: { navigationApi } });
    await p.evaluate(() => {
      document.getElementById('route').addEventListener('click', () => {
        history.pushState({}, '', '/route-a');
        fetch('/api/ping?via=route-a');
      });
      history.replaceState({ scroll: 1 }, ''); // same URL: not a navigation
    });
    await p.click('#route');
    if (navigationApi) {
      await p.evaluate(async () => {
        navigation.addEventListener('navigate', (e) => {
          if (new URL(e.destination.url).pathname !== '/route-b') return;
          e.intercept({
            async handler() {
              await fetch('/api/ping?via=handler-1');
              await fetch('/api/ping?via=handler-2');
            },
          });
        });
        await navigation.navigate('/route-b').finished;
      });
    } else {
      await p.evaluate(() => new Promise((resolve) => {
        addEventListener('popstate', () => { fetch('/api/ping?via=popstate').then(resolve); }, { once: true });
        history.back();
      }));
    }
    await p.evaluate(() => new Promise((r) => setTimeout(r, 100)));
    await p.evaluate(() => tracing.flush());
    const spans = await spansOf(service, (s) => s.kind === 3, navigationApi ? 3 : 2);
    const navs = spans.filter((s) => s.name === 'navigation');
    assert.equal(navs.length, 2, `two route changes: ${navs.map((s) => s.attributes['url.full'])}`);

    const click = only(spans, (s) => s.name === 'click route', 'click');
    const toA = only(navs, (s) => s.attributes['url.full'].endsWith('/route-a'), 'navigation to /route-a');
    assert.equal(toA.attributes['browser.navigation.type'], 'push');
    assert.equal(toA.parentSpanId, click.spanId, 'the click caused the navigation');
    assert.equal(fetchOf(spans, 'route-a').parentSpanId, toA.spanId, 'a fetch after pushState in the click handler');
    if (navigationApi) {
      const toB = only(navs, (s) => s.attributes['url.full'].endsWith('/route-b'), 'navigation to /route-b');
      assert.equal(toB.parentSpanId, '');
      for (const via of ['handler-1', 'handler-2']) assert.equal(fetchOf(spans, via).parentSpanId, toB.spanId, `${via}: in the intercepted handler`);
      assert.ok(BigInt(toB.endTimeUnixNano) >= BigInt(fetchOf(spans, 'handler-2').startTimeUnixNano), 'ends when the handler settles');
    } else {
      const back = only(navs, (s) => s.attributes['browser.navigation.type'] === 'traverse', 'back');
      assert.match(back.attributes['url.full'], /\/index\.html/);
      assert.equal(fetchOf(spans, 'popstate').parentSpanId, back.spanId, 'a fetch in the popstate handler');
    }
    assert.deepEqual(p.pageErrors, []);
    await p.close();
  });
}

test('XHR in a Web Worker joins the backend; the page-only instrumentations are no-ops there', async () => {
  const p = await open({ serviceName: 'e2e-worker-page' });
  const out = await p.evaluate(() => new Promise((resolve, reject) => {
    const worker = new Worker('/worker.js', { type: 'module' });
    worker.onmessage = ({ data }) => { resolve(data); worker.terminate(); };
    worker.onerror = (e) => reject(new Error(e.message));
    worker.postMessage('go');
  }));
  assert.equal(out.status, 200);
  assert.equal(out.stats.internalErrors, 0, JSON.stringify(out.stats));
  const spans = await spansOf('e2e-instrument-worker', (s) => s.kind === 3);
  const op = only(spans, (s) => s.name === 'worker xhr', 'operation');
  const client = fetchOf(spans, 'worker');
  assert.equal(client.parentSpanId, op.spanId);
  assert.equal((await serverOf(client)).traceId, op.traceId);
  assert.equal(out.received.traceparent.slice(36, 52), client.spanId);
  await p.close();
});

test('Node (an edge-like runtime): every instrumentation installs as a no-op without errors', async () => {
  const { setupTracing } = await import(path.join(ROOT, 'pkg/tracelink.js'));
  const wasm = await readFile(path.join(ROOT, 'pkg/tracelink.wasm'));
  const tracing = await setupTracing({
    wasm, serviceName: 'e2e-node-noop', otlpEndpoint: collector.tracesUrl, instrumentXhr: true, instrumentDocumentLoad: true,
    instrumentNavigation: true, instrumentInteractions: true, instrumentErrors: true, instrumentWebVitals: true,
  });
  await tracing.traceOperation('still traced', async () => {});
  await tracing.shutdown();
  const stats = tracing.stats();
  assert.equal(stats.internalErrors, 0);
  assert.equal(stats.exported, 1);
});
