/** The balance step against an inventory table in SQLite: opening counts, movements, late restocks, restores. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { balanceStep } from '../../../../src/operators/steps/balance.js';
import type { DeadLetter, Step } from '../../../../src/operators/operator.js';
import { plan } from '../../../support/operators.js';
import { planCtx, database, sales, inventoryTable } from '../../../support/lookup.js';

// fullRefresh: a row added with an old updated_at (b below) is seen by the next full read.
const balanceCfg = {
  table: { ...inventoryTable, fullRefresh: '100ms' },
  on: { product: 'product_name' },
  opening: 'stock_level',
  asOf: 'updated_at',
  subtract: 'qty',
  columns: ['reorder_threshold'],
  as: 'projected',
};
const at = (h: number) => Date.UTC(2026, 0, 1, h);

test('balance: opening minus movements after asOf; a restock read late still counts exactly the sales after it; emitted on table change alone', async () => {
  const { db, ctx } = await database();
  await db('inventory').insert([{ product_name: 'a', stock_level: 30, reorder_threshold: null, updated_at: '2026-01-01 01:00:00' }]);
  const errors: string[] = [];
  const p = plan(balanceStep, balanceCfg, sales, planCtx(errors))!;
  assert.deepEqual(errors, []);
  assert.deepEqual(p.out.key, ['product']);
  let step: Step = balanceStep.create(p.planned, ctx);
  await step.open!();
  const flush = () => step.flush!().map((r) => [r.product, r.stock_level, r.movement, r.projected]);
  try {
    assert.deepEqual(flush(), [['a', 30, 0, 30]], 'every table key is emitted on open');
    const dead: DeadLetter[] = [];
    step.process(
      [
        { id: 1, customer_id: null, product: 'a', qty: 5, ts: at(0) },
        { id: 2, customer_id: null, product: 'a', qty: 4, ts: at(2) },
        { id: 3, customer_id: null, product: 'b', qty: 1, ts: at(2) },
      ],
      dead,
    );
    assert.deepEqual(flush(), [['a', 30, 4, 26]], 'the sale before asOf is in the opening count; b has no table row yet');
    // A restock at 03:00, not read yet: sales at 04:00 are kept until it is.
    await db('inventory').where({ product_name: 'a' }).update({ stock_level: 100, updated_at: '2026-01-01 03:00:00' });
    step.process([{ id: 4, customer_id: null, product: 'a', qty: 7, ts: at(4) }], dead);
    const snap = JSON.parse(JSON.stringify(step.snapshot!()));
    await step.close!();
    // Restarted from the checkpoint: the restock is read at open, and the sale after it counts against it.
    step = balanceStep.create(p.planned, ctx);
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
