/**
 * Operator state as a changelog in the checkpoint topic (real MariaDB and
 * Kafka): a checkpoint costs what the epoch changed, a restart restores the
 * state from the entries, and results stay equal to SQL. Oracles: SQL
 * GROUP BY; kcat reading the checkpoint topic and the output read_committed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { runCli, readTopic, needServices, ROOT, money } from '../support/helpers.js';
import { sqlTotals, insertSales } from '../support/sql.js';
import { freshRun, mariadbAndKafka, topicTotals } from '../support/runs.js';
import { randomSale, rng } from '../../src/gen/generate.js';

const SPEC = path.join(ROOT, 'pipelines/sales.yaml');
const T0 = Date.UTC(2026, 2, 1);

async function sqlTotalsExact(db: string) {
  return new Map([...(await sqlTotals(db))].map(([k, v]) => [k, { units: v.units, revenue: money(v.revenue) }]));
}

/** The aggregate step's state messages in the checkpoint topic, in order (kcat, read_committed). */
const stateMessages = (prefix: string) =>
  readTopic(`${prefix}_salespipe_checkpoints`).filter((m) => m.key.startsWith('sales/aggregate_sales/s/'));

test('aggregate state is a changelog: an epoch writes one entry per product it changed, a restart restores all of them, totals equal SQL', async (t) => {
  if (!(await needServices(t, mariadbAndKafka))) return;
  const { db, prefix, env } = await freshRun();
  const r = rng(5);
  await insertSales(
    db,
    Array.from({ length: 3000 }, (_, i) => randomSale(r, T0 + i * 1000)),
  );
  let run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
  assert.equal(run.code, 0, run.stderr);
  const want = await sqlTotalsExact(db);
  assert.deepEqual(topicTotals(prefix), want);
  const first = stateMessages(prefix);
  const ids = new Set(first.map((m) => m.key));
  assert.equal(ids.size, want.size, 'one state entry per product group');

  // Three more sales of one product: the next run restores every group and logs that one only.
  const one = randomSale(r, T0);
  await insertSales(db, [one, { ...one, quantity_sold: 2 }, { ...one, quantity_sold: 5 }]);
  run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, new RegExp(`aggregate_sales.*restored ${want.size} state entries .* in \\d+ ms`));
  const second = stateMessages(prefix).slice(first.length);
  assert.equal(second.length, 1, `one entry written for the one product changed, not ${second.length}`);
  assert.equal(second[0].key, `sales/aggregate_sales/s/2/${JSON.stringify([one.product_name, one.brand, one.product_category])}`);
  assert.deepEqual(topicTotals(prefix), await sqlTotalsExact(db));

  // A reset drops the state and the positions: the entries left in the topic must not come back.
  run = await runCli(['reset', SPEC, '--flow', 'aggregate_sales'], env);
  assert.equal(run.code, 0, run.stderr);
  run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.doesNotMatch(run.stderr, /aggregate_sales.*restored \d+ state entries/, 'nothing restored after the reset');
  assert.deepEqual(topicTotals(prefix), await sqlTotalsExact(db), 'read again from the start, counted once');
  // ... and the state rebuilt since then is what the next run restores.
  await insertSales(db, [randomSale(r, T0)]);
  run = await runCli(['run', SPEC, '--drain', '--no-progress'], env);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual(topicTotals(prefix), await sqlTotalsExact(db));
});
