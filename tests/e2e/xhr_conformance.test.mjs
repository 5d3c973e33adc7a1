// XHR conformance: the same matrix of XMLHttpRequest uses runs in headless
// Chromium without tracelink and with instrumentXhr, and everything the app
// can observe must match: the order of events (readyState, loaded/total),
// upload progress, status, headers, every responseType, what is thrown (sync
// requests, invalid calls), aborts, timeouts, reuse of one object, and what
// the servers received, except the trace headers we add, which must appear
// exactly where allowed (and a caller's own traceparent is kept, never
// duplicated).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ROOT, startStaticServer, freePort, stopAll } from '../support/peers.mjs';
import { launchChromium, openPage } from '../support/browser.mjs';

const TRACE_HEADERS = ['traceparent', 'tracestate', 'baggage', 'x-correlation-id'];
const CALLER_TRACEPARENT = '00-11111111111111111111111111111111-2222222222222222-01';
let site, api, stranger, browser, deadPort;
const seen = []; // every request a server got: { server, path, method, headers, body }

/** An echo endpoint: records the request, answers by path. */
function echo(server, { allowHeaders }) {
  return (req, res, { url, body }) => {
    const origin = req.headers.origin;
    const cors = origin ? { 'access-control-allow-origin': origin, 'access-control-expose-headers': 'x-echo' } : {};
    if (req.method === 'OPTIONS') { // recorded (never cached): a preflight the app did not cause would show
      seen.push({ server, path: url.pathname + url.search, method: req.method, headers: req.headers, body: '' });
      res.writeHead(204, { ...cors, 'access-control-allow-methods': 'GET, POST, PUT', 'access-control-allow-headers': allowHeaders, 'access-control-max-age': '0' });
      return res.end();
    }
    seen.push({ server, path: url.pathname + url.search, method: req.method, headers: req.headers, body: body.toString('latin1') });
    const path = url.pathname.replace(/^\/ignored/, '');
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
    if (path === '/html') {
      res.writeHead(200, { ...cors, 'content-type': 'text/html' });
      return res.end('<!doctype html><title>t</title><p>html</p>');
    }
    res.writeHead(200, { ...cors, 'content-type': 'application/json', 'x-echo': req.method });
    return res.end(JSON.stringify({
      method: req.method, ctype: req.headers['content-type']?.replace(/boundary=.*/, 'boundary=B') ?? null, len: body.length,
      app: req.headers['x-app'] ?? null,
    }));
  };
}

before(async () => {
  site = await startStaticServer({ root: ROOT });
  for (const p of ['/echo', '/status/*', '/redirect', '/slow', '/html', '/ignored/*']) site.route(p, echo('site', { allowHeaders: '' }));
  api = await startStaticServer({ routes: { '/*': echo('api', { allowHeaders: 'traceparent, tracestate, content-type, x-app' }) } });
  stranger = await startStaticServer({ routes: { '/*': echo('stranger', { allowHeaders: 'x-app, content-type' }) } });
  deadPort = await freePort();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  stopAll();
});

