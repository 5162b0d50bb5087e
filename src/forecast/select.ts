/**
 * @module Choosing a method per series by rolling-origin backtest, and
 * prediction intervals from the backtest's errors.
 *
 * Rules:
 * - Origins: the last `origins` windows of `horizon` periods, back to back
 *   (origin o trains on y[0, o) and is scored on y[o, o + horizon)). An
 *   origin needs at least `minTrain` periods before it; a series too short
 *   for any origin gets the fallback method and no score.
 * - Score: RMSSE (root mean squared error scaled by the in-sample one-step
 *   naive MSE of that origin's training part, as in M5), averaged over the
 *   origins. A training part without any change has scale 0; the score is
 *   then the plain RMSE (M5 dropped such series; we must forecast them).
 * - `auto` takes, per series, the method with the lowest mean RMSSE (the
 *   earlier one in METHODS on a tie: the simpler one) when it beats by
 *   SELECTION_MARGIN, and at every origin, the pooled choice: the method
 *   best over the series of its demand class forecast together
 *   (pooledBest, demandClass); else the pooled choice.
 * - Intervals: the chosen method's backtest errors (actual - forecast, all
 *   origins and steps pooled) give the quantiles added to the final
 *   forecast (a quantile of the wrong sign counts as 0, so the interval
 *   holds the forecast), clipped at 0 for a series without negative
 *   values. Without an origin there is no interval (null).
 * - No leakage by construction: every forecast and score for an origin is
 *   computed from y[0, o) alone (the arrays passed are views ending there).
 */
import { METHODS, MethodName, MethodOptions, forecastWith } from './methods.js';

export interface ForecastOptions extends MethodOptions {
  horizon: number;
  origins: number;
  /** Candidates: one for a fixed method, several for auto. */
  methods: readonly MethodName[];
  /** Central interval, in percent (80: p10 and p90). */
  level: number;
  /** Periods an origin needs before it. */
  minTrain: number;
}

export interface SeriesForecast {
  method: MethodName;
  forecast: Float64Array;
  lo: Float64Array | null;
  hi: Float64Array | null;
  /** Mean RMSSE of the chosen method over the origins; null without an origin. */
  rmsse: number | null;
}

/** Mean squared one-step naive change of the training part (the RMSSE/MASE scales use its square root / abs). */
function naiveScale(train: ArrayLike<number>, squared: boolean): number {
  let s = 0;
  for (let t = 1; t < train.length; t++) {
    const d = train[t] - train[t - 1];
    s += squared ? d * d : Math.abs(d);
  }
  return train.length > 1 ? s / (train.length - 1) : 0;
}

export function rmsse(train: ArrayLike<number>, actual: ArrayLike<number>, pred: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < actual.length; k++) s += (actual[k] - pred[k]) ** 2;
  const scale = naiveScale(train, true);
  return Math.sqrt(s / actual.length / (scale > 0 ? scale : 1));
}

export function mase(train: ArrayLike<number>, actual: ArrayLike<number>, pred: ArrayLike<number>): number {
  let s = 0;
  for (let k = 0; k < actual.length; k++) s += Math.abs(actual[k] - pred[k]);
  const scale = naiveScale(train, false);
  return s / actual.length / (scale > 0 ? scale : 1);
}

/** Origins (ascending) of the last `count` back-to-back windows of h periods that leave minTrain periods before them. */
export function originsOf(n: number, h: number, count: number, minTrain: number): number[] {
  const out: number[] = [];
  for (let k = count; k >= 1; k--) {
    const o = n - k * h;
    if (o >= minTrain) out.push(o);
  }
  return out;
}

/** Linear-interpolated quantile of sorted values. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const pos = (n - 1) * q,
    i = Math.floor(pos),
    f = pos - i;
  return i + 1 < n ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[n - 1];
}

/**
 * A series' backtest: per applicable method, its RMSSE at each origin and
 * their mean, and its errors (origin by origin, `horizon` each).
 */
export type Scores = Map<MethodName, { rmsse: number; perOrigin: number[]; errors: number[] }>;

