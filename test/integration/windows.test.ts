/**
 * Windowed totals through pipelines/windowed-sales.yaml (after sales.yaml
 * has published the table to Kafka), against real MariaDB, PostgreSQL and
 * Kafka. Oracles: SQL GROUP BY on the truncated timestamp; the watermark
 * recomputed from what kcat reads on product_sales (each partition's
 * largest event time); pyarrow for the Parquet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runCli, tmpDir, uniq, readTopic, latestByKey, parseExact, readParquet, needServices, ROOT, money } from '../support/helpers.js';
import { freshDatabase, pingDatabase, MARIADB_ADMIN, POSTGRES_ADMIN, insertSales, sqlRows } from '../support/sql.js';
import { BROKERS, pingKafka } from '../support/kafka.js';
import { randomSale, rng, SaleRow } from '../../src/gen/generate.js';

const SALES = path.join(ROOT, 'pipelines/sales.yaml');
const WINDOWED = path.join(ROOT, 'pipelines/windowed-sales.yaml');
const H = 3_600_000;
const LATENESS = 10 * 60_000;
const T0 = Date.UTC(2026, 9, 1); // a midnight

function env(db: string, prefix: string, out: string, state: string): NodeJS.ProcessEnv {
  return {
    SALES_DB_URL: db,
    KAFKA_BROKERS: BROKERS,
    KAFKA_TOPIC_PREFIX: prefix,
    SALES_OUTPUT_DIR: out,
    SALESPIPE_STATE_DIR: state,
    CHECKPOINT_INTERVAL: '1s',
  };
}

/** `n` sales from `from` to `to` in id order, each up to 5 minutes out of order (within the lateness). */
function salesBetween(n: number, from: number, to: number, seed: number): SaleRow[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => randomSale(r, from + Math.floor(((to - from) * i) / n) + Math.floor(r() * 5 * 60_000)));
}

/** The watermark as salespipe must compute it: the smallest partition maximum of event time, minus the lateness. */
function expectedWatermark(prefix: string): number {
  const r = spawnSync('kcat', ['-b', BROKERS, '-C', '-t', `${prefix}product_sales`, '-e', '-q', '-f', '%p\\t%s\\n'], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  const max = new Map<string, number>();
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const [p, v] = [line.slice(0, line.indexOf('\t')), line.slice(line.indexOf('\t') + 1)];
    const t = Date.parse(JSON.parse(v).transaction_date);
    max.set(p, Math.max(max.get(p) ?? -Infinity, t));
  }
  return Math.min(...max.values()) - LATENESS;
}

interface WindowTotal {
  units: string;
  revenue: string;
  n: string;
}

/** SQL oracle: totals per (window start, product, brand) over `size`-long windows. */
async function sqlWindows(db: string, size: 'hour' | 'day', exclude: number[] = []): Promise<Map<string, WindowTotal>> {
  const pg = db.startsWith('postgres');
  const trunc = pg
    ? `date_trunc('${size}', transaction_date)`
    : size === 'hour'
      ? `DATE_FORMAT(transaction_date, '%Y-%m-%d %H:00:00')`
      : `DATE_FORMAT(transaction_date, '%Y-%m-%d 00:00:00')`;
  const rows = await sqlRows(
    db,
    `SELECT ${pg ? `to_char(${trunc}, 'YYYY-MM-DD HH24:MI:SS')` : trunc} AS w, product_name, brand,
      SUM(quantity_sold) AS units, ${pg ? 'CAST(SUM(quantity_sold * price_per_unit) AS TEXT)' : 'CAST(SUM(quantity_sold * price_per_unit) AS CHAR(40))'} AS revenue, COUNT(*) AS n
    FROM product_sales ${exclude.length ? `WHERE transaction_id NOT IN (${exclude.join(',')})` : ''} GROUP BY 1, 2, 3`,
  );
  return new Map(
    rows.map((r) => [
      `${Date.parse(String(r.w).replace(' ', 'T') + 'Z')}|${r.product_name}|${r.brand}`,
      { units: String(r.units), revenue: money(String(r.revenue)), n: String(r.n) },
    ]),
  );
}

/** Every window message (not just the latest per key) of one size. */
function topicWindows(prefix: string, size: '1h' | '1d', topic = 'windowed_product_sales') {
  return readTopic(`${prefix}${topic}`)
    .map((m) => parseExact(m.value))
    .filter((r) => r.window_size === undefined || r.window_size === size)
    .map((r) => ({
      key: `${Date.parse(r.window_start!)}|${r.product_name}|${r.brand}`,
      end: Date.parse(r.window_end!),
      total: { units: r.total_quantity_sold!, revenue: money(r.total_revenue!), n: r.transactions! },
    }));
}

/** Windows of `want` whose end the watermark has passed. */
const finalOnly = (want: Map<string, WindowTotal>, size: number, wm: number) =>
  new Map([...want].filter(([k]) => Number(k.split('|')[0]) + size <= wm));

function assertAppendedOnce(got: ReturnType<typeof topicWindows>, want: Map<string, WindowTotal>, what: string) {
  const keys = got.map((g) => g.key);
  assert.equal(new Set(keys).size, keys.length, `${what}: a window was appended more than once`);
  assert.deepEqual(new Map(got.map((g) => [g.key, g.total])), want, `${what} differ from SQL`);
}

