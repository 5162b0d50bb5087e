/**
 * pipelines/inventory.yaml and pipelines/customer-segments.yaml against real
 * MariaDB, PostgreSQL and Kafka. Oracles: SQL over the same tables (the
 * projection as a correlated SUM, segments as a JOIN + GROUP BY), kcat for
 * the topics, pyarrow for the Parquet.
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
import { freshDatabase, pingDatabase, MARIADB_ADMIN, POSTGRES_ADMIN, insertSales, sqlRows } from '../support/sql.js';
import { BROKERS, pingKafka } from '../support/kafka.js';
import { openKnex } from '../../src/connections/sql.js';
import { CATALOG, customers, inventoryRows, randomSale, restock, rng } from '../../src/gen/generate.js';

const SALES = path.join(ROOT, 'pipelines/sales.yaml');
const INVENTORY = path.join(ROOT, 'pipelines/inventory.yaml');
const SEGMENTS = path.join(ROOT, 'pipelines/customer-segments.yaml');

function env(db: string, prefix: string, out: string, state: string, more: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    SALES_DB_URL: db,
    KAFKA_BROKERS: BROKERS,
    KAFKA_TOPIC_PREFIX: prefix,
    SALES_OUTPUT_DIR: out,
    SALESPIPE_STATE_DIR: state,
    CHECKPOINT_INTERVAL: '1s',
    ...more,
  };
}

/** The oracle: stock_level minus units sold after the row's updated_at, per product. */
async function sqlProjection(db: string): Promise<Map<string, string>> {
  const rows = await sqlRows(
    db,
    `SELECT i.product_name, i.brand, i.stock_level - COALESCE((SELECT SUM(s.quantity_sold) FROM product_sales s
      WHERE s.product_name = i.product_name AND s.brand = i.brand AND s.transaction_date > i.updated_at), 0) AS projected FROM inventory i`,
  );
  return new Map(rows.map((r) => [`${r.product_name}|${r.brand}`, String(r.projected)]));
}

function topicProjection(prefix: string): Map<string, string> {
  let msgs: { key: string; value: string }[];
  try {
    msgs = readTopic(`${prefix}inventory_levels`);
  } catch {
    return new Map();
  } // not created yet
  return new Map(
    [...latestByKey(msgs).values()].map((v) => {
      const r = parseExact(v);
      return [`${r.product_name}|${r.brand}`, r.projected_stock!];
    }),
  );
}

async function tableProjection(db: string): Promise<Map<string, string>> {
  try {
    const rows = await sqlRows(db, 'SELECT product_name, brand, projected_stock FROM inventory_levels');
    return new Map(rows.map((r) => [`${r.product_name}|${r.brand}`, String(r.projected_stock)]));
  } catch {
    return new Map();
  }
}

const same = (a: Map<string, string>, b: Map<string, string>) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

const DELL = { product_name: 'Dell Inspiron', brand: 'Dell' };

test('inventory: projected stock equals SQL at every step; one alert per crossing, resolved after a restock; restarts re-fire nothing', async (t) => {
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
  const e = env(db, prefix, out, state, { INVENTORY_REFRESH: '1s' });
  const counted = Date.now() - 3_600_000;
  const { db: k } = await openKnex(db, ROOT, 1);
  // Every product well stocked, except the Dell Inspiron: 30 on hand, reorder at 10.
  await k('inventory').insert(inventoryRows(1, counted).map((r) => ({ ...r, stock_level: 1000 })));
  await k('inventory').where(DELL).update({ stock_level: 30, reorder_threshold: 10 });
  await k.destroy();
  const r = rng(9);
  const sell = (units: number, at = Date.now()) =>
    insertSales(
      db,
      Array.from({ length: units }, () => ({
        ...randomSale(r, at),
        product_name: 'Dell Inspiron',
        product_category: 'Laptop',
        brand: 'Dell',
        quantity_sold: 1,
        product_id: CATALOG[0].id,
      })),
    );
  const others = () =>
    insertSales(
      db,
      Array.from({ length: 200 }, () => randomSale(r, Date.now())).filter((s) => s.product_name !== 'Dell Inspiron'),
    );

  const sales = startCli(['run', SALES, '--no-progress'], e);
  let inventory = startCli(['run', INVENTORY, '--no-progress'], e);
  const settled = async (what: string, dell: string) => {
    await until(
      async () => {
        const want = await sqlProjection(db);
        return want.get('Dell Inspiron|Dell') === dell && same(topicProjection(prefix), want) && same(await tableProjection(db), want);
      },
      60_000,
      what,
    );
  };
  try {
    await others();
    await settled('the initial levels', '30');
    await sell(15);
    await settled('15 sold', '15');
    await sell(8);
    await settled('23 sold: below the threshold', '7');
    await others();
    await sell(3);
    await settled('26 sold', '4');

    // A restart in the alert state: the levels are emitted again, the alert is not.
    inventory.kill('SIGTERM');
    assert.equal((await finished(inventory)).code, 0);
    inventory = startCli(['run', INVENTORY, '--no-progress'], e);

    // A restock, with no sale after it: picked up within the refresh bound, the alert resolves.
    const { db: k2 } = await openKnex(db, ROOT, 1);
    const restockedAt = Date.now();
    await restock(k2, 'Dell Inspiron', 'Dell', 50, restockedAt);
    await k2.destroy();
    await settled('the restock', '50');
    // A sale from before the restock, read after it, is already in the new count.
    await sell(5, restockedAt - 60_000);
    await sell(46);
    await settled('46 sold after the restock', '4');
  } finally {
    inventory.kill('SIGTERM');
    sales.kill('SIGTERM');
    const [a, b] = [await finished(inventory), await finished(sales)];
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
  }

  const alerts = readTopic(`${prefix}low_stock_alerts`).map((m) => parseExact(m.value));
  assert.deepEqual(
    alerts.map((a) => [a.product_name, a.event, a.crossing, a.projected_stock, a.threshold]),
    [
      ['Dell Inspiron', 'alert', '1', '7', '10'],
      ['Dell Inspiron', 'resolved', '1', '50', '10'],
      ['Dell Inspiron', 'alert', '2', '4', '10'],
    ],
  );
  assert.equal(new Set(alerts.map((a) => a.alert_id)).size, 3, 'alert ids are distinct');
  for (const a of alerts) assert.match(a.alert_id!, /^[0-9a-f]{32}$/);
});

