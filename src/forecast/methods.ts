/**
 * @module Classical forecasting methods on one series of equally spaced
 * periods (per day or week), on typed arrays.
 *
 * Rules:
 * - Each method has a fixed-parameter form (`ses(y, alpha, h)`, ...): the
 *   textbook recurrence, tested against reference vectors; and a fitted
 *   form (`forecastWith`) that picks the parameters from a small grid by
 *   the in-sample one-step squared error, as statsforecast's and R
 *   forecast's optimisers do over a continuous range. A grid keeps a fit
 *   O(grid x n), so 10,000 series fit in seconds.
 * - A method that does not apply to a series (Holt-Winters with fewer than
 *   two seasons) returns null; the caller picks among those that do.
 * - Forecasts of a series without negative values are clipped at 0:
 *   demand is not negative.
 * - Intermittent demand: Croston-SBA as statsforecast defines it (sizes
 *   and intervals smoothed with alpha 0.1 from the first demand, whose
 *   interval counts the periods up to it; times 1 - alpha/2); TSB (Teunter,
 *   Syntetos & Babai 2011) smooths the demand probability every period and
 *   the size at each demand, from the share of periods with demand and the
 *   mean size; ADIDA (Nikolopoulos et al. 2011) sums the series into
 *   buckets of its periods per demand (rounded), from the end, forecasts
 *   them with SES and spreads the result evenly.
 */

export const METHODS = [
  'seasonal_naive',
  'moving_average',
  'ses',
  'holt',
  'damped',
  'holt_winters',
  'croston_sba',
  'tsb',
  'adida',
] as const;

export type MethodName = (typeof METHODS)[number];

export const METHOD_DOCS: Record<MethodName, string> = {
  seasonal_naive: 'the value one season (7 days, 52 weeks) before',
  moving_average: 'the mean of the last `window` periods',
  ses: 'simple exponential smoothing (level)',
  holt: "Holt's linear trend",
  damped: "Holt's damped trend",
  holt_winters: 'additive Holt-Winters with the weekly (yearly for weeks) season, with a trend or without',
  croston_sba: 'Croston with the Syntetos-Boylan correction (intermittent demand)',
  tsb: 'Teunter-Syntetos-Babai (intermittent demand, obsolescence)',
  adida: 'aggregate-disaggregate intermittent demand approach',
};

export interface MethodOptions {
  /** Periods per season (7 for days, 52 for weeks). */
  season: number;
  /** Moving average window, in periods. */
  window: number;
}

type Series = ArrayLike<number>;

/** One-step squared error of a fitted recurrence, and its forecasts. */
interface Fit {
  sse: number;
  f: Float64Array;
}

// ---- fixed-parameter forms ----------------------------------------------

/** y one season before, repeated; the last value when the series is shorter than a season. */
export function seasonalNaive(y: Series, m: number, h: number): Float64Array {
  const n = y.length,
    f = new Float64Array(h);
  if (n === 0) return f;
  for (let k = 0; k < h; k++) f[k] = n >= m ? y[n - m + (k % m)] : y[n - 1];
  return f;
}

export function movingAverage(y: Series, w: number, h: number): Float64Array {
  const n = y.length,
    from = Math.max(0, n - w);
  let s = 0;
  for (let t = from; t < n; t++) s += y[t];
  return new Float64Array(h).fill(n ? s / (n - from) : 0);
}

/** Simple exponential smoothing: level l = y0, then l += alpha (y - l). */
export function ses(y: Series, alpha: number, h: number): Float64Array {
  return sesFit(y, alpha, h).f;
}

function sesFit(y: Series, alpha: number, h: number): Fit {
  const n = y.length;
  if (n === 0) return { sse: 0, f: new Float64Array(h) };
  let l = y[0],
    sse = 0;
  for (let t = 1; t < n; t++) {
    const e = y[t] - l;
    sse += e * e;
    l += alpha * e;
  }
  return { sse, f: new Float64Array(h).fill(l) };
}

/** Level plus (damped) trend, q steps ahead: l + (phi + ... + phi^q) b. */
function project(l: number, b: number, phi: number, h: number): Float64Array {
  const f = new Float64Array(h);
  let damp = 0,
    p = 1;
  for (let q = 0; q < h; q++) {
    p *= phi;
    damp += p;
    f[q] = l + damp * b;
  }
  return f;
}

/**
 * Holt's (damped when phi < 1) trend: l0 = y0, b0 = y1 - y0;
 * l = alpha y + (1 - alpha)(l + phi b), b = beta (l - l') + (1 - beta) phi b;
 * forecast l + (phi + ... + phi^k) b.
 */
export function holt(y: Series, alpha: number, beta: number, phi: number, h: number): Float64Array {
  return holtFit(y, alpha, beta, phi, h).f;
}

