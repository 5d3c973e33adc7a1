// Cross-origin end to end, with the backend half (python/, tracelink-backend) as a user sets it
// up: a FastAPI app whose only tracelink code is `instrument_app(app, allow_origins=[page],
// relay_path='/otlp/v1/traces', collector=rotel)` (tests/peers/cross_origin_app.py), and a page
// on another origin (another 127.0.0.1 port) that loads pkg/, calls the app's API with trace
// headers (so every call is preflighted) and exports its spans through the app's relay.
//
//   - the join: the preflight succeeds (seen in Chromium's network log and the app's access
//     log), the app's SERVER span is the child of the page's fetch CLIENT span, itself the child
//     of the operation span; the correlation id reaches the server span; the page's spans reach
//     rotel only through the relay.
//   - an origin the app does not allow gets no CORS grant: the preflight is refused, the request
//     never reaches the app, the page's fetch rejects with a TypeError, and tracing goes on.
//   - clock skew: with the page's clock 5 minutes fast or slow, the first fetch's span is off by
//     those 5 minutes (uncorrected: the test could fail), and once two responses agree on the
//     offset every client span encloses its server child (from the SERVER span's start to the
//     response headers leaving: a fetch span ends at the headers) within the round trip's
//     uncertainty; a right clock is left alone.
//
// Needs pkg/ built (scripts/build.sh) and scripts/setup.sh's tools (Chromium, .tools/venv).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchChromium } from '../support/browser.mjs';
import { ROOT, corsFront, startCollector, startStaticServer, startTracelinkApp, stopAll } from '../support/peers.mjs';

const CLIENT = 3;
const SERVER = 2;
const OFFSET_ATTRIBUTE = 'tracelink.clock_offset_ms';
const PAGE_PATH = '/tests/e2e/pages/index.html';
const SHIFT_MS = 5 * 60 * 1000;

let collector;
let site; // the page's origin, allowed by the app
let stranger; // another origin, not allowed by the app
let app;
let browser;

before(async () => {
  collector = await startCollector();
  const noFavicon = (req, res) => { res.writeHead(204); res.end(); };
  site = await startStaticServer({ root: ROOT, routes: { '/favicon.ico': noFavicon } });
  // The stranger's spans go to rotel through a same-origin CORS front (the app's relay refuses it).
  stranger = await startStaticServer({ root: ROOT, routes: { '/favicon.ico': noFavicon,
    '/v1/traces': corsFront({ upstream: collector.httpUrl, allowOrigins: [] }) } });
  app = await startTracelinkApp({ collectorUrl: collector.httpUrl, allowOrigins: [site.url],
    service: 'cross-origin-backend' });
  browser = await launchChromium();
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await stopAll();
  }
});

// ---------------------------------------------------------------------------------------------
// The page

/**
 * Runs in the page before any of its scripts: the page's wall clock reads `shiftMs` off, as a
 * browser on a machine with a wrong clock would. `Date` (now() and `new Date()`) and
 * `performance.timeOrigin` move together; `performance.now()` and timers are untouched (time
 * keeps flowing). Playwright's page.clock is not used: it replaces timers and the whole
 * `performance` object (millisecond-rounded now(), empty getEntries()).
 */
function shiftPageClock(shiftMs) {
  const NativeDate = Date;
  const now = () => NativeDate.now() + shiftMs;
  function ShiftedDate(...args) {
    if (new.target === undefined) return new NativeDate(now()).toString();
    return Reflect.construct(NativeDate, args.length ? args : [now()], new.target);
  }
  Object.setPrototypeOf(ShiftedDate, NativeDate); // parse, UTC
  ShiftedDate.prototype = NativeDate.prototype;
  ShiftedDate.now = now;
  globalThis.Date = ShiftedDate;
  const origin = performance.timeOrigin + shiftMs;
  Object.defineProperty(Performance.prototype, 'timeOrigin', { configurable: true, enumerable: true, get: () => origin });
}