test('segments: left join = SQL LEFT JOIN + GROUP BY (unknown customers under a null segment); inner join = SQL JOIN, misses counted', async (t) => {
  if (
    !(await needServices(t, async () => {
      await pingDatabase(POSTGRES_ADMIN);
      await pingKafka();
    }))
  )
    return;
  const db = await freshDatabase('postgres', `sp_${uniq()}`);
  const { db: k } = await openKnex(db, ROOT, 1);
  await k('customer_data').insert(customers(200, 3));
  await k.destroy();
  const r = rng(11);
  // Customer ids 1..230: 200 known, 30 unknown; one sale in ten has none.
  await insertSales(
    db,
    Array.from({ length: 3000 }, (_, i) => randomSale(r, Date.UTC(2026, 9, 1) + i * 60_000, 230)),
  );

  const oracle = async (join: 'LEFT' | 'INNER') => {
    const rows = await sqlRows(
      db,
      `SELECT c.customer_segment AS seg, s.product_name, s.brand, SUM(s.quantity_sold) AS units,
        CAST(SUM(s.quantity_sold * s.price_per_unit) AS TEXT) AS revenue, COUNT(*) AS n
      FROM product_sales s ${join} JOIN customer_data c ON c.customer_id = s.customer_id GROUP BY 1, 2, 3`,
    );
    return new Map(
      rows.map((x) => [
        `${x.seg ?? ''}|${x.product_name}|${x.brand}`,
        { units: String(x.units), revenue: money(String(x.revenue)), n: String(x.n) },
      ]),
    );
  };
  const fromTopic = (prefix: string) =>
    new Map(
      [...latestByKey(readTopic(`${prefix}customer_segment_sales`))].map(([key, v]) => {
        const x = parseExact(v);
        assert.equal(key, `${x.customer_segment ?? ''}|${x.product_name}|${x.brand}`);
        return [key, { units: x.total_quantity_sold!, revenue: money(x.total_revenue!), n: x.transactions! }];
      }),
    );

  for (const join of ['left', 'inner'] as const) {
    const prefix = `${uniq()}.`,
      out = tmpDir(),
      state = tmpDir();
    const e = env(db, prefix, out, state, { SEGMENT_JOIN: join });
    let res;
    for (const spec of [SALES, SEGMENTS]) {
      res = await runCli(['run', spec, '--drain', '--no-progress'], e);
      assert.equal(res.code, 0, res.stderr);
    }
    const want = await oracle(join === 'left' ? 'LEFT' : 'INNER');
    assert.deepEqual(fromTopic(prefix), want, `${join} join totals differ from SQL`);
    const pq = readParquet(path.join(out, 'customer_segment_sales'));
    assert.deepEqual(
      new Map(
        pq.map((x) => [
          `${x.customer_segment ?? ''}|${x.product_name}|${x.brand}`,
          { units: String(x.total_quantity_sold), revenue: money(String(x.total_revenue)), n: String(x.transactions) },
        ]),
      ),
      want,
    );
    const [{ misses }] = await sqlRows(
      db,
      'SELECT COUNT(*) AS misses FROM product_sales s LEFT JOIN customer_data c ON c.customer_id = s.customer_id WHERE c.customer_id IS NULL',
    );
    assert.ok(Number(misses) > 300, 'unknown and missing customers are part of the data');
    assert.match(
      res!.stderr,
      new RegExp(`join unmatched \\(${join === 'left' ? 'kept with nulls' : 'dropped'}\\): ${Number(misses).toLocaleString('en-US')}\\b`),
    );
    if (join === 'left')
      assert.ok(
        [...want.keys()].some((key) => key.startsWith('|')),
        'a null segment exists',
      );
    else assert.ok(![...want.keys()].some((key) => key.startsWith('|')));
  }
});
