/**
 * Every spec under examples/ run for real, as its header says (run --drain),
 * its output read back independently (the console's JSON lines, pyarrow,
 * SQL, kcat, the file) and checked against SQL over the same rows. Their
 * `tests:` run in test/unit/spec/load.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, needServices, parseExact, readParquet, readTopicSettled, runCli, tmpDir, uniq } from '../support/helpers.js';
import { BROKERS, createTopic, pingKafka, produceRaw } from '../support/kafka.js';
import { sqlite } from '../support/sql.js';

const example = (name: string) => path.join(ROOT, 'examples', name);

/** Exact cents of SQLite's text prices, for sums that stay exact in SQL. */
const CENTS = 'CAST(ROUND(CAST(price_per_unit AS REAL) * 100) AS INTEGER)';
const money = (cents: number | bigint) => {
  const c = BigInt(cents);
  const neg = c < 0n;
  const a = neg ? -c : c;
  return `${neg ? '-' : ''}${a / 100n}.${String(a % 100n).padStart(2, '0')}`;
};

/** A generated SQLite sales database, the environment pointing the examples at it, and their state and output directories. */
async function salesDb(args: string[]) {
  const dir = tmpDir();
  const db = path.join(dir, 'sales.db');
  const gen = await runCli(['generate', '--db', `sqlite:${db}`, '--create-tables', ...args]);
  assert.equal(gen.code, 0, gen.stderr);
  return {
    dir,
    db,
    env: { EXAMPLE_DB: `sqlite:${db}`, EXAMPLE_OUTPUT_DIR: path.join(dir, 'out') },
    state: ['--state-dir', path.join(dir, 'state')],
  };
}

async function sql<T>(file: string, query: string): Promise<T[]> {
  const db = sqlite(file);
  try {
    return (await db.raw(query)) as T[];
  } finally {
    await db.destroy();
  }
}

test('examples/sqlite-to-console.yaml: the large orders and their revenue on standard output, as SQL selects them', async () => {
  const s = await salesDb(['--count', '2000', '--seed', '7']);
  const r = await runCli(['run', example('sqlite-to-console.yaml'), '--drain', ...s.state], s.env);
  assert.equal(r.code, 0, r.stderr);
  const got = r.stdout
    .split('\n')
    .filter(Boolean)
    .map(parseExact)
    .map((o) => [Number(o.transaction_id), o.product_name, Number(o.quantity_sold), o.revenue]);
  const want = (
    await sql<{ id: number; name: string; q: number; cents: number }>(
      s.db,
      `SELECT transaction_id AS id, product_name AS name, quantity_sold AS q, quantity_sold * ${CENTS} AS cents FROM product_sales WHERE quantity_sold >= 4 ORDER BY transaction_id`,
    )
  ).map((x) => [x.id, x.name, x.q, money(x.cents)]);
  assert.ok(want.length > 50, `the generated sales hold large orders (${want.length})`);
  assert.deepEqual(
    got.sort((a, b) => (a[0] as number) - (b[0] as number)),
    want,
  );
});

test('examples/sqlite-to-parquet.yaml: one row per category and final day, read by pyarrow, equal to SQL', async () => {
  const s = await salesDb(['--count', '4000', '--from', '2026-01-01', '--to', '2026-01-08', '--ordered', '--writers', '1']);
  const r = await runCli(['run', example('sqlite-to-parquet.yaml'), '--drain', ...s.state], s.env);
  assert.equal(r.code, 0, r.stderr);
  const got = readParquet(path.join(s.dir, 'out/daily_category_revenue'))
    .map((x) => [String(x.day), x.product_category, Number(x.units), Number(x.sales), String(x.revenue)])
    .sort();
  // A day is final once the latest sale is an hour (the lateness) past its end; the last ones are not yet.
  const want = (
    await sql<{ day: string; cat: string; units: number; sales: number; cents: number }>(
      s.db,
      `
    SELECT date(transaction_date) AS day, product_category AS cat, SUM(quantity_sold) AS units, COUNT(*) AS sales, SUM(quantity_sold * ${CENTS}) AS cents
    FROM product_sales
    WHERE datetime(date(transaction_date), '+1 day') <= datetime((SELECT MAX(transaction_date) FROM product_sales), '-1 hour')
    GROUP BY 1, 2`,
    )
  )
    .map((x) => [x.day, x.cat, x.units, x.sales, money(x.cents)])
    .sort();
  assert.ok(new Set(want.map((w) => w[0])).size >= 5, 'several days are final');
  assert.deepEqual(got, want);
  assert.ok(
    !fs.existsSync(path.join(s.dir, 'out/daily_category_revenue.late.jsonl')) ||
      fs.readFileSync(path.join(s.dir, 'out/daily_category_revenue.late.jsonl'), 'utf8') === '',
    'sales up to a minute out of order are within the hour of lateness',
  );
});

