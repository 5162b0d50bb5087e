/**
 * Hostile input: over 10,000 bad payloads of every kind interleaved with
 * 5,000 valid sales on the product_sales topic. Every bad one must land in
 * the dead-letter topic with its reason; the valid ones must add up exactly
 * (oracle: SQL GROUP BY over the same valid rows, in a database of their
 * own); the process must never crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { runCli, tmpDir, uniq, readTopic, latestByKey, parseExact, needServices, ROOT, money } from '../support/helpers.js';
import { freshDatabase, pingDatabase, sqlTotals, MARIADB_ADMIN, insertSales } from '../support/sql.js';
import { BROKERS, pingKafka, produceRaw, createTopic } from '../support/kafka.js';
import { randomSale, rng } from '../../src/gen/generate.js';

const SPEC = path.join(ROOT, 'pipelines/sales.yaml');

type Bad = [Buffer | string | null, RegExp];

/** One bad payload of kind `k`, built from a valid sale `v`. */
function hostile(k: number, v: Record<string, unknown>, r: () => number): Bad {
  const j = (o: unknown) => JSON.stringify(o);
  const without = (f: string) => {
    const o = { ...v };
    delete o[f];
    return o;
  };
  switch (k) {
    case 0:
      return [`garbage ${Math.floor(r() * 1e9).toString(36)}`, /not JSON/];
    case 1:
      return [`{'transaction_id': ${v.transaction_id}, 'product_name': '${v.product_name}', 'customer_id': None, 'vip': True}`, /not JSON/];
    case 2:
      return [j({ ...v, quantity_sold: String(v.quantity_sold) }), /field "quantity_sold": expected int, got string/];
    case 3:
      return [j({ ...v, quantity_sold: 1.5 }), /field "quantity_sold": 1\.5 is not an integer/];
    case 4:
      return [j({ ...v, price_per_unit: true }), /field "price_per_unit": expected a decimal number, got boolean/];
    case 5:
      return [
        j(
          without(
            ['transaction_id', 'product_name', 'product_category', 'brand', 'quantity_sold', 'price_per_unit', 'transaction_date'][
              Math.floor(r() * 7)
            ],
          ),
        ),
        /missing required field/,
      ];
    case 6:
      return [j({ ...v, quantity_sold: -1 - Math.floor(r() * 5) }), /quantity_sold must be positive/];
    case 7:
      return [j({ ...v, quantity_sold: 0 }), /quantity_sold must be positive/];
    case 8:
      return [j({ ...v, price_per_unit: -(r() * 100).toFixed(2) }), /price_per_unit must not be negative/];
    case 9:
      return [j({ ...v, quantity_sold: 1e300 }), /outside the exact integer range/];
    case 10:
      return [j({ ...v, price_per_unit: 9e15 }), /too large for an exact decimal|exceeds/];
    case 11:
      return [j({ ...v, price_per_unit: 12.345 }), /has more than 2 decimal places/];
    case 12:
      return [j({ ...v, product_name: 'x'.repeat(4097 + Math.floor(r() * 10000)) }), /exceeds the limit of 4096/];
    case 13:
      return [Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), /not valid UTF-8/];
    case 14:
      return [Buffer.from(Array.from({ length: 20 + Math.floor(r() * 50) }, () => 0x80 + Math.floor(r() * 0x40))), /not valid UTF-8/];
    case 15:
      return [j({ ...v, brand: 'De\u0000ll' }), /NUL/];
    case 16:
      return ['', /empty message/];
    case 17:
      return [null, /empty message/];
    case 18:
      return [j([v]), /expected a JSON object, got an array/];
    case 19:
      return ['null', /expected a JSON object, got null/];
    case 20:
      return [j({ ...v, transaction_date: '2026-02-30 10:00:00' }), /not a valid date or time/];
    case 21:
      return [j({ ...v, transaction_date: 'yesterday' }), /not a timestamp/];
    case 22:
      return ['\ufeff' + j(v), /not JSON/];
    case 23:
      return [j(v).slice(0, -1 - Math.floor(r() * 20)), /not JSON/];
    case 24:
      return ['['.repeat(100_000) + ']'.repeat(100_000), /expected a JSON object|not JSON/];
    case 25:
      return [j({ ...v, product_name: null }), /field "product_name" is null but not nullable/];
    default:
      return [j({ ...v, customer_id: 'guest' }), /field "customer_id": expected int/];
  }
}
const KINDS = 27;

