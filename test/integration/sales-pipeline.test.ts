/**
 * The retailer's main flow through pipelines/sales.yaml against real
 * MariaDB, PostgreSQL and Kafka. Oracles: SQL GROUP BY over the same table,
 * kcat reading the output topics, pyarrow reading the Parquet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  runCli,
  startCli,
  finished,
  tmpDir,
  uniq,
  readTopic,
  latestByKey,
  parseExact,
  readParquet,
  needServices,
  until,
  ROOT,
  money,
} from '../support/helpers.js';
import { freshDatabase, pingDatabase, sqlTotals, MARIADB_ADMIN, POSTGRES_ADMIN } from '../support/sql.js';
import { BROKERS, pingKafka, produceRaw, createTopic } from '../support/kafka.js';
import { openKnex } from '../../src/connections/sql.js';
import { insertWorkedExample } from '../../src/gen/generate.js';
import { topicTotals } from '../support/runs.js';

const SPEC = path.join(ROOT, 'pipelines/sales.yaml');

function env(db: string, prefix: string, out: string, state: string): NodeJS.ProcessEnv {
  return { SALES_DB_URL: db, KAFKA_BROKERS: BROKERS, KAFKA_TOPIC_PREFIX: prefix, SALES_OUTPUT_DIR: out, SALESPIPE_STATE_DIR: state };
}

function parquetTotals(out: string) {
  return new Map(
    readParquet(path.join(out, 'aggregated_product_sales')).map((r) => [
      `${r.product_name}|${r.brand}|${r.product_category}`,
      { units: String(r.total_quantity_sold), revenue: String(r.total_revenue) },
    ]),
  );
}

function sameTotals(
  got: Map<string, { units: string; revenue: string }>,
  want: Map<string, { units: string; revenue: string }>,
  what: string,
) {
  const norm = (m: Map<string, { units: string; revenue: string }>) =>
    new Map([...m].map(([k, v]) => [k, { units: v.units, revenue: money(v.revenue) }]));
  assert.deepEqual(norm(got), norm(want), `${what} differ from SQL GROUP BY`);
}

test('worked example: aggregated_product_sales and Parquet hold exactly the three totals', async (t) => {
  if (
    !(await needServices(t, async () => {
      await pingDatabase(MARIADB_ADMIN);
      await pingKafka();
    }))
  )
    return;
  const db = await freshDatabase('mysql', `sp_${uniq()}`);
  const { db: k, dialect } = await openKnex(db, ROOT, 1);
  await insertWorkedExample(k, dialect);
  await k.destroy();
  const prefix = `${uniq()}.`,
    out = tmpDir(),
    state = tmpDir();
  const r = await runCli(['run', SPEC, '--drain'], env(db, prefix, out, state));
  assert.equal(r.code, 0, r.stderr);

  const msgs = readTopic(`${prefix}aggregated_product_sales`);
  const latest = latestByKey(msgs);
  assert.deepEqual(
    new Map([...latest].map(([key, v]) => [key, parseExact(v)])),
    new Map([
      [
        'Dell Inspiron|Dell|Laptop',
        { product_name: 'Dell Inspiron', brand: 'Dell', product_category: 'Laptop', total_quantity_sold: '2', total_revenue: '100000.00' },
      ],
      [
        'Apple iPhone 12|Apple|Smartphone',
        {
          product_name: 'Apple iPhone 12',
          brand: 'Apple',
          product_category: 'Smartphone',
          total_quantity_sold: '3',
          total_revenue: '240000.00',
        },
      ],
      [
        'Lenovo ThinkPad|Lenovo|Laptop',
        {
          product_name: 'Lenovo ThinkPad',
          brand: 'Lenovo',
          product_category: 'Laptop',
          total_quantity_sold: '1',
          total_revenue: '65000.00',
        },
      ],
    ]),
  );
  // Values are real JSON (not a dictionary repr).
  for (const m of msgs) assert.doesNotThrow(() => JSON.parse(m.value));
  // The raw topic carries each sale once, keyed by transaction_id.
  const raw = readTopic(`${prefix}product_sales`);
  assert.deepEqual(raw.map((m) => m.key).sort(), ['3001', '3002', '3003']);
  assert.equal(JSON.parse(raw.find((m) => m.key === '3001')!.value).transaction_date, '2026-01-15T10:00:00.000Z');

  sameTotals(parquetTotals(out), topicTotals(prefix), 'Parquet totals');
  assert.equal(readParquet(path.join(out, 'sales_history')).length, 3);
});

for (const dialect of ['mysql', 'postgres'] as const) {
  test(`${dialect === 'mysql' ? 'MariaDB' : 'PostgreSQL'}: 50,000 sales from 8 concurrent writers, a SIGTERM mid-run and a restart, totals equal SQL`, async (t) => {
    if (
      !(await needServices(t, async () => {
        await pingDatabase(dialect === 'mysql' ? MARIADB_ADMIN : POSTGRES_ADMIN);
        await pingKafka();
      }))
    )
      return;
    const db = await freshDatabase(dialect, `sp_${uniq()}`);
    const prefix = `${uniq()}.`,
      out = tmpDir(),
      state = tmpDir();
    const e = { ...env(db, prefix, out, state) };
    const gen = startCli(
      ['generate', '--db', db, '--count', '50000', '--writers', '8', '--batch', '20', '--rate', '12000', '--rollback', '0.02'],
      e,
    );

    // First run: stopped with SIGTERM while the writers are still writing.
    const first = startCli(['run', SPEC, '--no-progress'], e);
    await until(() => /epoch/.test(first.out.stderr) || readTopicSafe(`${prefix}product_sales`) > 1000, 60_000, 'the first run to publish');
    first.kill('SIGTERM');
    const r1 = await finished(first);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stderr, /SIGTERM received/);

    // Second run: keeps going while the writers finish, then stops.
    const second = startCli(['run', SPEC, '--no-progress'], e);
    const g = await finished(gen);
    assert.equal(g.code, 0, g.stderr);
    await new Promise((r) => setTimeout(r, 3000));
    second.kill('SIGTERM');
    const r2 = await finished(second);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stderr, /resuming from checkpoint/);

    // Third: drain what is left, then compare with the oracle.
    const r3 = await runCli(['run', SPEC, '--drain', '--no-progress'], e);
    assert.equal(r3.code, 0, r3.stderr);
    const want = await sqlTotals(db);
    sameTotals(topicTotals(prefix), want, 'topic totals');
    sameTotals(parquetTotals(out), want, 'Parquet totals');
    const { db: k } = await openKnex(db, ROOT, 1);
    const [{ n }] = await k('product_sales').count({ n: '*' });
    await k.destroy();
    assert.ok(Number(n) > 45_000, `only ${n} rows committed`);
    // Each committed sale was published exactly once (no loss, no duplicate across restarts).
    const keys = readTopic(`${prefix}product_sales`).map((m) => m.key);
    assert.equal(keys.length, Number(n));
    assert.equal(new Set(keys).size, Number(n));
    assert.equal(readParquet(path.join(out, 'sales_history')).length, Number(n));
  });
}

function readTopicSafe(topic: string): number {
  try {
    return readTopic(topic).length;
  } catch {
    return 0;
  }
}

test('malformed messages go to the dead-letter topic with reasons; valid sales still add up exactly', async (t) => {
  if (
    !(await needServices(t, async () => {
      await pingDatabase(MARIADB_ADMIN);
      await pingKafka();
    }))
  )
    return;
  const db = await freshDatabase('mysql', `sp_${uniq()}`);
  const prefix = `${uniq()}.`,
    out = tmpDir(),
    state = tmpDir();
  const e = env(db, prefix, out, state);
  const valid = {
    transaction_id: 1,
    product_name: 'Dell Inspiron',
    product_category: 'Laptop',
    brand: 'Dell',
    quantity_sold: 2,
    price_per_unit: 50000,
    transaction_date: '2026-01-15T10:00:00Z',
    customer_id: null,
    product_id: null,
  };
  const bad: [Buffer | string | null, RegExp][] = [
    ['not json at all', /not JSON/],
    ["{'transaction_id': 1, 'product_name': 'Dell Inspiron', 'customer_id': None, 'ok': True}", /not JSON/],
    [JSON.stringify({ ...valid, quantity_sold: 'two' }), /quantity_sold.*expected int/],
    [JSON.stringify({ ...valid, price_per_unit: undefined }), /missing required field "price_per_unit"/],
    [JSON.stringify({ ...valid, quantity_sold: -3 }), /quantity_sold must be positive/],
    [JSON.stringify({ ...valid, quantity_sold: 1e300 }), /outside the exact integer range/],
    [JSON.stringify({ ...valid, price_per_unit: 1e300 }), /too large|exceeds/],
    [JSON.stringify({ ...valid, product_name: 'x'.repeat(100_000) }), /exceeds the limit/],
    [JSON.stringify({ ...valid, product_name: 'Dell\u0000Inspiron' }), /NUL/],
    [Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]), /not valid UTF-8/],
    ['', /empty message/],
    [null, /empty message/],
    ['[1,2,3]', /expected a JSON object/],
    [JSON.stringify({ ...valid, transaction_date: 'yesterday' }), /not a timestamp/],
  ];
  await createTopic(`${prefix}product_sales`, 3);
  // Round 1: bad messages, then 1000 valid sales through the database.
  await produceRaw(
    `${prefix}product_sales`,
    bad.map((b) => b[0]),
  );
  let g = await runCli(['generate', '--db', db, '--count', '1000', '--writers', '4'], e);
  assert.equal(g.code, 0, g.stderr);
  let r = await runCli(['run', SPEC, '--drain', '--no-progress'], e);
  assert.equal(r.code, 0, r.stderr);
  // Round 2: the same again, interleaved with a restart.
  await produceRaw(
    `${prefix}product_sales`,
    bad.map((b) => b[0]),
  );
  g = await runCli(['generate', '--db', db, '--count', '1000', '--writers', '4', '--seed', '2'], e);
  assert.equal(g.code, 0, g.stderr);
  r = await runCli(['run', SPEC, '--drain', '--no-progress'], e);
  assert.equal(r.code, 0, r.stderr);
  // Round 3, on its own so that nothing else shares the fetch: a character split across two
  // messages of one partition. Together the bytes are valid UTF-8; apart, neither message is.
  const split: Buffer[] = [Buffer.from('{"a":"caf\xc3', 'latin1'), Buffer.from('\xa9"}', 'latin1')];
  await produceRaw(`${prefix}product_sales`, split, 'split');
  r = await runCli(['run', SPEC, '--drain', '--no-progress'], e);
  assert.equal(r.code, 0, r.stderr);

  const dead = readTopic(`${prefix}product_sales_dead_letters`).map((m) => JSON.parse(m.value));
  assert.equal(dead.length, bad.length * 2 + split.length, dead.map((d) => d.reason).join('\n'));
  for (const half of split) {
    assert.ok(
      dead.some((d) => d.reason === 'payload is not valid UTF-8' && Buffer.from(d.payload, 'base64').equals(half)),
      'a split character is not valid UTF-8 on either side',
    );
  }
  for (const [payload, reason] of bad) {
    const expected = payload === null ? '' : Buffer.isBuffer(payload) && !/UTF-8/.test(String(reason)) ? payload.toString() : payload;
    const hits = dead.filter((d) => reason.test(d.reason));
    assert.ok(hits.length >= 2, `no dead letter matching ${reason}`);
    if (Buffer.isBuffer(expected))
      assert.ok(hits.some((d) => d.encoding === 'base64' && Buffer.from(d.payload, 'base64').equals(expected)));
    else if (String(reason) !== String(/quantity_sold must be positive/) && expected.length < 1000)
      assert.ok(
        hits.some((d) => d.payload === expected),
        `payload kept for ${reason}`,
      );
  }
  for (const d of dead) assert.ok(d.origin && d.flow === 'aggregate_sales' && d.pipeline === 'sales');
  sameTotals(topicTotals(prefix), await sqlTotals(db), 'topic totals');
});
