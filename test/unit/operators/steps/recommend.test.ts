/**
 * The recommend step: trained when its input ends, one row per customer
 * with a JSON list, exclusions (repurchasable categories kept), anonymous
 * rows, repeatable output, and state that restores (snapshot and
 * changelog) to the same recommendations.
 */
import { test } from 'node:test';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { recommendStep } from '../../../../src/operators/steps/recommend.js';
import type { Step, StreamInfo } from '../../../../src/operators/operator.js';
import type { Row } from '../../../../src/core/types.js';
import { colType as t } from '../../../support/types.js';
import { runContext } from '../../../support/run-ctx.js';
import { plan, planContext, step } from '../../../support/operators.js';
import { rng } from '../../../../src/core/random.js';

const input: StreamInfo = {
  schema: [
    { name: 'customer_id', type: t('int?') },
    { name: 'product_name', type: t('string') },
    { name: 'brand', type: t('string') },
    { name: 'product_category', type: t('string') },
    { name: 'quantity_sold', type: t('int') },
    { name: 'region', type: t('string?') },
    { name: 'transaction_date', type: t('timestamp') },
  ],
  mode: 'append',
  eventTime: 'transaction_date',
};

const CFG = {
  customer: 'customer_id',
  item: ['product_name', 'brand'],
  quantity: 'quantity_sold',
  region: 'region',
  category: 'product_category',
  repurchasable: ['Accessory'],
  // A small history: the default regularization suits tens of thousands of customers.
  factors: 4,
  regularization: 5,
};

const make = (cfg: Record<string, unknown> = {}): Step => step(recommendStep, { ...CFG, ...cfg }, input, runContext({ drain: true })).step;

const PRODUCTS = [
  ['Laptop A', 'Dell', 'Laptop'],
  ['Laptop B', 'Apple', 'Laptop'],
  ['Phone A', 'Dell', 'Smartphone'],
  ['Phone B', 'Apple', 'Smartphone'],
  ['Cable A', 'Dell', 'Accessory'],
  ['Cable B', 'Apple', 'Accessory'],
];

const sale = (customer: number | null, product: number, at: number, region: string | null = 'North', qty = 1): Row => ({
  customer_id: customer,
  product_name: PRODUCTS[product][0],
  brand: PRODUCTS[product][1],
  product_category: PRODUCTS[product][2],
  quantity_sold: qty,
  region,
  transaction_date: at,
});

/** Two tastes: Dell buyers (even products) and Apple buyers (odd ones), in two regions. */
function history(): Row[] {
  const r = rng(4);
  const rows: Row[] = [];
  for (let c = 1; c <= 60; c++) {
    const apple = c % 2;
    for (let k = 0; k < 3; k++) rows.push(sale(c, 2 * Math.floor(r() * 3) + apple, Date.UTC(2026, 0, 1 + c), c % 3 ? 'North' : 'South'));
  }
  return rows;
}

type Rec = { product_name: string; brand: string; score: number; reason: string };
const lists = (rows: Row[]) => new Map(rows.map((r) => [r.customer_id, JSON.parse(r.recommendations as string) as Rec[]]));

test('plans: the output columns; unknown columns, repurchasable without category and an update stream are errors', () => {
  const out = plan(recommendStep, CFG, input, planContext()).out as StreamInfo;
  assert.deepEqual(
    out.schema.map((f) => [f.name, f.type.kind, f.type.nullable]),
    [
      ['customer_id', 'int', false],
      ['recommendations', 'json', false],
      ['model_version', 'string', false],
      ['generated_at', 'timestamp', false],
    ],
  );
  assert.deepEqual(out.key, ['customer_id']);
  const errors: string[] = [];
  const ctx = planContext({ error: (p, m) => errors.push(`${p.join('.')}: ${m}`) });
  plan(recommendStep, { ...CFG, item: ['nope'], category: undefined, quantity: 'brand' }, { ...input, mode: 'update' }, ctx);
  assert.equal(errors.length, 4, errors.join('\n'));
  assert.match(errors.join('\n'), /item\.0: unknown column "nope"/);
  assert.match(errors.join('\n'), /quantity: column "brand" must be numeric/);
  assert.match(errors.join('\n'), /repurchasable: .*set category/);
  assert.match(errors.join('\n'), /append stream/);
});

