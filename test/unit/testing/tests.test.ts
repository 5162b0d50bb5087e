import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli } from '../../../src/cli.js';
import { ROOT, tmpDir } from '../../support/helpers.js';

async function call(args: string[]) {
  let stdout = '',
    stderr = '';
  const code = await cli(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env: {} });
  return { code, stdout, stderr };
}

test('salespipe test: every shipped pipeline but the live recommendations carries tests, and they pass without any server', async () => {
  const r = await call(['test', path.join(ROOT, 'pipelines')]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const p of ['sales', 'windowed_sales', 'inventory', 'customer_segments', 'demo'])
    assert.match(r.stdout, new RegExp(`^ok   ${p}: `, 'm'));
  assert.match(r.stdout, /^ok   sales: the worked example \(transactions 3001-3003\)/m);
  assert.doesNotMatch(r.stdout, /FAIL/);
  // The one exception: the live recommendations fold purchases into a model file a training writes, which
  // spec tests cannot give; test/integration/recommendations.test.ts runs that pipeline for real.
  assert.deepEqual(
    r.stdout.split('\n').filter((l) => /no tests/.test(l)),
    [`${path.join(ROOT, 'pipelines')}/recommendations-live.yaml: no tests`],
  );
  const [, passed] = /^(\d+) passed, 0 failed$/m.exec(r.stdout)!;
  assert.ok(Number(passed) >= 8);
});

test('every example (examples/) validates and carries tests that pass; each covers its source and sink', async () => {
  const dir = path.join(ROOT, 'examples');
  const specs = fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'));
  assert.ok(specs.length >= 5, specs.join(', '));
  const v = await call(['validate', dir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
  assert.match(v.stdout, new RegExp(`^${specs.length} spec\\(s\\) valid$`, 'm'));
  const r = await call(['test', dir]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const [, passed] = /^(\d+) passed, 0 failed$/m.exec(r.stdout) ?? [];
  assert.ok(Number(passed) >= specs.length, `a test at least per example: ${r.stdout}`);
  assert.doesNotMatch(r.stdout, /no tests/);
  // Between them, the examples use every source and sink.
  const text = specs.map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('\n');
  for (const kind of ['sql', 'kafka', 'console', 'file', 'parquet'])
    assert.match(text, new RegExp(`^\\s+(- )?type: ${kind}$`, 'm'), `an example uses type: ${kind}`);
});

test('salespipe test: a wrong expectation fails with exit 1 and shows expected and got', async () => {
  const dir = tmpDir();
  const spec = fs
    .readFileSync(path.join(ROOT, 'pipelines/sales.yaml'), 'utf8')
    .replace('total_quantity_sold: 2, total_revenue: 100000 }', 'total_quantity_sold: 2, total_revenue: 100000.01 }')
    .replace(/\n        - \{ transaction_id: 3003, revenue: 65000, sale_date: "2026-01-15" \}/, '');
  fs.writeFileSync(path.join(dir, 'sales.yaml'), spec);
  const r = await call(['test', path.join(dir, 'sales.yaml')]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^FAIL sales: the worked example/m);
  assert.match(
    r.stdout,
    /aggregate_sales: expected \{ product_name: "Dell Inspiron", brand: "Dell", product_category: "Laptop", total_quantity_sold: 2, total_revenue: 100000\.01 \}/,
  );
  assert.match(
    r.stdout,
    /got \{ product_name: "Dell Inspiron", brand: "Dell", product_category: "Laptop", total_quantity_sold: 2, total_revenue: 100000\.00 \}/,
  );
  assert.match(r.stdout, /archive_sales: unexpected \{ transaction_id: 3003, .*revenue: 65000\.00, sale_date: "2026-01-15" \}/);
  assert.match(r.stdout, /^0 passed, 1 failed$/m);
});

test('salespipe test: tests naming an unknown flow are spec problems, with positions; validate reports them too', async () => {
  const dir = tmpDir();
  fs.copyFileSync(path.join(ROOT, 'pipelines/sales.yaml'), path.join(dir, 'sales.yaml'));
  fs.writeFileSync(path.join(dir, 'sales.tests.yaml'), 'tests:\n  - name: x\n    expect:\n      aggregate_sale: []\n    inputs: {}\n');
  for (const cmd of ['test', 'validate']) {
    const r = await call([cmd, dir]);
    assert.equal(r.code, 2, cmd);
    const f = path.join(dir, 'sales.tests.yaml');
    assert.match(
      r.stderr,
      new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:5: tests\\[0\\]: unknown key "inputs" \\(did you mean "input"\\?\\)`, 'm'),
      r.stderr,
    );
    assert.doesNotMatch(r.stderr, /    at /, 'no stack trace');
  }
  fs.writeFileSync(path.join(dir, 'sales.tests.yaml'), 'tests:\n  - name: x\n    expect:\n      aggregate_sale: []\n');
  const r = await call(['validate', dir]);
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /sales\.tests\.yaml:4:7: no flow "aggregate_sale" in sales\.yaml; flows: publish_sales, aggregate_sales, archive_sales \[test\.flow\]/,
  );
});
