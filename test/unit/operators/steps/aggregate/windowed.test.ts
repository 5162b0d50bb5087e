import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aggregateStep } from '../../../../../src/operators/steps/aggregate/index.js';
import type { StreamInfo, DeadLetter, Step } from '../../../../../src/operators/operator.js';
import type { Row } from '../../../../../src/core/types.js';
import { rng } from '../../../../../src/gen/generate.js';
import { WindowAssigner, parseTimestamp } from '../../../../../src/core/time.js';
import { colType as t } from '../../../../support/types.js';
import { runContext } from '../../../../support/run-ctx.js';
import { plan as planOp, planContext } from '../../../../support/operators.js';

const input: StreamInfo = {
  mode: 'append',
  eventTime: 'ts',
  schema: [
    { name: 'product', type: t('string') },
    { name: 'qty', type: t('int') },
    { name: 'price', type: t('decimal(12,2)') },
    { name: 'ts', type: t('timestamp') },
  ],
};
const H = 3_600_000;
const T0 = Date.UTC(2026, 10, 24, 0, 0, 0);

function plan(cfg: any, inp = input, timeZone = 'UTC') {
  const errors: string[] = [];
  const p = planOp(
    aggregateStep,
    cfg,
    inp,
    planContext({ error: (path, m, c) => errors.push(`${path.join('.')}: ${m} [${c}]`), timeZone }),
  );
  return { out: p?.out as StreamInfo | undefined, planned: p?.planned, errors };
}

function make(cfg: any, timeZone = 'UTC'): Step {
  const { planned, errors } = plan(cfg, input, timeZone);
  assert.deepEqual(errors, []);
  return aggregateStep.create(planned, runContext({ timeZone }));
}

const hourly = (mode: string, lateness = '10m') => ({
  groupBy: ['product'],
  compute: { units: 'sum(qty)', revenue: 'sum(qty * price)', n: 'count(*)' },
  window: { size: '1h', lateness },
  mode,
});

/** Rows over six hours, mostly in order, some a few minutes out of order. */
function rows(n: number, seed: number): Row[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    product: `p${Math.floor(r() * 4)}`,
    qty: 1 + Math.floor(r() * 5),
    price: Math.floor(r() * 1e7),
    ts: T0 + Math.floor((i / n) * 6 * H) - Math.floor(r() * 5 * 60_000),
  }));
}

/** Oracle: per (hour, product) totals over the given rows, recomputed with BigInt. */
function oracle(rs: Row[]): Map<string, { units: bigint; revenue: bigint; n: number }> {
  const m = new Map<string, { units: bigint; revenue: bigint; n: number }>();
  for (const r of rs) {
    const start = Math.floor((r.ts as number) / H) * H;
    const k = `${start}|${r.product}`;
    const g = m.get(k) ?? { units: 0n, revenue: 0n, n: 0 };
    g.units += BigInt(r.qty as number);
    g.revenue += BigInt(r.qty as number) * BigInt(r.price as number);
    g.n++;
    m.set(k, g);
  }
  return m;
}

const keyOf = (r: Row) => `${r.window_start}|${r.product}`;

function run(step: Step, batches: Row[][]): { out: Row[][]; dead: DeadLetter[] } {
  const out: Row[][] = [];
  const dead: DeadLetter[] = [];
  for (const b of batches) {
    step.process(b, dead);
    step.advance!(undefined);
    out.push(step.flush!());
  }
  return { out, dead };
}

const chunks = (rs: Row[], size: number) =>
  Array.from({ length: Math.ceil(rs.length / size) }, (_, i) => rs.slice(i * size, (i + 1) * size));

