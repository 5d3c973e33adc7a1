// The demo, end to end: node --test --test-concurrency=1 tests/e2e/
//
// The stack of `make demo` (scripts/demo.mjs: trace viewer, rotel forwarding to it, the
// FastAPI backend serving www/ and pkg/) on free ports; headless Chromium clicks
// create -> fetch -> summary on the demo page, and each operation's trace is read back
// from the viewer's Jaeger API: one joined browser -> backend trace per click. Last, the
// page's own trace link is opened in Jaeger UI and a screenshot is saved to
// out/jaeger-trace.png (copy it to docs/ to update the README's picture).
// Needs pkg/ built (scripts/build.sh) and scripts/setup.sh's tools (Chromium, venv, viewer).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { startDemo } from '../../scripts/demo.mjs';
import { launchChromium } from '../support/browser.mjs';
import { ROOT, stopAll } from '../support/peers.mjs';

const SCREENSHOT = process.env.DEMO_SCREENSHOT ?? path.join(ROOT, 'out', 'jaeger-trace.png');
const FRONTEND = 'afirgen-frontend';
const BACKEND = 'afirgen-backend';

let demo;
let browser;
let page;
const problems = []; // page errors and console errors, reported by every test that fails
const operations = {}; // name -> { traceId, correlationId, body, link }

before(async () => {
  demo = await startDemo(); // every port free (0)
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console.error: ${msg.text()}`); });
  page.on('response', (res) => { if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`); });
  await page.goto(demo.appUrl);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await demo?.stop();
    await stopAll();
  }
});

const context = () => (problems.length ? `\npage problems:\n${problems.join('\n')}` : '');

/** Click `button`, wait for the page to count the operation done, return what it shows. */
async function click(button, count) {
  await page.click(button);
  await page.waitForFunction((n) => Number(document.body.dataset.operations) >= n, count, { timeout: 15_000 });
  return page.evaluate(() => ({
    traceId: document.body.dataset.lastTraceId,
    correlationId: document.body.dataset.lastCorrelationId,
    output: document.getElementById('output').textContent,
    failed: document.getElementById('output').className === 'error',
    link: document.getElementById('trace-link').href,
  }));
}

test('create -> fetch -> summary: each click is one traced operation with its own trace', async () => {
  const steps = [['fir.create', '#create'], ['fir.fetch', '#fetch'], ['fir.summary', '#summary']];
  for (const [i, [name, button]] of steps.entries()) {
    const shown = await click(button, i + 1);
    assert.equal(shown.failed, false, `${name} failed on the page: ${shown.output}${context()}`);
    assert.match(shown.traceId, /^[0-9a-f]{32}$/, name);
    assert.match(shown.correlationId, /^[0-9a-f-]{36}$/, name);
    const body = JSON.parse(shown.output);
    assert.equal(body.trace_id, shown.traceId, `${name}: the backend answered in the page's trace`);
    assert.equal(shown.link, `${demo.viewerUrl}trace/${shown.traceId}`, `${name}: the page links to its trace`);
    operations[name] = { ...shown, body };
  }
  assert.equal(new Set(Object.values(operations).map((o) => o.traceId)).size, 3, 'one trace per operation');
  assert.match(operations['fir.create'].body.fir_id, /^FIR-\d{6}$/);
  assert.equal(operations['fir.fetch'].body.fir.fir_id, operations['fir.create'].body.fir_id);
  assert.equal(operations['fir.summary'].body.fir_id, operations['fir.create'].body.fir_id);

  // The page exports on a 500 ms timer: flush now, and nothing may be lost on the way.
  await page.evaluate(() => globalThis.tracing.flush());
  const stats = await page.evaluate(() => globalThis.tracing.stats());
  assert.equal(stats.dropped, 0, `spans dropped: ${JSON.stringify(stats)}`);
  assert.equal(stats.queued, 0, JSON.stringify(stats));
  assert.ok(stats.exported >= 6, `an operation span and a fetch span per click: ${JSON.stringify(stats)}`);
  assert.deepEqual(problems, []);
});

// ---------------------------------------------------------------------------------------------
// Reading a Jaeger API trace

const tag = (span, key) => span.tags.find((t) => t.key === key)?.value;
const service = (trace, span) => trace.processes[span.processID]?.serviceName;
const parentId = (span) => (span.references ?? []).find((r) => r.refType === 'CHILD_OF')?.spanID ?? null;
const isDb = (span) => tag(span, 'db.system') === 'sqlite' || tag(span, 'db.system.name') === 'sqlite';

