// bench/build.mjs: builds both bench pages and the size-comparison bundles
// with one set of esbuild settings (bundled, minified ESM, browser,
// production), and measures shipped size.
//
//   dist/otel/page.js             OTel reference setup + driver (both exporters)
//   dist/tracelink/page.js        tracelink (pkg/*.js) + driver
//   dist/tracelink/tracelink.wasm, tracelink-gzip.wasm, tracelink-full.wasm
//   dist/size/otel.js             what a page ships for the OTel reference setup (OTLP/JSON, OTel's default)
//   dist/size/otel-proto.js       the same with the OTLP/protobuf exporter
//   dist/size/tracelink/app.js    what a page ships for tracelink (+ its .wasm)
//
// Size = every file the page loads: for tracelink the minified JS bundle plus
// the wasm; each file compressed on its own (gzip -9, brotli q11), summed.
//
// CLI: node bench/build.mjs [--pkg DIR]  (prints the sizes)
import * as esbuild from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const HERE = dirname(fileURLToPath(import.meta.url));
export const PKG_FILES = ['tracelink.js', 'context.js', 'core.js', 'tracelink.wasm', 'tracelink-gzip.wasm', 'tracelink-full.wasm'];

/** The one esbuild configuration both sides use. */
export const ESBUILD_OPTIONS = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
};

/** Minimal app code for the size rows: setup + one span + traced fetch, as a user writes it. */
const SIZE_OTEL = (exporterPkg) => `
import { trace } from '@opentelemetry/api';
import { WebTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-web';
import { OTLPTraceExporter } from '${exporterPkg}';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { FetchInstrumentation } from '@opentelemetry/instrumentation-fetch';
import { resourceFromAttributes } from '@opentelemetry/resources';
const provider = new WebTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'app' }),
  spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: 'https://collector.example/v1/traces' }))],
});
provider.register();
registerInstrumentations({ instrumentations: [new FetchInstrumentation()] });
const span = trace.getTracer('app').startSpan('boot', { attributes: { 'app.page': location.pathname } });
span.addEvent('ready');
span.end();
`;
/** Elastic APM RUM, set up as its docs show: a transaction around page work, fetch patched by default. */
const SIZE_ELASTIC = `
import { init as initApm } from '@elastic/apm-rum';
const apm = initApm({ serviceName: 'app', serverUrl: 'https://apm.example' });
const tr = apm.startTransaction('boot', 'app');
tr.addLabels({ 'app.page': location.pathname });
tr.end();
`;
const SIZE_TRACELINK = `
import { setupTracing } from 'tracelink';
const tracing = await setupTracing({ serviceName: 'app', otlpEndpoint: 'https://collector.example/v1/traces', instrumentFetch: true });
const span = tracing.startSpan('boot', { attributes: { 'app.page': location.pathname } });
span.addEvent('ready');
span.end();
`;

/** Raw, gzip -9 and brotli (q11) sizes of each file, and their sum. */
export function measure(files) {
  const rows = files.map(({ name, bytes }) => ({
    file: name,
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  }));
  const total = rows.reduce((t, r) => ({ raw: t.raw + r.raw, gzip: t.gzip + r.gzip, brotli: t.brotli + r.brotli }), { raw: 0, gzip: 0, brotli: 0 });
  return { files: rows, total };
}

/** Whether `pkgDir` holds a built tracelink package; else the reason. */
export function pkgStatus(pkgDir) {
  const missing = PKG_FILES.filter((f) => !existsSync(join(pkgDir, f)));
  return missing.length ? { ok: false, reason: `${pkgDir}: missing ${missing.join(', ')} (run scripts/build.sh)` } : { ok: true };
}

function tracelinkPlugin(pkgDir) {
  return {
    name: 'tracelink-pkg',
    setup(b) {
      b.onResolve({ filter: /^tracelink$/ }, () => ({ path: join(pkgDir, 'tracelink.js') }));
    },
  };
}

async function bundle(opts) {
  const r = await esbuild.build({ ...ESBUILD_OPTIONS, ...opts, write: true, metafile: false });
  return r;
}