test('append: each final window is emitted exactly once, equal to the oracle; open windows are held; state is released', () => {
  const rs = rows(5000, 1);
  const step = make(hourly('append'));
  const { out, dead } = run(step, chunks(rs, 250));
  assert.equal(dead.length, 0, 'a few minutes out of order is within 10m lateness');
  const emitted = out.flat();
  const keys = emitted.map(keyOf);
  assert.equal(new Set(keys).size, keys.length, 'no window emitted twice');
  const maxTs = Math.max(...rs.map((r) => r.ts as number));
  const watermark = maxTs - 10 * 60_000;
  const expected = oracle(rs);
  const finalKeys = [...expected.keys()].filter((k) => Number(k.split('|')[0]) + H <= watermark);
  assert.deepEqual(keys.sort(), finalKeys.sort());
  for (const r of emitted) {
    const e = expected.get(keyOf(r))!;
    assert.equal(BigInt(r.units as number), e.units);
    assert.equal(BigInt(r.revenue as number), e.revenue);
    assert.equal(r.n, e.n);
    assert.equal(r.window_end, (r.window_start as number) + H);
  }
  assert.equal((step as any).openWindows(), 1, 'only the last hour is still open');
});

test('update: changed windows each epoch; the last emission of each window equals the oracle', () => {
  const rs = rows(3000, 2);
  const step = make(hourly('update'));
  const { out } = run(step, chunks(rs, 100));
  const latest = new Map<string, Row>();
  for (const r of out.flat()) latest.set(keyOf(r), r);
  const expected = oracle(rs);
  assert.equal(latest.size, expected.size);
  for (const [k, e] of expected) {
    assert.equal(BigInt(latest.get(k)!.units as number), e.units, k);
    assert.equal(BigInt(latest.get(k)!.revenue as number), e.revenue, k);
  }
  // Each epoch emits only what changed: far fewer rows than complete mode would.
  assert.ok(out.flat().length < out.length * expected.size);
});

test('late rows go to the late output with the reason and count nowhere', () => {
  const step = make(hourly('append', '0s'));
  const dead: DeadLetter[] = [];
  step.process(
    [
      { product: 'a', qty: 1, price: 100, ts: T0 + 10 * 60_000 },
      { product: 'a', qty: 2, price: 100, ts: T0 + H + 5 * 60_000 },
    ],
    dead,
  );
  step.advance!(undefined);
  assert.deepEqual(
    step.flush!().map((r) => [r.window_start, r.units]),
    [[T0, 1]],
  );
  // The watermark is now T0 + 1h05: the first hour is final; this row is late.
  step.process(
    [
      { product: 'a', qty: 7, price: 100, ts: T0 + 30 * 60_000 },
      { product: 'a', qty: 3, price: 100, ts: T0 + H + 1 },
    ],
    dead,
  );
  step.advance!(undefined);
  assert.equal(dead.length, 1);
  assert.equal(dead[0].late, true);
  assert.match(
    dead[0].reason,
    /^late: event time 2026-11-24T00:30:00.000Z is behind the watermark 2026-11-24T01:05:00.000Z; window \[2026-11-24T00:00:00.000Z, 2026-11-24T01:00:00.000Z\) already final/,
  );
  assert.equal(JSON.parse(dead[0].payload).qty, 7);
  step.process([{ product: 'a', qty: 1, price: 100, ts: T0 + 2 * H }], dead);
  step.advance!(undefined);
  assert.deepEqual(
    step.flush!().map((r) => [r.window_start, r.units]),
    [[T0 + H, 5]],
  );
});

test('hopping windows: a row counts in every window containing it', () => {
  const cfg = { groupBy: [], compute: { n: 'count(*)' }, window: { size: '1h', slide: '15m' }, mode: 'append' };
  const step = make(cfg);
  const dead: DeadLetter[] = [];
  step.process([{ product: 'a', qty: 1, price: 1, ts: T0 + 20 * 60_000 }], dead);
  step.advance!(undefined);
  step.process([{ product: 'a', qty: 1, price: 1, ts: T0 + 3 * H }], dead);
  step.advance!(undefined);
  const out = step.flush!().map((r) => [((r.window_start as number) - T0) / 60_000, r.n]);
  // windows containing 00:20 start at 00:15, 00:00, -00:15, -00:30
  assert.deepEqual(out, [
    [-30, 1],
    [-15, 1],
    [0, 1],
    [15, 1],
  ]);
});

