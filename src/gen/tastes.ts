/**
 * @module Customers with tastes a recommender can learn: who buys a
 * generated sale (`salespipe generate --history`), and the synthetic
 * purchases of the recommendation benchmark.
 *
 * Rules:
 * - A customer's weight for a product is the product of
 *   - a brand affinity (most customers favour one or two of the brands),
 *   - a category affinity (a few categories they shop in),
 *   - a price fit by segment: Premium customers lean to dear products,
 *     Budget ones to cheap ones (Standard: neither),
 *   - the taste of their region (each region favours some brands; a
 *     customer without a region has none), and
 *   - their activity (heavy-tailed: a few customers buy much more often).
 * - The buyer of a sale is drawn in proportion to those weights, so the
 *   demand per product and day (which the forecasts model) is unchanged
 *   by who buys. A customer who bought a product they rarely buy twice
 *   (a laptop, a phone) is then much less likely to buy it again.
 * - Deterministic: a customer's taste follows from the seed and their id;
 *   their segment and region are those of `customers()` (customer_data).
 */
import { rng } from '../core/random.js';
import { customers, Customer } from './generate.js';

/** What the taste model needs of a product. */
export interface TasteProduct {
  brand: string;
  category: string;
  /** List price (any unit: only ratios between products matter). */
  price: number;
}

/** Categories a customer seldom buys twice. */
export const DURABLE = new Set(['Laptop', 'Smartphone', 'Tablet', 'Monitor', 'Wearable']);

export interface Tastes {
  customers: Customer[];
  products: number;
  /** Customer u's weight for product i (before any purchase). */
  weight(u: number, i: number): number;
  /** Its factors: per customer (brands B, categories C), per product, per region. */
  parts: {
    B: number;
    C: number;
    brandOf: number[];
    categoryOf: number[];
    /** Standardized log price. */
    z: number[];
    brandW: Float64Array;
    categoryW: Float64Array;
    lean: Float64Array;
    region: Int32Array;
    activity: Float64Array;
    regionBrand: number[][];
  };
}

/** Every customer's taste: per customer a few numbers, a weight for any product computed from them. */
export function customerTastes(products: TasteProduct[], n: number, seed: number, people = customers(n, seed, 0)): Tastes {
  const rand = rng(seed * 2_654_435 + 11);
  const brands = [...new Set(products.map((p) => p.brand))].sort();
  const categories = [...new Set(products.map((p) => p.category))].sort();
  const regions = [...new Set(people.map((c) => c.region).filter((r): r is string => r !== null))].sort();
  const B = brands.length,
    C = categories.length;
  // Each region favours a couple of brands.
  const regionBrand = regions.map(() => brands.map(() => (rand() < 0.35 ? 2.5 : 1)));
  const logPrice = products.map((p) => Math.log(Math.max(p.price, 1)));
  const mid = logPrice.reduce((a, b) => a + b, 0) / Math.max(products.length, 1);
  const spread = Math.sqrt(logPrice.reduce((a, b) => a + (b - mid) ** 2, 0) / Math.max(products.length, 1)) || 1;
  const z = logPrice.map((l) => (l - mid) / spread);
  const brandOf = products.map((p) => brands.indexOf(p.brand));
  const categoryOf = products.map((p) => categories.indexOf(p.category));
  const brandW = new Float64Array(n * B),
    categoryW = new Float64Array(n * C),
    lean = new Float64Array(n),
    region = new Int32Array(n),
    activity = new Float64Array(n);
  for (let u = 0; u < n; u++) {
    const c = people[u];
    for (let b = 0; b < B; b++) brandW[u * B + b] = rand() ** 4 + 0.005;
    for (let k = 0; k < C; k++) categoryW[u * C + k] = rand() ** 2 + 0.05;
    lean[u] = c.customer_segment === 'Premium' ? 1.2 : c.customer_segment === 'Budget' ? -1.2 : 0;
    region[u] = c.region === null ? -1 : regions.indexOf(c.region);
    // Activity: log-normal, median 1.
    activity[u] = Math.exp(0.8 * Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand()));
  }
  return {
    customers: people,
    products: products.length,
    parts: { B, C, brandOf, categoryOf, z, brandW, categoryW, lean, region, activity, regionBrand },
    weight: (u, i) => {
      const b = brandOf[i],
        r = region[u];
      return (
        activity[u] * brandW[u * B + b] * categoryW[u * C + categoryOf[i]] * Math.exp(lean[u] * z[i]) * (r < 0 ? 1 : regionBrand[r][b])
      );
    },
  };
}

/** Once a customer owns a durable product, their weight for it is multiplied by this. */
const OWNED = 0.03;