/**
 * The test page on `origin` in a fresh browser context (no cached preflights), its clock shifted
 * by `shiftMs`, with tracelink set up to trace fetches to the app and export through its relay.
 * `.network` lists Chromium's view of every request (preflights included, which Playwright's
 * request events leave out); `.problems` page errors and console errors.
 */
async function openTracedPage(origin, { shiftMs = 0, otlpEndpoint = app.relayUrl, serviceName = 'cross-origin-page' } = {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push(`console.error: ${m.text()}`); });
  page.network = await recordNetwork(context, page);
  if (shiftMs) await page.addInitScript(shiftPageClock, shiftMs);
  await page.goto(`${origin}${PAGE_PATH}`);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  await page.evaluate(async ({ serviceName, otlpEndpoint, backend }) => {
    globalThis.tracing = await tracelink.setupTracing({
      serviceName, otlpEndpoint, propagateTo: [backend], instrumentFetch: true,
      correlationIdHeader: 'X-Correlation-ID', scheduleDelayMillis: 100,
    });
  }, { serviceName, otlpEndpoint, backend: app.url });
  return page;
}

/** Chromium's network log of `page` (CDP): { id, method, url, preflight, status, error, corsError }. */
async function recordNetwork(context, page) {
  const cdp = await context.newCDPSession(page);
  const requests = new Map();
  cdp.on('Network.requestWillBeSent', (e) => requests.set(e.requestId, { id: e.requestId, method: e.request.method,
    url: e.request.url, preflight: e.initiator?.type === 'preflight', status: null, error: null, corsError: null }));
  cdp.on('Network.responseReceived', (e) => { const r = requests.get(e.requestId); if (r) r.status = e.response.status; });
  cdp.on('Network.loadingFailed', (e) => {
    const r = requests.get(e.requestId);
    if (r) Object.assign(r, { error: e.errorText, corsError: e.corsErrorStatus?.corsError ?? null });
  });
  await cdp.send('Network.enable');
  return { all: () => [...requests.values()] };
}

/** One operation around one traced fetch of the app's /api/hello; never rejects. */
function callApp(page, name, correlationId) {
  return page.evaluate(async ({ name, correlationId, url }) => tracing.traceOperation(name, { correlationId }, async (span) => {
    const out = { traceId: span.traceId, spanId: span.spanId };
    try {
      const res = await fetch(url);
      return { ...out, status: res.status, body: await res.json(), traceresponse: res.headers.get('traceresponse') };
    } catch (e) {
      return { ...out, error: `${e?.name}: ${e?.message}` };
    }
  }), { name, correlationId, url: `${app.url}/api/hello` });
}

async function flushed(page) {
  await page.evaluate(() => tracing.flush());
  return page.evaluate(() => tracing.stats());
}

// ---------------------------------------------------------------------------------------------
// Reading spans back

const ms = (unixNano) => Number(unixNano) / 1e6;
const startMs = (span) => ms(span.startTimeUnixNano);
const endMs = (span) => ms(span.endTimeUnixNano);
const service = (span) => span.resource['service.name'];

/**
 * Operation span, its fetch CLIENT span, the app's SERVER span and the instrumentation's span
 * around sending the response headers (`asgi.event.type` http.response.start, a child of the
 * SERVER span) of trace `traceId`, once all are in rotel.
 */
async function joinedTrace(traceId, pageService) {
  const isResponseStart = (s) => s.attributes['asgi.event.type'] === 'http.response.start';
  const spans = await collector.waitForSpans({ where: (s) => s.traceId === traceId &&
    (service(s) === pageService || s.kind === SERVER || isResponseStart(s)), count: 4 });
  const find = (what, where) => {
    const found = spans.filter(where);
    assert.equal(found.length, 1, `trace ${traceId}: one ${what}, got ${found.map((s) => s.name).join(', ') || 'none'}`);
    return found[0];
  };
  const operation = find('operation span', (s) => service(s) === pageService && s.parentSpanId === '');
  const client = find('fetch CLIENT span', (s) => service(s) === pageService && s.kind === CLIENT);
  const server = find('SERVER span', (s) => s.kind === SERVER);
  assert.equal(service(server), 'cross-origin-backend');
  const responseStart = find('response-start span', (s) => isResponseStart(s) && s.parentSpanId === server.spanId);
  return { operation, client, server, responseStart };
}

