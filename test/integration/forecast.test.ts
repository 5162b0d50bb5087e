/**
 * pipelines/forecast.yaml against real Kafka and MariaDB, on a generated
 * history: forecasts on sales_predictions (kcat, read_committed) equal the
 * Parquet dataset (pyarrow), a moving-average run equals the mean pyarrow
 * computes over the same days, reruns publish nothing twice, and predicted
 * stock-outs are raised once and resolved once after a restock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runCli, startCli, finished, until, readTopic, readParquet, needServices, ROOT, tmpDir, latestByKey } from '../support/helpers.js';
import { createTopic, produceRaw } from '../support/kafka.js';
import { freshRun, mariadbAndKafka } from '../support/runs.js';
import { openKnex } from '../../src/connections/sql.js';

const SPEC = path.join(ROOT, 'pipelines/forecast.yaml');
const DAY = 86_400_000;
const today = Math.floor(Date.now() / DAY) * DAY;
const date = (ms: number) => new Date(ms).toISOString().slice(0, 10);

/** Units per product|brand and UTC day of a Parquet history, summed by pyarrow. */
function dailyUnits(dir: string): Map<string, Map<string, number>> {
  const script = `
import json, sys
import pyarrow as pa, pyarrow.dataset as ds, pyarrow.compute as pc
t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table(columns=['product_name', 'brand', 'quantity_sold', 'transaction_date'])
t = pa.table({
    'product_name': t['product_name'].cast(pa.string()),
    'brand': t['brand'].cast(pa.string()),
    'quantity_sold': t['quantity_sold'],
    'day': pc.strftime(t['transaction_date'], format='%Y-%m-%d'),
})
g = t.group_by(['product_name', 'brand', 'day']).aggregate([('quantity_sold', 'sum')])
print(json.dumps(g.to_pylist()))
`;
  const r = spawnSync('python3', ['-c', script, dir], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(r.stderr);
  const out = new Map<string, Map<string, number>>();
  for (const x of JSON.parse(r.stdout) as { product_name: string; brand: string; day: string; quantity_sold_sum: number }[]) {
    const k = `${x.product_name}|${x.brand}`;
    if (!out.has(k)) out.set(k, new Map());
    out.get(k)!.set(x.day, x.quantity_sold_sum);
  }
  return out;
}

type Prediction = Record<string, string | number | null>;

const predictions = (prefix: string): Prediction[] =>
  [...latestByKey(readTopic(`${prefix}sales_predictions`)).values()].map((v) => JSON.parse(v));

const sortKey = (p: Prediction) => `${p.product_name}|${p.brand}|${p.period_start}`;

test('forecast.yaml: 14 days per product through yesterday, Kafka equal to Parquet, a moving average equal to pyarrow, exactly once across reruns; predicted stock-outs once, resolved after a restock', async (t) => {
  if (!(await needServices(t, mariadbAndKafka))) return;
  const out = tmpDir();
  const history = path.join(out, 'sales_history');
  const gen = await runCli(['generate', '--history', '120d', '--parquet', history, '--seed', '5']);
  assert.equal(gen.code, 0, gen.stderr);
  const units = dailyUnits(history);
  const products = [...units.keys()];
  assert.ok(products.length >= 60, `${products.length} products in the history`);

  const { db, prefix, env } = await freshRun({ SALES_OUTPUT_DIR: out, INVENTORY_REFRESH: '1s' });
  const { db: k } = await openKnex(db, ROOT, 1);
  const [top, second, third] = [...units].sort((a, b) => sum(b[1]) - sum(a[1])).map(([p]) => p.split('|'));
  try {
    await k.schema.createTable('inventory_levels', (x) => {
      x.string('product_name');
      x.string('brand');
      x.integer('projected_stock');
      x.primary(['product_name', 'brand']);
    });
    await k('inventory_levels').insert([
      { product_name: top[0], brand: top[1], projected_stock: 1 },
      { product_name: second[0], brand: second[1], projected_stock: 1_000_000 },
      { product_name: third[0], brand: third[1], projected_stock: 0 },
    ]);

    let run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
    assert.equal(run.code, 0, run.stderr);
    const onKafka = predictions(prefix).sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
    assert.equal(onKafka.length, products.length * 14, 'one row per product and day ahead');
    for (const p of onKafka) {
      assert.equal(p.trained_through, date(today - DAY));
      assert.equal(p.forecast_date, date(today));
      assert.ok(Date.parse(String(p.period_start)) >= today && Date.parse(String(p.period_start)) < today + 14 * DAY);
      assert.ok((p.forecast as number) >= 0);
      if (p.p10 !== null)
        assert.ok((p.p10 as number) <= (p.forecast as number) + 1e-9 && (p.forecast as number) <= (p.p90 as number) + 1e-9);
      assert.equal(typeof p.method, 'string');
    }
    // The same rows in the Parquet dataset, read by pyarrow, under today's forecast_date.
    const files = readParquet(path.join(env.SALES_OUTPUT_DIR!, 'sales_predictions')) as Prediction[];
    assert.equal(files.length, onKafka.length);
    const byKey = new Map(files.map((f) => [`${f.product_name}|${f.brand}|${Date.parse(String(f.period_start))}`, f]));
    for (const p of onKafka) {
      const f = byKey.get(`${p.product_name}|${p.brand}|${Date.parse(String(p.period_start))}`)!;
      assert.ok(f, `${sortKey(p)} in Parquet`);
      assert.equal(f.forecast, p.forecast);
      assert.equal(f.method, p.method);
      assert.equal(f.forecast_date, date(today));
    }

    // Stock-outs: the top seller with 1 unit and the third with none are predicted to run out.
    const alerts = () => readTopic(`${prefix}low_stock_alerts`).map((m) => JSON.parse(m.value));
    let a = alerts();
    assert.deepEqual(
      a.map((x) => [x.event, x.product_name, x.crossing]).sort(),
      [
        ['predicted_stockout', top[0], 1],
        ['predicted_stockout', third[0], 1],
      ].sort(),
    );
    const topAlert = a.find((x) => x.product_name === top[0]);
    assert.equal(topAlert.stock, 1);
    assert.ok(topAlert.days_of_cover < 1, `${topAlert.days_of_cover} days of cover`);
    assert.equal(topAlert.predicted_date, date(today));

    // A rerun: no new day closed, nothing published again.
    run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(readTopic(`${prefix}sales_predictions`).length, onKafka.length, 'no forecast published twice');
    assert.equal(alerts().length, 2, 'no alert raised twice');

    // A restock: the next run resolves the top seller's alert, once.
    await k('inventory_levels').where({ product_name: top[0], brand: top[1] }).update({ projected_stock: 1_000_000 });
    run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
    assert.equal(run.code, 0, run.stderr);
    a = alerts();
    assert.deepEqual(
      a.slice(2).map((x) => [x.event, x.product_name, x.crossing]),
      [['resolved', top[0], 1]],
    );
    run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
    assert.equal(alerts().length, 3);
  } finally {
    await k.destroy();
  }

  // The same spec with the moving average: each forecast is the mean of the last 28 days (from the first sale on), as pyarrow sums them.
  const ma = path.join(tmpDir(), 'forecast-ma.yaml');
  fs.writeFileSync(
    ma,
    fs
      .readFileSync(SPEC, 'utf8')
      .replace(/^( +)method: auto$/m, '$1method: moving_average')
      .replace(/\n {2}stockout_alerts:[\s\S]*?\n\n/, '\n\n'),
  );
  // Its own output directory, the same history in it.
  const maOut = tmpDir();
  fs.cpSync(history, path.join(maOut, 'sales_history'), { recursive: true });
  const maRun = await freshRun({ SALES_OUTPUT_DIR: maOut });
  const run = await runCli(['run', ma, '--drain', '--no-progress'], maRun.env);
  assert.equal(run.code, 0, run.stderr);
  const got = predictions(maRun.prefix);
  assert.equal(got.length, products.length * 14);
  for (const p of got) {
    const days = units.get(`${p.product_name}|${p.brand}`)!;
    const first = Math.min(...[...days.keys()].map((d) => Date.parse(d)));
    let s = 0,
      n = 0;
    for (let d = today - 28 * DAY; d < today; d += DAY) {
      if (d < first) continue;
      s += days.get(date(d)) ?? 0;
      n++;
    }
    assert.ok(Math.abs((p.forecast as number) - s / n) < 1e-9, `${p.product_name}: ${p.forecast} vs ${s / n}`);
    assert.equal(p.method, 'moving_average');
  }
});

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

test('a streaming forecast (reading product_sales): a day closing refreshes its series on the topic; kill -9 and restart keep each forecast exactly once', async (t) => {
  if (!(await needServices(t, mariadbAndKafka))) return;
  const { prefix, env } = await freshRun();
  const spec = path.join(tmpDir(), 'live-forecast.yaml');
  fs.writeFileSync(
    spec,
    `pipeline: live_forecast
timeZone: UTC
checkpoint: { interval: 200ms }
connections:
  kafka:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topicPrefix: \${KAFKA_TOPIC_PREFIX}
flows:
  live:
    source:
      type: kafka
      connection: kafka
      topic: product_sales
      eventTime: transaction_date
      schema: { product_name: string, brand: string, quantity_sold: int, transaction_date: timestamp }
    steps:
      - forecast: { series: [product_name, brand], target: sum(quantity_sold), method: moving_average, window: 7, horizon: 3 }
    sinks:
      - { type: kafka, connection: kafka, topic: sales_predictions, compact: true }
`,
  );
  const topic = `${prefix}product_sales`;
  await createTopic(topic, 1);
  const sale = (product: string, day: number, qty: number) =>
    JSON.stringify({
      product_name: product,
      brand: 'B',
      quantity_sold: qty,
      transaction_date: new Date(today + day * DAY + 3600_000).toISOString(),
    });
  const history: string[] = [];
  for (let d = -10; d <= -3; d++) history.push(sale('A', d, 5), sale('Z', d, 2));
  await produceRaw(topic, history, 'k');
  await createTopic(`${prefix}sales_predictions`, 1);
  const rows = () => readTopic(`${prefix}sales_predictions`).map((m) => JSON.parse(m.value) as Prediction);
  const through = (day: number) => rows().filter((r) => r.trained_through === date(today + day * DAY));

  let child = startCli(['run', spec, '--no-progress'], env);
  try {
    await until(() => through(-4).length === 6, 60_000, 'the forecast through 4 days ago');
    assert.deepEqual(
      through(-4)
        .map((r) => [r.product_name, r.period_start, r.forecast])
        .sort(),
      [
        ['A', new Date(today - 3 * DAY).toISOString(), 5],
        ['A', new Date(today - 2 * DAY).toISOString(), 5],
        ['A', new Date(today - DAY).toISOString(), 5],
        ['Z', new Date(today - 3 * DAY).toISOString(), 2],
        ['Z', new Date(today - 2 * DAY).toISOString(), 2],
        ['Z', new Date(today - DAY).toISOString(), 2],
      ],
    );
    // A sale of the next day closes 3 days ago: both series are refreshed (Z zero-filled).
    await produceRaw(topic, [sale('A', -2, 12)], 'k');
    await until(() => through(-3).length === 6, 60_000, 'the forecast through 3 days ago');
    // Killed right after the next day's first sale, restarted: its forecast is published once.
    await produceRaw(topic, [sale('A', -2, 1), sale('A', -1, 1)], 'k');
    child.kill('SIGKILL');
    await finished(child);
    child = startCli(['run', spec, '--no-progress'], env);
    await until(() => through(-2).length === 6, 60_000, 'the forecast through 2 days ago after the restart');
    // A: days -8..-3 sold 5 each, day -2 sold 12 + 1: (6 x 5 + 13) / 7.
    const a = through(-2).find((r) => r.product_name === 'A')!;
    assert.ok(Math.abs((a.forecast as number) - (6 * 5 + 13) / 7) < 1e-9, String(a.forecast));
    await new Promise((r) => setTimeout(r, 1500));
    for (const d of [-4, -3, -2]) assert.equal(through(d).length, 6, `forecast through ${d} days once`);
    assert.equal(rows().length, 18);
  } finally {
    child.kill('SIGKILL');
    await finished(child);
  }
});