/**
 * Draws buyers: `pick(product)` returns a customer index in proportion to
 * the weights; a customer's weight for a durable product they bought
 * drops to OWNED of it. Per product a Fenwick tree over the customers'
 * weights (built when first needed): a draw and an update are O(log n).
 */
export function buyerSampler(t: Tastes, products: TasteProduct[], seed: number): (product: number) => number {
  const rand = rng(seed * 40_503 + 5);
  const n = t.customers.length;
  const trees: (Float64Array | undefined)[] = new Array(t.products);
  // (customer, durable product) pairs bought: their weight is OWNED^k of the taste's.
  const owned = new Map<number, number>();
  let top = 1;
  while (top * 2 <= n) top *= 2;
  const tree = (i: number) => {
    let f = trees[i];
    if (!f) {
      f = trees[i] = new Float64Array(n + 1);
      for (let u = 1; u <= n; u++) {
        f[u] += t.weight(u - 1, i);
        const up = u + (u & -u);
        if (up <= n) f[up] += f[u];
      }
    }
    return f;
  };
  return (i) => {
    const f = tree(i);
    let total = 0;
    for (let u = n; u > 0; u -= u & -u) total += f[u];
    // The smallest u whose prefix sum exceeds x (binary lifting).
    let x = rand() * total,
      pos = 0;
    for (let step = top; step > 0; step >>= 1)
      if (pos + step <= n && f[pos + step] <= x) {
        pos += step;
        x -= f[pos];
      }
    const u = Math.min(pos, n - 1);
    if (DURABLE.has(products[i].category)) {
      const key = u * t.products + i;
      const factor = owned.get(key) ?? 1;
      const delta = t.weight(u, i) * factor * (OWNED - 1);
      owned.set(key, factor * OWNED);
      for (let q = u + 1; q <= n; q += q & -q) f[q] += delta;
    }
    return u;
  };
}

/**
 * Draws purchases customer first, for catalogues too large for a tree per
 * product (the recommendation benchmark): a customer by activity, then a
 * product with probability proportional to popularity[i] x the customer's
 * weight for it, through the products' brand x category cells (the price
 * lean takes one value per segment, so each segment's cell totals are
 * computed once). Repeat purchases are not discouraged here.
 */
export function purchaseSampler(t: Tastes, popularity: ArrayLike<number>, seed: number): () => [number, number] {
  const rand = rng(seed * 7_368_787 + 13);
  const { B, C, brandOf, categoryOf, z, brandW, categoryW, lean, region, activity, regionBrand } = t.parts;
  const P = t.products,
    cells = B * C;
  const cum = (w: ArrayLike<number>) => {
    const c = new Float64Array(w.length);
    let s = 0;
    for (let i = 0; i < w.length; i++) c[i] = s += w[i];
    return c;
  };
  const pick = (c: Float64Array, from = 0, to = c.length) => {
    const base = from > 0 ? c[from - 1] : 0;
    const x = base + rand() * (c[to - 1] - base);
    let lo = from,
      hi = to - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (c[mid] > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const customer = cum(activity);
  // Products ordered by cell; per segment lean, cumulative weights within that order and each cell's total.
  const order = Array.from({ length: P }, (_, i) => i).sort(
    (a, b) => brandOf[a] * C + categoryOf[a] - (brandOf[b] * C + categoryOf[b]) || a - b,
  );
  const cellStart = new Int32Array(cells + 1);
  for (const i of order) cellStart[brandOf[i] * C + categoryOf[i] + 1]++;
  for (let c = 0; c < cells; c++) cellStart[c + 1] += cellStart[c];
  const leans = [...new Set(lean)];
  const bySegment = new Map(
    leans.map((l) => {
      const within = cum(order.map((i) => popularity[i] * Math.exp(l * z[i])));
      const total = new Float64Array(cells);
      for (let c = 0; c < cells; c++)
        total[c] = cellStart[c + 1] > cellStart[c] ? within[cellStart[c + 1] - 1] - (cellStart[c] ? within[cellStart[c] - 1] : 0) : 0;
      return [l, { within, total }];
    }),
  );
  const cellW = new Float64Array(cells);
  return () => {
    const u = pick(customer);
    const seg = bySegment.get(lean[u])!;
    const r = region[u];
    let s = 0;
    for (let b = 0; b < B; b++) {
      const wb = brandW[u * B + b] * (r < 0 ? 1 : regionBrand[r][b]);
      for (let c = 0; c < C; c++) cellW[b * C + c] = s += wb * categoryW[u * C + c] * seg.total[b * C + c];
    }
    const cell = pick(cellW);
    return [u, order[pick(seg.within, cellStart[cell], cellStart[cell + 1])]];
  };
}