test("examples/sqlite-to-sql.yaml: brand_totals holds SQL's totals per brand; a second run over new sales keeps them equal", async () => {
  const s = await salesDb(['--count', '1500', '--seed', '3']);
  const totals = async () => ({
    got: (
      await sql<{ brand: string; units: number; revenue: string }>(
        s.db,
        'SELECT brand, units, CAST(revenue AS TEXT) AS revenue FROM brand_totals ORDER BY brand',
      )
    ).map((x) => [x.brand, Number(x.units), x.revenue]),
    want: (
      await sql<{ brand: string; units: number; cents: number }>(
        s.db,
        `SELECT brand, SUM(quantity_sold) AS units, SUM(quantity_sold * ${CENTS}) AS cents FROM product_sales WHERE quantity_sold > 0 GROUP BY brand ORDER BY brand`,
      )
    ).map((x) => [x.brand, x.units, money(x.cents)]),
  });
  let r = await runCli(['run', example('sqlite-to-sql.yaml'), '--drain', ...s.state], s.env);
  assert.equal(r.code, 0, r.stderr);
  let t = await totals();
  assert.ok(t.want.length >= 3);
  assert.deepEqual(t.got, t.want);
  const more = await runCli(['generate', '--db', s.env.EXAMPLE_DB, '--count', '500', '--seed', '4']);
  assert.equal(more.code, 0, more.stderr);
  r = await runCli(['run', example('sqlite-to-sql.yaml'), '--drain', ...s.state], s.env);
  assert.equal(r.code, 0, r.stderr);
  t = await totals();
  assert.deepEqual(t.got, t.want);
});

/** Sales as JSON records on `topic`, spread over its partitions, and the same rows in a SQLite table for the oracle. */
async function kafkaSales(topic: string, rows: Record<string, unknown>[], table: string, columns: string) {
  await createTopic(topic, 3);
  await produceRaw(
    topic,
    rows.map((r) => JSON.stringify(r)),
    (i) => `k${i}`,
  );
  const file = path.join(tmpDir(), 'oracle.db');
  const db = sqlite(file);
  await db.schema.raw(`CREATE TABLE ${table} (${columns})`);
  for (let i = 0; i < rows.length; i += 200) await db(table).insert(rows.slice(i, i + 200));
  await db.destroy();
  return file;
}