// ---------------------------------------------------------------------------------------------

test('a page on another origin joins its trace with an instrument_app backend: preflight, relay, correlation id', async () => {
  const page = await openTracedPage(site.url);
  const call = await callApp(page, 'hello.cross-origin', 'corr-cross-1');
  assert.equal(call.error, undefined, `the fetch failed: ${call.error}\n${page.problems.join('\n')}`);
  assert.equal(call.status, 200);
  assert.equal(call.body.trace_id, call.traceId, 'the app handled the request in the page\'s trace');
  assert.equal(call.body.correlation_id, 'corr-cross-1', 'the correlation id reached the app');
  assert.match(call.traceresponse ?? '', new RegExp(`^00-${call.traceId}-[0-9a-f]{16}-0[0-3]$`),
    'traceresponse is exposed to the page');

  const stats = await flushed(page);
  assert.equal(stats.dropped, 0, JSON.stringify(stats));
  assert.equal(stats.internalErrors, 0, JSON.stringify(stats));
  assert.ok(stats.exported >= 2, `operation + fetch spans exported: ${JSON.stringify(stats)}`);

  // The preflight, as Chromium saw it: the API call and the relay export each needed one (the
  // trace headers and the protobuf content type are not CORS-safelisted), and both succeeded
  // (the export may take more than one request; the first preflight is cached for the rest).
  const network = page.network.all();
  const crossOrigin = network.filter((r) => r.url.startsWith(app.url));
  for (const path of ['/api/hello', '/otlp/v1/traces']) {
    const preflights = crossOrigin.filter((r) => r.preflight && r.url === `${app.url}${path}`);
    assert.equal(preflights.length, 1, `one preflight for ${path}: ${JSON.stringify(crossOrigin)}`);
    assert.equal(preflights[0].method, 'OPTIONS');
    assert.equal(preflights[0].status, 200, `preflight for ${path}: ${JSON.stringify(preflights[0])}`);
    const actual = crossOrigin.filter((r) => !r.preflight && r.url === `${app.url}${path}`);
    assert.ok(actual.length >= 1 && actual.every((r) => r.status === 200), `${path}: ${JSON.stringify(actual)}`);
  }
  assert.equal(crossOrigin.filter((r) => !r.preflight && r.url === `${app.url}/api/hello`).length, 1);
  assert.deepEqual(crossOrigin.filter((r) => r.error || r.corsError), [], 'no failed or CORS-blocked request');
  assert.deepEqual(page.problems, [], 'no page errors, no CORS errors on the console');
  // ... and as the app saw it (uvicorn's access log).
  for (const line of ['"OPTIONS /api/hello HTTP/1.1" 200', '"GET /api/hello HTTP/1.1" 200',
    '"OPTIONS /otlp/v1/traces HTTP/1.1" 200', '"POST /otlp/v1/traces HTTP/1.1" 200']) {
    assert.ok(app.log().includes(line), `the app's access log has ${line}:\n${app.log()}`);
  }

  // The joined trace, read back from rotel: operation -> fetch CLIENT -> app SERVER.
  const { operation, client, server } = await joinedTrace(call.traceId, 'cross-origin-page');
  assert.equal(operation.spanId, call.spanId);
  assert.equal(operation.name, 'hello.cross-origin');
  assert.equal(client.parentSpanId, operation.spanId, 'the fetch span is the operation\'s child');
  assert.equal(server.parentSpanId, client.spanId, 'the app\'s SERVER span is the fetch span\'s child');
  assert.equal(call.traceresponse.split('-')[2], server.spanId, 'traceresponse names the SERVER span');
  assert.equal(server.attributes.correlation_id, 'corr-cross-1', 'the correlation id is on the server span');
  assert.equal(operation.attributes.correlation_id, 'corr-cross-1');
  // The page's spans came through the relay: its exporter targets nothing else (the POSTs
  // checked above), and rotel has them with the page's resource.
  assert.equal(client.resource['service.name'], 'cross-origin-page');
  await page.context().close();
});

