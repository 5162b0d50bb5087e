/**
 * Keyed state as a changelog (Step.stateChanges/loadState), for every step
 * that keeps one: after each epoch the entries applied to a compacted log
 * (latest value per id, tombstones delete) restore a step equal to the
 * running one, and an epoch logs only what it changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateStep } from '../../../src/operators/steps/aggregate/index.js';
import { balanceStep } from '../../../src/operators/steps/balance.js';
import { thresholdStep } from '../../../src/operators/steps/threshold.js';
import type { DeadLetter, Step, StreamInfo } from '../../../src/operators/operator.js';
import type { Row } from '../../../src/core/types.js';
import { replacer, reviver } from '../../../src/runtime/checkpoint.js';
import { rng } from '../../../src/gen/generate.js';
import { colType as t } from '../../support/types.js';
import { runContext } from '../../support/run-ctx.js';
import { plan, planContext } from '../../support/operators.js';
import { planCtx, database, sales, inventoryTable } from '../../support/lookup.js';

const H = 3_600_000;
const T0 = Date.UTC(2026, 10, 24);

/** A compacted topic: the latest value per id, through JSON as the checkpoint store writes it. */
class CompactedLog {
  readonly entries = new Map<string, unknown>();
  apply(changes: [string, unknown][]): number {
    for (const [id, v] of changes) {
      if (v === null) this.entries.delete(id);
      else this.entries.set(id, JSON.parse(JSON.stringify(v, replacer), reviver));
    }
    return changes.length;
  }
}

/** A snapshot in a canonical order, to compare states whatever order their maps were built in. */
const canonical = (s: unknown): string => JSON.stringify(sortDeep(JSON.parse(JSON.stringify(s, replacer))));
function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sortDeep(x)]));
  return v;
}

/** Restores a fresh step from the log and checks it equals the running one. */
function assertRestores(live: Step, fresh: () => Step, log: CompactedLog, what: string) {
  const restored = fresh();
  restored.loadState!(JSON.parse(JSON.stringify(live.stateMeta!())), new Map(log.entries));
  assert.equal(canonical(restored.snapshot!()), canonical(live.snapshot!()), what);
  return restored;
}

const salesIn: StreamInfo = {
  mode: 'append',
  eventTime: 'ts',
  schema: [
    { name: 'product', type: t('string') },
    { name: 'qty', type: t('int') },
    { name: 'price', type: t('decimal(18,2)') },
    { name: 'ts', type: t('timestamp') },
  ],
};

function aggregate(cfg: object): () => Step {
  const errors: string[] = [];
  const p = plan(aggregateStep, cfg, salesIn, planContext({ error: (_p, m) => errors.push(m) }));
  assert.deepEqual(errors, []);
  return () => aggregateStep.create(p.planned, runContext());
}

function sale(r: () => number, products: number, ts: number): Row {
  return { product: `p${Math.floor(r() * products)}`, qty: 1 + Math.floor(r() * 5), price: Math.floor(r() * 1e14), ts };
}

test('running aggregate: each epoch logs the groups it changed; the log restores the state exactly (BigInt sums too)', () => {
  const make = aggregate({
    groupBy: ['product'],
    compute: { units: 'sum(qty)', revenue: 'sum(qty * price)', n: 'count(*)', lo: 'min(price)', mean: 'avg(qty)' },
    mode: 'update',
  });
  const r = rng(7);
  let step = make();
  const log = new CompactedLog();
  assert.equal(log.apply(step.stateChanges!(true)), 0, 'a fresh step has nothing to log');
  for (let epoch = 0; epoch < 6; epoch++) {
    // Epochs alternate between all 50 products and two of them.
    const products = epoch % 2 ? 2 : 50;
    step.process(
      Array.from({ length: 2000 }, () => sale(r, products, T0)),
      [],
    );
    step.flush!();
    const n = log.apply(step.stateChanges!(false));
    assert.equal(n, products, `epoch ${epoch}: one entry per group changed`);
    // Half way, the run goes on with the restored step.
    const restored = assertRestores(step, make, log, `epoch ${epoch}`);
    if (epoch === 3) step = restored;
  }
  assert.equal(step.stateChanges!(false).length, 0, 'nothing changed since the last epoch');
  // Revenue sums past 2^53 became BigInt and came back as BigInt.
  const revenue = (assertRestores(step, make, log, 'final').snapshot!() as [unknown[], unknown[]][]).map(([, acc]) => acc[1]);
  assert.ok(
    revenue.some((v) => typeof v === 'bigint'),
    'some sums past 2^53',
  );
  assert.equal(log.apply(step.stateChanges!(true)), 50, 'stateChanges(true) logs every group');
});

