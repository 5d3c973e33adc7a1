// Fetch conformance: the same matrix of calls runs in headless Chromium with
// the real fetch and with tracelink's wrapper (instrumentFetch), and every
// observable result must match: status, headers, body, redirects, response
// type, the error thrown (class, name, message, identity for abort reasons),
// and what the server received (except the trace headers we add, which must
// appear exactly where allowed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT, startStaticServer, freePort, stopAll } from '../support/peers.mjs';
import { launchChromium, openPage } from '../support/browser.mjs';

const TRACE_HEADERS = ['traceparent', 'tracestate', 'baggage'];
let site, api, stranger, browser, deadPort;
const seen = []; // every request any server got: { server, path, method, headers, body }

/** An echo endpoint: records the request, answers by path. */
function echo(server, { corsHeaders }) {
  return (req, res, { url, body }) => {
    const origin = req.headers.origin;
    const cors = {};
    if (origin && corsHeaders !== null) {
      cors['access-control-allow-origin'] = origin;
      cors['access-control-expose-headers'] = 'x-echo, x-body-length';
    }
    if (req.method === 'OPTIONS') {
      cors['access-control-allow-methods'] = 'GET, POST, PUT, DELETE, PATCH';
      cors['access-control-allow-headers'] = corsHeaders ?? '';
      res.writeHead(204, cors);
      return res.end();
    }
    seen.push({ server, path: url.pathname + url.search, method: req.method, headers: req.headers, body: body.toString('latin1') });
    const path = url.pathname;
    if (path.startsWith('/status/')) {
      res.writeHead(Number(path.slice(8)), { ...cors, 'content-type': 'text/plain', 'x-echo': 'status' });
      return res.end(`status ${path.slice(8)}`);
    }
    if (path === '/redirect') {
      res.writeHead(302, { ...cors, location: '/echo?from=redirect' });
      return res.end();
    }
    if (path === '/slow') {
      const t = setTimeout(() => { res.writeHead(200, cors); res.end('slow'); }, 3000);
      res.on('close', () => clearTimeout(t));
      return undefined;
    }
    res.writeHead(200, { ...cors, 'content-type': 'application/json', 'x-echo': req.method, 'x-body-length': String(body.length) });
    return res.end(JSON.stringify({ method: req.method, ctype: req.headers['content-type']?.replace(/boundary=.*/, 'boundary=B') ?? null, len: body.length }));
  };
}

before(async () => {
  site = await startStaticServer({ root: ROOT });
  site.route('/echo', echo('site', { corsHeaders: undefined }));
  for (const p of ['/status/*', '/redirect', '/slow']) site.route(p, echo('site', {}));
  // Allowlisted cross-origin API: its CORS allows the trace headers.
  api = await startStaticServer({ routes: { '/*': echo('api', { corsHeaders: 'traceparent, tracestate, content-type, x-app' }) } });
  // Not allowlisted: its CORS allows only x-app; a traceparent would break the request.
  stranger = await startStaticServer({ routes: { '/*': echo('stranger', { corsHeaders: 'x-app, content-type' }) } });
  deadPort = await freePort();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  stopAll();
});