function holtFit(y: Series, alpha: number, beta: number, phi: number, h: number): Fit {
  const n = y.length;
  if (n < 2) return sesFit(y, alpha, h);
  let l = y[0],
    b = y[1] - y[0],
    sse = 0;
  for (let t = 1; t < n; t++) {
    const pred = l + phi * b;
    const e = y[t] - pred;
    sse += e * e;
    const l2 = alpha * y[t] + (1 - alpha) * pred;
    b = beta * (l2 - l) + (1 - beta) * phi * b;
    l = l2;
  }
  return { sse, f: project(l, b, phi, h) };
}

/**
 * Additive Holt-Winters, season m, with a linear trend or none (ETS(A,A,A)
 * or ETS(A,N,A); damped with phi < 1, ETS(A,Ad,A)), started from the first k seasons (k = min(seasons in y,
 * 4) unless given): b0 = (mean of season k - mean of season 1) / ((k-1) m)
 * (0 without trend), the level at the end of the first season on that trend
 * through the first season's mean, s_i = the mean over the k seasons of y
 * less the trend line; then, from the second season on,
 * l = alpha (y - s) + (1 - alpha)(l + phi b), b = beta (l - l') + (1 - beta) phi b,
 * s = gamma (y - l) + (1 - gamma) s; forecast l + (phi + ... + phi^q) b + s.
 * Needs two seasons (null otherwise).
 */
export function holtWinters(
  y: Series,
  alpha: number,
  beta: number,
  gamma: number,
  m: number,
  h: number,
  trend = true,
  k?: number,
  phi = 1,
): Float64Array | null {
  return hwFit(y, alpha, beta, gamma, m, h, trend, k, phi)?.f ?? null;
}

function hwFit(
  y: Series,
  alpha: number,
  beta: number,
  gamma: number,
  m: number,
  h: number,
  trend: boolean,
  k?: number,
  phi = 1,
): Fit | null {
  const n = y.length;
  if (m < 2 || n < 2 * m) return null;
  const seasons = Math.max(2, Math.min(k ?? 4, Math.floor(n / m)));
  const means = new Float64Array(seasons);
  for (let j = 0; j < seasons; j++) {
    let sum = 0;
    for (let i = 0; i < m; i++) sum += y[j * m + i];
    means[j] = sum / m;
  }
  const b0 = trend ? (means[seasons - 1] - means[0]) / ((seasons - 1) * m) : 0,
    mid = (m - 1) / 2;
  let l = means[0] + mid * b0,
    b = b0,
    sse = 0;
  const s = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    let sum = 0;
    for (let j = 0; j < seasons; j++) sum += y[j * m + i] - (means[0] + (j * m + i - mid) * b0);
    s[i] = sum / seasons;
  }
  if (!trend) beta = 0;
  for (let t = m; t < n; t++) {
    const st = s[t - m];
    const e = y[t] - (l + phi * b + st);
    sse += e * e;
    const l2 = alpha * (y[t] - st) + (1 - alpha) * (l + phi * b);
    b = beta * (l2 - l) + (1 - beta) * phi * b;
    l = l2;
    s[t] = gamma * (y[t] - l) + (1 - gamma) * st;
  }
  const f = project(l, b, phi, h);
  for (let q = 0; q < h; q++) f[q] += s[n - m + (q % m)];
  return { sse, f };
}

/**
 * Croston: sizes z and intervals p smoothed at each demand (z0, p0: the
 * first demand and its position + 1); forecast z / p, times 1 - alpha/2
 * with the SBA correction. No demand at all: 0.
 */
export function croston(y: Series, alpha: number, h: number, sba: boolean): Float64Array {
  const n = y.length;
  let z = 0,
    p = 0,
    q = 0,
    seen = false;
  for (let t = 0; t < n; t++) {
    q++;
    if (y[t] === 0) continue;
    if (!seen) {
      z = y[t];
      p = q;
      seen = true;
    } else {
      z += alpha * (y[t] - z);
      p += alpha * (q - p);
    }
    q = 0;
  }
  const v = seen ? (z / p) * (sba ? 1 - alpha / 2 : 1) : 0;
  return new Float64Array(h).fill(v);
}

/**
 * TSB: the demand probability d is smoothed every period (towards 1 at a
 * demand, 0 otherwise), the size z at each demand; forecast d z. d0 = the
 * share of periods with demand, z0 = the mean demand size.
 */
export function tsb(y: Series, alphaD: number, alphaP: number, h: number): Float64Array {
  return tsbFit(y, alphaD, alphaP, h).f;
}

