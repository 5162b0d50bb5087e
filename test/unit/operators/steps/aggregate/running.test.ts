import { test } from 'node:test';
import { colType } from '../../../../support/types.js';
import assert from 'node:assert/strict';
import { aggregateStep } from '../../../../../src/operators/steps/aggregate/index.js';
import type { StreamInfo, DeadLetter } from '../../../../../src/operators/operator.js';
import { Row, formatDecimal } from '../../../../../src/core/types.js';
import { rng } from '../../../../../src/gen/generate.js';
import { runContext } from '../../../../support/run-ctx.js';
import { plan, planContext } from '../../../../support/operators.js';

const t = colType;
const input: StreamInfo = {
  mode: 'append',
  schema: [
    { name: 'product_name', type: t('string') },
    { name: 'brand', type: t('string?') },
    { name: 'quantity_sold', type: t('int') },
    { name: 'price_per_unit', type: t('decimal(12,2)') },
    { name: 'weight', type: t('float?') },
  ],
};
const cfg = {
  groupBy: ['product_name', 'brand'],
  compute: {
    units: 'sum(quantity_sold)',
    revenue: 'sum(quantity_sold * price_per_unit)',
    sales: 'count(*)',
    weights: 'count(weight)',
    cheapest: 'min(price_per_unit)',
    dearest: 'max(price_per_unit)',
    avg_qty: 'avg(quantity_sold)',
  },
  mode: 'update' as const,
};

/** The step planned once (as a plan holds it), and a factory of steps from that plan. */
function planned(c: object = cfg) {
  const errors: string[] = [];
  const p = plan(aggregateStep, c, input, planContext({ error: (_p, m) => errors.push(m) }));
  assert.deepEqual(errors, []);
  return { out: p.out as StreamInfo, make: (ctx = runContext()) => aggregateStep.create(p.planned, ctx) };
}

function randomRows(n: number, seed: number): Row[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => ({
    product_name: `p${Math.floor(r() * 20)}`,
    brand: r() < 0.1 ? null : `b${Math.floor(r() * 3)}`,
    quantity_sold: 1 + Math.floor(r() * 9),
    price_per_unit: Math.floor(r() * 1e9), // up to 10,000,000.00 as cents
    weight: r() < 0.3 ? null : r(),
  }));
}

/** From-scratch recomputation with BigInt: the oracle. */
function oracle(rows: Row[]) {
  const m = new Map<string, { units: bigint; revenue: bigint; sales: number; weights: number; cheapest: number; dearest: number }>();
  for (const r of rows) {
    const k = `${r.product_name}|${r.brand}`;
    const g = m.get(k) ?? { units: 0n, revenue: 0n, sales: 0, weights: 0, cheapest: Infinity, dearest: -Infinity };
    g.units += BigInt(r.quantity_sold as number);
    g.revenue += BigInt(r.quantity_sold as number) * BigInt(r.price_per_unit as number);
    g.sales++;
    if (r.weight !== null) g.weights++;
    g.cheapest = Math.min(g.cheapest, r.price_per_unit as number);
    g.dearest = Math.max(g.dearest, r.price_per_unit as number);
    m.set(k, g);
  }
  return m;
}

function check(latest: Map<string, Row>, rows: Row[]) {
  const want = oracle(rows);
  assert.equal(latest.size, want.size);
  for (const [k, w] of want) {
    const g = latest.get(k)!;
    assert.ok(g, `missing group ${k}`);
    assert.equal(BigInt(g.units as number), w.units);
    assert.equal(formatDecimal(g.revenue as number | bigint, 2), formatDecimal(w.revenue, 2));
    assert.equal(g.sales, w.sales);
    assert.equal(g.weights, w.weights);
    assert.equal(g.cheapest, w.cheapest);
    assert.equal(g.dearest, w.dearest);
    assert.ok(Math.abs((g.avg_qty as number) - Number(w.units) / w.sales) < 1e-9);
  }
}

test('update mode equals a from-scratch recomputation, across epochs and a restore', () => {
  const { make } = planned();
  const rows = randomRows(60_000, 7);
  const ctx = runContext();
  let step = make(ctx);
  const latest = new Map<string, Row>();
  const dead: DeadLetter[] = [];
  for (let i = 0; i < rows.length; i += 5000) {
    step.process(rows.slice(i, i + 5000), dead);
    const emitted = step.flush!();
    // update mode: only changed groups, each once
    assert.equal(new Set(emitted.map((r) => `${r.product_name}|${r.brand}`)).size, emitted.length);
    for (const r of emitted) latest.set(`${r.product_name}|${r.brand}`, r);
    if (i === 30_000) {
      // a restart: state goes through a checkpoint (JSON) and back
      const snap = JSON.parse(JSON.stringify(step.snapshot!()));
      step = make(ctx);
      step.restore!(snap);
    }
  }
  assert.deepEqual(dead, []);
  check(latest, rows);
});

test('sums past 2^53 stay exact (BigInt) and survive a snapshot', () => {
  const step = planned().make();
  const rows: Row[] = Array.from({ length: 3000 }, () => ({
    product_name: 'big',
    brand: 'b',
    quantity_sold: 9,
    price_per_unit: 999_999_999_999,
    weight: null,
  }));
  step.process(rows, []);
  const [r] = step.flush!();
  assert.equal(typeof r.revenue, 'bigint');
  assert.equal(formatDecimal(r.revenue as bigint, 2), formatDecimal(3000n * 9n * 999_999_999_999n, 2));
});

test('complete mode emits every group each epoch; update only the changed ones', () => {
  const complete = planned({ ...cfg, mode: 'complete' }).make();
  const update = planned().make();
  const rows = randomRows(1000, 3);
  for (const s of [complete, update]) {
    s.process(rows, []);
    s.flush!();
  }
  const one = [{ ...rows[0] }];
  complete.process(one, []);
  update.process(one, []);
  assert.equal(update.flush!().length, 1);
  assert.equal(complete.flush!().length, oracle(rows).size);
});
