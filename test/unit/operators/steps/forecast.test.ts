/**
 * The forecast step: calendar periods in the pipeline's zone (DST days),
 * zero-filling from each series' first sale, when forecasts are made (a
 * period closing on a live stream; once at the end of a drain over old
 * history), late records, no leakage from records of later periods, and
 * state that restores (snapshot and changelog) to the same forecasts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forecastStep, Periods } from '../../../../src/operators/steps/forecast.js';
import type { DeadLetter, Step, StreamInfo } from '../../../../src/operators/operator.js';
import type { Row } from '../../../../src/core/types.js';
import { forecastSeries } from '../../../../src/forecast/select.js';
import { METHODS } from '../../../../src/forecast/methods.js';
import { colType as t } from '../../../support/types.js';
import { runContext } from '../../../support/run-ctx.js';
import { step } from '../../../support/operators.js';

const input: StreamInfo = {
  schema: [
    { name: 'product_name', type: t('string') },
    { name: 'quantity_sold', type: t('int') },
    { name: 'price_per_unit', type: t('decimal(10,2)') },
    { name: 'transaction_date', type: t('timestamp') },
  ],
  mode: 'append',
  eventTime: 'transaction_date',
};

const DAY = 86_400_000;
const today = Math.floor(Date.now() / DAY) * DAY; // UTC midnight

function make(cfg: Record<string, unknown>, timeZone = 'UTC', drain = false): Step {
  return step(forecastStep, { series: ['product_name'], target: 'sum(quantity_sold)', ...cfg }, input, runContext({ timeZone, drain }))
    .step;
}

const sale = (product: string, at: number, qty: number): Row => ({
  product_name: product,
  quantity_sold: qty,
  price_per_unit: 1000,
  transaction_date: at,
});

function feed(s: Step, rows: Row[]): DeadLetter[] {
  const dead: DeadLetter[] = [];
  s.process(rows, dead);
  s.advance?.(undefined);
  return dead;
}

test('periods are calendar days of the zone, 23 hours on the spring DST change, and ISO weeks from Monday', () => {
  const p = new Periods('day', 'Europe/Berlin');
  const dst = p.index(Date.parse('2026-03-29T12:00:00Z'));
  assert.equal(p.date(dst), '2026-03-29');
  assert.equal(p.start(dst), Date.parse('2026-03-28T23:00:00Z'));
  assert.equal(p.end(dst) - p.start(dst), 23 * 3600_000);
  // 23:30 local on the 28th is still the 28th, though the 29th in UTC... and 00:30 local on the 29th is the 29th.
  assert.equal(p.date(p.index(Date.parse('2026-03-28T22:30:00Z'))), '2026-03-28');
  assert.equal(p.date(p.index(Date.parse('2026-03-28T23:30:00Z'))), '2026-03-29');
  const w = new Periods('week', 'UTC');
  const wk = w.index(Date.parse('2026-12-03T10:00:00Z')); // a Thursday
  assert.equal(w.date(wk), '2026-11-30'); // its Monday
  assert.equal(w.end(wk) - w.start(wk), 7 * DAY);
});

test('a live stream: when a day closes, each series is forecast from its first sale on, zero-filled, and nothing after the day', () => {
  const s = make({ method: 'moving_average', window: 100, horizon: 3 });
  const d = (n: number) => today - n * DAY; // n days ago, midnight
  feed(s, [sale('A', d(5) + 3600_000, 6), sale('A', d(5) + 7200_000, 2), sale('B', d(3) + 3600_000, 9), sale('A', d(2) + 60_000, 4)]);
  // The watermark is inside the day 2 days ago: closed through 3 days ago. A: [8, 0, 0], B: [9].
  const first = s.flush!();
  assert.deepEqual(
    first.filter((r) => r.period_start === d(2)).map((r) => [r.product_name, r.forecast]),
    [
      ['A', 8 / 3],
      ['B', 9],
    ],
  );
  // A record of yesterday closes the day 2 days ago; its quantity must not be in that forecast.
  feed(s, [sale('A', d(1) + 1000, 100)]);
  const rows = s.flush!();
  const a = rows.filter((r) => r.product_name === 'A'),
    b = rows.filter((r) => r.product_name === 'B');
  assert.equal(a.length, 3);
  // A: days -5..-2 = [8, 0, 0, 4] -> mean 3; B: days -3..-2 = [9, 0] -> 4.5.
  assert.deepEqual(
    a.map((r) => [r.period_start, r.forecast]),
    [
      [d(1), 3],
      [d(0), 3],
      [d(-1), 3],
    ],
  );
  assert.equal(b[0].forecast, 4.5);
  assert.equal(a[0].trained_through, new Date(d(2)).toISOString().slice(0, 10));
  assert.equal(a[0].forecast_date, new Date(d(1)).toISOString().slice(0, 10));
  assert.equal(a[0].method, 'moving_average');
  assert.deepEqual(s.flush!(), [], 'once per closed day');
});

test('auto on a live stream equals forecastSeries on the closed history; late records are refused', () => {
  const s = make({ horizon: 7 });
  const rows: Row[] = [];
  const y: number[] = [];
  for (let n = 80; n >= 1; n--) {
    const q = [3, 4, 3, 5, 9, 14, 11][n % 7] + (n % 3);
    y.push(q);
    rows.push(sale('A', today - n * DAY + 5000, q));
  }
  feed(s, rows);
  feed(s, [sale('A', today + 1000, 1)]);
  const out = s.flush!();
  const expected = forecastSeries(Float64Array.from(y), {
    season: 7,
    window: 28,
    horizon: 7,
    origins: 3,
    methods: METHODS,
    level: 80,
    minTrain: 14,
  });
  assert.deepEqual(
    out.map((r) => r.forecast),
    [...expected.forecast],
  );
  assert.equal(out[0].method, expected.method);
  assert.equal(out[0].backtest_rmsse, expected.rmsse);
  assert.deepEqual(
    out.map((r) => r.p90),
    [...expected.hi!],
  );
  const dead = feed(s, [sale('A', today - 3 * DAY, 5)]);
  assert.equal(dead.length, 1);
  assert.equal(dead[0].late, true);
  assert.match(dead[0].reason, /already closed/);
});

test('a drain run forecasts once at the end of its input, even when its last days close in epochs before', () => {
  const s = make({ method: 'moving_average', horizon: 3 }, 'UTC', true);
  for (let n = 10; n >= 2; n--) {
    feed(s, [sale('A', today - n * DAY + 1000, 4)]);
    assert.deepEqual(s.flush!(), [], `no forecast at the epoch reaching ${n} days ago`);
  }
  s.inputEnded!();
  const out = s.flush!();
  assert.deepEqual(
    out.map((r) => r.trained_through),
    new Array(3).fill(new Date(today - DAY).toISOString().slice(0, 10)),
  );
});

test('replaying old history forecasts nothing per day, and once at the end of the drain, through yesterday', () => {
  const s = make({ method: 'seasonal_naive', horizon: 2 });
  const old = Date.parse('2025-01-01T00:00:00Z');
  const rows: Row[] = [];
  for (let n = 0; n < 60; n++) rows.push(sale('A', old + n * DAY + 1000, n % 7));
  feed(s, rows);
  assert.deepEqual(s.flush!(), []);
  assert.equal(s.pending!(), false);
  s.inputEnded!();
  assert.equal(s.pending!(), true);
  const out = s.flush!();
  assert.equal(out.length, 2);
  assert.equal(out[0].trained_through, new Date(today - DAY).toISOString().slice(0, 10));
  // Zero-filled from the last sale through yesterday: a week before tomorrow had no sales.
  assert.equal(out[0].forecast, 0);
  assert.equal(s.pending!(), false);
});

test('null targets count nothing; a decimal target is summed as its value', () => {
  const s = step(
    forecastStep,
    { series: ['product_name'], target: 'sum(quantity_sold * price_per_unit)', method: 'moving_average', horizon: 1 },
    input,
    runContext({ drain: false }),
  ).step;
  feed(s, [sale('A', today - 3 * DAY, 2), { ...sale('A', today - 3 * DAY, 1), quantity_sold: null }]);
  feed(s, [sale('A', today - DAY, 1)]);
  const out = s.flush!();
  // Days -3, -2: [20.00, 0] -> 10.
  assert.equal(out[0].forecast, 10);
});

test('state restored from a snapshot or from the changelog forecasts the same as the running step', () => {
  const rows: Row[] = [];
  for (let n = 70; n >= 2; n--)
    for (const p of ['A', 'B', 'C']) if ((n + p.charCodeAt(0)) % 3) rows.push(sale(p, today - n * DAY + 1000, (n % 7) + 1));
  const live = make({ horizon: 5 });
  feed(live, rows);
  const log = new Map<string, unknown>();
  for (const [id, v] of live.stateChanges!(true)) log.set(id, v);
  const snap = JSON.parse(JSON.stringify(live.snapshot!()));
  const meta = JSON.parse(JSON.stringify(live.stateMeta!()));
  const fromSnap = make({ horizon: 5 }),
    fromLog = make({ horizon: 5 });
  fromSnap.restore!(snap);
  fromLog.loadState!(meta, new Map(JSON.parse(JSON.stringify([...log]))));
  // An epoch touching one series logs only its key-less chunk.
  feed(live, [sale('A', today - DAY + 5, 2)]);
  const changed = live.stateChanges!(false);
  assert.deepEqual(
    changed.map(([id]) => id),
    [`c/["A"]/${Math.floor((today - DAY) / DAY / 32)}`],
  );
  for (const s of [fromSnap, fromLog]) feed(s, [sale('A', today - DAY + 5, 2)]);
  const expected = live.flush!();
  assert.ok(expected.length === 15);
  assert.deepEqual(fromSnap.flush!(), expected);
  assert.deepEqual(fromLog.flush!(), expected);
});

test('planning checks the target, the columns and the input', () => {
  const errors: string[] = [];
  const ctx = { error: (p: (string | number)[], m: string) => errors.push(`${p.join('.')}: ${m}`) };
  const plan = (cfg: Record<string, unknown>, inp = input) => {
    errors.length = 0;
    forecastStep.plan(
      {
        series: ['product_name'],
        target: 'sum(quantity_sold)',
        period: 'day',
        horizon: 14,
        method: 'auto',
        origins: 3,
        level: 80,
        lateness: '0s',
        ...cfg,
      } as never,
      inp,
      {
        ...ctx,
        warn: () => {},
        connections: {},
        timeZone: 'UTC',
      },
    );
    return errors.slice();
  };
  assert.deepEqual(plan({}), []);
  assert.match(plan({ target: 'max(quantity_sold)' })[0], /^target: a forecast target is a sum/);
  assert.match(plan({ series: ['nope'] })[0], /^series\.0: unknown column "nope"/);
  assert.match(plan({ target: 'sum(product_name)' })[0], /^target: sum\(\) needs a number/);
  assert.match(plan({}, { ...input, mode: 'update', key: ['product_name'] })[0], /append stream/);
  assert.match(plan({ lateness: 'soon' })[0], /^lateness: invalid duration/);
});
