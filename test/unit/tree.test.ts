/**
 * Rules of the source tree as a whole: the layers of src/ point down only
 * (a module imports, statically, lazily or for types, modules of its own
 * layer or of layers below it); unit tests are named after the module they
 * test; sources are formatted by Prettier (`npm run format`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from '../support/helpers.js';

/** Bottom first. A path belongs to the first layer whose prefix it starts with. */
export const LAYERS: [string, string[]][] = [
  ['core', ['src/core/']],
  ['models', ['src/forecast/', 'src/recommend/']],
  ['expressions, connections and storage', ['src/expr/', 'src/connections/', 'src/storage/']],
  ['metrics', ['src/metrics/']],
  ['kafka', ['src/kafka/']],
  ['operators', ['src/operators/']],
  ['spec', ['src/spec/']],
  ['plan', ['src/plan/']],
  ['runtime', ['src/runtime/']],
  ['features', ['src/testing/', 'src/backfill/', 'src/backtest/', 'src/gen/', 'src/dashboard/']],
  ['commands', ['src/commands/']],
  ['cli', ['src/cli.ts']],
];

const rank = (file: string) => LAYERS.findIndex(([, prefixes]) => prefixes.some((p) => file.startsWith(p)));

function* sources(dir: string): Generator<string> {
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const p = path.posix.join(dir, e.name);
    if (e.isDirectory()) yield* sources(p);
    else if (p.endsWith('.ts')) yield p;
  }
}

const IMPORT = /(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

test('every module of src/ is in a layer, and imports only its own layer or the ones below', () => {
  const wrong: string[] = [];
  const files = [...sources('src')];
  for (const file of files) {
    const r = rank(file);
    assert.notEqual(r, -1, `${file} is in no layer (add its folder to LAYERS)`);
    for (const m of fs.readFileSync(path.join(ROOT, file), 'utf8').matchAll(IMPORT)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1] ?? m[2])).replace(/\.js$/, '.ts');
      const t = rank(target);
      if (t > r) wrong.push(`${file} (${LAYERS[r][0]}) imports ${target} (${LAYERS[t][0]})`);
    }
  }
  assert.deepEqual(wrong, [], `imports that point up:\n${wrong.join('\n')}`);
  assert.ok(files.length > 40);
});

test("unit tests are named after the module they test: test/unit/<path>.test.ts tests src/<path>.ts (or its folder's index.ts), test/unit/support/<name> test/support/<name>.ts", () => {
  const wrong: string[] = [];
  for (const file of sources('test/unit')) {
    const rel = file.slice('test/unit/'.length).replace(/\.test\.ts$/, '');
    if (rel === 'tree') continue; // this file: the whole tree
    // test/unit/support/x tests the test support module test/support/x.
    const candidates = rel.startsWith('support/') ? [`test/${rel}.ts`] : [`src/${rel}.ts`, `src/${rel}/index.ts`];
    if (!candidates.some((c) => fs.existsSync(path.join(ROOT, c)))) wrong.push(`${file}: no ${candidates.join(' or ')}`);
  }
  assert.deepEqual(wrong, [], `unit tests without a module of that name:\n${wrong.join('\n')}`);
});

test('sources are formatted as Prettier formats them (run npm run format)', async () => {
  const prettier = await import('prettier');
  const unformatted: string[] = [];
  for (const dir of ['src', 'test', 'bench']) {
    for (const file of sources(dir)) {
      const full = path.join(ROOT, file);
      const options = { ...(await prettier.resolveConfig(full)), filepath: full };
      if (!(await prettier.check(fs.readFileSync(full, 'utf8'), options))) unformatted.push(file);
    }
  }
  assert.deepEqual(unformatted, [], `not formatted (npm run format fixes them):\n${unformatted.join('\n')}`);
});