/** The matrix; runs inside the page. Each case opens and sends, and returns how many loadend events to wait for. */
function runMatrix({ site, api, stranger, deadPort, callerTraceparent }) {
  const EVENTS = ['readystatechange', 'loadstart', 'progress', 'load', 'error', 'abort', 'timeout', 'loadend'];
  const watch = (target, log, prefix = '') => {
    for (const type of EVENTS) {
      target.addEventListener(type, (e) => {
        const xhr = target instanceof XMLHttpRequest ? target : null;
        let entry = `${prefix}${type}`;
        if (xhr) entry += `:${xhr.readyState}`;
        if (type !== 'readystatechange' && type !== 'progress') entry += `:${e.loaded}/${e.total}`;
        if (log[log.length - 1] !== entry) log.push(entry); // repeated progress / LOADING: chunking may vary
      });
    }
  };
  const snapshot = (xhr) => {
    let response;
    try {
      const r = xhr.response;
      response = r instanceof ArrayBuffer ? `ArrayBuffer(${r.byteLength})` : r instanceof Blob ? `Blob(${r.size}, ${r.type})`
        : r instanceof Document ? `Document(${r.querySelector('p')?.textContent})` : JSON.stringify(r);
    } catch (e) { response = `throws ${e.name}`; }
    let text;
    try { text = xhr.responseText; } catch (e) { text = `throws ${e.name}`; }
    const headers = xhr.getAllResponseHeaders().split('\r\n')
      .filter((l) => l && !/^(date|keep-alive|connection|traceresponse|server-timing|timing-allow-origin):/i.test(l)).sort();
    return { readyState: xhr.readyState, status: xhr.status, statusText: xhr.statusText, responseURL: xhr.responseURL, responseType: xhr.responseType, response, text, headers };
  };
  const thrown = (e) => ({ class: e?.constructor?.name, name: e?.name, message: e?.message });
  const attempt = (log, what, f) => { try { f(); log.push(`${what}: ok`); } catch (e) { log.push(`${what}: ${e.name}: ${e.message}`); } };
  const form = () => { const f = new FormData(); f.append('a', '1'); return f; };

  const cases = {
    'GET text': (x) => { x.open('GET', `${site}/echo?q=1`); x.send(); return 1; },
    'GET relative URL': (x) => { x.open('GET', '/echo?q=2'); x.send(); return 1; },
    'GET, async undefined': (x) => { x.open('GET', `${site}/echo?q=3`, undefined); x.send(); return 1; },
    'POST string': (x) => { x.open('POST', `${site}/echo`); x.setRequestHeader('content-type', 'text/plain'); x.send('hello'); return 1; },
    'POST FormData': (x) => { x.open('POST', `${site}/echo`); x.send(form()); return 1; },
    'POST Blob': (x) => { x.open('POST', `${site}/echo`); x.send(new Blob(['blob!'], { type: 'application/x-blob' })); return 1; },
    'POST ArrayBuffer': (x) => { x.open('POST', `${site}/echo`); x.send(new Uint8Array([1, 2, 3]).buffer); return 1; },
    'POST typed array': (x) => { x.open('POST', `${site}/echo`); x.send(new Uint16Array([1, 2])); return 1; },
    'POST URLSearchParams': (x) => { x.open('POST', `${site}/echo`); x.send(new URLSearchParams({ a: '1' })); return 1; },
    'put (normalized method)': (x) => { x.open('put', `${site}/echo`); x.send('p'); return 1; },
    'GET with a body (ignored)': (x) => { x.open('GET', `${site}/echo?q=body`); x.send('ignored'); return 1; },
    'responseType json': (x) => { x.open('GET', `${site}/echo?q=json`); x.responseType = 'json'; x.send(); return 1; },
    'responseType arraybuffer': (x) => { x.open('GET', `${site}/echo?q=ab`); x.responseType = 'arraybuffer'; x.send(); return 1; },
    'responseType blob': (x) => { x.open('GET', `${site}/echo?q=blob`); x.responseType = 'blob'; x.send(); return 1; },
    'responseType document': (x) => { x.open('GET', `${site}/html`); x.responseType = 'document'; x.send(); return 1; },
    'responseType text': (x) => { x.open('GET', `${site}/echo?q=text`); x.responseType = 'text'; x.send(); return 1; },
    'overrideMimeType': (x) => { x.open('GET', `${site}/echo?q=mime`); x.overrideMimeType('text/plain; charset=x-user-defined'); x.send(); return 1; },
    'HTTP 404': (x) => { x.open('GET', `${site}/status/404`); x.send(); return 1; },
    'HTTP 500': (x) => { x.open('GET', `${site}/status/500`); x.send(); return 1; },
    'redirect': (x) => { x.open('GET', `${site}/redirect`); x.send(); return 1; },
    'sync GET': (x) => { x.open('GET', `${site}/echo?q=sync`, false); x.send(); return 0; },
    'sync POST': (x) => { x.open('POST', `${site}/echo?q=sync`, false); x.send('sync body'); return 0; },
    'sync HTTP 500': (x) => { x.open('GET', `${site}/status/500`, false); x.send(); return 0; },
    'sync network error': (x) => { x.open('GET', `http://127.0.0.1:${deadPort}/nothing`, false); x.send(); return 0; },
    'sync + responseType (window)': (x) => { x.open('GET', `${site}/echo`, false); x.responseType = 'json'; return 0; },
    'sync + timeout (window)': (x) => { x.open('GET', `${site}/echo`, false); x.timeout = 10; return 0; },
    'network error': (x) => { x.open('GET', `http://127.0.0.1:${deadPort}/nothing`); x.send(); return 1; },
    'abort in flight': (x) => { x.open('GET', `${site}/slow?q=abort`); x.send(); setTimeout(() => x.abort(), 50); return 1; },
    'abort right after send': (x) => { x.open('GET', `${site}/echo?q=abort-now`); x.send(); x.abort(); return 1; },
    'abort before send': (x) => { x.open('GET', `${site}/echo?q=never`); x.abort(); return 0; },
    'timeout': (x) => { x.open('GET', `${site}/slow?q=timeout`); x.timeout = 100; x.send(); return 1; },
    'open again in flight': (x) => {
      x.open('GET', `${site}/slow?q=replaced`);
      x.send();
      setTimeout(() => { x.open('GET', `${site}/echo?q=reopened`); x.send(); }, 50);
      return 1;
    },
    'reuse after loadend': (x) => {
      let n = 0;
      x.addEventListener('loadend', () => { if (n++ === 0) { x.open('GET', `${site}/echo?q=second`); x.send(); } });
      x.open('GET', `${site}/echo?q=first`);
      x.send();
      return 2;
    },
    'reuse inside onload': (x) => {
      let n = 0;
      x.onload = () => { if (n++ === 0) { x.open('POST', `${site}/echo?q=from-onload`); x.send('again'); } };
      x.open('GET', `${site}/echo?q=before-onload`);
      x.send();
      return 2;
    },
    'send twice': (x, log) => { x.open('GET', `${site}/echo?q=twice`); x.send(); attempt(log, 'second send', () => x.send()); return 1; },
    'send before open': (x) => { x.send(); return 0; },
    'setRequestHeader before open': (x) => { x.setRequestHeader('x-app', '1'); return 0; },
    'setRequestHeader after send': (x, log) => {
      x.open('GET', `${site}/echo?q=late-header`);
      x.send();
      attempt(log, 'late header', () => x.setRequestHeader('x-app', 'late'));
      return 1;
    },
    'open CONNECT': (x) => { x.open('CONNECT', `${site}/echo`); return 0; },
    'open bad method': (x) => { x.open('bad method', `${site}/echo`); return 0; },
    'open invalid URL': (x) => { x.open('GET', 'http://exa mple.com:99999/'); return 0; },
    'bad header name': (x) => { x.open('GET', `${site}/echo`); x.setRequestHeader('bad header', 'x'); return 0; },
    'forbidden header ignored': (x) => { x.open('GET', `${site}/echo?q=cookie`); x.setRequestHeader('Cookie', 'a=1'); x.send(); return 1; },
    'repeated header combined': (x) => {
      x.open('GET', `${site}/echo?q=combined`);
      x.setRequestHeader('x-app', 'a');
      x.setRequestHeader('x-app', 'b');
      x.send();
      return 1;
    },
    'caller traceparent kept': (x) => { x.open('GET', `${site}/echo?q=caller-tp`); x.setRequestHeader('traceparent', callerTraceparent); x.send(); return 1; },
    'caller TraceParent (any case) kept': (x) => { x.open('GET', `${site}/echo?q=caller-tp-case`); x.setRequestHeader('TraceParent', callerTraceparent); x.send(); return 1; },
    'upload progress': (x, log) => { x.open('POST', `${site}/echo?q=upload`); watch(x.upload, log, 'upload.'); x.send(new Uint8Array(65536)); return 1; },
    'upload progress, cross-origin allowlisted': (x, log) => {
      x.open('POST', `${api}/echo?q=upload`);
      watch(x.upload, log, 'upload.');
      x.send(new Uint8Array(1024));
      return 1;
    },
    'cross-origin allowlisted': (x) => { x.open('GET', `${api}/echo?q=api`); x.setRequestHeader('x-app', 'api'); x.send(); return 1; },
    'cross-origin stranger': (x) => { x.open('GET', `${stranger}/echo?q=stranger`); x.setRequestHeader('x-app', 'stranger'); x.send(); return 1; },
    'cross-origin stranger, simple POST (no preflight)': (x) => {
      x.open('POST', `${stranger}/echo?q=simple`);
      x.setRequestHeader('content-type', 'text/plain');
      x.send('simple');
      return 1;
    },
    'cross-origin stranger, withCredentials': (x) => { x.open('GET', `${stranger}/echo?q=creds`); x.withCredentials = true; x.send(); return 1; },
    'ignored URL': (x) => { x.open('GET', `${site}/ignored/echo?q=ignored`); x.send(); return 1; },
    'handlers set before open': (x, log) => {
      x.onreadystatechange = () => log.push(`onreadystatechange ${x.readyState}`);
      x.onloadend = () => log.push('onloadend');
      x.open('GET', `${site}/echo?q=handlers`);
      x.send();
      return 1;
    },
  };

  const run = (setup) => new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    const log = [];
    watch(xhr, log);
    let expected = Infinity;
    let loadends = 0;
    let done = false;
    const finish = (extra) => {
      if (done) return;
      done = true;
      resolve({ log, ...snapshot(xhr), ...extra });
    };
    xhr.addEventListener('loadend', () => { if (++loadends >= expected) setTimeout(finish); });
    try {
      expected = setup(xhr, log);
      if (loadends >= expected) setTimeout(finish);
    } catch (e) {
      finish({ thrown: thrown(e) });
    }
  });
  return (async () => {
    const out = {};
    for (const [name, setup] of Object.entries(cases)) out[name] = await run(setup);
    return out;
  })();
}

