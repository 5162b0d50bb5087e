/**
 * @module Sales history with structure a forecast can find (`salespipe
 * generate --history 730d`).
 *
 * Rules:
 * - Per product and day, units ~ Poisson(rate), where the rate is the
 *   product's base rate x its trend (growth or decline per year) x the
 *   weekday profile of its category (weekends sell more electronics) x a
 *   promotion uplift (a few days every one to three months), and 0 before
 *   the product's launch, ramping up over its first weeks after one.
 * - The catalog's 30 products sell a few to a few dozen units a day; a
 *   long tail of 40 accessories sells a unit every few days or weeks
 *   (intermittent demand). Some products launch inside the range.
 * - Units are split into sales of 1-3 units at random times of the day;
 *   prices vary around the list price as in live generation. A tenth of
 *   the sales are anonymous; the buyer of the others is drawn by taste
 *   (tastes.ts) among customers 1..n (customer_data's, same seed).
 * - Deterministic for a seed, a range and the day it ends on (days are UTC).
 */
import { CATALOG, Product, rng, sqlTimestamp, SaleRow, createTables, priceText } from './generate.js';
import { openKnex } from '../connections/sql.js';
import { ColumnType, Row, Schema, parseType } from '../core/types.js';
import type { Logger } from '../core/log.js';
import { locate, openStore } from '../storage/store.js';
import { buyerSampler, customerTastes } from './tastes.js';

const DAY = 86_400_000;

export interface HistoryProduct extends Product {
  /** Units per day at the start of the range, before the weekday profile. */
  base: number;
  /** Relative change per year (0.3: +30 %/year). */
  trend: number;
  /** Day (from the range's start) of the first sale; 0 for products already selling. */
  launch: number;
  weekly: number[];
  /** Promotion days (from the range's start) with their uplift. */
  promos: Map<number, number>;
}

/** Weekday profiles, Sunday first (Date.getUTCDay). */
const PROFILES: Record<string, number[]> = {
  Laptop: [1.3, 0.85, 0.9, 0.9, 0.95, 1.1, 1.5],
  Smartphone: [1.45, 0.8, 0.85, 0.9, 0.95, 1.2, 1.7],
  Tablet: [1.5, 0.8, 0.8, 0.85, 0.9, 1.15, 1.65],
  Wearable: [1.4, 0.85, 0.9, 0.9, 1.0, 1.2, 1.5],
  Audio: [1.35, 0.9, 0.9, 0.95, 1.0, 1.25, 1.45],
  Monitor: [1.0, 1.1, 1.1, 1.05, 1.05, 0.95, 1.0],
  Accessory: [1.2, 0.9, 0.95, 0.95, 1.0, 1.1, 1.3],
};

const ACCESSORIES = [
  'USB-C Cable',
  'Charger 65W',
  'Laptop Sleeve',
  'Screen Protector',
  'Stylus',
  'Keyboard Cover',
  'Docking Station',
  'Wireless Mouse',
];
const BRANDS = ['Dell', 'Apple', 'Lenovo', 'HP', 'Samsung'];

/** Share of each category among the products a larger catalogue adds, and a typical list price. */
const MORE: [string, number, number][] = [
  ['Laptop', 0.14, 80000],
  ['Smartphone', 0.14, 60000],
  ['Tablet', 0.1, 45000],
  ['Wearable', 0.1, 30000],
  ['Audio', 0.14, 15000],
  ['Monitor', 0.1, 35000],
  ['Accessory', 0.28, 3000],
];

/**
 * The products of a history of `days` days, with their demand structure:
 * the 70 of the catalog, then (for `products` > 70) numbered models of the
 * same brands and categories, a long tail that mostly sells a unit every
 * few days (drawn apart: the first 70 are the same for any size).
 */
