/**
 * pipelines/recommendations.yaml against real Kafka and MariaDB, on a
 * generated history with customer tastes: a list per customer who bought
 * (the customers pyarrow finds), never a product they bought unless it is
 * an accessory; Kafka (kcat, read_committed) equal to Parquet (pyarrow);
 * a rerun without new files publishes nothing; a new day retrains and
 * publishes every list once more; kill -9 mid-run and restart: each list
 * once per training. And `salespipe backtest` on the same flow.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runCli, startCli, finished, readTopic, readParquet, needServices, until, ROOT } from '../support/helpers.js';
import { createTopic, produceRaw } from '../support/kafka.js';
import { freshRun, mariadbAndKafka } from '../support/runs.js';

const SPEC = path.join(ROOT, 'pipelines/recommendations.yaml');
const LIVE = path.join(ROOT, 'pipelines/recommendations-live.yaml');

/** Per customer (pyarrow over the history): the products they bought, as `name|brand|category`. */
function boughtByCustomer(dir: string): Map<number, Set<string>> {
  const script = `
import json, sys
import pyarrow as pa, pyarrow.dataset as ds, pyarrow.compute as pc
t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table(columns=['customer_id', 'product_name', 'brand', 'product_category', 'quantity_sold'])
t = t.filter(pc.and_(pc.is_valid(t['customer_id']), pc.greater(t['quantity_sold'], 0)))
t = pa.table({c: t[c].cast(pa.string()) if c != 'customer_id' else t[c] for c in ['customer_id', 'product_name', 'brand', 'product_category']})
g = t.group_by(['customer_id', 'product_name', 'brand', 'product_category']).aggregate([])
print(json.dumps(g.to_pylist()))
`;
  const r = spawnSync('python3', ['-c', script, dir], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(r.stderr);
  const out = new Map<number, Set<string>>();
  for (const x of JSON.parse(r.stdout) as Record<string, string | number>[]) {
    const c = x.customer_id as number;
    if (!out.has(c)) out.set(c, new Set());
    out.get(c)!.add(`${x.product_name}|${x.brand}|${x.product_category}`);
  }
  return out;
}

/** A fresh run's database, topics and output folder, with a generated history of `days` and its `customers` in customer_data. */
async function generated(days: number, customers: number, seed: number) {
  const { db, prefix, env } = await freshRun();
  const history = path.join(env.SALES_OUTPUT_DIR!, 'sales_history');
  const gen = await runCli([
    'generate',
    '--history',
    `${days}d`,
    '--parquet',
    history,
    '--reference-data',
    String(customers),
    '--db',
    db,
    '--create-tables',
    '--seed',
    String(seed),
  ]);
  assert.equal(gen.code, 0, gen.stderr);
  return { prefix, env, history, bought: boughtByCustomer(history) };
}

interface List {
  customer_id: number;
  recommendations: { product_name: string; brand: string; score: number; reason: string }[];
  model_version: string;
}

test('recommendations.yaml: a list per customer, bought products left out but accessories, Kafka equal to Parquet, one publication per training across reruns and kill -9', async (t) => {
  if (!(await needServices(t, mariadbAndKafka))) return;
  const { prefix, env, history, bought } = await generated(90, 3000, 5);
  const category = new Map<string, string>();
  for (const s of bought.values())
    for (const k of s) {
      const [name, brand, cat] = k.split('|');
      category.set(`${name}|${brand}`, cat);
    }
  assert.ok(bought.size > 2000, `${bought.size} customers bought`);

  const lists = () => readTopic(`${prefix}product_recommendations`).map((m) => ({ key: m.key, ...(JSON.parse(m.value) as List) }));
  let run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
  assert.equal(run.code, 0, run.stderr);
  const first = lists();
  assert.equal(first.length, bought.size, 'one list per customer who bought');
  const version = first[0].model_version;
  assert.match(version, /^als-\d{4}-\d{2}-\d{2}-\d+$/);
  let personal = 0;
  for (const l of first) {
    assert.equal(l.key, String(l.customer_id));
    assert.equal(l.model_version, version);
    const mine = bought.get(l.customer_id)!;
    assert.ok(mine, `customer ${l.customer_id} bought something`);
    assert.equal(l.recommendations.length, 5);
    for (const r of l.recommendations) {
      const cat = category.get(`${r.product_name}|${r.brand}`);
      assert.ok(cat, `${r.product_name} is a product of the history`);
      if (cat !== 'Accessory')
        assert.ok(
          !mine.has(`${r.product_name}|${r.brand}|${cat}`),
          `customer ${l.customer_id} was recommended ${r.product_name}, which they bought`,
        );
      if (r.reason === 'personal') personal++;
    }
  }
  assert.ok(personal > first.length, 'personal recommendations for customers with history');
  // The same lists in Parquet, read by pyarrow, under the training's version.
  const files = readParquet(path.join(env.SALES_OUTPUT_DIR!, 'product_recommendations')) as unknown as (Omit<List, 'recommendations'> & {
    recommendations: string;
  })[];
  assert.equal(files.length, first.length);
  const byCustomer = new Map(files.map((f) => [f.customer_id, f]));
  for (const l of first) {
    const f = byCustomer.get(l.customer_id)!;
    assert.equal(f.model_version, version);
    assert.deepEqual(JSON.parse(f.recommendations), l.recommendations);
  }

  // A rerun without new files: nothing to learn, nothing published again.
  run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(lists().length, first.length);

  // A new day of purchases: the next run retrains; killed with SIGKILL mid-run (a few times) and restarted,
  // every list is published once for the new training.
  const day = path.join(history, 'sale_date=2099-01-01');
  fs.mkdirSync(day);
  const dayFile = fs.readdirSync(history).find((d) => d.startsWith('sale_date=') && d !== 'sale_date=2099-01-01')!;
  fs.cpSync(path.join(history, dayFile), day, { recursive: true });
  for (const ms of [1500, 2500, 3500]) {
    const child = startCli(['run', SPEC, '--drain', '--no-progress'], env);
    await new Promise((r) => setTimeout(r, ms));
    child.kill('SIGKILL');
    await finished(child);
  }
  run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
  assert.equal(run.code, 0, run.stderr);
  const after = lists().slice(first.length);
  const versions = new Map<string, number[]>();
  for (const l of after) versions.set(l.model_version, [...(versions.get(l.model_version) ?? []), l.customer_id]);
  // A killed run may have committed its training (then the restart has nothing new); either way one new version, each customer once.
  assert.equal(versions.size, 1, [...versions.keys()].join(', '));
  const [[v2, ids]] = [...versions];
  assert.notEqual(v2, version);
  assert.equal(ids.length, bought.size);
  assert.equal(new Set(ids).size, ids.length, 'each customer once');
});

test('salespipe backtest pipelines/recommendations.yaml: the model and its baselines on the last 4 weeks, as text and JSON', async (t) => {
  if (!(await needServices(t, mariadbAndKafka))) return;
  const { env, bought } = await generated(120, 5000, 8);
  const json = await runCli(['backtest', SPEC, '--format', 'json'], env);
  assert.equal(json.code, 0, json.stderr);
  const r = JSON.parse(json.stdout);
  assert.equal(r.flow, 'train_recommendations');
  assert.equal(r.customers, bought.size);
  assert.equal(r.testDays, 28);
  assert.ok(r.trainPurchases > 0 && r.testPurchases > 0);
  for (const p of ['new', 'all'])
    assert.deepEqual(
      r[p].models.map((m: { model: string }) => m.model),
      ['salespipe', 'als', 'popularity', 'regional', 'item-cosine'],
    );
  const text = await runCli(['backtest', SPEC, '--test-days', '14'], env);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /tested on \d+ from \d{4}-\d{2}-\d{2} to \d{4}-\d{2}-\d{2} \(14 days\)/);
  assert.match(text.stdout, /new items \(not bought before the cut-off\): \d+ customers scored/);
  assert.match(text.stdout, /salespipe's NDCG@10 is [\d.]+ x popularity's/);
});