function tsbFit(y: Series, alphaD: number, alphaP: number, h: number): Fit {
  const n = y.length;
  let nz = 0,
    sum = 0;
  for (let t = 0; t < n; t++)
    if (y[t] !== 0) {
      nz++;
      sum += y[t];
    }
  if (nz === 0) return { sse: 0, f: new Float64Array(h) };
  let d = nz / n,
    z = sum / nz,
    sse = 0;
  for (let t = 0; t < n; t++) {
    const e = y[t] - d * z;
    sse += e * e;
    if (y[t] !== 0) {
      d += alphaP * (1 - d);
      z += alphaD * (y[t] - z);
    } else d -= alphaP * d;
  }
  return { sse, f: new Float64Array(h).fill(d * z) };
}

/** ADIDA: buckets of the mean inter-demand interval (rounded), summed from the end; SES on them; spread back. */
export function adida(y: Series, alpha: number | null, h: number): Float64Array {
  const n = y.length;
  let nz = 0;
  for (let t = 0; t < n; t++) if (y[t] !== 0) nz++;
  if (nz === 0) return new Float64Array(h);
  const k = Math.max(1, Math.round(n / nz));
  const buckets = Math.floor(n / k);
  const agg = new Float64Array(buckets);
  for (let b = 0; b < buckets; b++) {
    let s = 0;
    for (let t = n - (buckets - b) * k, e = t + k; t < e; t++) s += y[t];
    agg[b] = s;
  }
  const f = alpha === null ? bestSes(agg, 1) : sesFit(agg, alpha, 1);
  return new Float64Array(h).fill(f.f[0] / k);
}

// ---- fitted forms ------------------------------------------------------

const ALPHAS = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9];
const TREND_ALPHAS = [0.05, 0.1, 0.2, 0.3, 0.5, 0.8];
const BETAS = [0.01, 0.05, 0.1, 0.2];
const PHIS = [0.8, 0.9, 0.95, 0.98];
const HW_ALPHAS = [0.05, 0.1, 0.2, 0.4, 0.7];
const HW_BETAS = [0.01, 0.05];
const HW_GAMMAS = [0.01, 0.05, 0.1, 0.3];
const TSB_D = [0.05, 0.1, 0.3];
const TSB_P = [0.02, 0.05, 0.1, 0.3];

function best(fits: Iterable<Fit | null>): Fit | null {
  let b: Fit | null = null;
  for (const f of fits) if (f && (!b || f.sse < b.sse)) b = f;
  return b;
}

function bestSes(y: Series, h: number): Fit {
  return best(ALPHAS.map((a) => sesFit(y, a, h)))!;
}

function* grid<T>(a: number[], b: number[], c: number[], fn: (x: number, y: number, z: number) => T): Generator<T> {
  for (const x of a) for (const y of b) for (const z of c) yield fn(x, y, z);
}

/** The method's forecast for the next h periods, its parameters fitted on y; null when it does not apply. */
export function forecastWith(method: MethodName, y: Series, h: number, o: MethodOptions): Float64Array | null {
  let f: Float64Array | null;
  switch (method) {
    case 'seasonal_naive':
      f = seasonalNaive(y, o.season, h);
      break;
    case 'moving_average':
      f = movingAverage(y, o.window, h);
      break;
    case 'ses':
      f = bestSes(y, h).f;
      break;
    case 'holt':
      f = best(grid(TREND_ALPHAS, BETAS, [1], (a, b) => holtFit(y, a, b, 1, h)))!.f;
      break;
    case 'damped':
      f = best(grid(TREND_ALPHAS, BETAS, PHIS, (a, b, p) => holtFit(y, a, b, p, h)))!.f;
      break;
    case 'holt_winters':
      f =
        best([
          ...grid(HW_ALPHAS, HW_GAMMAS, [0], (a, g) => hwFit(y, a, 0, g, o.season, h, false)),
          ...grid(HW_ALPHAS, HW_BETAS, HW_GAMMAS, (a, b, g) => hwFit(y, a, b, g, o.season, h, true)),
          ...grid(HW_ALPHAS, HW_BETAS, HW_GAMMAS, (a, b, g) => hwFit(y, a, b, g, o.season, h, true, undefined, 0.9)),
        ])?.f ?? null;
      break;
    case 'croston_sba':
      f = croston(y, 0.1, h, true);
      break;
    case 'tsb':
      f = best(grid(TSB_D, TSB_P, [0], (d, p) => tsbFit(y, d, p, h)))!.f;
      break;
    case 'adida':
      f = adida(y, null, h);
      break;
  }
  if (f && !hasNegative(y)) for (let k = 0; k < f.length; k++) if (f[k] < 0) f[k] = 0;
  return f;
}

function hasNegative(y: Series): boolean {
  for (let t = 0; t < y.length; t++) if (y[t] < 0) return true;
  return false;
}