test('trained when the input ends: one row per customer, top 5 best first, bought items excluded except repurchasable ones', () => {
  const s = make();
  s.process([...history(), sale(null, 0, Date.UTC(2026, 2, 1))], []);
  assert.deepEqual(s.flush?.(), []);
  assert.equal(s.pending?.(), false);
  s.inputEnded?.();
  assert.equal(s.pending?.(), true);
  const rows = s.flush!();
  assert.equal(rows.length, 60);
  assert.ok(rows.every((r) => r.model_version === 'als-2026-03-02-180'));
  assert.equal(s.counters?.().anonymous, 1);
  const byCustomer = lists(rows);
  const bought = new Map<number, Set<string>>();
  for (const r of history()) {
    const c = r.customer_id as number;
    if (!bought.has(c)) bought.set(c, new Set());
    bought.get(c)!.add(`${r.product_name}|${r.brand}`);
  }
  for (const [c, recs] of byCustomer) {
    assert.ok(recs.length <= 5 && recs.length >= 1);
    for (let i = 1; i < recs.length; i++) assert.ok(recs[i - 1].score >= recs[i].score);
    for (const r of recs) {
      const id = `${r.product_name}|${r.brand}`;
      if (bought.get(c as number)!.has(id))
        assert.match(r.product_name, /^Cable/, `customer ${c} was recommended ${id}, which they bought`);
      assert.ok(['personal', 'regional', 'popular'].includes(r.reason));
    }
  }
  // Taste is learnt: where a laptop or phone of their brand is left to buy, it comes before the other brand's.
  let agree = 0,
    n = 0;
  for (const [c, recs] of byCustomer) {
    const brand = (c as number) % 2 ? 'Apple' : 'Dell';
    const left = PRODUCTS.some(([name, b, cat]) => b === brand && cat !== 'Accessory' && !bought.get(c as number)!.has(`${name}|${b}`));
    const first = recs.find((r) => !r.product_name.startsWith('Cable'));
    if (!first || !left) continue;
    n++;
    if (first.brand === brand) agree++;
  }
  assert.ok(agree / n > 0.8, `${agree} of ${n}`);
  // Nothing new since: no second training.
  assert.equal(s.pending?.(), false);
});

test('a customer whose only purchases are excluded still gets recommendations; exclude: none keeps bought items', () => {
  const rows = [...history(), sale(99, 0, Date.UTC(2026, 2, 1), null), sale(99, 2, Date.UTC(2026, 2, 1), null)];
  const s = make();
  s.process(rows, []);
  s.inputEnded?.();
  const mine = lists(s.flush!()).get(99)!;
  assert.equal(mine.length, 4);
  assert.ok(!mine.some((r) => (r.product_name === 'Laptop A' || r.product_name === 'Phone A') && r.brand === 'Dell'));
  const all = make({ exclude: 'none' });
  all.process(rows, []);
  all.inputEnded?.();
  assert.equal(lists(all.flush!()).get(99)!.length, 5);
});

test('repeatable, and state restored from a snapshot or a changelog recommends the same', () => {
  const once = () => {
    const s = make();
    s.process(history(), []);
    return s;
  };
  const a = once();
  a.inputEnded?.();
  const ra = a.flush!().map(({ generated_at: _g, ...r }) => r);
  const b = once();
  const snap = make();
  snap.restore!(JSON.parse(JSON.stringify(b.snapshot!())));
  const log = make();
  log.loadState!(JSON.parse(JSON.stringify(b.stateMeta!())), new Map(JSON.parse(JSON.stringify(b.stateChanges!(true)))));
  for (const s of [b, snap, log]) {
    s.inputEnded?.();
    assert.deepEqual(
      s.flush!().map(({ generated_at: _g, ...r }) => r),
      ra,
    );
  }
  // An epoch's changelog holds the customers who bought in it.
  const c = once();
  c.stateChanges!(true);
  c.process([sale(7, 1, Date.UTC(2026, 3, 1))], []);
  assert.deepEqual(
    c.stateChanges!(false).map(([id]) => id),
    ['7'],
  );
});

