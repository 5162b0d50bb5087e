/**
 * `salespipe backfill` over real MariaDB and PostgreSQL data. Oracles: SQL
 * over the same rows; pyarrow reading each partition; file hashes for
 * "untouched" and "identical".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { runCli, startCli, finished, tmpDir, uniq, readParquet, needServices, until, ROOT, money } from '../support/helpers.js';
import { freshDatabase, pingDatabase, MARIADB_ADMIN, POSTGRES_ADMIN, insertSales, sqlRows } from '../support/sql.js';
import { BROKERS, pingKafka } from '../support/kafka.js';
import { randomSale, rng } from '../../src/gen/generate.js';

const SALES = path.join(ROOT, 'pipelines/sales.yaml');
const DAY = 86_400_000;
const D0 = Date.UTC(2026, 0, 10);

/** Every file of a dataset with its SHA-256, by relative path. */
function hashes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out;
}

const pick = (m: Map<string, string>, day: string) => new Map([...m].filter(([k]) => k.startsWith(`sale_date=${day}/`)));

/** SQL oracle: the sales of one day as `id:revenue` strings. */
async function sqlDay(db: string, day: string): Promise<string[]> {
  const pg = db.startsWith('postgres');
  const rows = await sqlRows(
    db,
    `SELECT transaction_id, ${pg ? 'CAST(quantity_sold * price_per_unit AS TEXT)' : 'CAST(quantity_sold * price_per_unit AS CHAR)'} AS revenue
    FROM product_sales WHERE transaction_date >= '${day} 00:00:00' AND transaction_date < '${day} 00:00:00'::date + 1`.replace(
      "'::date + 1",
      pg ? "'::date + 1" : "' + INTERVAL 1 DAY",
    ),
  );
  return rows.map((r) => `${r.transaction_id}:${money(String(r.revenue))}`).sort();
}

function parquetDay(out: string, day: string): string[] {
  const dir = path.join(out, 'sales_history', `sale_date=${day}`);
  return readParquet(dir)
    .map((r) => `${r.transaction_id}:${money(String(r.revenue))}`)
    .sort();
}

const days = (n: number) => Array.from({ length: n }, (_, i) => new Date(D0 + i * DAY).toISOString().slice(0, 10));

