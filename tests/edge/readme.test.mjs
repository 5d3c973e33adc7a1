// The README's "Edge and worker runtimes" snippets are what the other tests in
// tests/edge run: each js block must be a contiguous excerpt of a file in
// examples/ (lines compared without indentation; blank lines ignored), and each
// example must be named in that section.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { EXAMPLES, ROOT } from './support.mjs';

const lines = (text) => text.split('\n').map((l) => l.trim()).filter(Boolean);

function section() {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Edge and worker runtimes\n');
  assert.ok(start >= 0, 'README.md has a "## Edge and worker runtimes" section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

// The JS examples (files); examples/rust-app/ is the Rust API's, with its own README section.
const examples = Object.fromEntries(fs.readdirSync(EXAMPLES, { withFileTypes: true }).filter((d) => d.isFile())
  .map(({ name: f }) => [f, lines(fs.readFileSync(path.join(EXAMPLES, f), 'utf8'))]));

function excerptOf(block) {
  const want = lines(block);
  return Object.keys(examples).find((f) => {
    const have = examples[f];
    for (let i = 0; i + want.length <= have.length; i++) {
      if (want.every((l, j) => have[i + j] === l)) return true;
    }
    return false;
  });
}

test('every README js snippet in the edge section is an excerpt of a tested example', () => {
  const text = section();
  const blocks = [...text.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.ok(blocks.length >= 6, `found ${blocks.length} js blocks`);
  for (const block of blocks) assert.ok(excerptOf(block), `not in examples/:\n${block}`);
  for (const name of Object.keys(examples)) assert.ok(text.includes(`examples/${name}`), `README names examples/${name}`);
});

test('the Deno permissions in the README are the ones the example and the test use', () => {
  const flags = 'deno run --allow-net --allow-read --allow-env';
  assert.ok(section().includes(flags));
  assert.ok(fs.readFileSync(path.join(EXAMPLES, 'deno.mjs'), 'utf8').includes(flags));
  assert.ok(fs.readFileSync(new URL('./runtimes.test.mjs', import.meta.url), 'utf8')
    .includes("['run', '--allow-net', '--allow-read', '--allow-env', script]"));
});