/** The call matrix; runs inside the page. Each case returns [input, init]. */
function runMatrix({ site, api, stranger, deadPort }) {
  const stream = (text) => new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(text)); c.close(); } });
  const form = () => { const f = new FormData(); f.append('a', '1'); return f; };
  const preAborted = () => { const c = new AbortController(); c.abort(new DOMException('stop now', 'AbortError')); return c.signal; };
  const abortSoon = () => { const c = new AbortController(); setTimeout(() => c.abort(), 50); return c.signal; };
  const reason = new Error('custom abort reason');
  const abortWithReason = () => { const c = new AbortController(); c.abort(reason); return c.signal; };
  const cases = {
    'string url': () => [`${site}/echo?q=1`],
    'URL object': () => [new URL(`${site}/echo?q=2`)],
    'relative url': () => ['/echo?q=3'],
    'Request': () => [new Request(`${site}/echo`, { headers: new Headers({ 'x-app': 'req' }) })],
    'Request + init override': () => [new Request(`${site}/echo`, { method: 'PUT', body: 'a' }), { method: 'POST', body: 'override', headers: { 'x-app': 'init' } }],
    'Request POST body, no init': () => [new Request(`${site}/echo`, { method: 'POST', body: 'req-body', headers: { 'content-type': 'text/x-test' } })],
    'headers: array': () => [`${site}/echo`, { headers: [['x-app', 'arr'], ['x-app', 'arr2']] }],
    'headers: record': () => [`${site}/echo`, { headers: { 'X-App': 'rec' } }],
    'headers: Headers': () => [`${site}/echo`, { headers: new Headers({ 'x-app': 'hdrs' }) }],
    'caller traceparent kept': () => [`${site}/echo`, { headers: { traceparent: '00-11111111111111111111111111111111-2222222222222222-01' } }],
    'POST string': () => [`${site}/echo`, { method: 'POST', body: 'hello' }],
    'POST Blob': () => [`${site}/echo`, { method: 'POST', body: new Blob(['blob!'], { type: 'application/x-blob' }) }],
    'POST URLSearchParams': () => [`${site}/echo`, { method: 'POST', body: new URLSearchParams({ a: '1', b: '2' }) }],
    'POST FormData': () => [`${site}/echo`, { method: 'POST', body: form() }],
    'POST ArrayBuffer': () => [`${site}/echo`, { method: 'POST', body: new Uint8Array([1, 2, 3]).buffer }],
    'POST stream (duplex half)': () => [`${site}/echo`, { method: 'POST', body: stream('streamed'), duplex: 'half' }],
    'POST stream without duplex': () => [`${site}/echo`, { method: 'POST', body: stream('x') }],
    'keepalive POST': () => [`${site}/echo`, { method: 'POST', body: 'k', keepalive: true }],
    'HTTP 404': () => [`${site}/status/404`],
    'HTTP 500': () => [`${site}/status/500`],
    'redirect follow': () => [`${site}/redirect`],
    'redirect manual': () => [`${site}/redirect`, { redirect: 'manual' }],
    'redirect error': () => [`${site}/redirect`, { redirect: 'error' }],
    'pre-aborted': () => [`${site}/echo`, { signal: preAborted() }],
    'abort in flight': () => [`${site}/slow`, { signal: abortSoon() }],
    'abort with reason': () => [`${site}/echo`, { signal: abortWithReason() }],
    'network error': () => [`http://127.0.0.1:${deadPort}/nothing`],
    'invalid URL': () => ['http://exa mple.com:99999/'],
    'invalid method': () => [`${site}/echo`, { method: 'CONNECT' }],
    'GET with body': () => [`${site}/echo`, { method: 'GET', body: 'x' }],
    'bad header name': () => [`${site}/echo`, { headers: { 'bad header': 'x' } }],
    'cross-origin allowlisted': () => [`${api}/echo`, { headers: { 'x-app': 'api' } }],
    'cross-origin allowlisted POST json': () => [`${api}/echo`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }],
    'cross-origin stranger': () => [`${stranger}/echo`, { headers: { 'x-app': 'stranger' } }],
    'cross-origin stranger no-cors': () => [`${stranger}/echo`, { mode: 'no-cors' }],
    'same-origin mode': () => [`${stranger}/echo`, { mode: 'same-origin' }],
    'credentials omit': () => [`${site}/echo`, { credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' }],
    'init with getter': () => [`${site}/echo`, Object.create({ get method() { return 'DELETE'; } })],
    'Request as init': () => [`${site}/echo`, new Request(`${site}/ignored`, { method: 'PATCH', body: 'via request init' })],
    'no arguments': () => [],
  };
  const describe = async (fn) => {
    let args;
    try { args = fn(); } catch (e) { return { setupError: String(e) }; }
    try {
      const res = await fetch(...args);
      const headers = {};
      res.headers.forEach((v, k) => { if (!['date', 'keep-alive', 'connection', 'traceresponse', 'server-timing'].includes(k)) headers[k] = v; });
      let body;
      try { body = await res.text(); } catch (e) { body = `body error ${e.name}: ${e.message}`; }
      return { ok: res.ok, status: res.status, statusText: res.statusText, type: res.type, redirected: res.redirected, url: res.url, headers, body };
    } catch (e) {
      return { error: { class: e?.constructor?.name, name: e?.name, message: e?.message, isReason: e === reason } };
    }
  };
  return (async () => {
    const out = {};
    for (const [name, fn] of Object.entries(cases)) out[name] = await describe(fn);
    return out;
  })();
}