for (const dialect of ['mysql', 'postgres'] as const) {
  test(`${dialect === 'mysql' ? 'MariaDB' : 'PostgreSQL'}: backfill rewrites exactly the partitions of the range, equal to SQL; a second run is byte-identical; an overlapping run is refused`, async (t) => {
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
    const e = {
      SALES_DB_URL: db,
      KAFKA_BROKERS: BROKERS,
      KAFKA_TOPIC_PREFIX: prefix,
      SALES_OUTPUT_DIR: out,
      SALESPIPE_STATE_DIR: state,
      CHECKPOINT_INTERVAL: '500ms',
    };
    const r = rng(21);
    await insertSales(
      db,
      Array.from({ length: 3000 }, (_, i) => randomSale(r, D0 + Math.floor((i / 3000) * 5 * DAY))),
    );
    // The streaming history, as `run` leaves it: several part files per day.
    let res = await runCli(['run', SALES, '--drain', '--no-progress'], e);
    assert.equal(res.code, 0, res.stderr);
    const before = hashes(path.join(out, 'sales_history'));
    // Corrections in the database: sales of the 12th deleted, sales added on the 12th and 13th.
    await sqlRows(
      db,
      `DELETE FROM product_sales WHERE transaction_date >= '2026-01-12 00:00:00' AND transaction_date < '2026-01-12 06:00:00'`,
    );
    await insertSales(
      db,
      Array.from({ length: 40 }, (_, i) => randomSale(r, Date.UTC(2026, 0, 12 + (i % 2), 20))),
    );

    const dry = await runCli(['backfill', SALES, '--from', '2026-01-12', '--to', '2026-01-14', '--dry-run'], e);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stderr, /would rewrite .*sale_date=2026-01-12 \(\d+ row\(s\) in \d+ file\(s\) -> \d+ row\(s\)\)/);
    assert.match(dry.stderr, /2 partition\(s\) would be rewritten in 1 dataset\(s\)/);
    assert.deepEqual(hashes(path.join(out, 'sales_history')), before, 'a dry run writes nothing');

    res = await runCli(['backfill', SALES, '--from', '2026-01-12', '--to', '2026-01-14'], e);
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stderr,
      /backfill sales \[2026-01-12T00:00:00.000Z, 2026-01-14T00:00:00.000Z\): \d+ row\(s\) read, 2 partition\(s\) rewritten in 1 dataset\(s\), 3 output\(s\) skipped, [\d.]+ s$/m,
    );
    const after = hashes(path.join(out, 'sales_history'));
    for (const day of ['2026-01-10', '2026-01-11', '2026-01-14'])
      assert.deepEqual(pick(after, day), pick(before, day), `${day} is outside the range: untouched`);
    for (const day of ['2026-01-12', '2026-01-13']) {
      assert.deepEqual([...pick(after, day).keys()], [`sale_date=${day}/part-0000000000.parquet`]);
      assert.deepEqual(parquetDay(out, day), await sqlDay(db, day), `${day} equals SQL`);
    }
    assert.ok(
      ![...after.keys()].some((k) => k.startsWith('.') || (k.startsWith('_') && !k.startsWith('_salespipe/'))),
      "no staging or journal left (the writers' epoch markers stay)",
    );

    res = await runCli(['backfill', SALES, '--from', '2026-01-12', '--to', '2026-01-14'], e);
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(hashes(path.join(out, 'sales_history')), after, 'a second run leaves byte-identical files');

    // Another backfill of the pipeline holds the lock (this test process, alive): refused.
    const lock = path.join(state, 'sales', 'backfill.lock');
    fs.writeFileSync(lock, JSON.stringify({ pid: process.pid, since: '2026-11-24T00:00:00Z' }));
    res = await runCli(['backfill', SALES, '--from', '2026-01-12', '--to', '2026-01-14'], e);
    assert.equal(res.code, 1);
    assert.match(
      res.stderr,
      new RegExp(`another backfill of pipeline sales is running \\(pid ${process.pid}, since 2026-11-24T00:00:00Z\\); not starting`),
    );
    assert.doesNotMatch(res.stderr, /    at /);
    // A lock left by a process that is gone is taken over.
    fs.writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 1, since: '2026-11-24T00:00:00Z' }));
    res = await runCli(['backfill', SALES, '--from', '2026-01-12', '--to', '2026-01-14'], e);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /taking over the lock of a backfill that is gone/);
    assert.ok(!fs.existsSync(lock));
  });
}

test('a backfill killed midway leaves every partition old or new; the next run finishes it', async (t) => {
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
  const e = { SALES_DB_URL: db, KAFKA_BROKERS: BROKERS, KAFKA_TOPIC_PREFIX: prefix, SALES_OUTPUT_DIR: out, SALESPIPE_STATE_DIR: state };
  const r = rng(33);
  const n = 60;
  await insertSales(
    db,
    Array.from({ length: 300 * n }, (_, i) => randomSale(r, D0 + Math.floor((i / (300 * n)) * n * DAY))),
  );
  const res = await runCli(['run', SALES, '--drain', '--no-progress'], e);
  assert.equal(res.code, 0, res.stderr);
  const dir = path.join(out, 'sales_history');
  const old = new Map(days(n).map((d) => [d, parquetDay(out, d)]));
  await sqlRows(db, 'DELETE FROM product_sales WHERE MOD(transaction_id, 7) = 0');
  const fresh = new Map(await Promise.all(days(n).map(async (d) => [d, await sqlDay(db, d)] as const)));

  let interrupted = 0;
  for (let round = 0; round < 4; round++) {
    const child = startCli(['backfill', SALES, '--from', days(n)[0], '--to', new Date(D0 + n * DAY).toISOString().slice(0, 10)], e);
    // Killed at a different point each round: while reading, while staging, while swapping.
    await until(() => /rewriting/.test(child.out.stderr) || child.exitCode !== null, 60_000, 'the backfill to start rewriting');
    await new Promise((res2) => setTimeout(res2, round * 100));
    child.kill('SIGKILL');
    await finished(child);
    if (child.signalCode === 'SIGKILL' && !/partition\(s\) rewritten/.test(child.out.stderr)) interrupted++;
    for (const d of days(n)) {
      const p = path.join(dir, `sale_date=${d}`);
      if (!fs.existsSync(p)) continue; // between the two renames of its swap: the next run finishes it
      const got = parquetDay(out, d);
      assert.ok(
        JSON.stringify(got) === JSON.stringify(old.get(d)) || JSON.stringify(got) === JSON.stringify(fresh.get(d)),
        `partition ${d} is neither old nor new`,
      );
    }
  }
  assert.ok(interrupted >= 2, `only ${interrupted} of 4 runs were killed before they finished`);
  const done = await runCli(['backfill', SALES, '--from', days(n)[0], '--to', new Date(D0 + n * DAY).toISOString().slice(0, 10)], e);
  assert.equal(done.code, 0, done.stderr);
  for (const d of days(n)) assert.deepEqual(parquetDay(out, d), fresh.get(d), d);
  assert.ok(
    !fs.readdirSync(dir).some((x) => x.startsWith('.') || (x.startsWith('_') && x !== '_salespipe')),
    'staging and journal cleaned up',
  );
});

