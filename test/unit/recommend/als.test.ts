/**
 * The implicit-ALS solver: the loss formula against the sum over every
 * pair, CG against the exact least-squares solution of the same normal
 * equations (Cholesky), fold-in equal to a converged row, a loss that never
 * grows, and factors that rank a user's unseen items by co-purchase.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALS_DEFAULTS, choleskySolve, csr, foldIn, gram, loss, solveRows, trainAls, transpose } from '../../../src/recommend/als.js';
import { rng } from '../../../src/gen/generate.js';

function random(users: number, items: number, density: number, seed: number) {
  const r = rng(seed);
  const ru: number[] = [],
    ri: number[] = [],
    rv: number[] = [];
  for (let u = 0; u < users; u++)
    for (let i = 0; i < items; i++)
      if (r() < density) {
        ru.push(u);
        ri.push(i);
        rv.push(10 * Math.log1p(1 + Math.floor(r() * 3)));
      }
  return csr(users, items, ru, ri, rv);
}

const rand = (n: number, seed: number) => {
  const r = rng(seed);
  return Float64Array.from({ length: n }, () => r() - 0.5);
};

test('csr sums duplicates and sorts columns; transpose inverts', () => {
  const m = csr(2, 3, [1, 0, 1, 1], [2, 1, 0, 2], [1, 2, 3, 4]);
  assert.deepEqual([...m.indptr], [0, 1, 3]);
  assert.deepEqual([...m.indices], [1, 0, 2]);
  assert.deepEqual([...m.data], [2, 3, 5]);
  const t = transpose(transpose(m));
  assert.deepEqual([...t.indptr], [...m.indptr]);
  assert.deepEqual([...t.data], [...m.data]);
});

test('the loss equals the sum over every user-item pair', () => {
  const m = random(7, 9, 0.3, 1);
  const k = 4,
    reg = 0.1;
  const x = rand(7 * k, 2),
    y = rand(9 * k, 3);
  let brute = 0;
  for (let u = 0; u < 7; u++)
    for (let i = 0; i < 9; i++) {
      let c1 = 0,
        p = 0;
      for (let q = m.indptr[u]; q < m.indptr[u + 1]; q++)
        if (m.indices[q] === i) {
          c1 = m.data[q];
          p = 1;
        }
      let s = 0;
      for (let a = 0; a < k; a++) s += x[u * k + a] * y[i * k + a];
      brute += (1 + c1) * (p - s) ** 2;
    }
  for (const v of x) brute += reg * v * v;
  for (const v of y) brute += reg * v * v;
  assert.ok(Math.abs(loss(m, x, y, k, reg) - brute) < 1e-9 * Math.abs(brute));
});

test('conjugate gradient with k steps reaches the exact least-squares factors of each user', () => {
  const users = 12,
    items = 15,
    k = 5,
    reg = 0.05;
  const m = random(users, items, 0.25, 4);
  const y = rand(items * k, 5);
  const x = rand(users * k, 6);
  solveRows(m, x, y, k, reg, k);
  const ytyReg = gram(y, items, k);
  for (let a = 0; a < k; a++) ytyReg[a * k + a] += reg;
  for (let u = 0; u < users; u++) {
    const cols = m.indices.subarray(m.indptr[u], m.indptr[u + 1]);
    const data = m.data.subarray(m.indptr[u], m.indptr[u + 1]);
    const exact = cols.length ? foldIn(cols, data, y, ytyReg, k) : new Float64Array(k);
    for (let a = 0; a < k; a++)
      assert.ok(Math.abs(x[u * k + a] - exact[a]) < 1e-6, `user ${u} factor ${a}: ${x[u * k + a]} vs ${exact[a]}`);
  }
  // Cholesky itself: a known system.
  assert.deepEqual(
    [...choleskySolve(Float64Array.from([4, 2, 2, 3]), Float64Array.from([2, 1]), 2)!].map((v) => +v.toFixed(12)),
    [0.5, 0],
  );
  assert.equal(choleskySolve(Float64Array.from([0, 0, 0, 0]), Float64Array.from([1, 1]), 2), null);
});

test('training never increases the loss, and ranks the items bought with a user purchases above others', () => {
  // Two tastes: users 0-19 buy items 0-4, users 20-39 items 5-9 (each user misses some).
  const r = rng(9);
  const ru: number[] = [],
    ri: number[] = [],
    rv: number[] = [];
  for (let u = 0; u < 40; u++)
    for (let i = 0; i < 10; i++) {
      const mine = u < 20 ? i < 5 : i >= 5;
      if (mine && !(u === 0 && i === 4) && r() < 0.8) {
        ru.push(u);
        ri.push(i);
        rv.push(10);
      }
    }
  const m = csr(40, 10, ru, ri, rv);
  const model = trainAls(m, { ...ALS_DEFAULTS, factors: 4, iterations: 10, cgSteps: 3 });
  for (let i = 1; i < model.losses.length; i++)
    assert.ok(model.losses[i] <= model.losses[i - 1] * (1 + 1e-12), `iteration ${i}: ${model.losses[i]} > ${model.losses[i - 1]}`);
  const score = (u: number, i: number) => {
    let s = 0;
    for (let a = 0; a < 4; a++) s += model.users[u * 4 + a] * model.items[i * 4 + a];
    return s;
  };
  // User 0 never bought item 4, its group's: it scores above every item of the other group.
  for (let i = 5; i < 10; i++) assert.ok(score(0, 4) > score(0, i), `item 4 ${score(0, 4)} vs item ${i} ${score(0, i)}`);
  // Repeatable for a seed.
  const again = trainAls(m, { ...ALS_DEFAULTS, factors: 4, iterations: 10, cgSteps: 3 });
  assert.deepEqual([...again.users], [...model.users]);
});
