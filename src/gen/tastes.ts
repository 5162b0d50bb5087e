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
  /** Weights, customers x products (row-major). */
  weight: Float64Array;
  products: number;
}

/** Every customer's weight for every product. */
export function customerTastes(products: TasteProduct[], n: number, seed: number, people = customers(n, seed, 0)): Tastes {
  const rand = rng(seed * 2_654_435 + 11);
  const brands = [...new Set(products.map((p) => p.brand))].sort();
  const categories = [...new Set(products.map((p) => p.category))].sort();
  const regions = [...new Set(people.map((c) => c.region).filter((r): r is string => r !== null))].sort();
  // Each region favours a couple of brands.
  const regionBrand = regions.map(() => brands.map(() => (rand() < 0.35 ? 2.5 : 1)));
  const logPrice = products.map((p) => Math.log(Math.max(p.price, 1)));
  const mid = logPrice.reduce((a, b) => a + b, 0) / Math.max(products.length, 1);
  const spread = Math.sqrt(logPrice.reduce((a, b) => a + (b - mid) ** 2, 0) / Math.max(products.length, 1)) || 1;
  const brandOf = products.map((p) => brands.indexOf(p.brand));
  const categoryOf = products.map((p) => categories.indexOf(p.category));
  const weight = new Float64Array(n * products.length);
  for (let u = 0; u < n; u++) {
    const c = people[u];
    const b = brands.map(() => rand() ** 4 + 0.005);
    const k = categories.map(() => rand() ** 2 + 0.05);
    const lean = c.customer_segment === 'Premium' ? 1.2 : c.customer_segment === 'Budget' ? -1.2 : 0;
    const r = c.region === null ? -1 : regions.indexOf(c.region);
    // Activity: log-normal, median 1.
    const activity = Math.exp(0.8 * Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand()));
    for (let i = 0; i < products.length; i++) {
      const fit = Math.exp(lean * ((logPrice[i] - mid) / spread));
      weight[u * products.length + i] = activity * b[brandOf[i]] * k[categoryOf[i]] * fit * (r < 0 ? 1 : regionBrand[r][brandOf[i]]);
    }
  }
  return { customers: people, weight, products: products.length };
}

/** Once a customer owns a durable product, their weight for it is multiplied by this. */
const OWNED = 0.03;

/**
 * Draws buyers: `pick(product)` returns a customer index in proportion to
 * the weights; a customer's weight for a durable product they bought
 * drops to OWNED of it (in t, which the sampler changes). Per product a Fenwick tree over the customers'
 * weights (built when first needed): a draw and an update are O(log n).
 */
export function buyerSampler(t: Tastes, products: TasteProduct[], seed: number): (product: number) => number {
  const rand = rng(seed * 40_503 + 5);
  const n = t.customers.length;
  const trees: (Float64Array | undefined)[] = new Array(t.products);
  let top = 1;
  while (top * 2 <= n) top *= 2;
  const tree = (i: number) => {
    let f = trees[i];
    if (!f) {
      f = trees[i] = new Float64Array(n + 1);
      for (let u = 1; u <= n; u++) {
        f[u] += t.weight[(u - 1) * t.products + i];
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
      const w = t.weight[u * t.products + i];
      const delta = w * (OWNED - 1);
      t.weight[u * t.products + i] = w * OWNED;
      for (let q = u + 1; q <= n; q += q & -q) f[q] += delta;
    }
    return u;
  };
}