test('windows backfilled from the Parquet history equal SQL; partitions holding rows outside the range are refused', async (t) => {
  if (
    !(await needServices(t, async () => {
      await pingDatabase(POSTGRES_ADMIN);
      await pingKafka();
    }))
  )
    return;
  const db = await freshDatabase('postgres', `sp_${uniq()}`);
  const prefix = `${uniq()}.`,
    out = tmpDir(),
    state = tmpDir();
  const e = { SALES_DB_URL: db, KAFKA_BROKERS: BROKERS, KAFKA_TOPIC_PREFIX: prefix, SALES_OUTPUT_DIR: out, SALESPIPE_STATE_DIR: state };
  const r = rng(44);
  await insertSales(
    db,
    Array.from({ length: 2000 }, (_, i) => randomSale(r, D0 + Math.floor((i / 2000) * 3 * DAY))),
  );
  let res = await runCli(['run', SALES, '--drain', '--no-progress'], e);
  assert.equal(res.code, 0, res.stderr);
  res = await runCli(
    [
      'backfill',
      path.join(ROOT, 'pipelines/windowed-sales.yaml'),
      '--from',
      '2026-01-11',
      '--to',
      '2026-01-12',
      '--history',
      path.join(out, 'sales_history'),
    ],
    e,
  );
  assert.equal(res.code, 0, res.stderr);
  const rows = await sqlRows(
    db,
    `SELECT to_char(date_trunc('hour', transaction_date), 'YYYY-MM-DD"T"HH24:MI:SS') AS h, product_name, brand, SUM(quantity_sold) AS units,
      CAST(SUM(quantity_sold * price_per_unit) AS TEXT) AS revenue FROM product_sales
    WHERE transaction_date >= '2026-01-11' AND transaction_date < '2026-01-12' GROUP BY 1, 2, 3`,
  );
  const want = new Map(rows.map((x) => [`${x.h}|${x.product_name}|${x.brand}`, `${x.units}:${money(String(x.revenue))}`]));
  const got = new Map(
    readParquet(path.join(out, 'windowed_product_sales/hourly')).map((x) => [
      `${String(x.window_start).slice(0, 19)}|${x.product_name}|${x.brand}`,
      `${x.total_quantity_sold}:${money(String(x.total_revenue))}`,
    ]),
  );
  assert.deepEqual(got, want);
  // A dataset partitioned by something other than the event time's date would lose rows: refused, nothing written.
  const spec = path.join(tmpDir(), 'by-category.yaml');
  fs.writeFileSync(
    spec,
    fs
      .readFileSync(SALES, 'utf8')
      .replace('partitionBy: [sale_date]', 'partitionBy: [product_category]')
      .replace('/sales_history', '/history_by_category'),
  );
  // Topics and outputs of their own: a dataset records the flow that wrote it, and the
  // pipeline's checkpoints in Kafka are those of the first run otherwise.
  const out2 = tmpDir();
  res = await runCli(['run', spec, '--drain', '--no-progress'], {
    ...e,
    KAFKA_TOPIC_PREFIX: `${uniq()}.`,
    SALESPIPE_STATE_DIR: tmpDir(),
    SALES_OUTPUT_DIR: out2,
  });
  assert.equal(res.code, 0, res.stderr);
  const before = hashes(path.join(out2, 'history_by_category'));
  res = await runCli(['backfill', spec, '--from', '2026-01-11', '--to', '2026-01-12'], { ...e, SALES_OUTPUT_DIR: out2 });
  assert.equal(res.code, 1);
  assert.match(
    res.stderr,
    /product_category=\w+ holds a row with transaction_date 2026-01-1[02]T\S+, outside the range: rewriting the partition would drop it/,
  );
  assert.deepEqual(hashes(path.join(out2, 'history_by_category')), before);
});
