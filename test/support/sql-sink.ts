/** Checks of the sql sink, run on SQLite (unit) and on MariaDB and PostgreSQL (integration). */
import { plan as planOp } from './operators.js';
import assert from 'node:assert/strict';
import { sqlSink } from '../../src/operators/sinks/sql.js';
import type { PlanContext, RunContext, StreamInfo } from '../../src/operators/operator.js';
import type { Row } from '../../src/core/types.js';
import { openKnex } from '../../src/connections/sql.js';
import { connection } from '../../src/connections/config.js';
import { colType as t } from './types.js';
import type { TestContext } from 'node:test';
import { sinkContract, KEYED, type ContractRow } from './sink-contract.js';
import { runContext } from './run-ctx.js';
import { ROOT } from './helpers.js';

/**
 * Creates table `levels` through the sink, upserts an epoch twice (a replay
 * after a crash) and one more change, and reads the table back with SQL.
 */
export async function sqlSinkRoundTrip(ctx: RunContext, connName = 'db'): Promise<void> {
  const input: StreamInfo = {
    mode: 'update',
    key: ['product'],
    schema: [
      { name: 'product', type: t('string') },
      { name: 'units', type: t('int') },
      { name: 'revenue', type: t('decimal(12,2)') },
      { name: 'at', type: t('timestamp?') },
    ],
  };
  const cfg = { type: 'sql' as const, connection: connName, table: 'levels', create: true, batchSize: 2 };
  const errors: string[] = [];
  const plan: PlanContext = { error: (_p, m) => errors.push(m), warn: () => {}, connections: ctx.connections, timeZone: ctx.timeZone };
  const planned = planOp(sqlSink, cfg, input, plan);
  assert.deepEqual(errors, []);
  const run = async (rows: Row[]) => {
    const sink = sqlSink.create(planned, ctx);
    await sink.open(undefined, 0);
    await sink.write(rows);
    await sink.commit(1, await sink.preCommit(1));
    await sink.close();
  };
  const epoch = [
    { product: 'a', units: 1, revenue: 10, at: null },
    { product: 'b', units: 2, revenue: 2050, at: Date.UTC(2026, 0, 1) },
    { product: 'a', units: 3, revenue: 100000050, at: Date.UTC(2026, 0, 2, 3, 4, 5, 6) },
    { product: 'c', units: 1, revenue: 1, at: null },
  ];
  await run(epoch);
  await run(epoch); // a replay after a crash
  await run([{ product: 'b', units: 5, revenue: 2051, at: null }]);
  const { db, dialect } = await openKnex(connection(ctx, connName).url!, ctx.specDir, 1);
  try {
    const text = dialect === 'postgres' ? 'CAST(revenue AS TEXT)' : dialect === 'mysql' ? 'CAST(revenue AS CHAR)' : 'revenue';
    const rows = await db('levels')
      .select('product', 'units', db.raw(`${text} AS revenue`), 'at')
      .orderBy('product');
    assert.deepEqual(
      rows.map((r) => [r.product, Number(r.units), String(r.revenue), r.at === null ? null : String(r.at).slice(0, 23)]),
      [
        ['a', 3, '1000000.50', '2026-01-02 03:04:05.006'],
        ['b', 5, '20.51', null],
        ['c', 1, '0.01', null],
      ],
    );
  } finally {
    await db.destroy();
  }
}

/**
 * The sink contract on a fresh database of `dialect` (`fresh` returns its
 * URL, or undefined when the test was failed or skipped for want of the
 * server), read back with SQL: amounts cast to text, so they stay exact.
 */
export function sqlSinkSubject(dialect: 'sqlite' | 'mysql' | 'postgres', fresh: (t: TestContext) => Promise<string | undefined>): void {
  const name = { sqlite: 'SQLite', mysql: 'MariaDB', postgres: 'PostgreSQL' }[dialect];
  sinkContract({
    name: `sql on ${name}`,
    def: sqlSink,
    input: KEYED,
    async fresh(tc) {
      const url = await fresh(tc);
      if (!url) return undefined;
      const ctx = runContext({ specDir: ROOT, connections: { db: { type: 'sql', url } } });
      const { db } = await openKnex(url, ROOT, 1, { create: true });
      const text = dialect === 'postgres' ? 'CAST(amount AS TEXT)' : dialect === 'mysql' ? 'CAST(amount AS CHAR)' : 'amount';
      return {
        cfg: { type: 'sql', connection: 'db', table: 'contract', create: true, batchSize: 2 },
        ctx,
        visible: async () =>
          ((await db.schema.hasTable('contract'))
            ? await db('contract').select('id', 'name', db.raw(`${text} AS amount`))
            : []) as ContractRow[],
        dispose: () => db.destroy(),
      };
    },
  });
}
