/**
 * @module Backtest of the recommender on a time-based holdout: train on
 * the purchases before a cut-off, score the lists against what customers
 * bought in the weeks after it.
 *
 * Rules:
 * - The test weeks are the last `testDays` of the history; training sees
 *   only purchases before them (nothing of the test period leaks into a
 *   model, its popularity counts included).
 * - Relevance is binary: an item the customer bought in the test weeks.
 * - Two protocols:
 *   - `all items`: every item may be recommended and counts when bought,
 *     including repeat purchases;
 *   - `new items`: items the customer bought before the cut-off are
 *     neither recommended nor relevant (what a recommender is for).
 *   A customer is scored in a protocol when they bought before the cut-off
 *   and have something relevant in it. Customers whose first purchase is
 *   in the test weeks are scored apart (`cold`), on the lists a newcomer
 *   gets: regional against global popularity.
 * - Models: salespipe's (ALS blended with regional popularity, model.ts),
 *   ALS alone, popularity, regional popularity and item-item cosine, all
 *   trained on the same rows.
 * - Metrics: precision@5, recall@10 and NDCG@10 averaged over the scored
 *   customers; coverage is the share of the catalogue in someone's top 5.
 */
import type { FlowPlan, Plan } from '../plan/plan.js';
import type { Logger } from '../core/log.js';
import type { Recommend } from '../operators/steps/recommend.js';
import { readThrough } from './read.js';
import { csr } from '../recommend/als.js';
import { confidence, Recommender, RecommenderOptions, RECOMMENDER_DEFAULTS } from '../recommend/model.js';
import { coverage, itemCosine, ndcgAt, popularity, precisionAt, recallAt, topK } from '../recommend/ranking.js';

const DAY = 86_400_000;

export interface Purchase {
  customer: number | string;
  item: string;
  units: number;
  /** Event time, ms. */
  at: number;
}

export interface RecommendBacktestOptions {
  testDays: number;
  recommender: RecommenderOptions;
  confidence: 'log1p' | 'raw';
  /** Each customer's region (absent or null: none). */
  regionOf: (customer: number | string) => string | null | undefined;
}

export const RECOMMEND_BACKTEST_DEFAULTS: Omit<RecommendBacktestOptions, 'regionOf'> = {
  testDays: 28,
  recommender: RECOMMENDER_DEFAULTS,
  confidence: 'log1p',
};

export interface ModelScore {
  model: string;
  precision5: number;
  recall10: number;
  ndcg10: number;
  coverage: number;
}

export interface ProtocolResult {
  customers: number;
  models: ModelScore[];
}

export interface RecommendBacktest {
  cutoff: string;
  end: string;
  trainPurchases: number;
  testPurchases: number;
  items: number;
  customers: number;
  all: ProtocolResult;
  new: ProtocolResult;
  cold: ProtocolResult;
}

export const MODELS = ['salespipe', 'als', 'popularity', 'regional', 'item-cosine'] as const;