/**
 * Builds everything into `outDir`. Returns { otel, tracelink, sizes, esbuild }:
 * `tracelink.ok` is false (with `reason`) when pkg/ is not built or fails to bundle.
 */
export async function build({ pkgDir = resolve(HERE, '..', 'pkg'), outDir = join(HERE, 'dist') } = {}) {
  pkgDir = resolve(pkgDir);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, 'size', 'tracelink'), { recursive: true });
  mkdirSync(join(outDir, 'tracelink'), { recursive: true });
  const result = { otel: { ok: true }, tracelink: pkgStatus(pkgDir), sizes: {}, esbuild: esbuild.version, pkgDir };

  // OTel: the bench page and the size bundles.
  await bundle({ entryPoints: [join(HERE, 'otel-entry.js')], outfile: join(outDir, 'otel', 'page.js') });
  for (const [key, pkg] of [['otel', '@opentelemetry/exporter-trace-otlp-http'], ['otelProto', '@opentelemetry/exporter-trace-otlp-proto']]) {
    const outfile = join(outDir, 'size', key === 'otel' ? 'otel.js' : 'otel-proto.js');
    await bundle({ stdin: { contents: SIZE_OTEL(pkg), resolveDir: HERE, sourcefile: `size-${key}.js` }, outfile });
    result.sizes[key] = measure([{ name: 'bundle.js', bytes: readFileSync(outfile) }]);
  }
  try {
    const outfile = join(outDir, 'size', 'elastic.js');
    await bundle({ stdin: { contents: SIZE_ELASTIC, resolveDir: HERE, sourcefile: 'size-elastic.js' }, outfile });
    result.sizes.elastic = measure([{ name: 'bundle.js', bytes: readFileSync(outfile) }]);
  } catch (e) {
    result.sizes.elastic = null; // not installed: the row is left out
  }

  // tracelink: same settings; the wasm sits next to each bundle (import.meta.url).
  if (result.tracelink.ok) {
    try {
      const plugins = [tracelinkPlugin(pkgDir)];
      const wasms = ['tracelink.wasm', 'tracelink-gzip.wasm', 'tracelink-full.wasm'];
      // Size counts the shipped package even when speed runs on a bench build.
      const sizePkg = resolve(process.env.TRACELINK_SIZE_PKG || pkgDir);
      await bundle({ entryPoints: [join(HERE, 'tracelink-entry.js')], outfile: join(outDir, 'tracelink', 'page.js'), plugins });
      for (const w of wasms) copyFileSync(join(pkgDir, w), join(outDir, 'tracelink', w));
      // The default page setup as scripts/size.mjs measures it (the budgeted
      // number): the minified bundle, code-split as users' bundlers do (opt-in
      // modules are chunks the page never loads), plus tracelink.wasm.
      const { measureAll } = await import('../scripts/size.mjs');
      const m = await measureAll(sizePkg);
      result.sizes.tracelink = { files: [{ file: 'bundle.js', ...m.js }, { file: 'tracelink.wasm', ...m.wasm }], total: m.total, withPersist: m.withPersist };
      result.sizes.tracelinkOptIns = m.rows.filter((r) => r.optIn);
      // As published (unbundled, unminified JS), for reference.
      result.sizes.tracelinkPkg = measure(PKG_FILES.map((f) => ({ name: f, bytes: readFileSync(join(sizePkg, f)) })));
    } catch (e) {
      result.tracelink = { ok: false, reason: `bundling tracelink failed: ${e?.message ?? e}` };
    }
  }
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--pkg');
  const r = await build({ pkgDir: i > 0 ? process.argv[i + 1] : process.env.TRACELINK_PKG || undefined });
  console.log(`esbuild ${r.esbuild}; tracelink: ${r.tracelink.ok ? r.pkgDir : r.tracelink.reason}`);
  for (const [k, s] of Object.entries(r.sizes)) {
    console.log(`${k.padEnd(14)} raw ${String(s.total.raw).padStart(8)}  gzip -9 ${String(s.total.gzip).padStart(7)}  brotli ${String(s.total.brotli).padStart(7)}   (${s.files.map((f) => `${f.file} ${f.raw}`).join(', ')})`);
  }
}
