/**
 * @module `salespipe generate`: realistic sales inserted into a real database.
 *
 * Rules: a fixed catalog of electronics (product, category, brand, list
 * price); quantities and prices vary around it; a seeded generator makes a
 * run repeatable. Several writers insert concurrently, each in its own
 * transactions, so ids commit out of order exactly as they do in a shop's
 * database. Tables come from sql/<dialect>.sql, the same files users run.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import { openKnex } from '../connections/sql.js';
import { Dialect } from '../connections/config.js';
import { sleep } from '../connections/retry.js';
import type { Logger } from '../core/log.js';
import { PACKAGE_ROOT } from '../core/paths.js';
import { rng } from '../core/random.js';

export interface Product {
  name: string;
  category: string;
  brand: string;
  price: number;
  id: number;
}

export const CATALOG: Product[] = [
  ['Dell Inspiron', 'Laptop', 'Dell', 50000],
  ['Dell XPS 13', 'Laptop', 'Dell', 98000],
  ['Dell Latitude 5440', 'Laptop', 'Dell', 72000],
  ['Apple MacBook Air M2', 'Laptop', 'Apple', 99900],
  ['Apple MacBook Pro 14', 'Laptop', 'Apple', 169900],
  ['Lenovo ThinkPad', 'Laptop', 'Lenovo', 65000],
  ['Lenovo IdeaPad Slim 5', 'Laptop', 'Lenovo', 58000],
  ['Lenovo Yoga 7', 'Laptop', 'Lenovo', 76000],
  ['HP Pavilion 15', 'Laptop', 'HP', 55000],
  ['HP Spectre x360', 'Laptop', 'HP', 125000],
  ['HP EliteBook 840', 'Laptop', 'HP', 89000],
  ['Apple iPhone 12', 'Smartphone', 'Apple', 80000],
  ['Apple iPhone 15', 'Smartphone', 'Apple', 79900],
  ['Apple iPhone 15 Pro', 'Smartphone', 'Apple', 134900],
  ['Samsung Galaxy S23', 'Smartphone', 'Samsung', 74999],
  ['Samsung Galaxy A54', 'Smartphone', 'Samsung', 38999],
  ['Samsung Galaxy Z Flip5', 'Smartphone', 'Samsung', 99999],
  ['Lenovo Moto G84', 'Smartphone', 'Lenovo', 19999],
  ['Apple iPad Air', 'Tablet', 'Apple', 59900],
  ['Apple iPad 10th Gen', 'Tablet', 'Apple', 44900],
  ['Samsung Galaxy Tab S9', 'Tablet', 'Samsung', 72999],
  ['Lenovo Tab P12', 'Tablet', 'Lenovo', 32999],
  ['HP Chromebook x2', 'Tablet', 'HP', 41000],
  ['Samsung Galaxy Watch6', 'Wearable', 'Samsung', 29999],
  ['Apple Watch Series 9', 'Wearable', 'Apple', 41900],
  ['Apple AirPods Pro', 'Audio', 'Apple', 24900],
  ['Samsung Galaxy Buds2 Pro', 'Audio', 'Samsung', 17999],
  ['Dell UltraSharp U2723QE', 'Monitor', 'Dell', 52000],
  ['HP M27f', 'Monitor', 'HP', 18500],
  ['Samsung Odyssey G7', 'Monitor', 'Samsung', 48000],
].map(([name, category, brand, price], i) => ({
  name: name as string,
  category: category as string,
  brand: brand as string,
  price: price as number,
  id: 101 + i,
}));

export const WORKED_EXAMPLE = [
  {
    transaction_id: 3001,
    product_name: 'Dell Inspiron',
    product_category: 'Laptop',
    brand: 'Dell',
    quantity_sold: 2,
    price_per_unit: '50000.00',
    transaction_date: '2026-01-15 10:00:00',
  },
  {
    transaction_id: 3002,
    product_name: 'Apple iPhone 12',
    product_category: 'Smartphone',
    brand: 'Apple',
    quantity_sold: 3,
    price_per_unit: '80000.00',
    transaction_date: '2026-01-15 10:05:00',
  },
  {
    transaction_id: 3003,
    product_name: 'Lenovo ThinkPad',
    product_category: 'Laptop',
    brand: 'Lenovo',
    quantity_sold: 1,
    price_per_unit: '65000.00',
    transaction_date: '2026-01-15 10:10:00',
  },
];

export { rng } from '../core/random.js';

export const SQL_DIR = path.join(PACKAGE_ROOT, 'sql');

export async function createTables(db: Knex, dialect: Dialect): Promise<void> {
  const file = path.join(SQL_DIR, `${dialect === 'mysql' ? 'mariadb' : dialect}.sql`);
  const text = fs.readFileSync(file, 'utf8').replace(/^\s*--.*$/gm, '');
  for (const stmt of text
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean))
    await db.raw(stmt);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
export const sqlTimestamp = (ms: number) => {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
};

export interface SaleRow {
  product_name: string;
  product_category: string;
  brand: string;
  quantity_sold: number;
  price_per_unit: string;
  transaction_date: string;
  customer_id: number | null;
  product_id: number;
}

/** A price in cents as the decimal text the tables hold: 123456 -> "1234.56". */
export const priceText = (cents: number) => `${Math.floor(cents / 100)}.${pad(cents % 100)}`;