/** The backend spans each operation must show under its server span, by a predicate each. */
const BACKEND_STEPS = {
  'fir.create': { 'fir.validate': (s) => s.operationName === 'fir.validate', 'database INSERT': isDb },
  'fir.fetch': {
    'fir.lookup': (s) => s.operationName === 'fir.lookup',
    'cache.get': (s) => s.operationName === 'cache.get',
    'database SELECT': isDb,
    'cache.set': (s) => s.operationName === 'cache.set',
  },
  'fir.summary': {
    'fir.lookup': (s) => s.operationName === 'fir.lookup',
    'cache.get': (s) => s.operationName === 'cache.get',
    'model_server.summarize': (s) => s.operationName === 'model_server.summarize',
    'cache.set': (s) => s.operationName === 'cache.set',
  },
};

/** The root span of each operation's trace: the click or submit that started it (data-trace-name). */
const INTERACTIONS = { 'fir.create': 'submit create report', 'fir.fetch': 'click fetch report', 'fir.summary': 'click generate summary' };

/** Complete once the frontend operation span and every expected backend step have arrived. */
function complete(name) {
  return (trace) => trace.spans.some((s) => s.operationName === name && service(trace, s) === FRONTEND)
    && trace.spans.some((s) => s.operationName === INTERACTIONS[name])
    && trace.spans.some((s) => tag(s, 'span.kind') === 'server')
    && Object.values(BACKEND_STEPS[name]).every((is) => trace.spans.some(is));
}

for (const name of ['fir.create', 'fir.fetch', 'fir.summary']) {
  test(`${name}: one joined trace, browser operation -> fetch -> backend server span -> its steps`, async () => {
    const op = operations[name];
    assert.ok(op, `${name} did not run (see the first test)`);
    const trace = await demo.viewer.waitForTrace(op.traceId, complete(name), 20_000);
    if (process.env.DEMO_TEST_DUMP) fs.writeFileSync(`${process.env.DEMO_TEST_DUMP}/${name}.json`, JSON.stringify(trace, null, 1));
    const spans = trace.spans;
    const byId = new Map(spans.map((s) => [s.spanID, s]));
    const describe = () => spans.map((s) => `${service(trace, s)}/${s.operationName} ${s.spanID} <- ${parentId(s)}`)
      .join('\n');

    assert.equal(trace.traceID, op.traceId);
    for (const s of spans) assert.equal(s.traceID, op.traceId);
    assert.deepEqual(new Set(spans.map((s) => service(trace, s))), new Set([FRONTEND, BACKEND]), describe());

    // The click (or submit) is the root (instrumentInteractions), the browser operation its
    // only child; every other span's parent is in this trace.
    const roots = spans.filter((s) => parentId(s) === null);
    assert.equal(roots.length, 1, `one root:\n${describe()}`);
    const [interaction] = roots;
    assert.equal(interaction.operationName, INTERACTIONS[name]);
    assert.equal(service(trace, interaction), FRONTEND);
    const ops = spans.filter((s) => parentId(s) === interaction.spanID);
    assert.equal(ops.length, 1, `one operation under ${interaction.operationName}:\n${describe()}`);
    const [root] = ops;
    assert.equal(root.operationName, name);
    assert.equal(service(trace, root), FRONTEND);
    for (const s of spans) {
      if (s !== interaction) assert.ok(byId.has(parentId(s)), `parent of ${s.operationName} in the trace:\n${describe()}`);
      for (const r of s.references ?? []) assert.equal(r.refType, 'CHILD_OF');
    }

    // root -> fetch CLIENT span -> backend SERVER span
    const fetches = spans.filter((s) => parentId(s) === root.spanID && tag(s, 'span.kind') === 'client');
    assert.equal(fetches.length, 1, `one fetch under ${name}:\n${describe()}`);
    const [fetchSpan] = fetches;
    assert.equal(service(trace, fetchSpan), FRONTEND);
    const servers = spans.filter((s) => tag(s, 'span.kind') === 'server');
    assert.equal(servers.length, 1, describe());
    const [server] = servers;
    assert.equal(service(trace, server), BACKEND);
    assert.equal(parentId(server), fetchSpan.spanID, `the server span continues the fetch span:\n${describe()}`);

    // Every backend span descends from the server span, and the expected steps are there.
    const descends = (s, ancestor) => {
      for (let p = byId.get(parentId(s)); p; p = byId.get(parentId(p))) if (p === ancestor) return true;
      return false;
    };
    const backend = spans.filter((s) => service(trace, s) === BACKEND && s !== server);
    for (const s of backend) assert.ok(descends(s, server), `${s.operationName} under the server span:\n${describe()}`);
    for (const s of spans.filter((x) => service(trace, x) === FRONTEND && x !== interaction)) {
      assert.ok(s === root || descends(s, root), `${s.operationName} under ${name}`);
    }
    for (const [step, is] of Object.entries(BACKEND_STEPS[name])) {
      assert.ok(backend.some(is), `${name}: backend step ${step} missing:\n${describe()}`);
    }

    // The page's correlation id on both sides.
    assert.equal(tag(root, 'correlation_id'), op.correlationId, 'frontend operation span correlation_id');
    assert.equal(tag(server, 'correlation_id'), op.correlationId, 'backend server span correlation_id');
    assert.equal(tag(server, 'correlation_id.generated'), undefined, 'the backend took the browser\'s id');
    for (const s of backend.filter((x) => !isDb(x))) {
      assert.equal(tag(s, 'correlation_id'), op.correlationId, `${s.operationName} correlation_id`);
    }

    // Clock sanity (Jaeger times are microseconds): the browser's and the backend's clocks
    // may disagree, but by less than the measured round trip, the fetch span's duration.
    const roundTrip = fetchSpan.duration;
    assert.ok(roundTrip > 0, 'fetch span has a duration');
    assert.ok(root.startTime <= fetchSpan.startTime, 'the operation starts before its fetch');
    assert.ok(fetchSpan.startTime + fetchSpan.duration <= root.startTime + root.duration, 'fetch ends within the operation');
    for (const child of [server, ...backend]) {
      for (const front of [root, fetchSpan]) {
        assert.ok(front.startTime <= child.startTime + roundTrip,
          `${front.operationName} starts ${front.startTime - child.startTime} us after backend ${child.operationName} ` +
          `(round trip ${roundTrip} us)`);
      }
    }
  });
}

