/** Database helpers for tests: fresh databases on the local services, SQL oracles. */
import knexFactory, { Knex } from 'knex';
import { openKnex } from '../../src/connections/sql.js';
import { createTables } from '../../src/gen/generate.js';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readParquet } from './helpers.js';

export const MARIADB_ADMIN = process.env.TEST_MARIADB_URL ?? 'mysql://salespipe:salespipe@127.0.0.1:3306/salespipe';
export const POSTGRES_ADMIN = process.env.TEST_POSTGRES_URL ?? 'postgres://salespipe:salespipe@127.0.0.1:5432/salespipe';

/** Creates an empty database named `name` with salespipe's tables; returns its URL. */
export async function freshDatabase(dialect: 'mysql' | 'postgres', name: string): Promise<string> {
  const admin = dialect === 'mysql' ? MARIADB_ADMIN : POSTGRES_ADMIN;
  const { db } = await openKnex(admin, process.cwd(), 1);
  try {
    if (dialect === 'mysql') {
      await db.raw(`DROP DATABASE IF EXISTS \`${name}\``);
      await db.raw(`CREATE DATABASE \`${name}\``);
    } else {
      await db.raw(`DROP DATABASE IF EXISTS "${name}"`);
      await db.raw(`CREATE DATABASE "${name}"`);
    }
  } finally {
    await db.destroy();
  }
  const url = admin.replace(/\/[^/]+$/, `/${name}`);
  const { db: fresh, dialect: d } = await openKnex(url, process.cwd(), 1);
  try {
    await createTables(fresh, d);
  } finally {
    await fresh.destroy();
  }
  return url;
}

export async function pingDatabase(url: string): Promise<void> {
  const { db } = await openKnex(url, process.cwd(), 1);
  try {
    await db.raw('SELECT 1');
  } finally {
    await db.destroy();
  }
}

export interface Total {
  units: string;
  revenue: string;
}

/** The oracle: SQL GROUP BY over the table, money as exact text. */
export async function sqlTotals(url: string, where = '1=1'): Promise<Map<string, Total>> {
  const { db } = await openKnex(url, process.cwd(), 1);
  try {
    const rows = await db.raw(
      `SELECT product_name, brand, product_category, SUM(quantity_sold) AS units,
        CAST(SUM(quantity_sold * price_per_unit) AS CHAR(40)) AS revenue
      FROM product_sales WHERE ${where} GROUP BY product_name, brand, product_category`.replace(
        'AS CHAR(40)',
        url.startsWith('postgres') ? 'AS TEXT' : 'AS CHAR(40)',
      ),
    );
    const list = (url.startsWith('postgres') ? rows.rows : rows[0]) as Record<string, unknown>[];
    return new Map(
      list.map((r) => [`${r.product_name}|${r.brand}|${r.product_category}`, { units: String(r.units), revenue: String(r.revenue) }]),
    );
  } finally {
    await db.destroy();
  }
}

export function sqlite(file: string): Knex {
  return knexFactory({ client: 'better-sqlite3', connection: { filename: file }, useNullAsDefault: true });
}

/**
 * The demo's Parquet outputs under `dir` (read by pyarrow) against SQL over
 * its SQLite database: totals per product, and each sale archived once.
 * Prices are exact text in SQLite, so the oracle sums cents as integers.
 */
export async function checkDemoOutputs(dir: string): Promise<void> {
  const db = sqlite(path.join(dir, 'sales.db'));
  try {
    const want = await db.raw(`SELECT product_name, SUM(quantity_sold) AS units,
      SUM(quantity_sold * CAST(REPLACE(price_per_unit, '.', '') AS INTEGER)) AS cents
      FROM product_sales GROUP BY product_name`);
    const got = new Map(readParquet(path.join(dir, 'output/aggregated_product_sales')).map((x) => [x.product_name, x]));
    assert.equal(got.size, want.length);
    for (const w of want) {
      const g = got.get(w.product_name)!;
      assert.equal(g.total_quantity_sold, Number(w.units), w.product_name);
      assert.equal(g.total_revenue, (BigInt(w.cents) / 100n).toString() + '.' + String(BigInt(w.cents) % 100n).padStart(2, '0'));
    }
    const history = readParquet(path.join(dir, 'output/sales_history'));
    const [{ n }] = await db('product_sales').count({ n: '*' });
    assert.equal(history.length, Number(n), 'each sale archived once');
    assert.equal(new Set(history.map((h) => h.transaction_id)).size, Number(n));
  } finally {
    await db.destroy();
  }
}

/** Rows of a query, whichever database. */
export async function sqlRows(url: string, query: string): Promise<Record<string, unknown>[]> {
  const { db } = await openKnex(url, process.cwd(), 1);
  try {
    const r = await db.raw(query);
    return (url.startsWith('postgres') ? r.rows : r[0]) as Record<string, unknown>[];
  } finally {
    await db.destroy();
  }
}

/** Inserts rows into product_sales in order, in batches; returns their transaction ids. */
export async function insertSales(url: string, rows: object[]): Promise<number[]> {
  const { db } = await openKnex(url, process.cwd(), 1);
  const ids: number[] = [];
  try {
    for (let i = 0; i < rows.length; i += 500) {
      const batch = rows.slice(i, i + 500);
      if (url.startsWith('postgres')) {
        const r = await db('product_sales').insert(batch, ['transaction_id']);
        ids.push(...r.map((x: { transaction_id: number }) => Number(x.transaction_id)));
      } else {
        // One multi-row INSERT gets consecutive auto-increment ids; the first is returned.
        const [first] = await db('product_sales').insert(batch);
        ids.push(...batch.map((_r, j) => Number(first) + j));
      }
    }
  } finally {
    await db.destroy();
  }
  return ids;
}
