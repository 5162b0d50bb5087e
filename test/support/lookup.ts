/**
 * What the lookup steps' tests share: an embedded SQLite database holding
 * the customer and inventory tables (the same knex code paths as MariaDB and
 * PostgreSQL, which the integration tests cover), a stream of sales, and
 * the tables' configs.
 */
import path from 'node:path';
import type { PlanContext, StreamInfo } from '../../src/operators/operator.js';
import { colType as t } from './types.js';
import { runContext } from './run-ctx.js';
import { tmpDir } from './helpers.js';
import { sqlite } from './sql.js';

/** Reports problems as `path: message [code]` into `errors`. */
export function planCtx(errors: string[] = []): PlanContext {
  return {
    error: (p, m, c) => errors.push(`${p.join('.')}: ${m} [${c}]`),
    warn: () => {},
    connections: { db: { type: 'sql', url: 'sqlite:test.db' } },
    timeZone: 'UTC',
  };
}

export async function database() {
  const dir = tmpDir();
  const db = sqlite(path.join(dir, 'test.db'));
  await db.schema.createTable('customer_data', (x) => {
    x.integer('customer_id').primary();
    x.text('customer_segment').notNullable();
    x.text('updated_at').notNullable();
  });
  await db.schema.createTable('inventory', (x) => {
    x.text('product_name');
    x.integer('stock_level');
    x.integer('reorder_threshold').nullable();
    x.text('updated_at');
    x.primary(['product_name']);
  });
  const ctx = runContext({ specDir: dir, connections: { db: { type: 'sql', url: 'sqlite:test.db' } } });
  return { db, ctx };
}

export const sales: StreamInfo = {
  mode: 'append',
  eventTime: 'ts',
  schema: [
    { name: 'id', type: t('int') },
    { name: 'customer_id', type: t('int?') },
    { name: 'product', type: t('string') },
    { name: 'qty', type: t('int') },
    { name: 'ts', type: t('timestamp') },
  ],
};

export const customerTable = {
  connection: 'db',
  table: 'customer_data',
  refresh: '50ms',
  updatedAt: 'updated_at',
  schema: { customer_id: 'int', customer_segment: 'string', updated_at: 'timestamp' },
};

export const inventoryTable = {
  connection: 'db',
  table: 'inventory',
  refresh: '50ms',
  updatedAt: 'updated_at',
  schema: { product_name: 'string', stock_level: 'int', reorder_threshold: 'int?', updated_at: 'timestamp' },
};
