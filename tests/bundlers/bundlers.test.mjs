// The package in users' build tools: a small app (app/main.js) importing
// `tracelink` is built with Vite and with webpack 5 in production mode, each
// with its defaults (no configuration for tracelink). The package is installed
// the way users get it (`npm pack` of pkg/, `npm install` of the tarball into a
// fresh app), so whatever files pkg/ ships are what the bundlers see. Each
// build must finish without errors or warnings and bundle nothing Node-only
// (pkg/context.js leaves `node:async_hooks` to a guarded import the bundlers
// are told to ignore). The output is served by the real FastAPI + OpenTelemetry
// backend (same origin: the app, /api/ping and the OTLP relay to rotel), and in
// headless Chromium the wasm must load from the bundle and the traced fetch
// must join the backend's trace. The same app also runs on the Vite dev
// server, whose dependency pre-bundling moves the package's modules. Prints
// what the page loaded and the whole output, JS + wasm, gzip -9.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { gzipSync } from 'node:zlib';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { startCollector, startBackend, stopAll, freePort } from '../support/peers.mjs';
import { launchChromium } from '../support/browser.mjs';
import { PKG, assertJoined, tempDir } from '../edge/support.mjs';

const HERE = fileURLToPath(new URL('./', import.meta.url));
const requireHere = createRequire(path.join(HERE, 'package.json'));

/** A bundler from tests/bundlers/node_modules (installed by scripts/setup.sh). */
async function bundler(name) {
  let entry;
  try {
    entry = requireHere.resolve(name);
  } catch {
    throw new Error(`${name} is not installed: run scripts/setup.sh (npm install in tests/bundlers)`);
  }
  const version = requireHere(`${name}/package.json`).version;
  const mod = await import(pathToFileURL(entry).href);
  return { mod: mod.default ?? mod, version };
}

function run(cmd, args, cwd) {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** A fresh app directory with `tracelink` installed from an `npm pack` of pkg/. */
function installApp() {
  if (!fs.readdirSync(PKG).some((f) => f.endsWith('.wasm'))) throw new Error(`${PKG} has no wasm: run scripts/build.sh first`);
  const app = tempDir('tracelink-bundled-app-');
  const tgz = run('npm', ['pack', '--silent', '--pack-destination', app, PKG], app).trim().split('\n').pop();
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'bundled-app', private: true, type: 'module' }));
  run('npm', ['install', '--silent', '--no-audit', '--no-fund', '--no-package-lock', path.join(app, tgz)], app);
  fs.copyFileSync(path.join(HERE, 'app', 'main.js'), path.join(app, 'main.js'));
  return app;
}

/** Every file under `dir`, relative paths. */
function filesUnder(dir) {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? e.path, e.name)));
}

/** Total gzip -9 bytes of the output's .js/.mjs and .wasm files (or of `only` those), and the list. */
function shippedSize(dir, only = null) {
  const files = filesUnder(dir).filter((f) => /\.(m?js|wasm)$/.test(f) && (!only || only.has(f))).sort();
  const rows = files.map((f) => {
    const bytes = fs.readFileSync(path.join(dir, f));
    return { file: f, raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
  });
  return { rows, raw: rows.reduce((n, r) => n + r.raw, 0), gzip: rows.reduce((n, r) => n + r.gzip, 0) };
}

/** A module id inside the installed package. */
const FROM_PACKAGE = /node_modules[\\/]tracelink[\\/]/;

/** A module id that means a Node built-in was pulled into (or stubbed in) a browser build. */
const NODE_ONLY = /(^|[\\/:])(node:|async_hooks)|__vite-browser-external/;

let app, collector, browser;

before(async () => {
  app = installApp();
  collector = await startCollector();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await stopAll();
});

/**
 * Opens the app at `url` in a fresh browser context: what the app reported,
 * uncaught page errors, and every response the page got ({ path, status }).
 */
async function openApp(url) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = [];
    const responses = [];
    page.on('pageerror', (e) => errors.push(e));
    page.on('response', (r) => responses.push({ path: new URL(r.url()).pathname, status: r.status() }));
    await page.goto(url);
    const result = await page.evaluate(() => window.appResult);
    return { result, errors, responses };
  } finally {
    await context.close();
  }
}