export function historyCatalog(seed: number, days: number, products = 70): HistoryProduct[] {
  const rand = rng(seed * 104_729 + 3);
  const promosFor = (launch: number) => {
    const promos = new Map<number, number>();
    for (let d = launch + 20 + Math.floor(rand() * 60); d < days; d += 30 + Math.floor(rand() * 70)) {
      const len = 3 + Math.floor(rand() * 5),
        lift = 1.6 + rand() * 1.2;
      for (let k = 0; k < len; k++) promos.set(d + k, lift);
    }
    return promos;
  };
  const out: HistoryProduct[] = CATALOG.map((p, i) => {
    // Every fifth product launches inside the range (between 30 % and 80 % of it).
    const launch = i % 5 === 4 ? Math.floor(days * (0.3 + rand() * 0.5)) : 0;
    return {
      ...p,
      base: 2 + rand() ** 2 * 28,
      trend: rand() * 0.8 - 0.3,
      launch,
      weekly: PROFILES[p.category] ?? PROFILES.Accessory,
      promos: promosFor(launch),
    };
  });
  let id = 101 + CATALOG.length;
  for (const a of ACCESSORIES)
    for (const brand of BRANDS)
      out.push({
        name: `${brand} ${a}`,
        category: 'Accessory',
        brand,
        price: 1500 + Math.floor(rand() * 230) * 100,
        id: id++,
        base: 0.02 + rand() ** 2 * 0.5,
        trend: rand() * 0.6 - 0.3,
        launch: 0,
        weekly: PROFILES.Accessory,
        promos: new Map(),
      });
  const more = rng(seed * 15_485_863 + 7);
  for (let k = 0; out.length < products; k++) {
    let u = more(),
      c = 0;
    while (c < MORE.length - 1 && u >= MORE[c][1]) u -= MORE[c++][1];
    const [category, , price] = MORE[c];
    const brand = BRANDS[Math.floor(more() * BRANDS.length)];
    const launch = more() < 0.2 ? Math.floor(days * (0.2 + more() * 0.7)) : 0;
    out.push({
      name: `${brand} ${category} ${k + 1}`,
      category,
      brand,
      price: Math.round(price * Math.exp(0.4 * (more() * 2 - 1))),
      id: id++,
      base: 0.03 + 2.5 * more() ** 3,
      trend: more() * 0.8 - 0.3,
      launch,
      weekly: PROFILES[category],
      promos: new Map(),
    });
  }
  return out;
}

/** A Poisson draw (Knuth for small means, a rounded normal for large ones). */
export function poisson(rand: () => number, mean: number): number {
  if (mean <= 0) return 0;
  if (mean > 40) {
    const u = Math.max(rand(), 1e-12),
      v = rand();
    return Math.max(0, Math.round(mean + Math.sqrt(mean) * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)));
  }
  const l = Math.exp(-mean);
  let k = 0,
    p = 1;
  for (;;) {
    p *= rand();
    if (p <= l) return k;
    k++;
  }
}

/** The expected units of a product on day d (from the range's start), without noise. */
export function expectedUnits(p: HistoryProduct, d: number, from: number): number {
  if (d < p.launch) return 0;
  const ramp = p.launch > 0 ? Math.min(1, (d - p.launch + 1) / 21) : 1;
  const dow = new Date(from + d * DAY).getUTCDay();
  return p.base * (1 + (p.trend * d) / 365) * p.weekly[dow] * (p.promos.get(d) ?? 1) * ramp;
}

export interface HistorySale extends SaleRow {
  transaction_id: number;
}

/**
 * Buyers of a history by default: about five purchases per customer and
 * year, so that a customer seldom owns most of the catalogue.
 */
export const HISTORY_CUSTOMERS = 20_000;

/** Sales of `days` days ending at `end` (exclusive, a UTC midnight), in time order, with ids from `firstId`. */
export function* historySales(
  seed: number,
  days: number,
  end: number,
  firstId = 1,
  customers = HISTORY_CUSTOMERS,
  products = 70,
): Generator<HistorySale> {
  const catalog = historyCatalog(seed, days, products);
  const rand = rng(seed * 7 + 1);
  const buyer = buyerSampler(customerTastes(catalog, customers, seed), catalog, seed);
  const from = end - days * DAY;
  let id = firstId;
  for (let d = 0; d < days; d++) {
    const day: HistorySale[] = [];
    for (const [pi, p] of catalog.entries()) {
      let units = poisson(rand, Math.max(0, expectedUnits(p, d, from)));
      while (units > 0) {
        const r = rand();
        const q = Math.min(units, r < 0.7 ? 1 : r < 0.92 ? 2 : 3);
        units -= q;
        const cents = Math.round(p.price * 100 * (0.9 + rand() * 0.15));
        day.push({
          transaction_id: 0,
          product_name: p.name,
          product_category: p.category,
          brand: p.brand,
          quantity_sold: q,
          price_per_unit: priceText(cents),
          transaction_date: sqlTimestamp(from + d * DAY + Math.floor(rand() * DAY)),
          // The draws of the original uniform pick stay, so that the sales (and the forecasts' figures) are as before.
          customer_id: rand() < 0.9 && rand() >= 0 ? 1 + buyer(pi) : null,
          product_id: p.id,
        });
      }
    }
    day.sort((a, b) => (a.transaction_date < b.transaction_date ? -1 : a.transaction_date > b.transaction_date ? 1 : 0));
    for (const s of day) {
      s.transaction_id = id++;
      yield s;
    }
  }
}

