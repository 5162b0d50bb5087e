/** The shipped recommender: cold start, regional popularity, exclusions, reasons, ties and fold-in. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csr } from '../../../src/recommend/als.js';
import { confidence, Recommender, RECOMMENDER_DEFAULTS } from '../../../src/recommend/model.js';
import { rng } from '../../../src/core/random.js';

/** Users x items from lists of bought items (one unit each). */
function matrix(users: number[][], items: number) {
  const r: number[] = [],
    c: number[] = [],
    v: number[] = [];
  users.forEach((bought, u) => {
    for (const i of bought) (r.push(u), c.push(i), v.push(confidence(1, RECOMMENDER_DEFAULTS.als.alpha, 'log1p')));
  });
  return csr(users.length, items, r, c, v);
}

const small = { ...RECOMMENDER_DEFAULTS, als: { ...RECOMMENDER_DEFAULTS.als, factors: 4, regularization: 0.5, iterations: 20 } };

test('cold start: regional popularity for a customer with a region, global for one without (or an unknown region)', () => {
  // Region 0 buys items 0 and 1, region 1 buys item 3; item 2 is bought by customers without a region.
  const users = [[0, 1], [0], [0, 1], [3], [3, 4], [2], [2], [2], [], []];
  const region = Int32Array.from([0, 0, 0, 1, 1, -1, -1, -1, 0, -1]);
  const rec = Recommender.train(matrix(users, 6), region, 2, { ...small, shrink: 0 });
  const r0 = rec.recommend(null, 0, 0, 3);
  assert.deepEqual(
    r0.map((r) => r.item),
    [0, 1, 2],
  );
  assert.ok(r0.every((r) => r.reason === 'regional'));
  assert.deepEqual(
    rec.recommend(null, 0, 1, 2).map((r) => r.item),
    [3, 4],
  );
  for (const region of [-1, 7]) {
    const g = rec.recommend(null, 0, region, 3);
    // Global: items 0 and 2 have three buyers each, items 1 and 3 two (ties go to the lower index).
    assert.deepEqual(
      g.map((r) => r.item),
      [0, 2, 1],
    );
    assert.ok(g.every((r) => r.reason === 'popular'));
  }
});

test('a small region is shrunk toward global popularity', () => {
  // Region 0 has one buyer, of item 5; globally item 0 is far more popular.
  const users = [[5], ...Array.from({ length: 30 }, () => [0]), ...Array.from({ length: 5 }, () => [5])];
  const region = Int32Array.from(users.map((_, u) => (u === 0 ? 0 : -1)));
  const none = Recommender.train(matrix(users, 6), region, 1, { ...small, shrink: 0 });
  assert.equal(none.recommend(null, 0, 0, 1)[0].item, 5);
  const shrunk = Recommender.train(matrix(users, 6), region, 1, { ...small, shrink: 20 });
  assert.equal(shrunk.recommend(null, 0, 0, 1)[0].item, 0);
});

test('exclusions: a customer whose only purchases are excluded gets other items; items nobody bought come last, by index', () => {
  const users = [[0, 1], [0, 1], [0, 2], [1, 2], [0]];
  const rec = Recommender.train(matrix(users, 5), new Int32Array(5).fill(-1), 0, small);
  const x = rec.factors(4);
  const got = rec.recommend(x, 1, -1, 5, [0]);
  assert.equal(got.length, 4);
  assert.ok(!got.some((r) => r.item === 0));
  // Items 3 and 4 have no buyers: they score alike (0 popularity, ~0 personal) and follow in index order.
  assert.deepEqual(
    got.slice(2).map((r) => r.item),
    [3, 4],
  );
  const again = rec.recommend(x, 1, -1, 5, [0]);
  assert.deepEqual(again, got);
});

test('reasons: personal where the customer’s own taste outweighs popularity', () => {
  // Two groups of customers with disjoint tastes; group B is smaller, so popularity favours group A's items.
  const a = Array.from({ length: 40 }, () => [0, 1, 2]);
  const b = Array.from({ length: 10 }, () => [3, 4, 5]);
  const users = [...a, ...b, [3, 4]];
  const rec = Recommender.train(matrix(users, 6), new Int32Array(users.length).fill(-1), 0, {
    ...small,
    als: { ...small.als, regularization: 5 },
  });
  const me = users.length - 1;
  const got = rec.recommend(rec.factors(me), 2, -1, 1, [3, 4]);
  assert.equal(got[0].item, 5);
  assert.equal(got[0].reason, 'personal');
  // Without purchases the same customer gets popularity.
  assert.equal(rec.recommend(null, 0, -1, 1)[0].reason, 'popular');
});

test('fold-in: the exact solve for a trained customer predicts as the trained factors do', () => {
  const rand = rng(9);
  const users = Array.from({ length: 300 }, () => {
    const g = Math.floor(rand() * 3);
    return [...new Set(Array.from({ length: 3 }, () => g * 10 + Math.floor(rand() * 10)))];
  });
  const m = matrix(users, 30);
  const rec = Recommender.train(m, new Int32Array(300).fill(-1), 0, { ...small, als: { ...small.als, iterations: 30, cgSteps: 8 } });
  for (const u of [0, 17, 123]) {
    const cols = m.indices.subarray(m.indptr[u], m.indptr[u + 1]),
      data = m.data.subarray(m.indptr[u], m.indptr[u + 1]);
    const folded = rec.foldIn(cols, data);
    const a = rec.recommend(folded, cols.length, -1, 5).map((r) => r.item);
    const b = rec.recommend(rec.factors(u), cols.length, -1, 5).map((r) => r.item);
    assert.deepEqual(a, b, `customer ${u}`);
  }
});
