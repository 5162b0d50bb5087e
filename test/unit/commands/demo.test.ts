import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runCli, tmpDir, readParquet } from '../../support/helpers.js';
import { sqlite } from '../../support/sql.js';

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

  // Parquet (read by pyarrow) against SQL over the same SQLite rows. Prices are
  // stored as exact text in SQLite, so the oracle sums cents as integers.
  const db = sqlite(path.join(dir, 'sales.db'));
  try {
    const want = await db.raw(`SELECT product_name, SUM(quantity_sold) AS units,
      SUM(quantity_sold * CAST(REPLACE(price_per_unit, '.', '') AS INTEGER)) AS cents
      FROM product_sales GROUP BY product_name`);
    const got = new Map(readParquet(path.join(dir, 'output/aggregated_product_sales')).map((x) => [x.product_name, x]));
    assert.equal(got.size, want.length);
    for (const w of want) {
      const g = got.get(w.product_name)!;
      assert.equal(g.total_quantity_sold, Number(w.units));
      assert.equal(g.total_revenue, (BigInt(w.cents) / 100n).toString() + '.' + String(BigInt(w.cents) % 100n).padStart(2, '0'));
    }
    const history = readParquet(path.join(dir, 'output/sales_history'));
    const [{ n }] = await db('product_sales').count({ n: '*' });
    assert.equal(history.length, Number(n));
  } finally {
    await db.destroy();
  }
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
