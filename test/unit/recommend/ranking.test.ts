/** Ranking: deterministic top-K, the holdout metrics on known values, and the baselines. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { coverage, itemCosine, ndcgAt, popularity, precisionAt, recallAt, topK } from '../../../src/recommend/ranking.js';
import { csr } from '../../../src/recommend/als.js';
import { rng } from '../../../src/gen/generate.js';

test('topK: best first, ties by item index, exclusions skipped; equal to a full sort', () => {
  assert.deepEqual(topK([1, 5, 3, 5, 2], 3), [1, 3, 2]);
  assert.deepEqual(
    topK([1, 5, 3, 5, 2], 3, (i) => i === 1),
    [3, 2, 4],
  );
  assert.deepEqual(topK([2, 2, 2], 5), [0, 1, 2]);
  const r = rng(3);
  for (let t = 0; t < 50; t++) {
    const s = Array.from({ length: 40 }, () => Math.floor(r() * 10));
    const sorted = s
      .map((v, i) => [v, i])
      .sort((a, b) => b[0] - a[0] || a[1] - b[1])
      .map(([, i]) => i);
    assert.deepEqual(topK(s, 7), sorted.slice(0, 7));
  }
});

test('precision, recall and NDCG on known values; coverage', () => {
  const rel = new Set([2, 7]);
  assert.equal(precisionAt([2, 3, 7, 8, 9], rel, 5), 0.4);
  assert.equal(recallAt([2, 3, 7, 8, 9], rel, 5), 1);
  assert.equal(recallAt([3, 2], rel, 1), 0);
  // Hits at ranks 1 and 3: (1 + 1/log2(4)) / (1 + 1/log2(3)).
  assert.ok(Math.abs(ndcgAt([2, 3, 7], rel, 3) - (1 + 0.5) / (1 + 1 / Math.log2(3))) < 1e-12);
  assert.equal(ndcgAt([2, 7], rel, 10), 1);
  assert.equal(ndcgAt([1], new Set(), 10), 0);
  assert.equal(
    coverage(
      [
        [0, 1],
        [1, 2],
      ],
      10,
    ),
    0.3,
  );
});

test('popularity counts buyers once; item-item cosine scores co-purchased items', () => {
  // Users 0-2 buy items 0 and 1; user 3 buys items 2 and 3; user 4 buys 0 twice.
  const m = csr(5, 4, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4], [0, 1, 0, 1, 0, 1, 2, 3, 0, 0], new Array(10).fill(1));
  assert.deepEqual([...popularity(m)], [4, 3, 1, 1]);
  assert.deepEqual([...popularity(m, (u) => u >= 3)], [1, 0, 1, 1]);
  const score = itemCosine(m);
  const s = score([0]);
  // cos(0, 1) = 3 / sqrt(4 * 3); items 2, 3 never bought with 0.
  assert.ok(Math.abs(s[1] - 3 / Math.sqrt(12)) < 1e-12);
  assert.equal(s[2], 0);
  assert.deepEqual(
    topK(score([2]), 1, (i) => i === 2),
    [3],
  );
});