/** Columns of a history written as Parquet: the sale, its revenue and sale_date (the archive flow's dataset). */
export const HISTORY_SCHEMA: Schema = [
  ['transaction_id', 'int'],
  ['product_name', 'string'],
  ['product_category', 'string'],
  ['brand', 'string'],
  ['quantity_sold', 'int'],
  ['price_per_unit', 'decimal(12,2)'],
  ['transaction_date', 'timestamp'],
  ['customer_id', 'int?'],
  ['product_id', 'int?'],
  ['revenue', 'decimal(18,2)'],
].map(([name, type]) => ({ name, type: parseType(type) as ColumnType }));

export interface HistoryOptions {
  seed: number;
  days: number;
  /** Exclusive end (a UTC midnight): the history ends the day before. */
  end: number;
  /** Buyers are customers 1..n (default HISTORY_CUSTOMERS). */
  customers?: number;
  /** Products in the catalogue (default 70, the catalog's). */
  products?: number;
}

/**
 * Writes the history as a Parquet dataset partitioned by sale_date (UTC),
 * one file per day, each staged and published whole (store.ts): a rerun
 * with the same options writes the same files again. `where` is a local
 * folder, or s3:// (through the AWS environment) or webhdfs://host:port/path.
 */
export async function writeHistoryParquet(where: string, o: HistoryOptions, log: Logger, signal?: AbortSignal): Promise<number> {
  const { toParquet } = await import('../operators/sinks/parquet/arrow-rows.js');
  const loc = locate(where, undefined, process.cwd());
  if (typeof loc === 'string') throw new Error(`--parquet ${where}: ${loc}`);
  const store = await openStore(loc, { connections: {}, specDir: process.cwd(), log, signal: signal ?? new AbortController().signal });
  let n = 0,
    day: Row[] = [],
    date = '';
  const flush = async () => {
    if (!day.length) return;
    await store.publish(await store.stage(`sale_date=${date}/part-history-${o.seed}.parquet`, toParquet(HISTORY_SCHEMA, day), `${o.seed}`));
    day = [];
  };
  try {
    await store.init();
    for (const s of historySales(o.seed, o.days, o.end, 1, o.customers, o.products)) {
      const d = s.transaction_date.slice(0, 10);
      if (d !== date) {
        await flush();
        date = d;
      }
      const price = Math.round(Number(s.price_per_unit) * 100);
      day.push({
        ...s,
        price_per_unit: price,
        transaction_date: Date.parse(`${s.transaction_date.replace(' ', 'T')}Z`),
        revenue: price * s.quantity_sold,
      });
      n++;
    }
    await flush();
  } finally {
    await store.close();
  }
  log.info(`wrote ${n} sale(s) of ${o.days} day(s) to ${store.where} (partitioned by sale_date)`);
  return n;
}

/** Inserts the history into product_sales (ids after the largest there), in transactions of `batch` rows. */
export async function insertHistory(
  url: string,
  o: HistoryOptions & { batch: number; createTables?: boolean },
  log: Logger,
  signal?: AbortSignal,
): Promise<number> {
  const { db, dialect } = await openKnex(url, process.cwd(), 2, { create: true });
  try {
    if (o.createTables) await createTables(db, dialect);
    const [{ m }] = await db('product_sales').max({ m: 'transaction_id' });
    let n = 0,
      rows: HistorySale[] = [];
    const write = async () => {
      if (rows.length) await db.transaction((trx) => trx('product_sales').insert(rows));
      n += rows.length;
      rows = [];
    };
    for (const s of historySales(o.seed, o.days, o.end, Number(m ?? 0) + 1, o.customers, o.products)) {
      if (signal?.aborted) break;
      rows.push(s);
      if (rows.length >= o.batch) await write();
    }
    await write();
    log.info(`inserted ${n} sale(s) of ${o.days} day(s) of history`);
    return n;
  } finally {
    await db.destroy();
  }
}
