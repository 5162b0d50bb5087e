/**
 * Exactly-once across kill -9, the way Kafka Streams' own system test checks
 * it: while concurrent writers insert sales into MariaDB, the three shipped
 * streaming pipelines (sales, windowed sales, inventory) are each killed with
 * SIGKILL at random moments and restarted, over and over; then each is
 * drained. Every output must equal the SQL oracle over the same rows, and
 * every append-only output (published sales, windows, late records, alerts)
 * must hold each record exactly once, as an independent read_committed
 * consumer (kcat) sees it.
 *
 * Size: CRASH_SALES (default 200,000) sales, CRASH_KILLS (default 10) kills
 * per pipeline; `npm run soak` runs a larger one. CRASH_LOGS=FILE keeps the
 * logs of every run (with SALESPIPE_LOG_LEVEL=debug: every position move).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ChildProcess } from 'node:child_process';
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
  ROOT,
  money,
} from '../support/helpers.js';
import { freshDatabase, pingDatabase, sqlTotals, sqlRows, insertSales, MARIADB_ADMIN } from '../support/sql.js';
import { BROKERS, pingKafka } from '../support/kafka.js';
import { openKnex } from '../../src/connections/sql.js';
import { rng, randomSale } from '../../src/gen/generate.js';

const SALES = Number(process.env.CRASH_SALES ?? 200_000);
const KILLS = Number(process.env.CRASH_KILLS ?? 10);
const H = 3_600_000;
const LATENESS = 10 * 60_000; // windowed-sales.yaml's default
/** Sales dated in the first 3 hours, inserted after the others while the kills go on: late, mostly. */
const LATE = 300;
const T0 = Date.UTC(2026, 9, 1);
const SPAN = 48 * H;
const SPECS = { sales: 'pipelines/sales.yaml', windowed: 'pipelines/windowed-sales.yaml', inventory: 'pipelines/inventory.yaml' } as const;

type Child = ChildProcess & { out: { stdout: string; stderr: string } };

/**
 * Runs `spec` and kills it with SIGKILL at a random moment, restarting it at
 * once, until it was killed `kills` times and `enough()` holds: every other
 * run 1-6 s after it started (often while it is still starting: fencing,
 * reading its checkpoint, joining groups), the others 1-6 s after it has
 * resumed from its checkpoint (while it processes). Returns how often it
 * was killed.
 */
async function crashLoop(
  spec: string,
  env: NodeJS.ProcessEnv,
  seed: number,
  kills: number,
  enough: () => boolean,
  logs: string[],
): Promise<number> {
  const rand = rng(seed);
  let n = 0;
  while (n < kills || !enough()) {
    const child: Child = startCli(['run', path.join(ROOT, spec), '--no-progress'], env);
    if (n % 2 === 1) {
      const resumed = Date.now() + 30_000;
      while (Date.now() < resumed && child.exitCode === null && !/resuming from checkpoint of epoch/.test(child.out.stderr))
        await new Promise((r) => setTimeout(r, 100));
    }
    const wait = 1000 + Math.floor(rand() * 5000);
    const exited = await Promise.race([finished(child).then(() => true), new Promise<false>((r) => setTimeout(() => r(false), wait))]);
    assert.equal(exited, false, `${spec} exited by itself (code ${child.exitCode}):\n${child.out.stderr.slice(-3000)}`);
    child.kill('SIGKILL');
    await finished(child);
    assert.equal(child.signalCode, 'SIGKILL');
    logs.push(child.out.stderr);
    if (process.env.CRASH_LOGS) fs.appendFileSync(process.env.CRASH_LOGS, `\n===== ${spec} run ${n + 1} (killed)\n${child.out.stderr}`);
    n++;
  }
  return n;
}