test('windowed aggregate: open windows are logged per group, a released window leaves tombstones, the log restores open windows and the watermark', () => {
  const make = aggregate({
    groupBy: ['product'],
    compute: { units: 'sum(qty)', n: 'count(*)' },
    window: { size: '1h', lateness: '10m' },
    mode: 'append',
  });
  const r = rng(11);
  let step = make();
  const log = new CompactedLog();
  for (let hour = 0; hour < 8; hour++) {
    const rows = Array.from({ length: 500 }, (_, i) => sale(r, 5, T0 + hour * H + Math.floor((i / 500) * H)));
    step.process(rows, []);
    step.advance!(undefined);
    step.flush!();
    log.apply(step.stateChanges!(false));
    const open = new Set([...log.entries.keys()].map((id) => id.slice(0, id.indexOf('/'))));
    assert.ok(open.size <= 2, `hour ${hour}: only open windows stay in the log (${[...open].join(', ')})`);
    if (hour === 4) step = assertRestores(step, make, log, `hour ${hour}`);
    else assertRestores(step, make, log, `hour ${hour}`);
  }
  // The restored step goes on as the live one would: the same windows when the next hours close them.
  const restored = assertRestores(step, make, log, 'end');
  const more = Array.from({ length: 300 }, (_, i) => sale(r, 5, T0 + 8 * H + Math.floor((i / 300) * 2 * H)));
  const out = (s: Step) => {
    s.process(
      more.map((x) => ({ ...x })),
      [],
    );
    s.advance!(undefined);
    return canonical(s.flush!());
  };
  assert.equal(out(restored), out(step));
});

test('balance: an epoch logs the movements it added or dropped, not each key’s history; the log restores the state', async () => {
  const { db, ctx } = await database();
  await db('inventory').insert([
    { product_name: 'a', stock_level: 30, reorder_threshold: null, updated_at: '2026-01-01 00:00:00' },
    { product_name: 'b', stock_level: 10, reorder_threshold: 5, updated_at: '2026-01-01 00:00:00' },
  ]);
  const errors: string[] = [];
  const p = plan(
    balanceStep,
    {
      table: { ...inventoryTable, fullRefresh: '100ms' },
      on: { product: 'product_name' },
      opening: 'stock_level',
      asOf: 'updated_at',
      subtract: 'qty',
      as: 'projected',
    },
    sales,
    planCtx(errors),
  )!;
  assert.deepEqual(errors, []);
  const make = () => balanceStep.create(p.planned, ctx);
  const step = make();
  await step.open!();
  const log = new CompactedLog();
  const at = (m: number) => Date.UTC(2026, 0, 1, 1) + m * 60_000;
  const dead: DeadLetter[] = [];
  try {
    step.flush!();
    log.apply(step.stateChanges!(true));
    let id = 0;
    for (let epoch = 0; epoch < 5; epoch++) {
      const rows = Array.from({ length: 20 }, (_, i) => ({
        id: id++,
        customer_id: null,
        product: i % 4 ? 'a' : 'b',
        qty: 1,
        ts: at(epoch * 20 + i),
      }));
      step.process(rows, dead);
      step.flush!();
      const n = log.apply(step.stateChanges!(false));
      assert.ok(n <= 20 + 2, `epoch ${epoch}: ${n} entries for 20 movements (not the keys' ${id} movements)`);
      assertRestores(step, make, log, `epoch ${epoch}`);
    }
    // A recount of a at 01:50: its movements up to then are dropped, as tombstones.
    await db('inventory').where({ product_name: 'a' }).update({ stock_level: 100, updated_at: '2026-01-01 01:50:00' });
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(step.pending!(), true);
    step.flush!();
    const before = log.entries.size;
    log.apply(step.stateChanges!(false));
    assert.ok(log.entries.size < before - 30, `movements before the recount removed from the log (${before} -> ${log.entries.size})`);
    assertRestores(step, make, log, 'after the recount');
    assert.equal(dead.length, 0);
  } finally {
    await step.close!();
    await db.destroy();
  }
});

test('threshold: crossings logged per key as they change; the log restores alert state and ids', () => {
  const input: StreamInfo = {
    mode: 'update',
    key: ['product'],
    schema: [
      { name: 'product', type: t('string') },
      { name: 'projected', type: t('int') },
    ],
  };
  const errors: string[] = [];
  const p = plan(thresholdStep, { value: 'projected', below: '10' }, input, planCtx(errors))!;
  assert.deepEqual(errors, []);
  const make = () => thresholdStep.create(p.planned, runContext());
  const step = make();
  const log = new CompactedLog();
  step.process(
    [
      { product: 'a', projected: 5 },
      { product: 'b', projected: 50 },
      { product: 'c', projected: 3 },
    ],
    [],
  );
  assert.equal(log.apply(step.stateChanges!(false)), 2, 'a and c crossed; b did not change');
  step.process([{ product: 'a', projected: 40 }], []);
  const changes = step.stateChanges!(false);
  assert.deepEqual(
    changes.map(([id]) => id),
    [JSON.stringify(['a'])],
    'only a changed (resolved)',
  );
  log.apply(changes);
  const restored = assertRestores(step, make, log, 'after a resolved');
  // The next crossing of a gets the same id from either.
  const next = [{ product: 'a', projected: 1 }];
  assert.deepEqual(restored.process(next, []), step.process(next, []));
});
