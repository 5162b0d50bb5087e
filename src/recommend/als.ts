/**
 * @module Implicit-feedback ALS (Hu, Koren & Volinsky 2008) on typed
 * arrays, solved by conjugate gradient (Takács, Pilászy & Tikk 2011), the
 * way benfred/implicit's CPU solver does.
 *
 * Rules:
 * - Purchases are implicit feedback: preference p_ui = 1 for a bought pair,
 *   0 otherwise, with confidence c_ui = 1 + alpha * r_ui (r: the units, or
 *   log1p of them); unbought pairs weigh 1.
 * - Loss: sum over all pairs of c_ui (p_ui - x_u . y_i)^2 + reg (|X|^2 +
 *   |Y|^2), computed without visiting the unbought pairs (x^T (Y^T Y) x plus
 *   a correction per bought pair).
 * - One iteration solves every user's factors with the items' fixed, then
 *   every item's with the users' fixed: the normal equations
 *   (Y^T C_u Y + reg I) x_u = Y^T C_u p_u, by `cgSteps` steps of conjugate
 *   gradient started from the current factors (the Y^T Y part shared by
 *   all rows, so a row costs O(k^2 + n_u k) per step). The loss never
 *   grows: each half-step does not increase it, as CG from the current
 *   point decreases this quadratic.
 * - Fold-in (a customer's new purchases): the same equations for one row,
 *   solved exactly (Cholesky of a k x k matrix).
 * - Factors start from a seeded uniform [0, 0.01) (core/random.ts): a run is repeatable.
 */

import { rng } from '../core/random.js';

/** A sparse matrix by rows (CSR): row r's columns are indices[indptr[r] .. indptr[r+1]). */
export interface Csr {
  rows: number;
  cols: number;
  indptr: Int32Array;
  indices: Int32Array;
  /** Confidence minus 1 (alpha * r), per entry. */
  data: Float64Array;
}

export interface AlsOptions {
  factors: number;
  regularization: number;
  alpha: number;
  iterations: number;
  cgSteps: number;
  seed: number;
}

export const ALS_DEFAULTS: AlsOptions = { factors: 32, regularization: 0.05, alpha: 10, iterations: 15, cgSteps: 3, seed: 1 };

/** CSR from (row, col, value) triplets; duplicates are summed. */
export function csr(rows: number, cols: number, r: ArrayLike<number>, c: ArrayLike<number>, v: ArrayLike<number>): Csr {
  const n = r.length;
  const count = new Int32Array(rows + 1);
  for (let i = 0; i < n; i++) count[r[i] + 1]++;
  for (let i = 0; i < rows; i++) count[i + 1] += count[i];
  const pos = count.slice(0, rows);
  const idx = new Int32Array(n),
    val = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = pos[r[i]]++;
    idx[p] = c[i];
    val[p] = v[i];
  }
  // Sort each row by column and sum duplicates.
  const indptr = new Int32Array(rows + 1);
  const outIdx: number[] = [],
    outVal: number[] = [];
  for (let row = 0; row < rows; row++) {
    const from = count[row],
      to = count[row + 1];
    const order = Array.from({ length: to - from }, (_, k) => from + k).sort((a, b) => idx[a] - idx[b]);
    for (const k of order) {
      if (outIdx.length > indptr[row] && outIdx[outIdx.length - 1] === idx[k]) outVal[outVal.length - 1] += val[k];
      else {
        outIdx.push(idx[k]);
        outVal.push(val[k]);
      }
    }
    indptr[row + 1] = outIdx.length;
  }
  return { rows, cols, indptr, indices: Int32Array.from(outIdx), data: Float64Array.from(outVal) };
}

/** The transpose (items by users). */
export function transpose(m: Csr): Csr {
  const r: number[] = [],
    c: number[] = [],
    v: number[] = [];
  for (let row = 0; row < m.rows; row++)
    for (let p = m.indptr[row]; p < m.indptr[row + 1]; p++) {
      r.push(m.indices[p]);
      c.push(row);
      v.push(m.data[p]);
    }
  return csr(m.cols, m.rows, r, c, v);
}

/** Y^T Y of an n x k row-major matrix. */
export function gram(y: Float64Array, n: number, k: number): Float64Array {
  const g = new Float64Array(k * k);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    for (let a = 0; a < k; a++) {
      const ya = y[o + a];
      if (ya === 0) continue;
      for (let b = a; b < k; b++) g[a * k + b] += ya * y[o + b];
    }
  }
  for (let a = 0; a < k; a++) for (let b = 0; b < a; b++) g[a * k + b] = g[b * k + a];
  return g;
}

const dot = (a: Float64Array, ao: number, b: Float64Array, bo: number, k: number) => {
  let s = 0;
  for (let j = 0; j < k; j++) s += a[ao + j] * b[bo + j];
  return s;
};

/**
 * Rows of x (rows x k) solved against the fixed other side y: for each row
 * r, (YtY + reg I + sum c' y_i y_i^T) x_r = sum (1 + c') y_i, c' = data.
 * CG from the current x_r, `steps` steps.
 */
