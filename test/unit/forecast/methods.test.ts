/**
 * The forecasting methods: fixed-parameter forms against reference vectors
 * computed by an independent implementation of the textbook recurrences
 * (test/fixtures/forecast/reference.py, plain Python; tolerance 1e-9), and
 * the fitted forms on series whose right forecast is known exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  METHODS,
  adida,
  croston,
  forecastWith,
  holt,
  holtWinters,
  movingAverage,
  seasonalNaive,
  ses,
  tsb,
} from '../../../src/forecast/methods.js';
import { ROOT } from '../../support/helpers.js';

const ref = JSON.parse(fs.readFileSync(path.join(ROOT, 'test/fixtures/forecast/reference.json'), 'utf8'));
const { y, intermittent, h } = ref as { y: number[]; intermittent: number[]; h: number };
const opts = { season: 7, window: 28 };

function close(actual: ArrayLike<number> | null, expected: number[], tol = 1e-9) {
  assert.ok(actual, 'a forecast');
  assert.equal(actual.length, expected.length);
  for (let k = 0; k < expected.length; k++)
    assert.ok(
      Math.abs(actual[k] - expected[k]) <= tol * Math.max(1, Math.abs(expected[k])),
      `step ${k + 1}: ${actual[k]} vs ${expected[k]}`,
    );
}

test('fixed-parameter forms equal the reference recurrences', () => {
  close(ses(y, 0.3, h), ref['ses_0.3']);
  close(holt(y, 0.4, 0.2, 1, h), ref['holt_0.4_0.2']);
  close(holt(y, 0.4, 0.2, 0.9, h), ref['damped_0.4_0.2_0.9']);
  close(holtWinters(y, 0.3, 0.1, 0.2, 7, h, true, 2), ref['holt_winters_0.3_0.1_0.2_7_k2']);
  close(holtWinters(y, 0.3, 0.1, 0.2, 7, h, true, 3), ref['holt_winters_0.3_0.1_0.2_7_k3']);
  close(holtWinters(y, 0.3, 0.1, 0.2, 7, h), ref['holt_winters_0.3_0.1_0.2_7_k3'], 1e-9); // 3 seasons in y: k = 3
  close(holtWinters(y, 0.3, 0.5, 0.2, 7, h, false), ref['holt_winters_notrend_0.3_0.2_7']); // beta does not apply
  close(holtWinters(y, 0.3, 0.1, 0.2, 7, h, true, undefined, 0.9), ref['holt_winters_damped_0.3_0.1_0.2_7_0.9']);
  close(croston(intermittent, 0.1, h, false), ref['croston_0.1']);
  close(croston(intermittent, 0.1, h, true), ref['croston_sba_0.1']);
  close(tsb(intermittent, 0.2, 0.1, h), ref['tsb_0.2_0.1']);
  close(adida(intermittent, 0.3, h), ref['adida_0.3']);
  close(seasonalNaive(y, 7, h), ref['seasonal_naive_7']);
  close(movingAverage(y, 5, h), ref['moving_average_5']);
});

test('Holt-Winters needs two seasons', () => {
  assert.equal(holtWinters(y.slice(0, 13), 0.3, 0.1, 0.2, 7, h), null);
  assert.equal(forecastWith('holt_winters', y.slice(0, 13), h, opts), null);
  assert.ok(forecastWith('holt_winters', y.slice(0, 14), h, opts));
});

test('fitted methods forecast a constant series as that constant', () => {
  const c = new Float64Array(60).fill(4);
  for (const m of METHODS) if (m !== 'croston_sba') close(forecastWith(m, c, 14, opts), new Array(14).fill(4), 1e-6);
  // The SBA correction is a bias by design: 1 - alpha/2 of Croston.
  close(forecastWith('croston_sba', c, 3, opts), [3.8, 3.8, 3.8]);
});

test('trend methods extrapolate a straight line exactly; the damped one stays below it', () => {
  const line = Float64Array.from({ length: 50 }, (_, t) => 10 + 2 * t);
  const next = Array.from({ length: 7 }, (_, k) => 10 + 2 * (50 + k));
  close(forecastWith('holt', line, 7, opts), next, 1e-9);
  close(forecastWith('holt_winters', line, 7, opts), next, 1e-9);
  const d = forecastWith('damped', line, 7, opts)!;
  for (let k = 0; k < 7; k++) assert.ok(d[k] < next[k] + 1e-9 && d[k] > line[49]);
});

test('a pure weekly pattern is continued by seasonal naive and Holt-Winters', () => {
  const week = [5, 7, 6, 8, 12, 20, 15];
  const s = Float64Array.from({ length: 8 * 7 }, (_, t) => week[t % 7]);
  const next = Array.from({ length: 14 }, (_, k) => week[(56 + k) % 7]);
  close(forecastWith('seasonal_naive', s, 14, opts), next);
  close(forecastWith('holt_winters', s, 14, opts), next, 1e-9);
});

test('no demand forecasts zero; forecasts of demand are never negative', () => {
  const zero = new Float64Array(30);
  for (const m of METHODS) close(forecastWith(m, zero, 5, opts), [0, 0, 0, 0, 0]);
  const falling = Float64Array.from({ length: 30 }, (_, t) => Math.max(0, 30 - 2 * t));
  for (const m of METHODS) for (const v of forecastWith(m, falling, 20, opts)!) assert.ok(v >= 0, m);
});

test('intermittent methods: Croston-SBA is Croston times 1 - alpha/2; one sale gives size/position', () => {
  const c = croston(intermittent, 0.1, 1, false)[0],
    sba = croston(intermittent, 0.1, 1, true)[0];
  assert.ok(Math.abs(sba - c * 0.95) < 1e-12);
  // A single sale of 6 in the 3rd period: size 6, interval 3.
  assert.equal(croston([0, 0, 6, 0], 0.1, 1, false)[0], 2);
  assert.equal(adida([0, 0, 0, 0], 0.3, 2)[0], 0);
});