function received(from) {
  return seen.slice(from).map((r) => ({
    server: r.server, path: r.path, method: r.method, body: r.body.replace(/-{4}WebKitFormBoundary\w+/g, 'BOUNDARY'),
    headers: Object.fromEntries(Object.entries(r.headers).filter(([k]) => !TRACE_HEADERS.includes(k))
      .map(([k, v]) => [k, k === 'content-type' ? v.replace(/boundary=.*/, 'boundary=B') : v])
      .filter(([k]) => !['connection', 'keep-alive', 'sec-fetch-site'].includes(k))),
    traceparent: r.headers.traceparent,
  }));
}

test('traced fetch is indistinguishable from fetch across the call matrix', async () => {
  const page = await openPage(browser, `${site.url}/tests/e2e/pages/index.html`);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  const bases = { site: site.url, api: api.url, stranger: stranger.url, deadPort };

  const plainFrom = seen.length;
  const plain = await page.evaluate(runMatrix, bases);
  const plainSeen = received(plainFrom);

  await page.evaluate(async (api) => {
    globalThis.t = await tracelink.setupTracing({
      serviceName: 'conformance', otlpEndpoint: 'http://127.0.0.1:9/v1/traces', propagateTo: [api], instrumentFetch: true,
    });
  }, api.url);
  const tracedFrom = seen.length;
  const traced = await page.evaluate(runMatrix, bases);
  const tracedSeen = received(tracedFrom);

  for (const name of Object.keys(plain)) {
    assert.deepEqual(traced[name], plain[name], `case "${name}" differs`);
  }
  assert.equal(tracedSeen.length, plainSeen.length, 'the servers received the same number of requests');
  for (let i = 0; i < plainSeen.length; i++) {
    const { traceparent: before, ...p } = plainSeen[i];
    const { traceparent: after, ...t } = tracedSeen[i];
    assert.deepEqual(t, p, `request ${i} (${p.server} ${p.method} ${p.path}) differs beyond trace headers`);
    if (before) {
      assert.equal(after, before, 'a caller traceparent is kept as is');
    } else if (t.server === 'stranger') {
      assert.equal(after, undefined, 'no traceparent to a non-allowlisted origin');
    } else {
      assert.match(after ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$/, `traceparent added for ${t.server} ${t.path}`);
    }
  }
  // Sanity: the matrix covered successes, HTTP errors, thrown errors and aborts.
  const kinds = Object.values(plain);
  assert.ok(kinds.some((r) => r.status === 200) && kinds.some((r) => r.status === 404));
  assert.ok(kinds.some((r) => r.error?.name === 'AbortError') && kinds.some((r) => r.error?.isReason));
  assert.ok(kinds.some((r) => r.error?.name === 'TypeError'));
  const stats = await page.evaluate(() => t.stats());
  assert.equal(stats.internalErrors, 0, JSON.stringify(stats));
  assert.deepEqual(page.pageErrors, []);
  await page.close();
});
