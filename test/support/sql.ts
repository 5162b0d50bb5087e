/** Database helpers for tests: fresh databases on the local services, SQL oracles. */
import knexFactory, { Knex } from 'knex';
import { openKnex } from '../../src/operators/connections.js';
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

export interface Total { units: string; revenue: string }

/** The oracle: SQL GROUP BY over the table, money as exact text. */
export async function sqlTotals(url: string, where = '1=1'): Promise<Map<string, Total>> {
  const { db } = await openKnex(url, process.cwd(), 1);
  try {
    const rows = await db.raw(`SELECT product_name, brand, product_category, SUM(quantity_sold) AS units,
        CAST(SUM(quantity_sold * price_per_unit) AS CHAR(40)) AS revenue
      FROM product_sales WHERE ${where} GROUP BY product_name, brand, product_category`.replace('AS CHAR(40)', url.startsWith('postgres') ? 'AS TEXT' : 'AS CHAR(40)'));
    const list = (url.startsWith('postgres') ? rows.rows : rows[0]) as Record<string, unknown>[];
    return new Map(list.map((r) => [`${r.product_name}|${r.brand}|${r.product_category}`, { units: String(r.units), revenue: String(r.revenue) }]));
  } finally {
    await db.destroy();
  }
}

export function sqlite(file: string): Knex {
  return knexFactory({ client: 'better-sqlite3', connection: { filename: file }, useNullAsDefault: true });
}
