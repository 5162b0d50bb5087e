/**
 * `npm run bench:recommend [-- CUSTOMERS PRODUCTS PURCHASES]`: training the
 * recommender (default 100,000 customers x 5,000 products x 2,000,000
 * purchases), then every customer's top 5, then fold-ins (one customer's
 * factors re-solved from their purchases, as a live update does): wall
 * times and the peak RSS of the process.
 *
 * Purchases are drawn like the generated history's buyers (gen/tastes.ts:
 * brand, category, price band, region), customer first; products' base
 * popularity follows generate's long tail. Run alone (`node
 * dist/bench/recommend.js C P N`) it prints one JSON line.
 */
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { historyCatalog } from '../src/gen/history.js';
import { customerTastes, purchaseSampler } from '../src/gen/tastes.js';
import { csr } from '../src/recommend/als.js';
import { confidence, Recommender, RECOMMENDER_DEFAULTS } from '../src/recommend/model.js';

export interface RecommendBench {
  customers: number;
  products: number;
  purchases: number;
  factors: number;
  iterations: number;
  train_seconds: number;
  recommend_all_seconds: number;
  fold_ins_per_s: number;
  peak_rss_mb: number;
}

const secondsSince = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

export function runRecommendBench(customers: number, products: number, purchases: number): RecommendBench {
  const catalog = historyCatalog(42, 365, products);
  const tastes = customerTastes(catalog, customers, 42);
  const draw = purchaseSampler(
    tastes,
    catalog.map((p) => p.base),
    42,
  );
  const rows = new Int32Array(purchases),
    cols = new Int32Array(purchases),
    vals = new Float64Array(purchases);
  const o = RECOMMENDER_DEFAULTS;
  for (let k = 0; k < purchases; k++) {
    const [u, i] = draw();
    rows[k] = u;
    cols[k] = i;
    vals[k] = 1;
  }
  const regions = [...new Set(tastes.customers.map((c) => c.region).filter((r): r is string => r !== null))].sort();
  const region = Int32Array.from(tastes.customers, (c) => (c.region === null ? -1 : regions.indexOf(c.region)));
  let t0 = process.hrtime.bigint();
  // Units summed per customer and product (csr sums duplicates), then their confidence, as the step does.
  const m = csr(customers, products, rows, cols, vals);
  for (let q = 0; q < m.data.length; q++) m.data[q] = confidence(m.data[q], o.als.alpha, 'log1p');
  const rec = Recommender.train(m, region, regions.length, o);
  const train = secondsSince(t0);
  t0 = process.hrtime.bigint();
  for (let u = 0; u < customers; u++) {
    const from = m.indptr[u],
      to = m.indptr[u + 1];
    rec.recommend(rec.factors(u), to - from, region[u], 5, m.indices.subarray(from, to));
  }
  const all = secondsSince(t0);
  t0 = process.hrtime.bigint();
  const folds = Math.min(customers, 20_000);
  for (let u = 0; u < folds; u++) {
    const x = rec.foldIn(m.indices.subarray(m.indptr[u], m.indptr[u + 1]), m.data.subarray(m.indptr[u], m.indptr[u + 1]));
    rec.recommend(x, m.indptr[u + 1] - m.indptr[u], region[u], 5);
  }
  const fold = secondsSince(t0);
  return {
    customers,
    products,
    purchases,
    factors: o.als.factors,
    iterations: o.als.iterations,
    train_seconds: Number(train.toFixed(2)),
    recommend_all_seconds: Number(all.toFixed(2)),
    fold_ins_per_s: Math.round(folds / fold),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

/** Runs the bench in a child process of its own, so its peak RSS is its own. */
export function recommendBench(customers: number, products: number, purchases: number): RecommendBench {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), String(customers), String(products), String(purchases)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`recommend bench failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [c, p, n] = [2, 3, 4].map((i, k) => Number(process.argv[i] ?? [100_000, 5_000, 2_000_000][k]));
  console.log(JSON.stringify(runRecommendBench(c, p, n)));
}
