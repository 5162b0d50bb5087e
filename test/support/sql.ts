/** Database helpers for tests: fresh databases on the local services, SQL oracles. */
import knexFactory, { Knex } from 'knex';
import { openKnex } from '../../src/connections/sql.js';
import { createTables } from '../../src/gen/generate.js';

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
