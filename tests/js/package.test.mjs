// The npm package as a user gets it: `npm pack` of pkg/, installed into a
// scratch project, imported by name, run; and its TypeScript declarations
// type-check a program that uses the whole API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
function run(cmd, args, cwd) {
  try {
    return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

test('npm pack → npm install → import "tracelink" → a span is made; the .d.ts type-checks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tracelink-scratch-'));
  try {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'pkg', 'package.json'), 'utf8'));
    const cargo = readFileSync(join(ROOT, 'Cargo.toml'), 'utf8');
    assert.equal(manifest.version, /^version = "(.*)"/m.exec(cargo)[1], 'npm and crate versions agree');
    for (const field of ['name', 'version', 'type', 'module', 'main', 'types', 'files', 'sideEffects', 'license']) {
      assert.ok(field in manifest, `package.json has ${field}`);
    }
    const tgz = run('npm', ['pack', '--silent', '--pack-destination', dir, join(ROOT, 'pkg')], ROOT).trim().split('\n').pop();
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    run('npm', ['install', '--silent', '--no-audit', '--no-fund', join(dir, tgz)], dir);
    writeFileSync(join(dir, 'main.mjs'), `
      import { readFile } from 'node:fs/promises';
      import { setupTracing } from 'tracelink';
      const wasm = await readFile(new URL(import.meta.resolve('tracelink/tracelink.wasm')));
      const t = await setupTracing({ serviceName: 'scratch', otlpEndpoint: 'http://127.0.0.1:9/v1/traces', wasm, env: {} });
      const id = t.traceOperation('op', (span) => span.traceId);
      console.log(JSON.stringify({ id, ended: t.stats().ended }));
      await t.shutdown(50);
    `);
    const out = JSON.parse(run('node', ['main.mjs'], dir).trim());
    assert.match(out.id, /^[0-9a-f]{32}$/);
    assert.equal(out.ended, 1);

    writeFileSync(join(dir, 'use.ts'), `
      import { setupTracing, type Span, type TracingStats } from 'tracelink';
      async function main(): Promise<number> {
        const t = await setupTracing({ serviceName: 's', otlpEndpoint: 'http://127.0.0.1:4318', protocol: 'http/json', propagateTo: [/api/] });
        const n: number = await t.traceOperation('op', { attributes: { a: 1, b: ['x'] }, correlationId: 'c' }, async (span: Span) => {
          span.setAttribute('k', true).addEvent('e', { n: 2 }).setStatus('ok');
          const res: Response = await t.fetch('/api/x', { method: 'POST' });
          return res.status;
        });
        const ctx = t.extractContext({ traceparent: t.injectContext({}).traceparent ?? '' });
        t.startSpan('child', { parent: ctx, kind: 'server' }).end();
        const stats: TracingStats = t.stats();
        await t.flush();
        return n + stats.exported;
      }
      // @ts-expect-error: protocol must be http/protobuf or http/json
      setupTracing({ serviceName: 's', protocol: 'grpc' });
      void main;
    `);
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: {
      strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], skipLibCheck: false,
    }, files: ['use.ts'] }));
    run('node', [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], dir); // type errors fail here
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
