/**
 * Choosing a method by rolling-origin backtest: scores, the choice, the
 * interval, short series, and no leakage (a forecast made at an origin
 * does not depend on anything after it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METHODS } from '../../../src/forecast/methods.js';
import {
  choose,
  demandClass,
  evaluate,
  forecastAll,
  forecastSeries,
  mase,
  originsOf,
  pooledBest,
  quantile,
  rmsse,
  scoreSeries,
} from '../../../src/forecast/select.js';
import { rng } from '../../../src/gen/generate.js';

const base = { season: 7, window: 28, horizon: 14, origins: 3, methods: METHODS, level: 80, minTrain: 14 };

function weekly(n: number, seed: number, noise = 3): Float64Array {
  const r = rng(seed);
  const week = [10, 12, 11, 13, 18, 30, 24];
  return Float64Array.from({ length: n }, (_, t) => Math.max(0, Math.round(week[t % 7] + t * 0.02 + (r() - 0.5) * 2 * noise)));
}

test('RMSSE and MASE are scaled by the naive one-step change of the training part', () => {
  const train = [1, 3, 2, 4]; // changes 2, -1, 2: MSE 3, MAE 5/3
  assert.ok(Math.abs(rmsse(train, [5, 5], [4, 7]) - Math.sqrt((1 + 4) / 2 / 3)) < 1e-12);
  assert.ok(Math.abs(mase(train, [5, 5], [4, 7]) - 3 / 2 / (5 / 3)) < 1e-12);
  // A flat training part: plain RMSE.
  assert.equal(rmsse([2, 2, 2], [2, 4], [2, 2]), Math.sqrt(2));
});

test('origins are the last windows back to back, each with enough history', () => {
  assert.deepEqual(originsOf(100, 14, 3, 14), [58, 72, 86]);
  assert.deepEqual(originsOf(40, 14, 3, 14), [26]);
  assert.deepEqual(originsOf(20, 14, 3, 14), []);
  assert.equal(quantile([1, 2, 3, 4, 5], 0.1), 1.4);
});

test('auto picks a seasonal method on a weekly series and reports its score and an interval around the forecast', () => {
  const y = weekly(200, 7);
  const fc = forecastSeries(y, base);
  assert.ok(['seasonal_naive', 'holt_winters'].includes(fc.method), fc.method);
  assert.ok(fc.rmsse !== null && fc.rmsse > 0);
  const single = forecastSeries(y, { ...base, methods: [fc.method] });
  assert.equal(single.rmsse, fc.rmsse);
  for (const m of METHODS) {
    const s = forecastSeries(y, { ...base, methods: [m] });
    if (s.rmsse !== null) assert.ok(fc.rmsse! <= s.rmsse + 1e-12, `${m}: ${s.rmsse} < auto ${fc.rmsse}`);
  }
  for (let k = 0; k < 14; k++) assert.ok(fc.lo![k] <= fc.forecast[k] + 1e-9 && fc.forecast[k] <= fc.hi![k] + 1e-9);
});

test('a series too short to backtest gets the fallback and no interval; a single sale works', () => {
  const short = forecastSeries(new Float64Array([3, 0, 0, 1, 0, 0, 2, 0, 1]), base);
  assert.equal(short.method, 'seasonal_naive');
  assert.equal(short.rmsse, null);
  assert.equal(short.lo, null);
  const one = forecastSeries(new Float64Array([5]), base);
  assert.equal(one.method, 'moving_average');
  assert.deepEqual([...one.forecast], new Array(14).fill(5));
});

test('no leakage: changing values after an origin changes nothing forecast at that origin', () => {
  const y = weekly(300, 11);
  const origin = 250;
  // Evaluated on the series up to origin + horizon: its one evaluation origin is `origin`.
  const a = evaluate([y.subarray(0, origin + 14)], base, 1, ['auto', 'ses'])[0];
  const changed = y.slice();
  for (let t = origin; t < y.length; t++) changed[t] = t % 2 ? 1000 : 0;
  // The forecast itself, made from the data before the origin.
  const f1 = forecastSeries(y.subarray(0, origin), base),
    f2 = forecastSeries(changed.subarray(0, origin), base);
  assert.deepEqual([...f1.forecast], [...f2.forecast]);
  assert.deepEqual([...f1.lo!], [...f2.lo!]);
  assert.equal(f1.method, f2.method);
  // The backtest at the last origin sees the change only in what it is scored against.
  const b = evaluate([changed.subarray(0, origin + 14)], base, 1, ['auto', 'ses'])[0];
  assert.deepEqual([...a.get('auto')![0].forecast], [...b.get('auto')![0].forecast]);
  assert.notEqual(a.get('auto')![0].rmsse, b.get('auto')![0].rmsse);
});

test('auto over many series: a series keeps its own best only when clearly and consistently better than the pooled choice of its demand class', () => {
  const sparse = (k: number) => Float64Array.from({ length: 200 }, (_, t) => (t % k === 0 ? 2 + (t % 3) : 0));
  const ys = [weekly(200, 1), weekly(200, 2), weekly(200, 3), sparse(9), sparse(5), sparse(4)];
  assert.deepEqual(
    ys.map((y) => demandClass(y)),
    ['smooth', 'smooth', 'smooth', 'intermittent', 'intermittent', 'intermittent'],
  );
  const scores = ys.map((y) => scoreSeries(y, base));
  const pooledOf = [pooledBest(scores.slice(0, 3), METHODS)!, pooledBest(scores.slice(3), METHODS)!];
  const all = forecastAll(ys, base);
  for (const [i, s] of scores.entries()) {
    const pooled = pooledOf[i < 3 ? 0 : 1];
    const own = [...s.entries()].sort((a, b) => a[1].rmsse - b[1].rmsse)[0];
    const p = s.get(pooled)!;
    const keepsOwn = own[1].rmsse <= 0.8 * p.rmsse && own[1].perOrigin.every((v, k) => v <= p.perOrigin[k]);
    assert.equal(choose(s, pooled, METHODS), keepsOwn ? own[0] : pooled);
    assert.equal(all[i].method, keepsOwn ? own[0] : pooled);
    assert.equal(all[i].rmsse, s.get(all[i].method)!.rmsse);
  }
  // One series alone: its own best.
  const alone = scoreSeries(ys[3], base);
  const best = [...alone.entries()].sort((a, b) => a[1].rmsse - b[1].rmsse)[0][0];
  assert.equal(forecastSeries(ys[3], base).method, best);
  assert.equal(demandClass([1, 1, 1, 0, 1, 1]), 'smooth'); // 6 periods / 5 demands = 1.2
  assert.equal(demandClass([1, 0, 0, 1]), 'intermittent');
  assert.equal(demandClass([0, 0]), 'intermittent');
});