/** One random sale; `at` is its event time (ms, written as UTC wall-clock time). */
export function randomSale(rand: () => number, at: number, customers = 500): SaleRow {
  const p = CATALOG[Math.floor(rand() * CATALOG.length)];
  const q = rand();
  const quantity = q < 0.6 ? 1 : q < 0.85 ? 2 : q < 0.95 ? 3 : 1 + Math.floor(rand() * 10);
  // Street prices vary a little around the list price, to the cent.
  const cents = Math.round(p.price * 100 * (0.9 + rand() * 0.15));
  return {
    product_name: p.name,
    product_category: p.category,
    brand: p.brand,
    quantity_sold: quantity,
    price_per_unit: priceText(cents),
    transaction_date: sqlTimestamp(at),
    customer_id: rand() < 0.9 ? 1 + Math.floor(rand() * customers) : null,
    product_id: p.id,
  };
}

export interface GenerateOptions {
  url: string;
  count: number;
  /** Rows per second across all writers; 0 = as fast as possible. */
  rate: number;
  writers: number;
  /** Rows per transaction. */
  batch: number;
  seed: number;
  /** Event times: spread over [from, to) if given, else the wall clock at insert. */
  from?: number;
  to?: number;
  /**
   * With from/to: event times advance with the inserts (the n-th sale at
   * from + n/count of the span, up to a minute out of order), like history
   * replayed in order; else uniformly random in [from, to).
   */
  ordered?: boolean;
  /** Fraction of transactions rolled back (leaving id gaps). */
  rollback?: number;
  createTables?: boolean;
  workedExample?: boolean;
  /** Customers (1..n, with segment and region) and an inventory row per product, if missing. */
  referenceData?: number;
  /** Restock a random product this often (ms) while inserting. */
  restockEvery?: number;
  specDir?: string;
}

export const SEGMENTS = ['Premium', 'Standard', 'Budget'] as const;
export const REGIONS = ['North', 'South', 'East', 'West', 'Online'] as const;

export interface Customer {
  customer_id: number;
  customer_name: string;
  customer_segment: string;
  region: string | null;
  updated_at: string;
}

/** Customers 1..n: a fifth Premium, half Standard, the rest Budget; a few without region. */
export function customers(n: number, seed: number, now = Date.now()): Customer[] {
  const rand = rng(seed * 7919 + 17);
  const first = ['Ana', 'Ben', 'Chen', 'Dara', 'Eli', 'Fatima', 'Goran', 'Hana', 'Ivo', 'Jun', 'Kofi', 'Lena'];
  const last = ['Novak', 'Okafor', 'Silva', 'Tanaka', 'Weber', 'Yilmaz', 'Kowalski', 'Haddad', 'Moreau', 'Park'];
  return Array.from({ length: n }, (_, i) => {
    const s = rand();
    return {
      customer_id: i + 1,
      customer_name: `${first[Math.floor(rand() * first.length)]} ${last[Math.floor(rand() * last.length)]}`,
      customer_segment: s < 0.2 ? 'Premium' : s < 0.7 ? 'Standard' : 'Budget',
      region: rand() < 0.05 ? null : REGIONS[Math.floor(rand() * REGIONS.length)],
      updated_at: sqlTimestamp(now),
    };
  });
}

export interface InventoryRow {
  product_name: string;
  brand: string;
  stock_level: number;
  reorder_threshold: number;
  updated_at: string;
}

/** One inventory row per catalog product: 20 to 400 units on hand; pricier products reorder at 5, the rest at 10 or 20. */
export function inventoryRows(seed: number, now = Date.now()): InventoryRow[] {
  const rand = rng(seed * 104729 + 3);
  return CATALOG.map((p) => ({
    product_name: p.name,
    brand: p.brand,
    stock_level: 20 + Math.floor(rand() * 381),
    reorder_threshold: p.price > 100000 ? 5 : rand() < 0.5 ? 10 : 20,
    updated_at: sqlTimestamp(now),
  }));
}

/** Inserts customers and inventory rows that are not there yet. */
export async function insertReferenceData(db: Knex, n: number, seed: number): Promise<void> {
  for (let i = 0; i < n; i += 500)
    await db('customer_data')
      .insert(customers(n, seed).slice(i, i + 500))
      .onConflict('customer_id')
      .ignore();
  await db('inventory').insert(inventoryRows(seed)).onConflict(['product_name', 'brand']).ignore();
}

