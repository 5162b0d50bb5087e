/**
 * Rows committed out of id order by concurrent transactions (id N commits
 * after id N+1) must not be lost: real transactions on MariaDB and PostgreSQL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sqlSource } from '../../src/operators/sources/sql.js';
import { openKnex } from '../../src/connections/sql.js';
import { runContext } from '../support/run-ctx.js';
import { source } from '../support/operators.js';
import { freshDatabase, pingDatabase, MARIADB_ADMIN, POSTGRES_ADMIN } from '../support/sql.js';
import { needServices, uniq } from '../support/helpers.js';
import type { Source } from '../../src/operators/operator.js';

const sale = {
  product_name: 'Dell Inspiron',
  product_category: 'Laptop',
  brand: 'Dell',
  quantity_sold: 1,
  price_per_unit: '50000.00',
  transaction_date: '2026-01-15 10:00:00',
};
const cfg = {
  type: 'sql' as const,
  connection: 'db',
  table: 'product_sales',
  cursor: 'transaction_id',
  pollInterval: '10ms',
  gapTimeout: '60s',
  schema: {
    transaction_id: 'int',
    product_name: 'string',
    quantity_sold: 'int',
    price_per_unit: 'decimal(12,2)',
    transaction_date: 'timestamp',
  },
};

async function poll(src: Source): Promise<number[]> {
  const b = await src.next();
  return (b?.rows ?? []).map((r) => r.transaction_id as number);
}

for (const dialect of ['mysql', 'postgres'] as const) {
  test(`${dialect === 'mysql' ? 'MariaDB' : 'PostgreSQL'}: an id that commits after a later id is still read, once`, async (t) => {
    if (!(await needServices(t, () => pingDatabase(dialect === 'mysql' ? MARIADB_ADMIN : POSTGRES_ADMIN)))) return;
    const url = await freshDatabase(dialect, `sp_${uniq()}`);
    const { db } = await openKnex(url, process.cwd(), 4);
    const connections = { db: { type: 'sql', url } };
    const src = source(sqlSource, cfg, runContext({ connections, drain: false })).source;
    try {
      await db('product_sales').insert(sale);
      await src.open(undefined);
      assert.deepEqual(await poll(src), [1]);

      // Writer A takes id 2 and holds its transaction open; writer B takes id 3 and commits.
      const a = await db.transaction();
      const inserted =
        dialect === 'postgres' ? await a('product_sales').insert(sale, ['transaction_id']) : await a('product_sales').insert(sale);
      const idA = inserted[0] as unknown;
      await db.transaction(async (b) => {
        await b('product_sales').insert(sale);
      });
      const ids = await poll(src);
      assert.deepEqual(ids, [3], 'only the committed later id is visible');
      assert.deepEqual(
        (src.position() as { gaps: [number, number][] }).gaps.map((g) => g[0]),
        [2],
      );

      // A commits late: the next poll picks id 2 up from the open gap.
      await a.commit();
      assert.equal(Number(typeof idA === 'object' ? (idA as { transaction_id: number }).transaction_id : idA), 2);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(await poll(src), [2]);
      assert.deepEqual(src.position(), { hwm: 3, gaps: [] });
      // And nothing is read twice.
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(await poll(src), []);
    } finally {
      await src.close();
      await db.destroy();
    }
  });
}
