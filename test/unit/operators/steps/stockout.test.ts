/**
 * The stockout step against a stock table in SQLite: days of cover from the
 * forecast, one predicted_stockout per crossing, resolved by a restock read
 * from the table, per-product lead times, and state that survives a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stockoutStep } from '../../../../src/operators/steps/stockout.js';
import type { Step, StreamInfo } from '../../../../src/operators/operator.js';
import type { Row } from '../../../../src/core/types.js';
import { plan } from '../../../support/operators.js';
import { planCtx, database } from '../../../support/lookup.js';
import { colType as t } from '../../../support/types.js';

const forecasts: StreamInfo = {
  mode: 'append',
  key: ['product_name', 'period_start'],
  schema: [
    { name: 'product_name', type: t('string') },
    { name: 'period_start', type: t('timestamp') },
    { name: 'forecast', type: t('float') },
    { name: 'p90', type: t('float?') },
    { name: 'method', type: t('string') },
    { name: 'trained_through', type: t('string') },
  ],
};
const DAY = 86_400_000;
const t0 = Date.UTC(2026, 5, 2);

/** A forecast of `perDay` units for 14 days from t0 (+ shift days), made the day before. */
function forecast(product: string, perDay: number, shift = 0): Row[] {
  const trained = new Date(t0 + (shift - 1) * DAY).toISOString().slice(0, 10);
  return Array.from({ length: 14 }, (_, k) => ({
    product_name: product,
    period_start: t0 + (shift + k) * DAY,
    forecast: perDay,
    p90: perDay * 1.5,
    method: 'holt_winters',
    trained_through: trained,
  }));
}

const cfg = {
  stock: {
    connection: 'db',
    table: 'inventory_levels',
    refresh: '50ms',
    schema: { product_name: 'string', projected_stock: 'int', lead_time_days: 'int?' },
  },
  on: { product_name: 'product_name' },
  level: 'projected_stock',
  leadTime: 'coalesce(lead_time_days, 7)',
};

test('stockout: 20 in stock selling 5 a day within a 7-day lead time alerts once, a restock resolves it', async () => {
  const { db, ctx } = await database();
  await db.schema.createTable('inventory_levels', (x) => {
    x.text('product_name').primary();
    x.integer('projected_stock');
    x.integer('lead_time_days').nullable();
  });
  await db('inventory_levels').insert([
    { product_name: 'a', projected_stock: 20, lead_time_days: null },
    { product_name: 'b', projected_stock: 20, lead_time_days: null },
    { product_name: 'c', projected_stock: 10, lead_time_days: 30 },
    { product_name: 'e', projected_stock: -3, lead_time_days: null },
  ]);
  const errors: string[] = [];
  const p = plan(stockoutStep, cfg, forecasts, planCtx(errors))!;
  assert.deepEqual(errors, []);
  let step: Step = stockoutStep.create(p.planned, ctx);
  await step.open!();
  const events = () =>
    step.flush!().map((r) => [r.event, r.product_name, r.days_of_cover, r.predicted_date, r.demand_in_lead_time, r.crossing]);
  try {
    step.process([...forecast('a', 5), ...forecast('b', 1), ...forecast('c', 1), ...forecast('d', 9), ...forecast('e', 1)], []);
    assert.deepEqual(events(), [
      ['predicted_stockout', 'a', 4, '2026-06-06', 35, 1],
      // c: 10 days of cover, inside its own 30-day lead time (demand counted within the 14-day horizon).
      ['predicted_stockout', 'c', 10, '2026-06-12', 14, 1],
      // e: already out.
      ['predicted_stockout', 'e', 0, '2026-06-02', 7, 1],
    ]);
    // b covers beyond the horizon; d has no stock row. The same risk again raises nothing.
    step.process(forecast('a', 5, 1), []);
    assert.deepEqual(events(), []);
    // An older forecast arriving late changes nothing.
    step.process(forecast('a', 0.1, -3), []);
    assert.deepEqual(events(), []);

    // Restart from the changelog: no second alert for a, and the state goes on.
    const log = new Map(step.stateChanges!(true).map(([k, v]) => [k, JSON.parse(JSON.stringify(v))]));
    await step.close!();
    step = stockoutStep.create(p.planned, ctx);
    step.loadState!(null, log);
    await step.open!();
    assert.deepEqual(events(), [], 'every stock row counts as changed on open; nothing crossed');

    await db('inventory_levels').where({ product_name: 'a' }).update({ projected_stock: 100 });
    for (let i = 0; i < 50 && !step.pending!(); i++) await new Promise((r) => setTimeout(r, 50));
    const resolved = step.flush!();
    assert.deepEqual(
      resolved.map((r) => [r.event, r.product_name, r.days_of_cover, r.predicted_date, r.crossing, r.stock]),
      [['resolved', 'a', null, null, 1, 100]],
    );
    assert.match(String(resolved[0].alert_id), /^[0-9a-f]{32}$/);
    // A new forecast with higher demand: a is at risk again, a second crossing with its own id.
    step.process(forecast('a', 20, 2), []);
    const again = step.flush!();
    assert.deepEqual(
      again.map((r) => [r.event, r.days_of_cover, r.crossing, r.trained_through]),
      [['predicted_stockout', 5, 2, '2026-06-03']],
    );
    assert.notEqual(again[0].alert_id, resolved[0].alert_id);
  } finally {
    await step.close!();
    await db.destroy();
  }
});

test('stockout planning: a forecast stream and numeric level and lead time are required', () => {
  const errors: string[] = [];
  plan(stockoutStep, { ...cfg, level: 'product_name', demand: 'nope' }, forecasts, planCtx(errors));
  assert.ok(
    errors.some((e) => /^demand: the input has no column "nope"/.test(e)),
    errors.join('\n'),
  );
  assert.ok(
    errors.some((e) => /^level: level must be numeric/.test(e)),
    errors.join('\n'),
  );
});
