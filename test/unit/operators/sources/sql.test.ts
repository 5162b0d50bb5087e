import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { sqlSource } from '../../../../src/operators/sources/sql.js';
import { createTables } from '../../../../src/gen/generate.js';
import { runContext } from '../../../support/run-ctx.js';
import { source } from '../../../support/operators.js';
import { sqlite } from '../../../support/sql.js';
import { tmpDir } from '../../../support/helpers.js';
import type { Source } from '../../../../src/operators/operator.js';
import { sourceContract, CONTRACT_SCHEMA, record } from '../../../support/source-contract.js';

const cfg = {
  type: 'sql' as const,
  connection: 'db',
  table: 'product_sales',
  cursor: 'transaction_id',
  batchSize: 2,
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
const sale = (id: number, q = 1) => ({
  transaction_id: id,
  product_name: 'Dell Inspiron',
  product_category: 'Laptop',
  brand: 'Dell',
  quantity_sold: q,
  price_per_unit: '50000.00',
  transaction_date: '2026-01-15 10:00:00',
});

async function setup() {
  const file = path.join(tmpDir(), 'sales.db');
  const db = sqlite(file);
  await createTables(db, 'sqlite');
  return { db, connections: { db: { type: 'sql', url: `sqlite:${file}` } } };
}

function make(connections: Record<string, { type: string; url: string }>, drain: boolean, over = {}) {
  const c = { ...cfg, ...over };
  return source(sqlSource, c, runContext({ connections, drain })).source;
}

async function readAll(src: Source): Promise<number[]> {
  const ids: number[] = [];
  for (;;) {
    const b = await src.next();
    if (!b) return ids;
    ids.push(...b.rows.map((r) => r.transaction_id as number));
  }
}

test('reads incrementally in batches, resumes from its position, never twice', async () => {
  const { db, connections } = await setup();
  try {
    await db('product_sales').insert([1, 2, 3, 4, 5].map((i) => sale(i)));
    let src = make(connections, true);
    await src.open(undefined);
    assert.deepEqual(await readAll(src), [1, 2, 3, 4, 5]);
    const pos = JSON.parse(JSON.stringify(src.position()));
    await src.close();
    await db('product_sales').insert([6, 7].map((i) => sale(i)));
    src = make(connections, true);
    await src.open(pos);
    assert.deepEqual(await readAll(src), [6, 7]);
    await src.close();
  } finally {
    await db.destroy();
  }
});

test('an id skipped by an out-of-order commit is picked up later, and its gap survives a restart', async () => {
  const { db, connections } = await setup();
  try {
    // ids 3 and 4 are "still in flight" when the source first polls
    await db('product_sales').insert([1, 2, 5, 6].map((i) => sale(i)));
    const src = make(connections, true);
    await src.open(undefined);
    assert.deepEqual(await readAll(src), [1, 2, 5, 6]);
    const pos = JSON.parse(JSON.stringify(src.position()));
    assert.deepEqual(
      pos.gaps.map((g: number[]) => g[0]),
      [3, 4],
    );
    await src.close();
    await db('product_sales').insert([sale(4), sale(3)]);
    const again = make(connections, true);
    await again.open(pos);
    assert.deepEqual((await readAll(again)).sort(), [3, 4]);
    assert.deepEqual(again.position(), { hwm: 6, gaps: [] });
    await again.close();
  } finally {
    await db.destroy();
  }
});

test('gaps that never fill (rolled back inserts) expire after gapTimeout', async () => {
  const { db, connections } = await setup();
  try {
    await db('product_sales').insert([1, 3].map((i) => sale(i)));
    const src = make(connections, true, { gapTimeout: '50ms' });
    await src.open(undefined);
    assert.deepEqual(await readAll(src), [1, 3]);
    const pos = src.position() as { gaps: [number, number][] };
    assert.equal(pos.gaps.length, 1);
    await new Promise((r) => setTimeout(r, 80));
    const again = make(connections, true, { gapTimeout: '50ms' });
    await again.open(pos);
    assert.deepEqual(await readAll(again), []);
    assert.deepEqual(again.position(), { hwm: 3, gaps: [] });
    await again.close();
    await src.close();
  } finally {
    await db.destroy();
  }
});

test('rows that do not fit the declared schema become dead letters with the row', async () => {
  const { db, connections } = await setup();
  try {
    await db('product_sales').insert([sale(1), { ...sale(2), price_per_unit: 'n/a' }, sale(3)]);
    const src = make(connections, true);
    await src.open(undefined);
    const dead = [];
    for (let b = await src.next(); b; b = await src.next()) dead.push(...b.dead);
    assert.equal(dead.length, 1);
    assert.match(dead[0].reason, /price_per_unit.*not a decimal/);
    assert.equal(JSON.parse(dead[0].payload).transaction_id, 2);
    await src.close();
  } finally {
    await db.destroy();
  }
});

sourceContract({
  name: 'sql on SQLite',
  def: sqlSource,
  async fresh() {
    const file = path.join(tmpDir(), 'contract.db');
    const db = sqlite(file);
    await db.schema.createTable('contract', (x) => {
      x.integer('id').primary();
      x.text('name').notNullable();
      x.decimal('amount', 12, 2).notNullable();
    });
    return {
      cfg: { type: 'sql', connection: 'db', table: 'contract', cursor: 'id', batchSize: 4, pollInterval: '20ms', schema: CONTRACT_SCHEMA },
      ctx: { connections: { db: { type: 'sql', url: `sqlite:${file}` } } },
      append: async (ids) => {
        await db('contract').insert(ids.map(record));
      },
      dispose: () => db.destroy(),
    };
  },
});