/**
 * The checks every bundled app must pass in the browser: it ran, loaded a
 * wasm, and its traced fetch joined the backend's trace under the operation.
 * Returns the paths of the .wasm and successful responses.
 */
async function assertAppTraces(url, service) {
  const { result, errors, responses } = await openApp(url);
  assert.equal(result.error, undefined, `the app failed: ${result.error}`);
  assert.deepEqual(errors, [], 'no uncaught page errors');
  assert.equal(result.status, 200);
  assert.match(result.traceId, /^[0-9a-f]{32}$/);
  assert.equal(result.body.received.traceparent.slice(3, 35), result.traceId, 'the fetch sent traceparent');
  const wasm = responses.filter((r) => r.path.endsWith('.wasm'));
  assert.ok(wasm.length > 0, 'the page loaded a wasm');
  for (const w of wasm) assert.equal(w.status, 200, `${w.path} was found`);

  const { clients, servers } = await assertJoined(collector, result.traceId, service);
  const [op] = collector.readSpans().filter((s) => s.traceId === result.traceId && s.name === 'bundled.ping');
  assert.ok(op, 'the traceOperation span arrived');
  assert.equal(clients[0].parentSpanId, op.spanId, 'the fetch is a child of the operation');
  assert.equal(servers[0].spanId, result.body.server_span.span_id);
  assert.equal(result.stats.dropped, 0, JSON.stringify(result.stats));
  assert.equal(result.stats.exported, result.stats.ended, JSON.stringify(result.stats));
  return { wasm: wasm.map((w) => w.path), loaded: responses.filter((r) => r.status === 200).map((r) => r.path) };
}

/**
 * Serves the build in `outDir` from the backend and runs the app: the wasm it
 * loads must be the build's own. Returns the output files the page loaded.
 */
async function assertBuildTraces(outDir, service) {
  const backend = await startBackend({ collectorUrl: collector.httpUrl, staticDir: outDir, corsOrigins: '' });
  try {
    const { wasm, loaded } = await assertAppTraces(`${backend.url}/`, service);
    assertNoBuildPaths(outDir);
  const built = new Set(filesUnder(outDir).filter((f) => f.endsWith('.wasm')).map((f) => `/${f.split(path.sep).join('/')}`));
    for (const w of wasm) assert.ok(built.has(w), `${w} is one of the build's files (${[...built].join(', ')})`);
    return new Set(loaded.map((p) => p.slice(1).split('/').join(path.sep)));
  } finally {
    await backend.stop();
  }
}

/** The output must not embed the build machine's paths (e.g. an `import.meta.url` made a file: URL). */
function assertNoBuildPaths(outDir) {
  for (const f of filesUnder(outDir).filter((f) => /\.m?js$/.test(f))) {
    const text = fs.readFileSync(path.join(outDir, f), 'utf8');
    assert.ok(!text.includes(app) && !text.includes(pathToFileURL(app).href), `${f} embeds the build path ${app}`);
  }
}

/** A Vite logger that also records every warning and error into `into`. */
function recordingLogger(vite, into) {
  const logger = vite.createLogger('warn');
  const record = (level) => (msg, options) => { into.push(`${level}: ${msg}`); logger[level](msg, options); };
  return { ...logger, warn: record('warn'), warnOnce: record('warnOnce'), error: record('error') };
}

/** Prints the size of the whole output and of what the page loaded (JS + wasm, gzip -9). */
function reportSize(t, name, version, outDir, loaded) {
  const all = shippedSize(outDir);
  const page = shippedSize(outDir, loaded);
  const list = (rows) => rows.map((r) => `${r.file} ${r.gzip}`).join(', ');
  t.diagnostic(`${name} ${version}: the page loaded JS + wasm ${page.raw} B raw, ${page.gzip} B gzip -9 (${list(page.rows)})`);
  t.diagnostic(`${name} ${version}: all output JS + wasm ${all.raw} B raw, ${all.gzip} B gzip -9 (${list(all.rows)})`);
}

