import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runCli, tmpDir } from '../../support/helpers.js';
import { checkDemoOutputs } from '../../support/sql.js';

test('npm run demo: the worked example, exactly, and totals that match SQL over the demo database', async () => {
  const dir = tmpDir();
  const r = await runCli(['demo', '--dir', dir, '--count', '2000']);
  assert.equal(r.code, 0, r.stderr);
  const section = r.stdout.split('All sales')[0];
  const line = (name: string) =>
    section
      .split('\n')
      .find((l) => l.startsWith(name))
      ?.trim()
      .split(/\s{2,}/);
  assert.deepEqual(line('Dell Inspiron'), ['Dell Inspiron', 'Dell', 'Laptop', '2', '100000.00']);
  assert.deepEqual(line('Apple iPhone 12'), ['Apple iPhone 12', 'Apple', 'Smartphone', '3', '240000.00']);
  assert.deepEqual(line('Lenovo ThinkPad'), ['Lenovo ThinkPad', 'Lenovo', 'Laptop', '1', '65000.00']);

  await checkDemoOutputs(dir);
});

test('npm run demo after a run left an empty database file (or none at all): it creates the sales and runs, and no warning shows', async () => {
  const dir = tmpDir();
  // What `salespipe run pipelines/demo.yaml` before the first demo did: it created an empty sales.db.
  const before = await runCli(['run', path.join(ROOT, 'pipelines/demo.yaml'), '--drain', '--state-dir', path.join(dir, 'state')], {
    SALESPIPE_DEMO_DIR: dir,
  });
  assert.equal(before.code, 1);
  assert.match(
    before.stderr,
    /SQLite database .*sales\.db does not exist: create it with `salespipe generate --db sqlite:.*sales\.db --create-tables`/,
  );
  assert.equal(fs.existsSync(path.join(dir, 'sales.db')), false, 'a source leaves no empty database behind');
  fs.writeFileSync(path.join(dir, 'sales.db'), '');
  const r = await runCli(['demo', '--dir', dir, '--count', '200']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Parquet written under/);
  assert.doesNotMatch(r.stderr, / WARN /, 'the demo database fits the demo spec: no warning');
});