/** A restock: the product's stock is counted again (a new absolute level) now. */
export async function restock(db: Knex, product: string, brand: string, level: number, at = Date.now()): Promise<void> {
  await db('inventory')
    .where({ product_name: product, brand })
    .update({ stock_level: level, updated_at: sqlTimestamp(at) });
}

export async function generate(
  opts: GenerateOptions,
  log: Logger,
  signal?: AbortSignal,
): Promise<{ inserted: number; rolledBack: number }> {
  const { db, dialect } = await openKnex(opts.url, opts.specDir ?? process.cwd(), Math.max(opts.writers, 1) + 1, { create: true });
  let inserted = 0,
    rolledBack = 0;
  try {
    if (opts.createTables) await createTables(db, dialect);
    if (opts.workedExample) await insertWorkedExample(db, dialect);
    if (opts.referenceData) {
      await insertReferenceData(db, opts.referenceData, opts.seed);
      log.info(`customers 1..${opts.referenceData} and the catalog's inventory rows are in customer_data and inventory`);
    }
    if (!opts.count) return { inserted, rolledBack };
    let next = 0;
    let restocks = 0;
    const started = Date.now();
    const restocking = opts.restockEvery
      ? (async () => {
          const rand = rng(opts.seed * 31 + 5);
          while (next < opts.count && !signal?.aborted) {
            await sleep(opts.restockEvery!, signal);
            const p = CATALOG[Math.floor(rand() * CATALOG.length)];
            await restock(db, p.name, p.brand, 100 + Math.floor(rand() * 400));
            restocks++;
          }
        })()
      : Promise.resolve();
    const writer = async (w: number) => {
      const rand = rng(opts.seed * 1000 + w);
      for (;;) {
        if (signal?.aborted) return;
        const n = Math.min(opts.batch, opts.count - next);
        if (n <= 0) return;
        const first = next;
        next += n;
        if (opts.rate > 0) {
          const due = started + (next / opts.rate) * 1000;
          if (due > Date.now()) await sleep(due - Date.now(), signal);
        }
        const rows = Array.from({ length: n }, (_, i) => {
          const span = opts.from !== undefined && opts.to !== undefined ? opts.to - opts.from : undefined;
          const at =
            span === undefined
              ? Date.now()
              : opts.ordered
                ? Math.min(opts.to! - 1, opts.from! + Math.floor((span * (first + i)) / opts.count) + Math.floor(rand() * 60_000))
                : opts.from! + Math.floor(rand() * span);
          return randomSale(rand, at);
        });
        const rollback = (opts.rollback ?? 0) > 0 && rand() < opts.rollback!;
        await db
          .transaction(async (trx) => {
            await trx('product_sales').insert(rows);
            // Hold the transaction open a moment so other writers commit later ids first.
            if (opts.writers > 1) await sleep(Math.floor(rand() * 15));
            if (rollback) throw new RollBack();
          })
          .catch((e) => {
            if (!(e instanceof RollBack)) throw e;
          });
        if (rollback) rolledBack += n;
        else inserted += n;
      }
    };
    // A long run (--rate) says how far it is every 10 s.
    const progress = setInterval(() => {
      const secs = (Date.now() - started) / 1000;
      log.info(
        `inserted ${inserted} of ${opts.count} sale(s) in ${secs.toFixed(0)} s (${Math.round(inserted / Math.max(secs, 0.001))}/s)${rolledBack ? `; ${rolledBack} rolled back` : ''}${restocks ? `; ${restocks} restock(s)` : ''}`,
      );
    }, 10_000);
    progress.unref();
    try {
      await Promise.all(Array.from({ length: Math.max(1, opts.writers) }, (_, w) => writer(w)));
      await restocking;
    } finally {
      clearInterval(progress);
    }
    log.info(
      `inserted ${inserted} sale(s) with ${opts.writers} writer(s) in ${((Date.now() - started) / 1000).toFixed(1)} s${rolledBack ? `; ${rolledBack} rolled back` : ''}${restocks ? `; ${restocks} restock(s)` : ''}`,
    );
  } finally {
    await db.destroy();
  }
  return { inserted, rolledBack };
}

class RollBack extends Error {}

export async function insertWorkedExample(db: Knex, dialect: Dialect): Promise<void> {
  const ids = WORKED_EXAMPLE.map((r) => r.transaction_id);
  const present = await db('product_sales').whereIn('transaction_id', ids).count({ n: '*' });
  if (Number(present[0].n) > 0) return;
  await db('product_sales').insert(WORKED_EXAMPLE);
  if (dialect === 'postgres') {
    await db.raw(
      `SELECT setval(pg_get_serial_sequence('product_sales', 'transaction_id'), (SELECT MAX(transaction_id) FROM product_sales))`,
    );
  }
}