const indexHtml = (service, script) =>
  `<!doctype html>\n<html data-service="${service}"><head><meta charset="utf-8"><title>bundled app</title></head>\n` +
  `<body>${script}</body></html>\n`;

test('Vite (production build, default config): the wasm loads and a traced fetch joins the backend', async (t) => {
  const { mod: vite, version } = await bundler('vite');
  const service = 'bundled-app-vite';
  fs.writeFileSync(path.join(app, 'index.html'), indexHtml(service, '<script type="module" src="./main.js"></script>'));
  const outDir = path.join(app, 'dist-vite');
  const warnings = [];
  const output = await vite.build({
    root: app,
    configFile: false,
    mode: 'production',
    logLevel: 'warn',
    clearScreen: false,
    customLogger: recordingLogger(vite, warnings),
    build: { outDir, emptyOutDir: true },
  });
  assert.deepEqual(warnings, [], 'the build printed no warnings');
  const moduleIds = [output].flat().flatMap((o) => o.output).flatMap((c) => c.moduleIds ?? []);
  assert.ok(moduleIds.some((id) => FROM_PACKAGE.test(id)), 'tracelink was bundled from node_modules');
  assert.deepEqual(moduleIds.filter((id) => NODE_ONLY.test(id)), [], 'nothing Node-only in the bundle');
  reportSize(t, 'vite', version, outDir, await assertBuildTraces(outDir, service));
});

test('webpack 5 (production mode, no loaders or plugins): the wasm loads and a traced fetch joins the backend', async (t) => {
  const { mod: webpack, version } = await bundler('webpack');
  const service = 'bundled-app-webpack';
  const outDir = path.join(app, 'dist-webpack');
  const stats = await new Promise((resolve, reject) => {
    webpack({ mode: 'production', context: app, entry: './main.js', output: { path: outDir, clean: true } },
      (err, result) => (err ? reject(err) : resolve(result)));
  });
  const info = stats.toJson({ all: false, errors: true, warnings: true, modules: true, nestedModules: true });
  const text = (list) => list.map((e) => `${e.moduleName ?? ''} ${e.message}`.trim());
  assert.deepEqual(text(info.errors), [], 'the build has no errors');
  assert.deepEqual(text(info.warnings), [], 'the build has no warnings');
  const moduleNames = info.modules.flatMap((m) => [m.name, ...(m.modules ?? []).map((n) => n.name)]);
  assert.ok(moduleNames.some((n) => FROM_PACKAGE.test(n)), 'tracelink was bundled from node_modules');
  assert.deepEqual(moduleNames.filter((n) => NODE_ONLY.test(n)), [], 'nothing Node-only in the bundle');
  fs.writeFileSync(path.join(outDir, 'index.html'), indexHtml(service, '<script src="./main.js"></script>'));
  reportSize(t, 'webpack', version, outDir, await assertBuildTraces(outDir, service));
});

test('Vite dev server (dependency pre-bundling, no configuration for tracelink): the wasm loads and a traced fetch joins', async () => {
  const { mod: vite } = await bundler('vite');
  const service = 'bundled-app-vite-dev';
  fs.writeFileSync(path.join(app, 'index.html'), indexHtml(service, '<script type="module" src="./main.js"></script>'));
  // The app's API and the OTLP relay are the backend's, proxied as a Vite app does for its API.
  const backend = await startBackend({ collectorUrl: collector.httpUrl, corsOrigins: '' });
  const warnings = [];
  const server = await vite.createServer({
    root: app,
    configFile: false,
    clearScreen: false,
    logLevel: 'warn',
    customLogger: recordingLogger(vite, warnings),
    server: { host: '127.0.0.1', port: await freePort(), strictPort: true, proxy: { '/api': backend.url, '/otlp': backend.url } },
  });
  try {
    await server.listen();
    await assertAppTraces(server.resolvedUrls.local[0], service);
    assert.deepEqual(warnings, [], 'the dev server printed no warnings');
  } finally {
    await server.close();
    await backend.stop();
  }
});