for (const dialect of ['mysql', 'postgres'] as const) {
  test(`${dialect === 'mysql' ? 'MariaDB' : 'PostgreSQL'}: final hourly and daily windows appended once each, equal to SQL GROUP BY; open windows held back`, async (t) => {
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
    const e = env(db, prefix, out, state);
    await insertSales(db, salesBetween(6000, T0, T0 + 30 * H, 1));
    for (const spec of [SALES, WINDOWED]) {
      const r = await runCli(['run', spec, '--drain', '--no-progress'], e);
      assert.equal(r.code, 0, r.stderr);
    }
    const wm = expectedWatermark(prefix);
    const hourly = finalOnly(await sqlWindows(db, 'hour'), H, wm);
    const daily = finalOnly(await sqlWindows(db, 'day'), 24 * H, wm);
    assert.ok(hourly.size > 500 && daily.size > 0, 'the data spans many final windows');
    assertAppendedOnce(topicWindows(prefix, '1h'), hourly, 'hourly windows on Kafka');
    assertAppendedOnce(topicWindows(prefix, '1d'), daily, 'daily windows on Kafka');
    for (const g of topicWindows(prefix, '1h')) assert.equal(g.end - Number(g.key.split('|')[0]), H);

    // Parquet, read by pyarrow, partitioned by window date: the same rows.
    const pq = readParquet(path.join(out, 'windowed_product_sales/hourly'));
    assert.deepEqual(
      new Map(
        pq.map((r) => [
          `${Date.parse(String(r.window_start))}|${r.product_name}|${r.brand}`,
          { units: String(r.total_quantity_sold), revenue: money(String(r.total_revenue)), n: String(r.transactions) },
        ]),
      ),
      hourly,
    );
    assert.deepEqual(
      fs
        .readdirSync(path.join(out, 'windowed_product_sales/hourly'))
        .filter((d) => !d.startsWith('_'))
        .sort(),
      ['window_date=2026-10-01', 'window_date=2026-10-02'],
    );
  });
}

test('update mode: each epoch emits the changed windows; the latest value per window equals SQL, open windows included', async (t) => {
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
  // An update-mode variant of the hourly flow, written next to the shipped spec's connections.
  const spec = path.join(tmpDir(), 'hourly-update.yaml');
  fs.writeFileSync(
    spec,
    fs
      .readFileSync(WINDOWED, 'utf8')
      .replace(/\n  daily_sales:[\s\S]*$/, '\n')
      .replace('mode: append', 'mode: update')
      .replace(/      - type: parquet\n.*\n.*\n/, '')
      .replace('topic: windowed_product_sales', 'topic: windowed_product_sales_live'),
  );
  const rounds = [salesBetween(1500, T0, T0 + 5 * H, 2), salesBetween(1500, T0 + 5 * H, T0 + 9 * H, 3)];
  for (const rows of rounds) {
    await insertSales(db, rows);
    for (const s of [SALES, spec]) {
      const r = await runCli(['run', s, '--drain', '--no-progress'], e);
      assert.equal(r.code, 0, r.stderr);
    }
  }
  const msgs = readTopic(`${prefix}windowed_product_sales_live`);
  const latest = new Map(
    [...latestByKey(msgs).values()]
      .map((v) => parseExact(v))
      .map((r) => [
        `${Date.parse(r.window_start!)}|${r.product_name}|${r.brand}`,
        { units: r.total_quantity_sold!, revenue: money(r.total_revenue!), n: r.transactions! },
      ]),
  );
  assert.deepEqual(latest, await sqlWindows(db, 'hour'));
  // Windows of the first round that the second round did not touch were not emitted again.
  assert.ok(msgs.length < latest.size * 2, `${msgs.length} messages for ${latest.size} windows`);
});

test('late data: sales behind the watermark go to the late topic with the reason and count nowhere; totals equal SQL over the on-time sales', async (t) => {
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
  const run = async () => {
    for (const s of [SALES, WINDOWED]) {
      const r = await runCli(['run', s, '--drain', '--no-progress'], e);
      assert.equal(r.code, 0, r.stderr);
    }
  };
  await insertSales(db, salesBetween(2000, T0, T0 + 6 * H, 4));
  await run();
  const wm1 = expectedWatermark(prefix);
  // Then: 60 sales from hours 1-2 (long final) among 500 new on-time ones.
  const r = rng(5);
  const late = Array.from({ length: 60 }, () => randomSale(r, T0 + H + Math.floor(r() * 2 * H)));
  const onTime = salesBetween(500, T0 + 6 * H, T0 + 8 * H, 6);
  const mixed = [...onTime];
  late.forEach((s, i) => mixed.splice(i * 8, 0, s));
  const ids = await insertSales(db, mixed);
  const lateIds = ids.filter((_id, i) => late.includes(mixed[i]));
  assert.equal(lateIds.length, 60);
  await run();

  const lateMsgs = readTopic(`${prefix}windowed_sales_late`).map((m) => JSON.parse(m.value));
  // Hourly windows of hours 1-2 were final; the day is still open, so only the hourly flow rejects them.
  assert.deepEqual(
    lateMsgs.map((m) => JSON.parse(m.payload).transaction_id).sort((a, b) => a - b),
    lateIds.sort((a, b) => a - b),
  );
  for (const m of lateMsgs) {
    assert.equal(m.flow, 'hourly_sales');
    assert.match(m.reason, /^late: event time \S+ is behind the watermark \S+; window \[\S+, \S+\) already final$/);
    assert.ok(Date.parse(m.reason.match(/watermark (\S+);/)[1]) >= wm1);
  }
  const wm = expectedWatermark(prefix);
  assertAppendedOnce(topicWindows(prefix, '1h'), finalOnly(await sqlWindows(db, 'hour', lateIds), H, wm), 'hourly windows');
  // The daily window was open when the late sales came: they count there.
  const daily = latestByKey(readTopic(`${prefix}windowed_product_sales`));
  assert.equal([...daily.values()].filter((v) => JSON.parse(v).window_size === '1d').length, 0, 'day 1 is not final yet');
});