export function backtestRecommendations(purchases: Purchase[], o: RecommendBacktestOptions): RecommendBacktest {
  if (!purchases.length) throw new Error('no purchases with a customer to backtest on');
  const end = purchases.reduce((m, p) => Math.max(m, p.at), -Infinity);
  // The test weeks end with the day of the last purchase.
  const cutoff = (Math.floor(end / DAY) + 1) * DAY - o.testDays * DAY;
  const itemNames = [...new Set(purchases.map((p) => p.item))].sort();
  const itemIndex = new Map(itemNames.map((n, i) => [n, i]));
  const customerIds = [...new Set(purchases.map((p) => p.customer))].sort((a, b) =>
    typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0,
  );
  const userIndex = new Map(customerIds.map((c, u) => [c, u]));
  const regionNames = [...new Set(customerIds.map((c) => o.regionOf(c)).filter((r): r is string => typeof r === 'string'))].sort();
  const region = Int32Array.from(customerIds, (c) => {
    const r = o.regionOf(c);
    return typeof r === 'string' ? regionNames.indexOf(r) : -1;
  });
  // Units per (user, item) before the cut-off; items bought after it.
  const trainUnits = new Map<number, number>();
  const test = customerIds.map(() => new Set<number>());
  let trainPurchases = 0,
    testPurchases = 0;
  const n = itemNames.length;
  for (const p of purchases) {
    const u = userIndex.get(p.customer)!,
      i = itemIndex.get(p.item)!;
    if (p.at < cutoff) {
      trainUnits.set(u * n + i, (trainUnits.get(u * n + i) ?? 0) + p.units);
      trainPurchases++;
    } else {
      test[u].add(i);
      testPurchases++;
    }
  }
  const rows: number[] = [],
    cols: number[] = [],
    vals: number[] = [];
  for (const [key, units] of trainUnits) {
    rows.push(Math.floor(key / n));
    cols.push(key % n);
    vals.push(confidence(units, o.recommender.als.alpha, o.confidence));
  }
  const m = csr(customerIds.length, n, rows, cols, vals);
  const rec = Recommender.train(m, region, regionNames.length, o.recommender);
  const pureAls = Recommender.train(m, region, regionNames.length, { ...o.recommender, blend: 0 });
  const pop = popularity(m);
  const cosine = itemCosine(m);
  const bought = (u: number) => m.indices.subarray(m.indptr[u], m.indptr[u + 1]);

  const score = (protocol: 'all' | 'new' | 'cold'): ProtocolResult => {
    const models = protocol === 'cold' ? (['salespipe', 'popularity'] as const) : MODELS;
    const lists = new Map<string, number[][]>(models.map((k) => [k, []]));
    const sums = new Map<string, [number, number, number]>(models.map((k) => [k, [0, 0, 0]]));
    let scored = 0;
    for (let u = 0; u < customerIds.length; u++) {
      const had = bought(u);
      if ((protocol === 'cold') !== (had.length === 0)) continue;
      const owned = new Set(had);
      const relevant = protocol === 'new' ? new Set([...test[u]].filter((i) => !owned.has(i))) : test[u];
      if (!relevant.size) continue;
      scored++;
      const excluded = protocol === 'new' ? had : undefined;
      const skip = excluded ? (i: number) => owned.has(i) : undefined;
      for (const model of models) {
        const recs =
          model === 'popularity'
            ? topK(pop, 10, skip)
            : model === 'item-cosine'
              ? topK(cosine(had), 10, skip)
              : model === 'regional'
                ? rec.recommend(null, 0, region[u], 10, excluded).map((r) => r.item)
                : (model === 'salespipe' ? rec : pureAls)
                    .recommend((model === 'salespipe' ? rec : pureAls).factors(u), had.length, region[u], 10, excluded)
                    .map((r) => r.item);
        lists.get(model)!.push(recs.slice(0, 5));
        const s = sums.get(model)!;
        s[0] += precisionAt(recs, relevant, 5);
        s[1] += recallAt(recs, relevant, 10);
        s[2] += ndcgAt(recs, relevant, 10);
      }
    }
    return {
      customers: scored,
      models: models.map((model) => {
        const [p, r, g] = sums.get(model)!;
        const d = Math.max(scored, 1);
        return {
          model: protocol === 'cold' && model === 'salespipe' ? 'salespipe (regional)' : model,
          precision5: p / d,
          recall10: r / d,
          ndcg10: g / d,
          coverage: coverage(lists.get(model)!, n),
        };
      }),
    };
  };
  return {
    cutoff: new Date(cutoff).toISOString().slice(0, 10),
    end: new Date(cutoff + o.testDays * DAY - DAY).toISOString().slice(0, 10),
    trainPurchases,
    testPurchases,
    items: n,
    customers: customerIds.length,
    all: score('all'),
    new: score('new'),
    cold: score('cold'),
  };
}

/** The flows of a plan that have a recommend step. */
export function recommendFlows(plan: Plan): FlowPlan[] {
  // A fold-in step trains nothing: its pipeline's training is what a backtest scores.
  return plan.flows.filter((f) => f.steps.some((s) => s.key === 'recommend' && !(s.planned as { foldIn?: boolean }).foldIn));
}

export interface RecommendFlowReport extends RecommendBacktest {
  flow: string;
  read: number;
  testDays: number;
  /** The step's model settings the backtest trained with. */
  settings: {
    factors: number;
    regularization: number;
    alpha: number;
    iterations: number;
    blend: number;
    shrink: number;
    confidence: string;
  };
}

/**
 * Backtests a flow's recommend step on the flow's own input (read to its
 * end through the steps before it), with the step's settings.
 */
export async function backtestRecommendFlow(
  plan: Plan,
  o: { flow?: string; testDays: number; log: Logger; signal?: AbortSignal },
): Promise<RecommendFlowReport> {
  const flows = recommendFlows(plan);
  const flow = o.flow ? flows.find((f) => f.name === o.flow) : flows[0];
  if (!flow)
    throw new Error(
      o.flow
        ? `flow "${o.flow}" has no recommend step that trains (a foldIn step uses the model its training pipeline writes: backtest that one)`
        : 'no flow of this spec has a recommend step that trains (a foldIn step uses the model its training pipeline writes: backtest that one)',
    );
  const purchases: Purchase[] = [];
  const regions = new Map<string, string | null>();
  let untimed = 0;
  const { step, read } = await readThrough<Recommend>(plan, flow, 'recommend', o, (rows, rec) => {
    for (const r of rows) {
      const p = rec.read(r);
      if (!p) continue;
      if (p.at === null) {
        untimed++;
        continue;
      }
      purchases.push({ customer: p.customer, item: p.item, units: p.units, at: p.at });
      if (p.region !== undefined) regions.set(p.customer, p.region);
    }
  });
  if (untimed) o.log.warn(`${untimed} purchase(s) without an event time are left out: the holdout is by time`);
  const { options, confidence: conf } = step.settings();
  o.log.info(`read ${read} record(s): ${purchases.length} purchase(s); training 2 ALS models and the baselines`);
  const r = backtestRecommendations(purchases, {
    testDays: o.testDays,
    recommender: options,
    confidence: conf,
    regionOf: (c) => regions.get(String(c)),
  });
  const a = options.als;
  return {
    flow: flow.name,
    read,
    testDays: o.testDays,
    settings: {
      factors: a.factors,
      regularization: a.regularization,
      alpha: a.alpha,
      iterations: a.iterations,
      blend: options.blend,
      shrink: options.shrink,
      confidence: conf,
    },
    ...r,
  };
}
