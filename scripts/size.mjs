// What tracelink costs a page, in bytes: raw, gzip -9 and brotli q11.
//   node scripts/size.mjs [DIR] [--json] [--check]
// - default page setup: setupTracing + a span + the traced fetch, bundled and
//   minified by esbuild (the bench's settings, with code splitting as users'
//   bundlers do), plus tracelink.wasm. The number the budget guards.
// - opt-ins, as the bytes they add when enabled: tracelink-gzip.wasm (gzip'd
//   exports: the default for a same-origin endpoint) and tracelink-full.wasm
//   (also OTLP/JSON, console export, baggage) over tracelink.wasm, and each
//   instrument/ module. The default setup's collector is on another origin,
//   as collectors usually are: its exports are plain (compress is opt-in there).
// - as published: each file of DIR (default pkg/), unminified.
// --check fails (exit 1) when the default setup's gzip size is over
// scripts/size-budget.json: raising the budget is a deliberate commit.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';
import * as esbuild from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The bench's esbuild settings (bench/build.mjs), with splitting as Vite and webpack do. */
const ESBUILD = { bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true, legalComments: 'none',
  define: { 'process.env.NODE_ENV': '"production"' }, logLevel: 'error', splitting: true, write: false };

const APP = `
import { setupTracing } from 'tracelink';
const tracing = await setupTracing({ serviceName: 'app', otlpEndpoint: 'https://collector.example/v1/traces', instrumentFetch: true });
const span = tracing.startSpan('boot', { attributes: { 'app.page': location.pathname } });
span.addEvent('ready');
span.end();
`;

export function sizes(bytes) {
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}
const add = (a, b) => ({ raw: a.raw + b.raw, gzip: a.gzip + b.gzip, brotli: a.brotli + b.brotli });
const sub = (a, b) => ({ raw: a.raw - b.raw, gzip: a.gzip - b.gzip, brotli: a.brotli - b.brotli });

