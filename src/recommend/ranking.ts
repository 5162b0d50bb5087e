/**
 * @module Ranking for recommendations: top-K selection, the baselines a
 * model must beat (popularity, regional popularity, item-item cosine), and
 * the metrics of a holdout (precision@K, recall@K, NDCG@K, coverage).
 *
 * Rules:
 * - Top-K is deterministic: higher score first, then the lower item index
 *   (items are indexed in a stable order, e.g. by name), so equal scores
 *   always rank the same way.
 * - Relevance is binary: an item the customer bought in the test weeks.
 *   NDCG@K uses log2(rank + 1) discounts, its ideal the relevant items
 *   first; a customer with nothing relevant is not scored.
 */
import type { Csr } from './als.js';

/** The K best items by score, skipping `excluded`; ties by item index. */
export function topK(scores: ArrayLike<number>, k: number, excluded?: (item: number) => boolean): number[] {
  const best: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    if (excluded?.(i)) continue;
    const s = scores[i];
    if (best.length === k && !(s > scores[best[k - 1]])) continue;
    let at = best.length === k ? k - 1 : best.length;
    if (best.length < k) best.push(i);
    // Insertion: move past every item with a lower score (an equal score keeps the earlier item first).
    while (at > 0 && scores[best[at - 1]] < s) {
      best[at] = best[at - 1];
      at--;
    }
    best[at] = i;
  }
  return best;
}

export function precisionAt(recs: number[], relevant: Set<number>, k: number): number {
  let hit = 0;
  for (let i = 0; i < Math.min(k, recs.length); i++) if (relevant.has(recs[i])) hit++;
  return hit / k;
}

export function recallAt(recs: number[], relevant: Set<number>, k: number): number {
  if (!relevant.size) return 0;
  let hit = 0;
  for (let i = 0; i < Math.min(k, recs.length); i++) if (relevant.has(recs[i])) hit++;
  return hit / relevant.size;
}

export function ndcgAt(recs: number[], relevant: Set<number>, k: number): number {
  let dcg = 0,
    ideal = 0;
  for (let i = 0; i < Math.min(k, recs.length); i++) if (relevant.has(recs[i])) dcg += 1 / Math.log2(i + 2);
  for (let i = 0; i < Math.min(k, relevant.size); i++) ideal += 1 / Math.log2(i + 2);
  return ideal ? dcg / ideal : 0;
}

/** Share of the catalogue recommended to someone. */
export function coverage(recs: number[][], items: number): number {
  const seen = new Set<number>();
  for (const r of recs) for (const i of r) seen.add(i);
  return items ? seen.size / items : 0;
}

/** Buyers per item (each customer once), from a users-by-items matrix. */
export function popularity(m: Csr, rows?: (u: number) => boolean): Float64Array {
  const p = new Float64Array(m.cols);
  for (let u = 0; u < m.rows; u++) {
    if (rows && !rows(u)) continue;
    for (let q = m.indptr[u]; q < m.indptr[u + 1]; q++) p[m.indices[q]]++;
  }
  return p;
}

/**
 * Item-item cosine over buyers (binary): score(u, i) = sum over the items
 * j that u bought of cos(i, j). Returns a scorer for a user's items.
 */
export function itemCosine(m: Csr): (bought: ArrayLike<number>) => Float64Array {
  const n = m.cols;
  const norms = popularity(m).map(Math.sqrt);
  // Co-purchase counts, items x items (dense: catalogues of a few thousand items).
  const co = new Float64Array(n * n);
  for (let u = 0; u < m.rows; u++) {
    const from = m.indptr[u],
      to = m.indptr[u + 1];
    for (let a = from; a < to; a++) for (let b = from; b < to; b++) if (a !== b) co[m.indices[a] * n + m.indices[b]]++;
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (co[i * n + j]) co[i * n + j] /= norms[i] * norms[j];
  return (bought) => {
    const s = new Float64Array(n);
    for (let q = 0; q < bought.length; q++) {
      const j = bought[q];
      for (let i = 0; i < n; i++) s[i] += co[j * n + i];
    }
    return s;
  };
}