test('examples/kafka-to-kafka.yaml: final per-minute totals on the output topic, read by kcat (read_committed), equal to SQL', async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const prefix = `${uniq()}.`;
  const products = ['Dell Inspiron', 'Apple iPhone 12', 'Sony WH-1000XM4'];
  const start = Date.UTC(2026, 0, 15, 10);
  // In event-time order per partition: the watermark never passes a sale still to come.
  const rows = Array.from({ length: 600 }, (_, i) => ({
    transaction_id: i + 1,
    product_name: products[i % 3],
    quantity_sold: 1 + (i % 4),
    price_per_unit: `${100 + (i % 7)}.${String(i % 100).padStart(2, '0')}`,
    transaction_date: new Date(start + i * 1500).toISOString(),
  }));
  const oracle = await kafkaSales(
    `${prefix}example.sales`,
    rows,
    'sales',
    'transaction_id INTEGER, product_name TEXT, quantity_sold INTEGER, price_per_unit TEXT, transaction_date TEXT',
  );
  const dir = tmpDir();
  const r = await runCli(['run', example('kafka-to-kafka.yaml'), '--drain', '--state-dir', dir], {
    KAFKA_BROKERS: BROKERS,
    KAFKA_TOPIC_PREFIX: prefix,
  });
  assert.equal(r.code, 0, r.stderr);
  const got = (await readTopicSettled(`${prefix}example.sales_per_minute`))
    .map((m) => parseExact(m.value))
    .map((o) => [o.window_start, o.product_name, Number(o.units), o.revenue])
    .sort();
  // A minute is final once a sale at or past its end has been read in every partition: the last minute is not.
  const want = (
    await sql<{ w: string; p: string; u: number; c: number }>(
      oracle,
      `
    SELECT strftime('%Y-%m-%dT%H:%M:00.000Z', transaction_date) AS w, product_name AS p, SUM(quantity_sold) AS u, SUM(quantity_sold * ${CENTS}) AS c
    FROM sales GROUP BY 1, 2 HAVING w < (SELECT strftime('%Y-%m-%dT%H:%M:00.000Z', MAX(transaction_date)) FROM sales)`,
    )
  )
    .map((x) => [x.w, x.p, x.u, money(x.c)])
    .sort();
  assert.ok(want.length >= 40);
  // Windows past the slowest partition's progress stay open; every one emitted is exact, none is missing before them.
  assert.deepEqual(got, want.slice(0, got.length));
  assert.ok(got.length >= want.length - products.length * 2, `nearly every final minute is out (${got.length} of ${want.length})`);
});

test('examples/kafka-to-file.yaml: the refunds in the JSON-lines file, each once, equal to SQL; a second run adds only new ones', async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const prefix = `${uniq()}.`;
  const line = (i: number) => ({
    order_id: i,
    sku: `S-${i % 5}`,
    quantity: i % 3 === 0 ? -(1 + (i % 4)) : 1 + (i % 2),
    unit_price: `${i % 50}.${String((i * 7) % 100).padStart(2, '0')}`,
    reason: i % 6 === 0 ? null : 'damaged',
  });
  const rows = Array.from({ length: 300 }, (_, i) => line(i + 1));
  const topic = `${prefix}example.order_lines`;
  const oracle = await kafkaSales(topic, rows, 'lines', 'order_id INTEGER, sku TEXT, quantity INTEGER, unit_price TEXT, reason TEXT');
  const dir = tmpDir();
  const env = { KAFKA_BROKERS: BROKERS, KAFKA_TOPIC_PREFIX: prefix, EXAMPLE_OUTPUT_DIR: path.join(dir, 'out') };
  const file = path.join(dir, 'out/refunds.jsonl');
  const read = () =>
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(parseExact)
      .map((o) => [Number(o.order_id), o.sku, Number(o.quantity), o.refund, o.reason])
      .sort((a, b) => (a[0] as number) - (b[0] as number));
  const want = async () =>
    (
      await sql<{ id: number; sku: string; q: number; c: number; reason: string }>(
        oracle,
        `SELECT order_id AS id, sku, quantity AS q, -quantity * CAST(ROUND(CAST(unit_price AS REAL) * 100) AS INTEGER) AS c, COALESCE(reason, 'unstated') AS reason FROM lines WHERE quantity < 0 ORDER BY order_id`,
      )
    ).map((x) => [x.id, x.sku, x.q, money(x.c), x.reason]);
  let r = await runCli(['run', example('kafka-to-file.yaml'), '--drain', '--state-dir', path.join(dir, 'state')], env);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(read(), await want());
  const more = Array.from({ length: 60 }, (_, i) => line(301 + i));
  await produceRaw(
    topic,
    more.map((x) => JSON.stringify(x)),
    (i) => `m${i}`,
  );
  const db = sqlite(oracle);
  await db('lines').insert(more);
  await db.destroy();
  r = await runCli(['run', example('kafka-to-file.yaml'), '--drain', '--state-dir', path.join(dir, 'state')], env);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(read(), await want());
});