/** The minified bundle of `contents` ('tracelink' = DIR/tracelink.js): the entry chunk and what it imports statically. */
async function bundle(dir, contents) {
  const outdir = mkdtempSync(join(tmpdir(), 'tracelink-size-'));
  try {
    const r = await esbuild.build({
      ...ESBUILD, outdir, metafile: true,
      stdin: { contents, resolveDir: ROOT, sourcefile: 'app.js' },
      plugins: [{ name: 'tracelink', setup(b) { b.onResolve({ filter: /^tracelink$/ }, () => ({ path: join(dir, 'tracelink.js') })); } }],
    });
    const outputs = r.metafile.outputs;
    // The app's own chunk: the entry point that is not a dynamic-import target.
    const dynamic = new Set(Object.values(outputs).flatMap((o) => o.imports.filter((i) => i.kind === 'dynamic-import').map((i) => i.path)));
    const entry = Object.keys(outputs).find((k) => outputs[k].entryPoint && !dynamic.has(k));
    const loaded = new Set();
    const visit = (k) => {
      if (loaded.has(k)) return;
      loaded.add(k);
      for (const i of outputs[k].imports) if (i.kind === 'import-statement') visit(i.path);
    };
    visit(entry);
    const files = r.outputFiles.filter((f) => [...loaded].some((k) => f.path.endsWith(k.replace(/^.*[\\/]/, ''))));
    return sizes(Buffer.concat(files.map((f) => Buffer.from(f.contents))));
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Every size row for the package in `dir` (see the file's header). */
export async function measureAll(dir) {
  const wasm = sizes(readFileSync(join(dir, 'tracelink.wasm')));
  const js = await bundle(dir, APP);
  const rows = [
    { what: 'default page setup: JS bundle (esbuild, minified)', ...js },
    { what: 'default page setup: tracelink.wasm', ...wasm },
    { what: 'default page setup: total', ...add(js, wasm), total: true },
  ];
  if (existsSync(join(dir, 'tracelink-gzip.wasm'))) {
    rows.push({ what: 'opt-in: compress (default for a same-origin endpoint): tracelink-gzip.wasm instead', ...sub(sizes(readFileSync(join(dir, 'tracelink-gzip.wasm'))), wasm), optIn: true });
  }
  if (existsSync(join(dir, 'tracelink-full.wasm'))) {
    rows.push({ what: 'opt-in: http/json, consoleExport or propagateBaggage (tracelink-full.wasm instead; has gzip)', ...sub(sizes(readFileSync(join(dir, 'tracelink-full.wasm'))), wasm), optIn: true });
  }
  let withPersist = null;
  if (existsSync(join(dir, 'persist.js'))) {
    // Offline persistence: on by default, but loaded after setup, and only where IndexedDB exists.
    const chunk = await bundle(dir, `import * as m from '${join(dir, 'persist.js').replaceAll('\\', '/')}'; globalThis.m = m;`);
    rows.push({ what: 'after setup, where IndexedDB exists (persist: false skips it): persist.js, minified', ...chunk, optIn: true });
    withPersist = add(add(js, wasm), chunk);
    rows.push({ what: 'default page setup with persist.js: all a page with IndexedDB loads', ...withPersist });
  }
  if (existsSync(join(dir, 'context.js'))) {
    // Exact context stores and OTEL_* settings: loaded in server runtimes, or when options.env / asyncContext is set.
    const chunk = await bundle(dir, `import * as m from '${join(dir, 'context.js').replaceAll('\\', '/')}'; globalThis.m = m;`);
    rows.push({ what: 'server runtimes or options.env/asyncContext (pages: never): context.js, minified', ...chunk, optIn: true });
  }
  const instrument = join(dir, 'instrument');
  if (existsSync(instrument)) {
    for (const f of readdirSync(instrument).filter((f) => f.endsWith('.js')).sort()) {
      const option = { 'xhr.js': 'instrumentXhr', 'document-load.js': 'instrumentDocumentLoad', 'navigation.js': 'instrumentNavigation',
        'interactions.js': 'instrumentInteractions', 'errors.js': 'instrumentErrors', 'web-vitals.js': 'instrumentWebVitals',
        'hooks.js': 'any instrument* option' }[f];
      if (!option) continue;
      // Loaded on demand, as its own chunk: what enabling it adds.
      const chunk = await bundle(dir, `import * as m from '${join(instrument, f).replaceAll('\\', '/')}'; globalThis.m = m;`);
      rows.push({ what: `opt-in: ${option} (instrument/${f}, minified)`, ...chunk, optIn: true });
    }
  }
  const published = readdirSync(dir).filter((f) => /\.(js|wasm)$/.test(f)).sort()
    .map((f) => ({ what: `as published: ${f}`, ...sizes(readFileSync(join(dir, f))) }));
  return { rows: [...rows, ...published], total: add(js, wasm), withPersist, js, wasm };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = resolve(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? join(ROOT, 'pkg'));
  const { rows, total } = await measureAll(dir);
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(rows));
  } else {
    console.log(`${'size (bytes)'.padEnd(84)}     raw    gzip  brotli`);
    for (const r of rows) console.log(`${r.what.padEnd(84)} ${String(r.raw).padStart(7)} ${String(r.gzip).padStart(7)} ${String(r.brotli).padStart(7)}`);
  }
  if (process.argv.includes('--check')) {
    const budget = JSON.parse(readFileSync(join(ROOT, 'scripts', 'size-budget.json'), 'utf8'));
    if (total.gzip > budget.defaultSetupGzip) {
      console.error(`size: the default page setup is ${total.gzip} B gzip, over the budget of ${budget.defaultSetupGzip} B (scripts/size-budget.json)`);
      process.exit(1);
    }
    console.log(`size: default page setup ${total.gzip} B gzip, within the budget of ${budget.defaultSetupGzip} B`);
  }
}
