/** The join step against a lookup table in SQLite: left and inner, misses, refreshes, plan checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { joinStep } from '../../../../src/operators/steps/join.js';
import type { StreamInfo } from '../../../../src/operators/operator.js';
import type { Row } from '../../../../src/core/types.js';
import { plan } from '../../../support/operators.js';
import { planCtx, database, sales, customerTable } from '../../../support/lookup.js';

test('join: left keeps misses with a null (and nullable) column; inner drops and counts them; a table change is seen after a refresh', async () => {
  const { db, ctx } = await database();
  await db('customer_data').insert([
    { customer_id: 1, customer_segment: 'Premium', updated_at: '2026-01-01 00:00:00' },
    { customer_id: 2, customer_segment: 'Budget', updated_at: '2026-01-01 00:00:00' },
  ]);
  const rows: Row[] = [
    { id: 1, customer_id: 1, product: 'a', qty: 1, ts: 0 },
    { id: 2, customer_id: 3, product: 'a', qty: 1, ts: 0 },
    { id: 3, customer_id: null, product: 'a', qty: 1, ts: 0 },
  ];
  for (const type of ['left', 'inner'] as const) {
    const cfg = { type, table: customerTable, on: { customer_id: 'customer_id' }, columns: ['customer_segment'] };
    const errors: string[] = [];
    const p = plan(joinStep, cfg, sales, planCtx(errors))!;
    assert.deepEqual(errors, []);
    assert.equal((p.out as StreamInfo).schema.find((f) => f.name === 'customer_segment')!.type.nullable, type === 'left');
    const step = joinStep.create(p.planned, ctx);
    await step.open!();
    try {
      const got = step.process(rows, []).map((r) => [r.id, r.customer_segment]);
      assert.deepEqual(
        got,
        type === 'left'
          ? [
              [1, 'Premium'],
              [2, null],
              [3, null],
            ]
          : [[1, 'Premium']],
      );
      assert.equal(Object.values(step.counters!())[0], 2);
    } finally {
      await step.close!();
    }
  }
  // A change: customer 3 appears and customer 1 moves segment; both are seen after one refresh interval.
  const cfg = { type: 'inner' as const, table: customerTable, on: { customer_id: 'customer_id' } };
  const step = joinStep.create(plan(joinStep, cfg, sales, planCtx())!.planned, ctx);
  await step.open!();
  try {
    await db('customer_data').insert({ customer_id: 3, customer_segment: 'Standard', updated_at: '2026-01-02 00:00:00' });
    await db('customer_data').where({ customer_id: 1 }).update({ customer_segment: 'Budget', updated_at: '2026-01-02 00:00:00' });
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(
      step.process(rows, []).map((r) => [r.id, r.customer_segment, r.updated_at]),
      [
        [1, 'Budget', Date.UTC(2026, 0, 2)],
        [2, 'Standard', Date.UTC(2026, 0, 2)],
      ],
    );
  } finally {
    await step.close!();
    await db.destroy();
  }
});

test('join plan: unknown columns, mismatched key types and name clashes are reported', () => {
  const errors: string[] = [];
  plan(
    joinStep,
    {
      table: { ...customerTable, schema: { customer_id: 'string', id: 'int', ts: 'timestamp' } },
      on: { customer_id: 'customer_id', nope: 'id' },
    },
    sales,
    planCtx(errors),
  );
  assert.deepEqual(errors, [
    'table.updatedAt: column "updated_at" is not declared in the table\'s schema [column.unknown]',
    'on.customer_id: cannot match customer_id (int?) with customer_id (string) [type.mismatch]',
    'on: unknown stream column "nope"; available: id, customer_id, product, qty, ts [column.unknown]',
    'columns: column "ts" is already in the stream; rename it, e.g. columns: { table_ts: ts } [column.duplicate]',
  ]);
});