test('the page load is one trace: the backend span that served index.html -> documentLoad -> fetches and paints', async () => {
  // The backend named its span in Server-Timing; the page-load trace continues it.
  const traceparent = await page.evaluate(() => performance.getEntriesByType('navigation')[0].serverTiming
    .find((t) => t.name === 'traceparent')?.description);
  assert.match(traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]$/);
  const [traceId, serverSpanId] = [traceparent.slice(3, 35), traceparent.slice(36, 52)];
  const trace = await demo.viewer.waitForTrace(traceId, (t) => ['documentLoad', 'documentFetch', 'firstContentfulPaint']
    .every((n) => t.spans.some((s) => s.operationName === n)), 20_000);
  const server = trace.spans.find((s) => s.spanID === serverSpanId);
  assert.equal(service(trace, server), BACKEND);
  const load = trace.spans.find((s) => s.operationName === 'documentLoad');
  assert.equal(service(trace, load), FRONTEND);
  assert.equal(parentId(load), serverSpanId, 'the page load continues the backend span of index.html');
  const resources = trace.spans.filter((s) => s.operationName === 'resourceFetch').map((s) => tag(s, 'url.full'));
  assert.ok(resources.some((u) => u.endsWith('/app.js')) && resources.some((u) => u.endsWith('/style.css')), resources.join('\n'));
});

test('the page\'s trace link opens the joined summary trace in Jaeger UI (screenshot)', async () => {
  const op = operations['fir.summary'];
  assert.ok(op, 'fir.summary did not run (see the first test)');
  const trace = await demo.viewer.waitForTrace(op.traceId, complete('fir.summary'), 20_000);
  const viewerPage = await browser.newPage({ viewport: { width: 1440, height: 820 } });
  try {
    await viewerPage.goto(op.link);
    // The trace timeline: one row per span, once the trace has loaded and rendered.
    const rows = viewerPage.locator('.span-row');
    await rows.nth(trace.spans.length - 1).waitFor({ timeout: 20_000 });
    assert.equal(await rows.count(), trace.spans.length);
    const text = await viewerPage.locator('body').innerText();
    for (const expected of [FRONTEND, BACKEND, 'fir.summary', 'model_server.summarize']) {
      assert.ok(text.includes(expected), `Jaeger UI shows ${expected}`);
    }
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    const last = await rows.nth(trace.spans.length - 1).boundingBox();
    await viewerPage.screenshot({ path: SCREENSHOT, clip: { x: 0, y: 0, width: 1440, height: Math.ceil(last.y + last.height + 12) } });
    assert.ok(fs.statSync(SCREENSHOT).size > 10_000, 'a real screenshot');
  } finally {
    await viewerPage.close();
  }
});