function received(from) {
  return seen.slice(from).filter((r) => !r.path.includes('abort-now')) // may or may not reach the server
    .map((r) => ({
      server: r.server, path: r.path, method: r.method, body: r.body.replace(/-{4}WebKitFormBoundary\w+/g, 'BOUNDARY'),
      headers: Object.fromEntries(Object.entries(r.headers).filter(([k]) => !TRACE_HEADERS.includes(k))
        .map(([k, v]) => [k, k === 'content-type' ? v.replace(/boundary=.*/, 'boundary=B')
          : k === 'access-control-request-headers' ? v.split(',').filter((h) => !TRACE_HEADERS.includes(h)).join(',') : v])
        .filter(([k, v]) => v !== '' && !['connection', 'keep-alive', 'sec-fetch-site'].includes(k))),
      traceparent: r.headers.traceparent,
    }));
}

test('XMLHttpRequest with instrumentXhr is indistinguishable from without, across the matrix', async () => {
  const page = await openPage(browser, `${site.url}/tests/e2e/pages/index.html`);
  await page.waitForFunction(() => document.documentElement.dataset.ready === 'true');
  const bases = { site: site.url, api: api.url, stranger: stranger.url, deadPort, callerTraceparent: CALLER_TRACEPARENT };

  const plainFrom = seen.length;
  const plain = await page.evaluate(runMatrix, bases);
  const plainSeen = received(plainFrom);
  const plainErrors = page.pageErrors.length;

  await page.evaluate(async ({ api, site }) => {
    globalThis.t = await tracelink.setupTracing({
      serviceName: 'xhr-conformance', otlpEndpoint: 'http://127.0.0.1:9/v1/traces', propagateTo: [api], instrumentXhr: true,
      ignoreUrls: [`${site}/ignored/`], correlationIdHeader: 'X-Correlation-ID',
    });
  }, { api: api.url, site: site.url });
  const tracedFrom = seen.length;
  const traced = await page.evaluate(runMatrix, bases);
  const tracedSeen = received(tracedFrom);

  for (const name of Object.keys(plain)) assert.deepEqual(traced[name], plain[name], `case "${name}" differs`);
  assert.equal(page.pageErrors.length, 2 * plainErrors, 'the same page errors');
  assert.equal(tracedSeen.length, plainSeen.length, 'the servers received the same number of requests');
  const sorted = (list) => [...list].sort((a, b) => `${a.server}${a.path}${a.method}`.localeCompare(`${b.server}${b.path}${b.method}`));
  const [p, t] = [sorted(plainSeen), sorted(tracedSeen)];
  for (let i = 0; i < p.length; i++) {
    const { traceparent: before, ...pr } = p[i];
    const { traceparent: after, ...tr } = t[i];
    assert.deepEqual(tr, pr, `request ${i} (${pr.server} ${pr.method} ${pr.path}) differs beyond trace headers`);
    if (before) {
      assert.equal(after, before, `${pr.path}: a caller traceparent is kept as is, not duplicated`);
    } else if (pr.server === 'stranger' || pr.path.startsWith('/ignored/') || pr.method === 'OPTIONS') {
      assert.equal(after, undefined, `${pr.path}: no traceparent to a non-allowlisted origin or an ignored URL`);
    } else {
      assert.match(after ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$/, `traceparent added for ${pr.server} ${pr.method} ${pr.path}`);
    }
  }
  // Sanity: the matrix covered successes, HTTP errors, thrown errors, aborts, timeouts and upload events.
  const all = Object.values(plain);
  assert.ok(all.some((r) => r.status === 200) && all.some((r) => r.status === 404));
  assert.ok(all.some((r) => r.thrown?.name === 'NetworkError') && all.some((r) => r.thrown?.name === 'InvalidStateError'));
  assert.ok(all.some((r) => r.log.includes('abort:4:0/0')) && all.some((r) => r.log.some((l) => l.startsWith('timeout:'))));
  assert.ok(plain['upload progress'].log.some((l) => l.startsWith('upload.load:')), JSON.stringify(plain['upload progress'].log));
  assert.equal(plain['reuse after loadend'].log.filter((l) => l.startsWith('loadend')).length, 2);
  const stats = await page.evaluate(() => t.stats());
  assert.equal(stats.internalErrors, 0, JSON.stringify(stats));
  await page.close();
});