test("recommendations-live.yaml: a purchase gives its customer a new list on the topic, nobody else; a new customer gets one; kill -9 and restart: each purchase's list once", async (t) => {
  if (!(await needServices(t, mariadbAndKafka))) return;
  const { prefix, env, bought } = await generated(60, 2000, 3);
  let run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
  assert.equal(run.code, 0, run.stderr);
  const lists = () => readTopic(`${prefix}product_recommendations`).map((m) => JSON.parse(m.value) as List);
  const trained = lists();
  assert.equal(trained.length, bought.size);
  const version = trained[0].model_version;
  const before = new Map(trained.map((l) => [l.customer_id, l.recommendations]));

  const topic = `${prefix}product_sales`;
  await createTopic(topic, 3);
  const live = { ...env, CHECKPOINT_INTERVAL: '200ms' };
  // Ready (/readyz) once the flow has opened its source: a first run reads from the end of the topic then on.
  const start = async () => {
    const c = startCli(['run', LIVE, '--no-progress', '--metrics-port', '0'], live);
    await until(() => /metrics at (http:\S+)\/metrics/.test(c.out.stderr), 60_000, `the metrics address:\n${c.out.stderr}`);
    const base = /metrics at (http:\S+)\/metrics/.exec(c.out.stderr)![1];
    await until(
      async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200,
      60_000,
      `the live flow ready:\n${c.out.stderr}`,
    );
    return c;
  };
  let child = await start();
  assert.match(child.out.stderr, new RegExp(`model ${version} read from`));
  const customers = [...bought.keys()].sort((a, b) => a - b);
  let id = 10_000_000;
  const sale = (customer: number, product: string, brand: string, category: string) =>
    JSON.stringify({
      transaction_id: id++,
      product_name: product,
      product_category: category,
      brand,
      quantity_sold: 1,
      price_per_unit: 999.99,
      transaction_date: new Date().toISOString(),
      customer_id: customer,
      product_id: 1,
    });
  const a = customers[0];
  await produceRaw(topic, [sale(a, 'Apple MacBook Pro 14', 'Apple', 'Laptop'), sale(9_999_999, 'Dell XPS 13', 'Dell', 'Laptop')], (i) =>
    String(i),
  );
  await until(() => lists().length >= trained.length + 2, 60_000, `two new lists:\n${child.out.stderr.slice(-3000)}`);
  const fresh = lists().slice(trained.length);
  assert.deepEqual(
    fresh.map((l) => l.customer_id).sort((x, y) => x - y),
    [a, 9_999_999],
  );
  for (const l of fresh) {
    assert.equal(l.model_version, version);
    assert.equal(l.recommendations.length, 5);
  }
  const mine = fresh.find((l) => l.customer_id === a)!;
  assert.ok(!mine.recommendations.some((r) => r.product_name === 'Apple MacBook Pro 14'), 'what they just bought is left out');
  assert.notDeepEqual(mine.recommendations, before.get(a));
  assert.ok(!fresh.find((l) => l.customer_id === 9_999_999)!.recommendations.some((r) => r.product_name === 'Dell XPS 13'));

  // Ten more customers buy once each; the service is killed right after and started again.
  const ten = customers.slice(1, 11);
  await produceRaw(
    topic,
    ten.map((c) => sale(c, 'Samsung Galaxy S23', 'Samsung', 'Smartphone')),
    (i) => String(i),
  );
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGKILL');
  await finished(child);
  child = await start();
  const want = trained.length + 2 + ten.length;
  await until(() => lists().length >= want, 90_000, `ten more lists after the restart:\n${child.out.stderr.slice(-3000)}`);
  await new Promise((r) => setTimeout(r, 2000));
  const after = lists().slice(trained.length + 2);
  assert.deepEqual(
    after.map((l) => l.customer_id).sort((x, y) => x - y),
    ten,
    'each buying customer once (read_committed), nobody else',
  );
  child.kill('SIGTERM');
  run = await finished(child);
  assert.equal(run.code, 0, run.stderr.slice(-3000));
});
