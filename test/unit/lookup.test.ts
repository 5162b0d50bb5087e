/**
 * join, balance, threshold and the sql sink, driven directly against an
 * embedded SQLite database (the same knex code paths as MariaDB and
 * PostgreSQL, which the integration tests cover).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { joinStep } from '../../src/operators/step_join.js';
import { balanceStep } from '../../src/operators/step_balance.js';
import { thresholdStep } from '../../src/operators/step_threshold.js';
import { sqlSinkRoundTrip } from '../support/sql-sink.js';
import type { DeadLetter, PlanContext, Step, StreamInfo } from '../../src/operators/operator.js';
import type { Row } from '../../src/types.js';
import { colType as t } from '../support/types.js';
import { runContext } from '../support/run-ctx.js';
import { tmpDir } from '../support/helpers.js';
import { sqlite } from '../support/sql.js';

function planCtx(errors: string[] = []): PlanContext {
  return { error: (p, m, c) => errors.push(`${p.join('.')}: ${m} [${c}]`), warn: () => {}, connections: { db: { type: 'sql', url: 'sqlite:test.db' } }, timeZone: 'UTC' };
}

async function database() {
  const dir = tmpDir();
  const db = sqlite(path.join(dir, 'test.db'));
  await db.schema.createTable('customer_data', (x) => { x.integer('customer_id').primary(); x.text('customer_segment').notNullable(); x.text('updated_at').notNullable(); });
  await db.schema.createTable('inventory', (x) => { x.text('product_name'); x.integer('stock_level'); x.integer('reorder_threshold').nullable(); x.text('updated_at'); x.primary(['product_name']); });
  const ctx = runContext({ specDir: dir, connections: { db: { type: 'sql', url: 'sqlite:test.db' } } });
  return { db, ctx };
}

const sales: StreamInfo = {
  mode: 'append', eventTime: 'ts',
  schema: [{ name: 'id', type: t('int') }, { name: 'customer_id', type: t('int?') }, { name: 'product', type: t('string') }, { name: 'qty', type: t('int') }, { name: 'ts', type: t('timestamp') }],
};

const customerTable = { connection: 'db', table: 'customer_data', refresh: '50ms', updatedAt: 'updated_at', schema: { customer_id: 'int', customer_segment: 'string', updated_at: 'timestamp' } };

test('join: left keeps misses with a null (and nullable) column; inner drops and counts them; a table change is seen after a refresh', async () => {
  const { db, ctx } = await database();
  await db('customer_data').insert([{ customer_id: 1, customer_segment: 'Premium', updated_at: '2026-01-01 00:00:00' }, { customer_id: 2, customer_segment: 'Budget', updated_at: '2026-01-01 00:00:00' }]);
  const rows: Row[] = [{ id: 1, customer_id: 1, product: 'a', qty: 1, ts: 0 }, { id: 2, customer_id: 3, product: 'a', qty: 1, ts: 0 }, { id: 3, customer_id: null, product: 'a', qty: 1, ts: 0 }];
  for (const type of ['left', 'inner'] as const) {
    const cfg = { type, table: customerTable, on: { customer_id: 'customer_id' }, columns: ['customer_segment'] };
    const errors: string[] = [];
    const out = joinStep.plan(cfg, sales, planCtx(errors))!;
    assert.deepEqual(errors, []);
    assert.equal(out.schema.find((f) => f.name === 'customer_segment')!.type.nullable, type === 'left');
    const step = joinStep.create(cfg, sales, out, ctx);
    await step.open!();
    try {
      const got = step.process(rows, []).map((r) => [r.id, r.customer_segment]);
      assert.deepEqual(got, type === 'left' ? [[1, 'Premium'], [2, null], [3, null]] : [[1, 'Premium']]);
      assert.equal(Object.values(step.counters!())[0], 2);
    } finally {
      await step.close!();
    }
  }
  // A change: customer 3 appears and customer 1 moves segment; both are seen after one refresh interval.
  const cfg = { type: 'inner' as const, table: customerTable, on: { customer_id: 'customer_id' } };
  const out = joinStep.plan(cfg, sales, planCtx())!;
  const step = joinStep.create(cfg, sales, out, ctx);
  await step.open!();
  try {
    await db('customer_data').insert({ customer_id: 3, customer_segment: 'Standard', updated_at: '2026-01-02 00:00:00' });
    await db('customer_data').where({ customer_id: 1 }).update({ customer_segment: 'Budget', updated_at: '2026-01-02 00:00:00' });
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(step.process(rows, []).map((r) => [r.id, r.customer_segment, r.updated_at]), [[1, 'Budget', Date.UTC(2026, 0, 2)], [2, 'Standard', Date.UTC(2026, 0, 2)]]);
  } finally {
    await step.close!();
    await db.destroy();
  }
});

test('join plan: unknown columns, mismatched key types and name clashes are reported', () => {
  const errors: string[] = [];
  joinStep.plan({ table: { ...customerTable, schema: { customer_id: 'string', id: 'int', ts: 'timestamp' } }, on: { customer_id: 'customer_id', nope: 'id' } }, sales, planCtx(errors));
  assert.deepEqual(errors, [
    'table.updatedAt: column "updated_at" is not declared in the table\'s schema [column.unknown]',
    'on.customer_id: cannot match customer_id (int?) with customer_id (string) [type.mismatch]',
    'on: unknown stream column "nope"; available: id, customer_id, product, qty, ts [column.unknown]',
    'columns: column "ts" is already in the stream; rename it, e.g. columns: { table_ts: ts } [column.duplicate]',
  ]);
});

const inventoryTable = { connection: 'db', table: 'inventory', refresh: '50ms', updatedAt: 'updated_at', schema: { product_name: 'string', stock_level: 'int', reorder_threshold: 'int?', updated_at: 'timestamp' } };
// fullRefresh: a row added with an old updated_at (b below) is seen by the next full read.
const balanceCfg = { table: { ...inventoryTable, fullRefresh: '100ms' }, on: { product: 'product_name' }, opening: 'stock_level', asOf: 'updated_at', subtract: 'qty', columns: ['reorder_threshold'], as: 'projected' };
const at = (h: number) => Date.UTC(2026, 0, 1, h);

test('balance: opening minus movements after asOf; a restock read late still counts exactly the sales after it; emitted on table change alone', async () => {
  const { db, ctx } = await database();
  await db('inventory').insert([{ product_name: 'a', stock_level: 30, reorder_threshold: null, updated_at: '2026-01-01 01:00:00' }]);
  const errors: string[] = [];
  const out = balanceStep.plan(balanceCfg, sales, planCtx(errors))!;
  assert.deepEqual(errors, []);
  assert.deepEqual(out.key, ['product']);
  let step: Step = balanceStep.create(balanceCfg, sales, out, ctx);
  await step.open!();
  const flush = () => step.flush!().map((r) => [r.product, r.stock_level, r.movement, r.projected]);
  try {
    assert.deepEqual(flush(), [['a', 30, 0, 30]], 'every table key is emitted on open');
    const dead: DeadLetter[] = [];
    step.process([{ id: 1, customer_id: null, product: 'a', qty: 5, ts: at(0) }, { id: 2, customer_id: null, product: 'a', qty: 4, ts: at(2) }, { id: 3, customer_id: null, product: 'b', qty: 1, ts: at(2) }], dead);
    assert.deepEqual(flush(), [['a', 30, 4, 26]], 'the sale before asOf is in the opening count; b has no table row yet');
    // A restock at 03:00, not read yet: sales at 04:00 are kept until it is.
    await db('inventory').where({ product_name: 'a' }).update({ stock_level: 100, updated_at: '2026-01-01 03:00:00' });
    step.process([{ id: 4, customer_id: null, product: 'a', qty: 7, ts: at(4) }], dead);
    const snap = JSON.parse(JSON.stringify(step.snapshot!()));
    await step.close!();
    // Restarted from the checkpoint: the restock is read at open, and the sale after it counts against it.
    step = balanceStep.create(balanceCfg, sales, out, ctx);
    step.restore!(snap);
    await step.open!();
    assert.deepEqual(flush(), [['a', 100, 7, 93]]);
    // b appears in the table: its held movement is emitted once the refresh has read it.
    await db('inventory').insert({ product_name: 'b', stock_level: 10, reorder_threshold: 5, updated_at: '2026-01-01 01:30:00' });
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(step.pending!(), true);
    assert.deepEqual(flush(), [['b', 10, 1, 9]]);
    assert.equal(step.pending!(), false);
    assert.equal(dead.length, 0);
  } finally {
    await step.close!();
    await db.destroy();
  }
});

test('threshold: one alert per crossing, resolved on the way back, deterministic ids that survive a restore', () => {
  const input: StreamInfo = { mode: 'update', key: ['product'], schema: [{ name: 'product', type: t('string') }, { name: 'projected', type: t('int') }, { name: 'reorder_threshold', type: t('int?') }] };
  const cfg = { value: 'projected', below: 'coalesce(reorder_threshold, 10)' };
  const errors: string[] = [];
  const out = thresholdStep.plan(cfg, input, planCtx(errors))!;
  assert.deepEqual(errors, []);
  const make = () => thresholdStep.create(cfg, input, out, runContext());
  const seq = [[30, null], [12, null], [9, null], [4, null], [50, null], [50, null], [19, 20], [8, null]] as const;
  const rows = seq.map(([projected, reorder_threshold]) => ({ product: 'a', projected, reorder_threshold }));
  const a = make();
  const events = a.process(rows.slice(0, 5), []);
  const b = make();
  b.restore!(JSON.parse(JSON.stringify(a.snapshot!())));
  events.push(...b.process(rows.slice(5), []));
  assert.deepEqual(events.map((e) => [e.event, e.crossing, e.projected, e.threshold]), [
    ['alert', 1, 9, 10], ['resolved', 1, 50, 10], ['alert', 2, 19, 20],
  ]);
  // The same input gives the same ids: a consumer can deduplicate a replay.
  const again = make().process(rows, []);
  assert.deepEqual(again.map((e) => e.alert_id), events.map((e) => e.alert_id));
  assert.equal(new Set(events.map((e) => e.alert_id)).size, 3);
  const bad: string[] = [];
  thresholdStep.plan({ value: 'product', above: 3 }, { ...input, key: undefined }, planCtx(bad));
  assert.deepEqual(bad.sort(), [': threshold needs a key: what is watched (set key, or feed it a keyed stream such as an aggregate) [value.key]', 'value: value must be numeric, got string [type.mismatch]']);
});

test('sql sink: creates the table, upserts the latest row per key in one transaction, and a replayed epoch changes nothing', async () => {
  const { db, ctx } = await database();
  await db.destroy();
  await sqlSinkRoundTrip(ctx);
});