test('fold-in: a purchase gives its customer a new list at the epoch end, nobody else; a new customer gets one; a new training prunes what it learnt', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salespipe-recommend-'));
  const model = path.join(dir, 'model.json');
  const train = make({ model });
  train.process(history(), []);
  train.inputEnded?.();
  const trained = lists(train.flush!());
  const version = JSON.parse(fs.readFileSync(model, 'utf8')).version;
  const live = () => step(recommendStep, { ...CFG, model, foldIn: true }, input, runContext()).step;
  const s = live();
  s.open?.();
  // Customer 2 (a Dell buyer) buys an Apple laptop; customer 500 is new, in the South.
  s.process([sale(2, 1, Date.UTC(2026, 5, 1)), sale(500, 3, Date.UTC(2026, 5, 1), 'South')], []);
  const rows = s.flush!();
  assert.deepEqual(
    rows.map((r) => r.customer_id),
    [2, 500],
  );
  assert.ok(rows.every((r) => r.model_version === version));
  const mine = lists(rows).get(2)!;
  assert.ok(!mine.some((r) => r.product_name === 'Laptop B'), 'what they just bought is left out');
  assert.notDeepEqual(mine, trained.get(2));
  const newcomer = lists(rows).get(500)!;
  assert.equal(newcomer.length, 5);
  assert.ok(!newcomer.some((r) => r.product_name === 'Phone B'));
  // Nothing bought since: nothing emitted.
  assert.deepEqual(s.flush!(), []);
  // The same state restored (changelog) folds in alike.
  const again = live();
  again.loadState!(JSON.parse(JSON.stringify(s.stateMeta!())), new Map(JSON.parse(JSON.stringify(s.stateChanges!(true)))));
  again.open?.();
  again.process([sale(2, 5, Date.UTC(2026, 5, 2))], []);
  s.process([sale(2, 5, Date.UTC(2026, 5, 2))], []);
  assert.deepEqual(
    again.flush!().map(({ generated_at: _g, ...r }) => r),
    s.flush!().map(({ generated_at: _g, ...r }) => r),
  );
  // A training on everything through June 1 replaces the model: the purchases of June 1 leave the state, June 2's stay.
  const retrain = make({ model });
  retrain.process([...history(), sale(2, 1, Date.UTC(2026, 5, 1)), sale(500, 3, Date.UTC(2026, 5, 1), 'South')], []);
  retrain.inputEnded?.();
  retrain.flush!();
  fs.utimesSync(model, new Date(), new Date(Date.now() + 5000));
  s.process([sale(7, 0, Date.UTC(2026, 5, 3))], []);
  const next = s.flush!();
  assert.equal(next[0].model_version, JSON.parse(fs.readFileSync(model, 'utf8')).version);
  assert.notEqual(next[0].model_version, version);
  const left = new Map(s.stateChanges!(true) as [string, { purchases: unknown[] } | null][]);
  assert.equal(left.get('500'), null, 'customer 500 is all in the model now (a tombstone)');
  assert.equal(left.get('2')!.purchases.length, 1);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('fold-in needs a model file', () => {
  const errors: string[] = [];
  plan(recommendStep, { ...CFG, foldIn: true }, input, planContext({ error: (p, m) => errors.push(`${p.join('.')}: ${m}`) }));
  assert.deepEqual(errors, ['foldIn: foldIn folds purchases into a trained model: set model, the file a training writes']);
});