test('over 10,000 hostile payloads among 5,000 valid sales: each in the dead-letter topic with its reason, totals exact, no crash', async (t) => {
  if (
    !(await needServices(t, async () => {
      await pingDatabase(MARIADB_ADMIN);
      await pingKafka();
    }))
  )
    return;
  const oracle = await freshDatabase('mysql', `sp_${uniq()}`);
  const empty = await freshDatabase('mysql', `sp_${uniq()}`);
  const prefix = `${uniq()}.`;
  const topic = `${prefix}product_sales`;
  await createTopic(topic, 3);
  const r = rng(77);
  const valid = Array.from({ length: 5000 }, (_, i) => ({ transaction_id: i + 1, ...randomSale(r, Date.UTC(2026, 0, 15) + i * 1000) }));
  await insertSales(oracle, valid);
  const asMessage = (s: (typeof valid)[number]) => ({
    ...s,
    price_per_unit: Number(s.price_per_unit),
    transaction_date: s.transaction_date.replace(' ', 'T') + 'Z',
  });
  const bad: Bad[] = [];
  const stream: (Buffer | string | null)[] = [];
  for (let i = 0; i < 10_500; i++) {
    const b = hostile(i % KINDS, asMessage(valid[i % valid.length]), r);
    bad.push(b);
    stream.push(b[0]);
    if (i % 2 === 1 && i / 2 < valid.length) stream.push(JSON.stringify(asMessage(valid[(i - 1) / 2])));
  }
  for (let i = Math.floor(10_500 / 2); i < valid.length; i++) stream.push(JSON.stringify(asMessage(valid[i])));
  await produceRaw(topic, stream);
  // Huge messages, each on its own: near the broker's 1 MB limit.
  const huge = [JSON.stringify({ ...asMessage(valid[0]), product_name: 'y'.repeat(900_000) }), 'z'.repeat(900_000)];
  for (const h of huge) await produceRaw(topic, [h]);
  bad.push(
    [huge[0], /exceeds the limit of 4096.*payload of 9\d{5} characters cut to 262144/],
    [huge[1], /not JSON.*cut to 262144; the original is at /],
  );

  const res = await runCli(['run', SPEC, '--drain', '--no-progress'], {
    SALES_DB_URL: empty,
    KAFKA_BROKERS: BROKERS,
    KAFKA_TOPIC_PREFIX: prefix,
    SALES_OUTPUT_DIR: tmpDir(),
    SALESPIPE_STATE_DIR: tmpDir(),
  });
  assert.equal(res.code, 0, res.stderr.slice(-3000));
  assert.match(
    res.stderr,
    new RegExp(
      `aggregate_sales: ${(stream.length + huge.length).toLocaleString('en-US')} records in, .*, ${bad.length.toLocaleString('en-US')} dead letters`,
    ),
  );

  const dead = readTopic(`${prefix}product_sales_dead_letters`).map(
    (m) => JSON.parse(m.value) as { reason: string; payload: string; encoding: string },
  );
  assert.equal(dead.length, bad.length);
  // Each kind of bad payload has its reason, as many times as it was sent.
  const want = new Map<string, number>();
  for (const [, re] of bad) want.set(String(re), (want.get(String(re)) ?? 0) + 1);
  for (const [re, count] of want) {
    const rx = new RegExp(re.slice(1, -1));
    assert.ok(dead.filter((d) => rx.test(d.reason)).length >= count, `${re}: fewer dead letters than sent (${count})`);
  }
  // The original payload travels with the reason (text as text, other bytes as base64).
  const sample = bad.find(
    ([p, re]) => String(re) === String(/field "quantity_sold": expected int, got string/) && typeof p === 'string',
  )![0] as string;
  assert.ok(dead.some((d) => d.payload === sample && d.encoding === 'utf8'));
  const got = new Map(
    [...latestByKey(readTopic(`${prefix}aggregated_product_sales`)).values()].map((v) => {
      const x = parseExact(v);
      return [`${x.product_name}|${x.brand}|${x.product_category}`, { units: x.total_quantity_sold!, revenue: money(x.total_revenue!) }];
    }),
  );
  const oracleTotals = new Map([...(await sqlTotals(oracle))].map(([k, v]) => [k, { units: v.units, revenue: money(v.revenue) }]));
  assert.deepEqual(got, oracleTotals);
});
