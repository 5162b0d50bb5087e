/** Customers' tastes: buyers drawn by taste leave the sales as they were, and the structure is there to learn. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { historyCatalog, historySales } from '../../../src/gen/history.js';
import { customers, rng } from '../../../src/gen/generate.js';
import { customerTastes, DURABLE } from '../../../src/gen/tastes.js';

const END = Date.UTC(2026, 0, 1);

test('who buys does not change the sales: products, units, prices and times are those of any customer count', () => {
  const strip = (n: number) => [...historySales(3, 60, END, 1, n)].map(({ customer_id, ...s }) => [s, customer_id === null]);
  const a = strip(500),
    b = strip(4000);
  assert.ok(a.length > 5000);
  assert.deepEqual(a, b);
});

/** Share of purchases in each customer's most bought brand, over customers with at least 4 purchases. */
function topBrandShare(sales: { customer: number; brand: string }[]): number {
  const by = new Map<number, Map<string, number>>();
  for (const s of sales) {
    let m = by.get(s.customer);
    if (!m) by.set(s.customer, (m = new Map()));
    m.set(s.brand, (m.get(s.brand) ?? 0) + 1);
  }
  let top = 0,
    all = 0;
  for (const m of by.values()) {
    const counts = [...m.values()];
    const n = counts.reduce((a, b) => a + b, 0);
    if (n < 4) continue;
    top += Math.max(...counts);
    all += n;
  }
  return top / all;
}

test('buyers follow their tastes: brands concentrate per customer beyond chance, Premium buys dearer than Budget', () => {
  const n = 20_000;
  const people = customers(n, 5, 0);
  const sales = [...historySales(5, 365, END, 1, n)].filter((s) => s.customer_id !== null);
  assert.ok(sales.every((s) => s.customer_id! >= 1 && s.customer_id! <= n));
  const real = topBrandShare(sales.map((s) => ({ customer: s.customer_id!, brand: s.brand })));
  // Chance: the same sales, the buyers shuffled among them.
  const rand = rng(1);
  const ids = sales.map((s) => s.customer_id!);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ids[i], ids[j]] = [ids[j], ids[i]];
  }
  const chance = topBrandShare(sales.map((s, i) => ({ customer: ids[i], brand: s.brand })));
  assert.ok(real > chance + 0.1, `top brand share ${real}, by chance ${chance}`);
  const meanPrice = (segment: string) => {
    let spend = 0,
      units = 0;
    for (const s of sales)
      if (people[s.customer_id! - 1].customer_segment === segment) {
        spend += Number(s.price_per_unit) * s.quantity_sold;
        units += s.quantity_sold;
      }
    return spend / units;
  };
  assert.ok(meanPrice('Premium') > 1.3 * meanPrice('Budget'), `Premium ${meanPrice('Premium')}, Budget ${meanPrice('Budget')}`);
});

test('durable products are seldom bought twice by one customer; tastes are a prefix for more customers', () => {
  const n = 20_000;
  const catalog = historyCatalog(7, 365);
  const seen = new Map<string, number>();
  let durable = 0;
  for (const s of historySales(7, 365, END, 1, n)) {
    if (s.customer_id === null || !DURABLE.has(s.product_category)) continue;
    durable++;
    const k = `${s.customer_id}|${s.brand}|${s.product_name}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  const repeats = [...seen.values()].reduce((a, c) => a + c - 1, 0);
  // 6 % here; 47 % if owning a product did not lower the weight.
  assert.ok(repeats / durable < 0.1, `repeat share ${repeats / durable}`);
  const small = customerTastes(catalog, 100, 7),
    large = customerTastes(catalog, 1000, 7);
  for (let u = 0; u < 100; u++) for (let i = 0; i < catalog.length; i++) assert.equal(small.weight(u, i), large.weight(u, i));
});