test(
  `crash loop: ${SALES.toLocaleString('en')} sales from 8 writers, sales/windowed/inventory each killed with SIGKILL at least ${KILLS} times; every output equals SQL, appended records exactly once`,
  { timeout: 60 * 60_000 },
  async (t) => {
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
    const e = {
      SALES_DB_URL: db,
      KAFKA_BROKERS: BROKERS,
      KAFKA_TOPIC_PREFIX: prefix,
      SALES_OUTPUT_DIR: out,
      SALESPIPE_STATE_DIR: state,
      CHECKPOINT_INTERVAL: '1s',
      INVENTORY_REFRESH: '1s',
    };

    // Inventory counted before the first sale; half the products so well stocked they never
    // alert, the other half low enough that they all cross their reorder threshold.
    let g = await runCli(['generate', '--db', db, '--count', '0', '--reference-data', '50'], e);
    assert.equal(g.code, 0, g.stderr);
    const { db: k } = await openKnex(db, ROOT, 1);
    const inventory = await k('inventory').select('product_name', 'brand').orderBy(['product_name', 'brand']);
    for (const [i, p] of inventory.entries()) {
      await k('inventory')
        .where(p)
        .update({ stock_level: i % 2 ? 10_000_000 : 300 + i, updated_at: new Date(T0 - H).toISOString().slice(0, 19).replace('T', ' ') });
    }
    await k.destroy();

    const gen = startCli(
      [
        'generate',
        '--db',
        db,
        '--count',
        String(SALES),
        '--writers',
        '8',
        '--batch',
        '20',
        '--rate',
        String(Math.max(2000, Math.round(SALES / 80))),
        '--from',
        new Date(T0).toISOString(),
        '--to',
        new Date(T0 + SPAN).toISOString(),
        '--ordered',
      ],
      e,
    );
    let generating = true;
    const generated = finished(gen).then(async (r) => {
      const rand = rng(99);
      await insertSales(
        db,
        Array.from({ length: LATE }, () => randomSale(rand, T0 + Math.floor(rand() * 3 * H))),
      );
      await new Promise((resolve) => setTimeout(resolve, 5000)); // a kill or two more while they are read
      generating = false;
      return r;
    });
    const logs: string[] = [];
    const kills = await Promise.all(Object.values(SPECS).map((spec, i) => crashLoop(spec, e, 17 + i, KILLS, () => !generating, logs)));
    g = await generated;
    assert.equal(g.code, 0, g.stderr);
    for (const n of kills) assert.ok(n >= KILLS);
    // The kills did hit running pipelines: restarts resumed from committed checkpoints.
    const resumed = logs.filter((l) => /resuming from checkpoint of epoch \d+/.test(l)).length;
    assert.ok(resumed >= KILLS, `only ${resumed} restarts resumed from a checkpoint`);

    for (const spec of Object.values(SPECS)) {
      const r = await runCli(['run', path.join(ROOT, spec), '--drain', '--no-progress'], e);
      if (process.env.CRASH_LOGS) fs.appendFileSync(process.env.CRASH_LOGS, `\n===== ${spec} drain\n${r.stderr}`);
      assert.equal(r.code, 0, `${spec} --drain:\n${r.stderr.slice(-3000)}`);
    }

    // -- sales.yaml: every committed sale published exactly once; totals on Kafka and in Parquet equal SQL.
    const [{ n }] = await sqlRows(db, 'SELECT COUNT(*) AS n FROM product_sales');
    const ALL = SALES + LATE;
    assert.equal(Number(n), ALL);
    const published = readTopic(`${prefix}product_sales`).map((m) => m.key);
    assert.equal(new Set(published).size, ALL, 'every sale published');
    assert.equal(published.length, ALL, 'no sale published twice');
    const want = new Map([...(await sqlTotals(db))].map(([key, v]) => [key, { units: v.units, revenue: money(v.revenue) }]));
    const topicTotals = new Map(
      [...latestByKey(readTopic(`${prefix}aggregated_product_sales`)).values()].map((v) => {
        const r = parseExact(v);
        return [`${r.product_name}|${r.brand}|${r.product_category}`, { units: r.total_quantity_sold!, revenue: money(r.total_revenue!) }];
      }),
    );
    assert.deepEqual(topicTotals, want, 'aggregated_product_sales differs from SQL');
    const pqTotals = new Map(
      readParquet(path.join(out, 'aggregated_product_sales')).map((r) => [
        `${r.product_name}|${r.brand}|${r.product_category}`,
        { units: String(r.total_quantity_sold), revenue: money(String(r.total_revenue)) },
      ]),
    );
    assert.deepEqual(pqTotals, want, 'Parquet totals differ from SQL');
    const archived = readParquet(path.join(out, 'sales_history')).map((r) => Number(r.transaction_id));
    assert.equal(archived.length, ALL, 'each sale archived once');
    assert.equal(new Set(archived).size, ALL, 'every sale archived');

    // -- windowed-sales.yaml: final windows appended once each, equal to SQL over the on-time sales.
    // A sale is late or counted in its windows, never both, never neither; a late one is in the
    // late topic once per windowed flow. The sales dated far back are usually late, but not
    // always: a process killed every few seconds leaves dead members in its consumer group until
    // their session times out, so a partition may go unread for a while and hold the watermark
    // back (as it must), and a sale read meanwhile is on time. The windows below say which.
    const late = readTopic(`${prefix}windowed_sales_late`).map(
      (m) => `${JSON.parse(JSON.parse(m.value).payload).transaction_id}|${JSON.parse(m.value).flow}`,
    );
    assert.equal(new Set(late).size, late.length, 'a late record was written twice');
    assert.ok(late.length > 0, 'some of the sales dated far back came late');
    const wm = Math.min(...partitionMaxima(prefix)) - LATENESS;
    for (const [size, ms, flow] of [
      ['1h', H, 'hourly_sales'],
      ['1d', 24 * H, 'daily_sales'],
    ] as const) {
      const excluded = late.filter((x) => x.endsWith(`|${flow}`)).map((x) => Number(x.split('|')[0]));
      const sql = await sqlWindows(db, ms === H ? 'hour' : 'day', excluded);
      const final = new Map([...sql].filter(([key]) => Number(key.split('|')[0]) + ms <= wm));
      const got = readTopic(`${prefix}windowed_product_sales`)
        .map((m) => parseExact(m.value))
        .filter((r) => r.window_size === size)
        .map(
          (r) =>
            [
              `${Date.parse(r.window_start!)}|${r.product_name}|${r.brand}`,
              { units: r.total_quantity_sold!, revenue: money(r.total_revenue!), n: r.transactions! },
            ] as const,
        );
      assert.equal(new Set(got.map(([key]) => key)).size, got.length, `a ${size} window was appended twice`);
      assert.ok(final.size > (ms === H ? 500 : 20), `many final ${size} windows (${final.size})`);
      assert.deepEqual(new Map(got), final, `${size} windows differ from SQL`);
    }
    const hourlyPq = readParquet(path.join(out, 'windowed_product_sales/hourly'));
    const hourlyKeys = hourlyPq.map((r) => `${Date.parse(String(r.window_start))}|${r.product_name}|${r.brand}`);
    assert.equal(new Set(hourlyKeys).size, hourlyKeys.length, 'an hourly window was written to Parquet twice');

    // -- inventory.yaml: projected stock on Kafka and in the table equal SQL; one alert per product that crossed.
    const projection = new Map(
      (
        await sqlRows(
          db,
          `SELECT i.product_name, i.brand, i.reorder_threshold AS t, i.stock_level - COALESCE((SELECT SUM(s.quantity_sold) FROM product_sales s
      WHERE s.product_name = i.product_name AND s.brand = i.brand AND s.transaction_date > i.updated_at), 0) AS projected FROM inventory i`,
        )
      ).map((r) => [`${r.product_name}|${r.brand}`, { projected: String(r.projected), threshold: Number(r.t) }]),
    );
    const onTopic = new Map(
      [...latestByKey(readTopic(`${prefix}inventory_levels`)).values()]
        .map((v) => parseExact(v))
        .map((r) => [`${r.product_name}|${r.brand}`, r.projected_stock!]),
    );
    assert.deepEqual(onTopic, new Map([...projection].map(([key, v]) => [key, v.projected])), 'inventory_levels topic differs from SQL');
    const inTable = new Map(
      (await sqlRows(db, 'SELECT product_name, brand, projected_stock FROM inventory_levels')).map((r) => [
        `${r.product_name}|${r.brand}`,
        String(r.projected_stock),
      ]),
    );
    assert.deepEqual(inTable, new Map([...projection].map(([key, v]) => [key, v.projected])), 'inventory_levels table differs from SQL');
    const alerts = readTopic(`${prefix}low_stock_alerts`).map((m) => parseExact(m.value));
    const crossed = [...projection]
      .filter(([, v]) => Number(v.projected) < v.threshold)
      .map(([key]) => key)
      .sort();
    assert.ok(crossed.length >= 5, `products below their threshold: ${crossed.length}`);
    assert.deepEqual(
      alerts.map((a) => `${a.product_name}|${a.brand}`).sort(),
      crossed,
      'one alert per product that crossed its threshold, none twice',
    );
    for (const a of alerts) assert.deepEqual([a.event, a.crossing], ['alert', '1']);
    assert.equal(new Set(alerts.map((a) => a.alert_id)).size, alerts.length);

    // Nothing was dead-lettered along the way.
    for (const dlq of ['product_sales_dead_letters', 'windowed_sales_dead_letters', 'inventory_dead_letters']) {
      let msgs: unknown[] = [];
      try {
        msgs = readTopic(`${prefix}${dlq}`);
      } catch {
        /* never created: nothing dead */
      }
      assert.equal(msgs.length, 0, `${dlq}: ${JSON.stringify(msgs.slice(0, 2))}`);
    }
    t.diagnostic(
      `kills: ${kills.join(', ')}; restarts resumed from a checkpoint: ${resumed}; late: ${late.length}; alerts: ${alerts.length}`,
    );
  },
);

