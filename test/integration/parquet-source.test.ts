/**
 * The parquet source on a dataset written by pyarrow (an independent
 * writer; not salespipe's types): Hive partitions, several row groups per
 * file, dictionary and large strings, 64- and 32-bit integers, decimals and
 * floats, naive and zoned timestamps of µs and ns. Oracle: pyarrow reading
 * the same dataset and summing per product with exact decimals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runCli, tmpDir } from '../support/helpers.js';

/** Writes `days` date partitions of `perDay` sales with pyarrow; the types vary by day. */
function writeDataset(dir: string, days: string[], perDay: number, seed: number, extra = '') {
  const script = `
import sys, random, datetime, decimal, os
import pyarrow as pa, pyarrow.parquet as pq
root, days, n, seed = sys.argv[1], sys.argv[2].split(','), int(sys.argv[3]), int(sys.argv[4])
rnd = random.Random(seed)
products = [('Dell Inspiron', 'Dell', 'Laptop'), ('Apple iPhone 12', 'Apple', 'Smartphone'), ('Lenovo ThinkPad', 'Lenovo', 'Laptop'), ('Sony WH-1000XM4', 'Sony', 'Audio')]
for k, day in enumerate(days):
    d = datetime.date.fromisoformat(day)
    rows = [rnd.choice(products) for _ in range(n)]
    qty = [rnd.randint(1, 9) for _ in range(n)]
    cents = [rnd.randint(100, 9_999_999) for _ in range(n)]
    times = [datetime.datetime.combine(d, datetime.time()) + datetime.timedelta(seconds=rnd.randint(0, 86399), microseconds=rnd.randint(0, 999999)) for _ in range(n)]
    cols = {
        'transaction_id': pa.array([k * n + i + 1 for i in range(n)], pa.int64()),
        'product_name': pa.array([p[0] for p in rows]).dictionary_encode(),
        'brand': pa.array([p[1] for p in rows], pa.large_string()),
        'product_category': pa.array([p[2] for p in rows], pa.string()),
        'quantity_sold': pa.array(qty, pa.int32() if k % 2 else pa.int64()),
        # Every other day prices are doubles (whole cents), else decimal128(14,3).
        'price_per_unit': pa.array([c / 100 for c in cents], pa.float64()) if k % 2 else pa.array([decimal.Decimal(c).scaleb(-2) for c in cents], pa.decimal128(14, 3)),
        'transaction_date': pa.array(times, pa.timestamp('us')) if k % 2 else pa.array([t.replace(tzinfo=datetime.timezone.utc) for t in times], pa.timestamp('ns', tz='UTC')),
    }
    part = os.path.join(root, f'sale_date={day}')
    os.makedirs(part, exist_ok=True)
    pq.write_table(pa.table(cols), os.path.join(part, f'part-{seed}.parquet'), row_group_size=max(1, n // 4))
os.makedirs(os.path.join(root, '.staging'), exist_ok=True)
open(os.path.join(root, '_SUCCESS'), 'w').close()
${extra}
`;
  const r = spawnSync('python3', ['-c', script, dir, days.join(','), String(perDay), String(seed)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

/** pyarrow's totals per product over the dataset, partitions in [from, to): units and revenue to the cent. */
function oracle(dir: string, from: string, to: string, before = '9999-01-01T00:00:00'): Map<string, { units: number; revenue: string }> {
  const script = `
import sys, json, decimal, datetime
import pyarrow.dataset as ds
before = datetime.datetime.fromisoformat(sys.argv[4])
out = {}
for f in ds.dataset(sys.argv[1], format='parquet', partitioning='hive').get_fragments():
    part = ds.get_partition_keys(f.partition_expression)
    if not (sys.argv[2] <= str(part['sale_date']) < sys.argv[3]): continue
    for r in f.to_table().to_pylist():
        if r['quantity_sold'] is None: continue
        t = r['transaction_date']
        if t.tzinfo is not None: t = t.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        if t >= before: continue
        k = r['product_name'] + '|' + r['brand'] + '|' + r['product_category']
        u, v = out.get(k, (0, decimal.Decimal(0)))
        price = decimal.Decimal(repr(r['price_per_unit'])) if isinstance(r['price_per_unit'], float) else r['price_per_unit']
        out[k] = (u + r['quantity_sold'], v + r['quantity_sold'] * price)
print(json.dumps({k: [u, str(v.quantize(decimal.Decimal('0.01')))] for k, (u, v) in out.items()}))
`;
  const r = spawnSync('python3', ['-c', script, dir, from, to, before], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return new Map(
    Object.entries(JSON.parse(r.stdout) as Record<string, [number, string]>).map(([k, [u, v]]) => [k, { units: u, revenue: v }]),
  );
}

function spec(dataset: string, out: string, extra = '') {
  return `pipeline: history
flows:
  product_totals:
    source:
      type: parquet
      path: ${dataset}
      eventTime: transaction_date
      partitions: { sale_date: { from: "2026-01-02", to: "2026-01-05" } }
      batchSize: 700
      schema:
        transaction_id: int
        product_name: string
        brand: string
        product_category: string
        quantity_sold: int
        price_per_unit: decimal(12,2)
        transaction_date: timestamp
${extra}    steps:
      - aggregate:
          groupBy: [product_name, brand, product_category]
          compute:
            units: sum(quantity_sold)
            revenue: sum(quantity_sold * price_per_unit)
          mode: update
    sinks:
      - type: file
        path: ${out}
`;
}

/** The latest total per product in the JSON-lines output. */
function totals(file: string) {
  const m = new Map<string, { units: number; revenue: string }>();
  for (const line of fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    const r = JSON.parse(line.replace(/"revenue":(-?[\d.]+)/, '"revenue":"$1"'));
    m.set(`${r.product_name}|${r.brand}|${r.product_category}`, { units: r.units, revenue: Number(r.revenue).toFixed(2) });
  }
  return m;
}

test('parquet source: a pyarrow dataset (any column types, row groups, partitions filtered) read exactly, resumed where it stopped when files are added', async () => {
  const dir = tmpDir();
  const dataset = path.join(dir, 'sales_history');
  writeDataset(dataset, ['2026-01-01', '2026-01-02', '2026-01-03', '2026-01-04', '2026-01-05'], 3000, 1);
  const out = path.join(dir, 'totals.jsonl');
  const file = path.join(dir, 'history.yaml');
  fs.writeFileSync(file, spec(dataset, out));
  let r = await runCli(['run', file, '--drain', '--no-progress'], { SALESPIPE_STATE_DIR: path.join(dir, 'state') });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /product_totals: 9,000 records in/, 'three of the five days: 9,000 sales');
  assert.deepEqual(totals(out), oracle(dataset, '2026-01-02', '2026-01-05'));

  // More files in the range (another writer's): the next run reads those only, from its checkpoint.
  writeDataset(dataset, ['2026-01-03', '2026-01-04'], 500, 2);
  r = await runCli(['run', file, '--drain', '--no-progress'], { SALESPIPE_STATE_DIR: path.join(dir, 'state') });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /product_totals: 1,000 records in/);
  assert.deepEqual(totals(out), oracle(dataset, '2026-01-02', '2026-01-05'));

  // An event-time range: naive µs and zoned ns timestamps alike, to the second.
  const out2 = path.join(dir, 'until-noon.jsonl');
  fs.writeFileSync(file, spec(dataset, out2).replace('      batchSize: 700', '      batchSize: 700\n      to: "2026-01-04 12:00:00"'));
  r = await runCli(['run', file, '--drain', '--no-progress'], { SALESPIPE_STATE_DIR: path.join(dir, 'state-noon') });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(totals(out2), oracle(dataset, '2026-01-02', '2026-01-05', '2026-01-04T12:00:00'));
});

test('parquet source: a row that does not fit the schema is a dead letter naming file and row; the others count; a column of the wrong type fails naming it', async () => {
  const dir = tmpDir();
  const dataset = path.join(dir, 'sales_history');
  // Day 2026-01-02 gets a null quantity in row 7 and a price with three decimals in row 8.
  writeDataset(
    dataset,
    ['2026-01-02'],
    50,
    3,
    `
t = pq.read_table(os.path.join(root, 'sale_date=2026-01-02', 'part-3.parquet'))
q = t.column('quantity_sold').to_pylist(); q[7] = None
p = t.column('price_per_unit').to_pylist(); p[8] = decimal.Decimal('1.005')
t = t.set_column(t.schema.get_field_index('quantity_sold'), 'quantity_sold', pa.array(q, pa.int64()))
t = t.set_column(t.schema.get_field_index('price_per_unit'), 'price_per_unit', pa.array(p, pa.decimal128(14, 3)))
pq.write_table(t, os.path.join(root, 'sale_date=2026-01-02', 'part-3.parquet'))
`,
  );
  const out = path.join(dir, 'totals.jsonl');
  const dead = path.join(dir, 'dead.jsonl');
  const file = path.join(dir, 'history.yaml');
  fs.writeFileSync(file, spec(dataset, out, `    deadLetter: { type: file, path: ${dead} }\n`));
  const r = await runCli(['run', file, '--drain', '--no-progress'], { SALESPIPE_STATE_DIR: path.join(dir, 'state') });
  assert.equal(r.code, 0, r.stderr);
  const letters = fs
    .readFileSync(dead, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    letters.map((d) => [d.origin.replace(dataset, 'D'), d.reason.split(':')[0]]),
    [
      ['D/sale_date=2026-01-02/part-3.parquet@row 7', 'field "quantity_sold" is null but not nullable'],
      ['D/sale_date=2026-01-02/part-3.parquet@row 8', 'field "price_per_unit"'],
    ],
  );
  assert.equal(JSON.parse(letters[1].payload).price_per_unit, '1.005', 'the value as the file holds it');
  const units = [...totals(out).values()].reduce((n, t) => n + t.units, 0);
  const all = [...oracle(dataset, '2026-01-02', '2026-01-05').values()].reduce((n, t) => n + t.units, 0);
  const row8 = spawnSync(
    'python3',
    [
      '-c',
      `import pyarrow.parquet as pq; print(pq.read_table('${dataset}/sale_date=2026-01-02/part-3.parquet').column('quantity_sold')[8])`,
    ],
    {
      encoding: 'utf8',
    },
  ).stdout.trim();
  assert.equal(units, all - Number(row8), 'every other row counted');

  // A string column declared as a number: the run fails and says which file and column.
  fs.writeFileSync(file, spec(dataset, path.join(dir, 'other.jsonl')).replace('brand: string', 'brand: int'));
  const bad = await runCli(['run', file, '--drain', '--no-progress'], { SALESPIPE_STATE_DIR: path.join(dir, 'state2') });
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /part-3\.parquet: column brand: a LargeUtf8 column cannot be read as int/);
});