test('an origin the app does not allow gets no CORS grant; the page and its tracing go on', async () => {
  const getsBefore = app.log().split('"GET /api/hello').length - 1;
  const page = await openTracedPage(stranger.url, { otlpEndpoint: `${stranger.url}/v1/traces`,
    serviceName: 'stranger-page' });
  const call = await callApp(page, 'hello.stranger', 'corr-stranger');
  assert.match(call.error ?? '', /^TypeError: /, `the page's fetch rejects as for any CORS failure: ${JSON.stringify(call)}`);
  // Tracing keeps working on the page: a same-origin traced fetch after the failure.
  const after = await page.evaluate(async () => tracing.traceOperation('own-origin', async (span) =>
    ({ traceId: span.traceId, status: (await fetch('/pkg/package.json')).status })));
  assert.equal(after.status, 200);
  const stats = await flushed(page);
  assert.equal(stats.internalErrors, 0, JSON.stringify(stats));
  assert.equal(stats.dropped, 0, JSON.stringify(stats));

  // Chromium: the preflight was refused (no grant), so the request itself was never sent.
  const toApp = page.network.all().filter((r) => r.url === `${app.url}/api/hello`);
  const preflight = toApp.find((r) => r.preflight);
  assert.ok(preflight, `a preflight: ${JSON.stringify(toApp)}`);
  assert.equal(preflight.status, 400, `Starlette refuses the origin: ${JSON.stringify(preflight)}`);
  const blocked = toApp.find((r) => !r.preflight);
  assert.ok(blocked?.corsError, `the request failed on CORS: ${JSON.stringify(toApp)}`);
  assert.ok(app.log().includes('"OPTIONS /api/hello HTTP/1.1" 400'), app.log());
  assert.equal(app.log().split('"GET /api/hello').length - 1, getsBefore, 'the request never reached the app');

  // The failed fetch is still a span, marked as an error, in its operation's trace.
  const [client] = await collector.waitForSpans({ where: (s) => s.traceId === call.traceId && s.kind === CLIENT });
  assert.equal(client.parentSpanId, call.spanId);
  assert.equal(client.status.code, 2, `status ERROR: ${JSON.stringify(client.status)}`);
  await collector.waitForSpans({ where: (s) => s.traceId === after.traceId && s.kind === CLIENT });
  await page.context().close();
});