/** Each product_sales partition's largest event time, read by kcat. */
function partitionMaxima(prefix: string): number[] {
  const max = new Map<string, number>();
  for (const m of readTopicWithPartition(`${prefix}product_sales`))
    max.set(m.p, Math.max(max.get(m.p) ?? -Infinity, Date.parse(JSON.parse(m.value).transaction_date)));
  return [...max.values()];
}

function readTopicWithPartition(topic: string) {
  return readTopic(topic, BROKERS, '%p').map((m) => ({ p: m.key, value: m.value }));
}

async function sqlWindows(db: string, size: 'hour' | 'day', exclude: number[]) {
  const trunc =
    size === 'hour' ? `DATE_FORMAT(transaction_date, '%Y-%m-%d %H:00:00')` : `DATE_FORMAT(transaction_date, '%Y-%m-%d 00:00:00')`;
  const rows = await sqlRows(
    db,
    `SELECT ${trunc} AS w, product_name, brand, SUM(quantity_sold) AS units,
      CAST(SUM(quantity_sold * price_per_unit) AS CHAR(40)) AS revenue, COUNT(*) AS n
    FROM product_sales ${exclude.length ? `WHERE transaction_id NOT IN (${exclude.join(',')})` : ''} GROUP BY 1, 2, 3`,
  );
  return new Map(
    rows.map((r) => [
      `${Date.parse(String(r.w).replace(' ', 'T') + 'Z')}|${r.product_name}|${r.brand}`,
      { units: String(r.units), revenue: money(String(r.revenue)), n: String(r.n) },
    ]),
  );
}