/** Backtests every candidate on y's rolling origins (empty without an origin). */
export function scoreSeries(y: Float64Array, o: ForecastOptions): Scores {
  const h = o.horizon;
  const scores: Scores = new Map();
  const origins = originsOf(y.length, h, o.origins, o.minTrain);
  if (!origins.length) return scores;
  const scales = origins.map((origin) => {
    const sc = naiveScale(y.subarray(0, origin), true);
    return sc > 0 ? sc : 1;
  });
  for (const m of o.methods) {
    const errors: number[] = [];
    let ok = true;
    for (const origin of origins) {
      const train = y.subarray(0, origin);
      const f = forecastWith(m, train, h, o);
      if (!f) {
        ok = false;
        break;
      }
      for (let k = 0; k < h; k++) errors.push(y[origin + k] - f[k]);
    }
    if (ok) {
      const perOrigin = scales.map((sc, b) => {
        let sq = 0;
        for (let k = 0; k < h; k++) sq += errors[b * h + k] ** 2;
        return Math.sqrt(sq / h / sc);
      });
      scores.set(m, { rmsse: perOrigin.reduce((x, v) => x + v, 0) / perOrigin.length, perOrigin, errors });
    }
  }
  return scores;
}

/**
 * The pooled choice: the method whose worst origin is best, an origin's
 * score being the geometric mean over the series of the method's RMSSE
 * relative to seasonal naive's (the M-competitions' relative measure: a
 * few erratic series do not decide; the worst origin: a method that shone
 * in one stretch only does not either). Each series' scores come from its
 * own past only, so pooling them leaks nothing.
 */
export function pooledBest(all: Scores[], methods: readonly MethodName[]): MethodName | null {
  let best: MethodName | null = null,
    bestWorst = Infinity;
  const origins = Math.max(0, ...all.map((s) => s.get('seasonal_naive')?.perOrigin.length ?? 0));
  for (const m of methods) {
    let worst = -Infinity;
    for (let b = 0; b < origins; b++) {
      let sum = 0,
        n = 0;
      for (const s of all) {
        const v = s.get(m)?.perOrigin,
          base = s.get('seasonal_naive')?.perOrigin;
        if (!v || !base || v.length !== origins || base.length !== origins || !(base[b] > 0) || !(v[b] > 0)) continue;
        sum += Math.log(v[b] / base[b]);
        n++;
      }
      worst = Math.max(worst, n ? sum / n : Infinity);
    }
    if (worst < bestWorst) {
      bestWorst = worst;
      best = m;
    }
  }
  return best;
}

/**
 * Share by which a series' own best must beat the pooled choice to be
 * taken instead of it. Per-series selection among nine methods on a few
 * origins mostly picks noise (M4, M5); shrinking towards the method best
 * over all series keeps the series whose structure really differs.
 */
export const SELECTION_MARGIN = 0.2;

/** auto for one series: its own best candidate when clearly better than the pooled one. */
export function choose(scores: Scores, pooled: MethodName | null, methods: readonly MethodName[]): MethodName | null {
  let best: MethodName | null = null,
    bestScore = Infinity;
  for (const m of methods) {
    const v = scores.get(m);
    if (v && v.rmsse < bestScore) {
      bestScore = v.rmsse;
      best = m;
    }
  }
  const p = pooled === null ? undefined : scores.get(pooled);
  if (best === null || !p) return best;
  const own = scores.get(best)!;
  return bestScore <= p.rmsse * (1 - SELECTION_MARGIN) && own.perOrigin.every((v, i) => v <= p.perOrigin[i]) ? best : pooled;
}

/**
 * Forecasts the next `horizon` periods of y with `method` (null: none could
 * be backtested), the interval from its backtest errors.
 */
export function finish(y: Float64Array, o: ForecastOptions, scores: Scores, method: MethodName | null): SeriesForecast {
  const h = o.horizon,
    n = y.length;
  const scored = method === null ? undefined : scores.get(method);
  let m = method ?? fallback(o, n);
  let forecast = forecastWith(m, y, h, o);
  if (!forecast) {
    m = fallback(o, n);
    forecast = forecastWith(m, y, h, o)!;
  }
  if (!scored) return { method: m, forecast, lo: null, hi: null, rmsse: null };
  const errors = [...scored.errors].sort((a, b) => a - b);
  const tail = (1 - o.level / 100) / 2;
  const qlo = quantile(errors, tail),
    qhi = quantile(errors, 1 - tail);
  const clip = !y.some((v) => v < 0);
  const lo = new Float64Array(h),
    hi = new Float64Array(h);
  for (let k = 0; k < h; k++) {
    // A method biased at the backtest has errors all of one sign: the interval still holds its forecast.
    lo[k] = forecast[k] + Math.min(qlo, 0);
    hi[k] = forecast[k] + Math.max(qhi, 0);
    if (clip) {
      if (lo[k] < 0) lo[k] = 0;
      if (hi[k] < 0) hi[k] = 0;
    }
  }
  return { method: m, forecast, lo, hi, rmsse: scored.rmsse };
}

/**
 * Demand class (Syntetos, Boylan & Croston 2005): intermittent when the
 * mean interval between demands exceeds 1.32 periods, else smooth. Series
 * of one class are pooled together: what suits a product selling every
 * day rarely suits one selling every other week.
 */
