// Prints (and with --json, emits) the shipped size of pkg/: what a page loads
// (wasm + generated glue + hand-written entry), raw, gzip -9 and brotli q11.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';

const dir = process.argv[2] || 'pkg';
const files = ['tracelink_wasm_bg.wasm', 'tracelink_wasm.js', 'tracelink.js', 'context.js'];
const rows = files.map((f) => {
  const b = readFileSync(join(dir, f));
  return {
    file: f,
    raw: b.length,
    gzip: gzipSync(b, { level: 9 }).length,
    brotli: brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
});
const total = rows.reduce((t, r) => ({ file: 'total', raw: t.raw + r.raw, gzip: t.gzip + r.gzip, brotli: t.brotli + r.brotli }),
  { raw: 0, gzip: 0, brotli: 0 });
rows.push(total);
if (process.argv.includes('--json')) {
  console.log(JSON.stringify(rows));
} else {
  console.log('shipped size (bytes)      raw     gzip   brotli');
  for (const r of rows) console.log(`${r.file.padEnd(24)} ${String(r.raw).padStart(7)} ${String(r.gzip).padStart(8)} ${String(r.brotli).padStart(8)}`);
}