test('daily windows align to midnight in the pipeline time zone, across a DST change', () => {
  const a = new WindowAssigner(24 * H, 24 * H, 'Europe/Berlin');
  const starts: number[] = [];
  // 2026-03-29 is the spring-forward day in Berlin: a 23-hour day.
  const t1 = parseTimestamp('2026-03-29 12:00:00', 'Europe/Berlin') as number;
  a.starts(t1, starts);
  assert.deepEqual(
    starts.map((s) => new Date(s).toISOString()),
    ['2026-03-28T23:00:00.000Z'],
  );
  assert.equal(new Date(a.end(starts[0])).toISOString(), '2026-03-29T22:00:00.000Z');
  const t2 = parseTimestamp('2026-11-24 00:30:00', 'Europe/Berlin') as number;
  a.starts(t2, starts);
  assert.deepEqual(
    starts.map((s) => new Date(s).toISOString()),
    ['2026-11-23T23:00:00.000Z'],
  );
});

test('a restored window state continues exactly as an uninterrupted run', () => {
  const rs = rows(2000, 3);
  const batches = chunks(rs, 100);
  const whole = run(make(hourly('append')), batches).out.flat();
  const first = make(hourly('append'));
  const a = run(first, batches.slice(0, 9)).out.flat();
  const snap = JSON.parse(JSON.stringify(first.snapshot!()));
  const second = make(hourly('append'));
  second.restore!(snap);
  const b = run(second, batches.slice(9)).out.flat();
  assert.deepEqual([...a, ...b], whole);
});

test('plan: append needs a window; a window needs an event-time column; bad durations are reported', () => {
  assert.match(
    plan({ groupBy: ['product'], compute: { n: 'count(*)' }, mode: 'append' }).errors.join('\n'),
    /^mode: append is not allowed for a running aggregate.*\[mode.invalid\]$/,
  );
  const noTime = { ...input, eventTime: undefined };
  assert.match(
    plan({ groupBy: [], compute: { n: 'count(*)' }, window: { size: '1h' } }, noTime).errors.join('\n'),
    /^window: a window needs an event-time column/,
  );
  assert.match(
    plan({ groupBy: [], compute: { n: 'count(*)' }, window: { size: '1h', on: 'product' } }).errors.join('\n'),
    /^window.on: event-time column "product" must be a timestamp/,
  );
  assert.match(
    plan({ groupBy: [], compute: { n: 'count(*)' }, window: { size: 'hourly' } }).errors.join('\n'),
    /^window.size: invalid duration/,
  );
  assert.match(
    plan({ groupBy: [], compute: { n: 'count(*)' }, window: { size: '1h', slide: '2h' } }).errors.join('\n'),
    /^window.slide: slide \(2h\) must not exceed size/,
  );
  const ok = plan(hourly('append'));
  assert.deepEqual(ok.errors, []);
  assert.deepEqual(ok.out!.key, ['window_start', 'product']);
  assert.equal(ok.out!.mode, 'append');
  assert.deepEqual(
    ok.out!.schema.map((f) => f.name),
    ['window_start', 'window_end', 'product', 'units', 'revenue', 'n'],
  );
});

test('with source progress, the watermark follows the slowest partition, not the largest event time seen', () => {
  const step = make(hourly('append', '0s'));
  const dead: DeadLetter[] = [];
  // Partition 0 read far ahead (hour 5); partition 1 is still at hour 0: nothing is final, nothing late.
  step.process([{ product: 'a', qty: 1, price: 1, ts: T0 + 5 * H }], dead);
  step.advance!(T0 + 10 * 60_000);
  assert.deepEqual(step.flush!(), []);
  step.process([{ product: 'a', qty: 2, price: 1, ts: T0 + 20 * 60_000 }], dead);
  step.advance!(T0 + 2 * H);
  assert.equal(dead.length, 0);
  assert.deepEqual(
    step.flush!().map((r) => [r.window_start, r.units]),
    [[T0, 2]],
  );
  // Progress never goes back.
  step.advance!(T0);
  step.process([{ product: 'a', qty: 3, price: 1, ts: T0 + H + 1 }], dead);
  assert.equal(dead.length, 1);
});