export function demandClass(y: ArrayLike<number>): 'smooth' | 'intermittent' {
  let nz = 0;
  for (let t = 0; t < y.length; t++) if (y[t] !== 0) nz++;
  return nz === 0 || y.length / nz > 1.32 ? 'intermittent' : 'smooth';
}

/** auto's choice for each series: its own best, or the pooled best of its demand class. */
export function chooseAll(ys: ArrayLike<number>[], scores: Scores[], methods: readonly MethodName[]): (MethodName | null)[] {
  const classes = ys.map((y) => demandClass(y));
  const pooled = new Map<string, MethodName | null>();
  for (const c of new Set(classes))
    pooled.set(
      c,
      pooledBest(
        scores.filter((_, i) => classes[i] === c),
        methods,
      ),
    );
  return scores.map((s, i) => choose(s, methods.length > 1 ? pooled.get(classes[i])! : null, methods));
}

/** Forecasts many series at once (auto shrinks each series' choice towards the pooled best of its demand class). */
export function forecastAll(ys: Float64Array[], o: ForecastOptions): SeriesForecast[] {
  const scores = ys.map((y) => scoreSeries(y, o));
  const chosen = chooseAll(ys, scores, o.methods);
  return ys.map((y, i) => finish(y, o, scores[i], chosen[i]));
}

/** Forecasts one series on its own (auto: its own best candidate). */
export function forecastSeries(y: Float64Array, o: ForecastOptions): SeriesForecast {
  return forecastAll([y], o)[0];
}

/** The method of a series too short to backtest: the only candidate, or seasonal naive from one season on, else the moving average. */
function fallback(o: ForecastOptions, n: number): MethodName {
  if (o.methods.length === 1 && o.methods[0] !== 'holt_winters') return o.methods[0];
  return n >= o.season && o.methods.includes('seasonal_naive') ? 'seasonal_naive' : 'moving_average';
}

/** What one evaluation origin gives for one candidate (a method, or auto over all). */
export interface Evaluation {
  rmsse: number;
  mase: number;
  /** Actuals inside the interval, and actuals with an interval. */
  inside: number;
  withInterval: number;
  method: MethodName;
  actual: Float64Array;
  forecast: Float64Array;
  lo: Float64Array | null;
  hi: Float64Array | null;
}

export type Candidate = MethodName | 'auto';
export const CANDIDATES: Candidate[] = [...METHODS, 'auto'];

/**
 * Backtests candidates on the last `evalOrigins` windows of every series
 * (series of equal end: the same periods): at each origin, the whole
 * forecast (auto's own selection and intervals included) is made from the
 * data before it, as a nightly job would have made it then. Per series,
 * per candidate, one Evaluation per origin the series is long enough for.
 */
export function evaluate(
  ys: Float64Array[],
  o: ForecastOptions,
  evalOrigins: number,
  candidates: readonly Candidate[],
): Map<Candidate, Evaluation[]>[] {
  const out = ys.map(() => new Map<Candidate, Evaluation[]>(candidates.map((c) => [c, []])));
  const h = o.horizon;
  for (let k = evalOrigins; k >= 1; k--) {
    const idx: number[] = [];
    const trains: Float64Array[] = [];
    ys.forEach((y, i) => {
      const origin = y.length - k * h;
      if (origin >= o.minTrain) {
        idx.push(i);
        trains.push(y.subarray(0, origin));
      }
    });
    if (!idx.length) continue;
    const scores = trains.map((t) => scoreSeries(t, o));
    for (const c of candidates) {
      const chosen = c === 'auto' ? chooseAll(trains, scores, o.methods) : [];
      idx.forEach((i, j) => {
        const train = trains[j],
          actual = ys[i].subarray(train.length, train.length + h);
        const fc =
          c === 'auto'
            ? finish(train, o, scores[j], chosen[j])
            : finish(train, { ...o, methods: [c] }, scores[j], scores[j].has(c) ? c : null);
        let inside = 0;
        if (fc.lo && fc.hi) for (let q = 0; q < h; q++) if (actual[q] >= fc.lo[q] && actual[q] <= fc.hi[q]) inside++;
        out[i].get(c)!.push({
          rmsse: rmsse(train, actual, fc.forecast),
          mase: mase(train, actual, fc.forecast),
          inside,
          withInterval: fc.lo ? h : 0,
          method: fc.method,
          actual,
          forecast: fc.forecast,
          lo: fc.lo,
          hi: fc.hi,
        });
      });
    }
  }
  return out;
}