export function solveRows(m: Csr, x: Float64Array, y: Float64Array, k: number, reg: number, steps: number): void {
  const yty = gram(y, m.cols, k);
  for (let a = 0; a < k; a++) yty[a * k + a] += reg;
  const r = new Float64Array(k),
    p = new Float64Array(k),
    ap = new Float64Array(k);
  for (let row = 0; row < m.rows; row++) {
    const xo = row * k;
    const from = m.indptr[row],
      to = m.indptr[row + 1];
    if (from === to) {
      x.fill(0, xo, xo + k);
      continue;
    }
    // r = b - A x
    for (let a = 0; a < k; a++) {
      let s = 0;
      for (let b = 0; b < k; b++) s -= yty[a * k + b] * x[xo + b];
      r[a] = s;
    }
    for (let q = from; q < to; q++) {
      const io = m.indices[q] * k,
        c1 = m.data[q];
      const w = 1 + c1 - c1 * dot(y, io, x, xo, k);
      for (let a = 0; a < k; a++) r[a] += w * y[io + a];
    }
    p.set(r);
    let rs = dot(r, 0, r, 0, k);
    for (let it = 0; it < steps && rs > 1e-20; it++) {
      for (let a = 0; a < k; a++) {
        let s = 0;
        for (let b = 0; b < k; b++) s += yty[a * k + b] * p[b];
        ap[a] = s;
      }
      for (let q = from; q < to; q++) {
        const io = m.indices[q] * k;
        const w = m.data[q] * dot(y, io, p, 0, k);
        for (let a = 0; a < k; a++) ap[a] += w * y[io + a];
      }
      const pap = dot(p, 0, ap, 0, k);
      if (!(pap > 0)) break;
      const step = rs / pap;
      for (let a = 0; a < k; a++) {
        x[xo + a] += step * p[a];
        r[a] -= step * ap[a];
      }
      const rs2 = dot(r, 0, r, 0, k);
      const beta = rs2 / rs;
      for (let a = 0; a < k; a++) p[a] = r[a] + beta * p[a];
      rs = rs2;
    }
  }
}

/** The implicit-ALS loss of factors x (users) and y (items) on m (users by items). */
export function loss(m: Csr, x: Float64Array, y: Float64Array, k: number, reg: number): number {
  const yty = gram(y, m.cols, k);
  let total = 0,
    norms = 0;
  for (let u = 0; u < m.rows; u++) {
    const xo = u * k;
    // Every pair as unbought: x^T YtY x.
    for (let a = 0; a < k; a++) {
      let s = 0;
      for (let b = 0; b < k; b++) s += yty[a * k + b] * x[xo + b];
      total += x[xo + a] * s;
    }
    for (let q = m.indptr[u]; q < m.indptr[u + 1]; q++) {
      const s = dot(x, xo, y, m.indices[q] * k, k);
      total += (1 + m.data[q]) * (1 - s) ** 2 - s * s;
    }
    norms += dot(x, xo, x, xo, k);
  }
  norms += dot(y, 0, y, 0, y.length);
  return total + reg * norms;
}

export interface AlsModel {
  k: number;
  users: Float64Array;
  items: Float64Array;
  /** Loss after each iteration. */
  losses: number[];
}

/** Trains on m (users by items, data = alpha * r). */
export function trainAls(m: Csr, o: AlsOptions, onIteration?: (it: number, loss: number) => void): AlsModel {
  const k = o.factors;
  const rand = rng(o.seed);
  const users = Float64Array.from({ length: m.rows * k }, () => rand() * 0.01);
  const items = Float64Array.from({ length: m.cols * k }, () => rand() * 0.01);
  const mt = transpose(m);
  const losses: number[] = [];
  for (let it = 0; it < o.iterations; it++) {
    solveRows(m, users, items, k, o.regularization, o.cgSteps);
    solveRows(mt, items, users, k, o.regularization, o.cgSteps);
    const l = loss(m, users, items, k, o.regularization);
    losses.push(l);
    onIteration?.(it, l);
  }
  return { k, users, items, losses };
}

/** Solves A x = b for a symmetric positive definite k x k A (Cholesky); null when A is not. */
export function choleskySolve(A: Float64Array, b: Float64Array, k: number): Float64Array | null {
  const L = new Float64Array(k * k);
  for (let i = 0; i < k; i++)
    for (let j = 0; j <= i; j++) {
      let s = A[i * k + j];
      for (let q = 0; q < j; q++) s -= L[i * k + q] * L[j * k + q];
      if (i === j) {
        if (!(s > 0)) return null;
        L[i * k + i] = Math.sqrt(s);
      } else L[i * k + j] = s / L[j * k + j];
    }
  const z = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    let s = b[i];
    for (let q = 0; q < i; q++) s -= L[i * k + q] * z[q];
    z[i] = s / L[i * k + i];
  }
  const x = new Float64Array(k);
  for (let i = k - 1; i >= 0; i--) {
    let s = z[i];
    for (let q = i + 1; q < k; q++) s -= L[q * k + i] * x[q];
    x[i] = s / L[i * k + i];
  }
  return x;
}

/**
 * The exact factors of one row given the other side: items bought
 * (`cols`, with data = alpha * r) against y (n x k), with YtY + reg I
 * given (`ytyReg`, shared by all fold-ins).
 */
export function foldIn(cols: ArrayLike<number>, data: ArrayLike<number>, y: Float64Array, ytyReg: Float64Array, k: number): Float64Array {
  const A = ytyReg.slice(),
    b = new Float64Array(k);
  for (let q = 0; q < cols.length; q++) {
    const io = cols[q] * k,
      c1 = data[q];
    for (let a = 0; a < k; a++) {
      b[a] += (1 + c1) * y[io + a];
      const w = c1 * y[io + a];
      for (let bb = 0; bb < k; bb++) A[a * k + bb] += w * y[io + bb];
    }
  }
  return choleskySolve(A, b, k) ?? new Float64Array(k);
}