for (const shiftMs of [SHIFT_MS, -SHIFT_MS, 0]) {
  const label = shiftMs ? `${shiftMs > 0 ? '+' : '-'}5 min off` : 'right';
  test(`the page's clock ${label}: client spans enclose their server children within the round-trip bound`, async (t) => {
    const serviceName = `page-clock-${shiftMs > 0 ? 'fast' : shiftMs < 0 ? 'slow' : 'right'}`;
    const page = await openTracedPage(site.url, { shiftMs, serviceName });
    const pageClock = await page.evaluate(() => [Date.now(), new Date().getTime(), performance.timeOrigin + performance.now()]);
    for (const time of pageClock) {
      assert.ok(Math.abs(time - Date.now() - shiftMs) < 5000, `the page's clock is ${label}: ${pageClock}`);
    }
    // Warm-up: the estimator applies an offset only once two responses agree on it, so the
    // first traced response (sample 1) is exported uncorrected and from the second one on
    // (sample 2, taken before its span ends) spans are corrected. Two warm-up calls, then three
    // measured ones.
    const calls = [];
    for (let i = 0; i < 5; i++) {
      const call = await callApp(page, `hello.skew.${i}`, `corr-skew-${i}`);
      assert.equal(call.status, 200, `call ${i}: ${JSON.stringify(call)}\n${page.problems.join('\n')}`);
      calls.push(call);
    }
    const stats = await flushed(page);
    assert.equal(stats.dropped, 0, JSON.stringify(stats));
    assert.deepEqual(page.problems, []);
    const traces = [];
    for (const call of calls) traces.push(await joinedTrace(call.traceId, serviceName));

    // The true offset (server clock − page clock): the page reads shiftMs ahead of the server.
    const trueOffsetMs = shiftMs ? -shiftMs : 0;
    const describe = ({ operation, client, server, responseStart }) => JSON.stringify({
      client: [startMs(client), endMs(client)], server: [startMs(server), endMs(server)],
      responseStart: startMs(responseStart),
      operation: [startMs(operation), endMs(operation)], offset: client.attributes[OFFSET_ATTRIBUTE] });

    // With a shifted clock, the first call's client span (uncorrected: one sample) starts shiftMs
    // away from its server child (the request reached the server within the round trip): the
    // spans do not even overlap, so the enclosure checks below can fail.
    const first = traces[0];
    if (shiftMs) {
      const firstRoundTrip = endMs(first.client) - startMs(first.client);
      assert.equal(first.client.attributes[OFFSET_ATTRIBUTE], undefined, `uncorrected: ${describe(first)}`);
      const lead = startMs(first.client) - startMs(first.server) - shiftMs; // in [-round trip, 0]
      assert.ok(lead <= 1 && lead >= -firstRoundTrip - 1, `the first client span is ${label} off: ${describe(first)}`);
      assert.ok(shiftMs > 0 ? startMs(first.client) > endMs(first.server) : endMs(first.client) < startMs(first.server),
        `uncorrected, the client span does not enclose its server child: ${describe(first)}`);
    }

    // Corrected: each measured client span encloses its server child. The offset is the
    // midpoint of an interval at most one round trip wide, so it may be off by half a round
    // trip; the bound is half the call's own round trip (its sample is among those that agree)
    // plus 1 ms (client and server timestamp resolution, the attribute's rounding).
    // The client span starts before the server span and ends after the response headers left
    // the server (the instrumentation's http.response.start span). A fetch span ends when the
    // headers arrive, so the end of the whole SERVER span (body written, span closed: 1 to 10 ms
    // later on this machine, whatever the clocks) is not compared: it may outlast the fetch span.
    for (const [i, trace] of traces.entries()) {
      if (i < 2) continue; // warm-up
      const { operation, client, server, responseStart } = trace;
      const roundTrip = endMs(client) - startMs(client);
      const bound = roundTrip / 2 + 1;
      // A right clock is left alone (no attribute), or moved by no more than the bound.
      const offset = client.attributes[OFFSET_ATTRIBUTE] ?? (shiftMs ? undefined : 0);
      assert.equal(typeof offset, 'number', `call ${i} is corrected: ${describe(trace)}`);
      assert.ok(Math.abs(offset - trueOffsetMs) <= bound,
        `call ${i}: offset ${offset} ms, true ${trueOffsetMs} ms, bound ${bound} ms: ${describe(trace)}`);
      assert.equal(operation.attributes[OFFSET_ATTRIBUTE], client.attributes[OFFSET_ATTRIBUTE], 'one offset per trace');
      assert.ok(startMs(client) <= startMs(server) + bound,
        `call ${i}: client starts before its server child (bound ${bound} ms): ${describe(trace)}`);
      assert.ok(startMs(responseStart) <= endMs(client) + bound,
        `call ${i}: client ends after the server sent its response (bound ${bound} ms): ${describe(trace)}`);
      assert.ok(startMs(operation) <= startMs(client) && endMs(client) <= endMs(operation),
        `call ${i}: the operation encloses its fetch exactly (same clock, same offset): ${describe(trace)}`);
      t.diagnostic(`call ${i}: round trip ${roundTrip.toFixed(3)} ms, offset ${offset} ms (true ${trueOffsetMs}); ` +
        `client starts ${(startMs(server) - startMs(client)).toFixed(3)} ms before the server span, ends ` +
        `${(endMs(client) - startMs(responseStart)).toFixed(3)} ms after the response left ` +
        `(${(endMs(client) - endMs(server)).toFixed(3)} ms after the server span's end)`);
    }
    await page.context().close();
  });
}
