/**
 * @module `type: sql` sink: upserts rows by key into a relational table
 * (MySQL/MariaDB, PostgreSQL, SQLite).
 *
 * Rules:
 * - Rows are the latest value per key: within an epoch only the last row of
 *   each key is kept, and at preCommit all of them are upserted in one
 *   transaction, in batches (INSERT ... ON CONFLICT / ON DUPLICATE KEY
 *   UPDATE). The epoch's checkpoint is written only after that transaction
 *   commits; replaying an epoch after a crash upserts the same values
 *   again, so the table ends as an uninterrupted run leaves it.
 * - `create: true` creates the table when it is missing, with column types
 *   from the stream's schema and the key as primary key. An existing table
 *   must have a unique key on the key columns (ON CONFLICT needs one).
 * - Values are written exactly: decimals as their decimal text, timestamps
 *   as zone-less text in the pipeline's time zone (as the source reads them).
 */
import type { Knex } from 'knex';
import type { SinkDef, Sink, StreamInfo, RunContext, ConfigOf } from '../operator.js';
import { connectionField } from '../operator.js';
import { checkConnection, connection, Dialect, sqlWhere } from '../../connections/config.js';
import { withRetry } from '../../connections/retry.js';
import { ColumnType, Row, Schema, Value, fieldOf, formatDecimal, typeName } from '../../core/types.js';
import { naiveTimestamp } from '../../core/time.js';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'connection', 'table'],
  properties: {
    type: { const: 'sql' },
    connection: connectionField('sql'),
    table: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$', description: 'Table to upsert into.' },
    key: {
      type: 'array',
      items: { type: 'string' },
      minItems: 1,
      uniqueItems: true,
      description: 'Key columns (default: the stream key).',
    },
    create: { type: 'boolean', default: false, description: 'Create the table (key as primary key) when it does not exist.' },
    batchSize: { type: 'integer', minimum: 1, maximum: 10000, default: 500, description: 'Rows per INSERT statement.' },
  },
} as const;

type Config = ConfigOf<typeof config>;

interface Planned {
  cfg: Config;
  input: StreamInfo;
  key: string[];
}

export const sqlSink: SinkDef<typeof config, Planned> = {
  type: 'sql',
  doc: 'Upserts rows by key into a relational table (MySQL/MariaDB, PostgreSQL, SQLite), batched, one transaction per epoch.',
  config,
  delivery: 'idempotent',
  plan(cfg, input, ctx) {
    checkConnection(ctx, ['connection'], cfg.connection, 'sql');
    const key = cfg.key ? [...cfg.key] : input.key;
    let ok = true;
    if (!key?.length) {
      ok = false;
      ctx.error([], 'an sql sink upserts by key: set key, or feed it a keyed stream (an aggregate, a balance)', 'value.key');
    }
    for (const [i, k] of (key ?? []).entries()) {
      const f = fieldOf(input.schema, k);
      const at = cfg.key ? ['key', i] : [];
      if (!f) {
        ok = false;
        ctx.error(at, `unknown key column "${k}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown');
      } else if (f.type.nullable) {
        ok = false;
        ctx.error(
          at,
          `key column "${k}" is nullable (${typeName(f.type)}), but a primary key cannot hold null; filter the nulls out or coalesce() them first`,
          'type.nullable',
        );
      }
    }
    if (input.mode === 'append' && !cfg.key)
      ctx.warn([], 'an append stream upserted by its key keeps only the last row of each key', 'mode.append');
    return ok ? { cfg, input, key: key! } : undefined;
  },
  create(p, ctx) {
    return new SqlSink(p, ctx);
  },
};

export function columnDdl(t: ColumnType, dialect: Dialect, isKey: boolean): string {
  switch (t.kind) {
    case 'int':
      return 'bigint';
    case 'float':
      return dialect === 'mysql' ? 'double' : 'double precision';
    // SQLite would store a decimal as a double: text keeps it exact there.
    case 'decimal':
      return dialect === 'sqlite' ? 'text' : `decimal(${Math.max(t.precision ?? 18, 18)},${t.scale ?? 0})`;
    case 'string':
      return isKey || dialect === 'mysql' ? 'varchar(255)' : 'text';
    case 'json':
      return dialect === 'mysql' ? 'longtext' : 'text';
    case 'bool':
      return 'boolean';
    case 'timestamp':
      return dialect === 'mysql' ? 'datetime(3)' : dialect === 'postgres' ? 'timestamp(3)' : 'text';
  }
}

class SqlSink implements Sink {
  private db!: Knex;
  private dialect!: Dialect;
  private key: string[];
  private pending = new Map<string, Row>();
  private keyText;
  private toDb: (r: Row) => Record<string, unknown>;
  private log;

  private cfg: Config;
  private input: StreamInfo;

  constructor(
    p: Planned,
    private ctx: RunContext,
  ) {
    const { cfg, input } = p;
    this.cfg = cfg;
    this.input = input;
    this.key = p.key;
    const cols = this.key;
    this.keyText = (r: Row) =>
      JSON.stringify(
        cols.map((c) => {
          const v = r[c] ?? null;
          return typeof v === 'bigint' ? v.toString() : v;
        }),
      );
    this.toDb = dbRow(input.schema, ctx.timeZone);
    this.log = ctx.log.child(`sql ${cfg.table}`);
  }

  async open() {
    const c = connection(this.ctx, this.cfg.connection);
    const { openKnex } = await import('../../connections/sql.js');
    const k = await openKnex(c.url!, this.ctx.specDir, 2, { create: true });
    this.db = k.db;
    this.dialect = k.dialect;
    await withRetry(`connecting to ${sqlWhere(this.ctx, this.cfg.connection)}`, this.log, this.ctx.signal, async () => {
      const [schema, name] = this.cfg.table.includes('.') ? this.cfg.table.split('.') : [undefined, this.cfg.table];
      const sb = schema ? this.db.schema.withSchema(schema) : this.db.schema;
      if (await sb.hasTable(name)) return;
      if (!this.cfg.create)
        throw new Error(
          `table ${this.cfg.table} does not exist at ${sqlWhere(this.ctx, this.cfg.connection)}; create it, or set create: true on the sink`,
        );
      try {
        await sb.createTable(name, (t) => {
          for (const f of this.input.schema) {
            const isKey = this.key.includes(f.name);
            const col = t.specificType(f.name, columnDdl(f.type, this.dialect, isKey));
            if (isKey || !f.type.nullable) col.notNullable();
          }
          t.primary(this.key);
        });
      } catch (e) {
        // Another writer (a task of the same flow, another flow) created it meanwhile.
        if (await sb.hasTable(name)) return;
        throw e;
      }
      this.log.info(`created table ${this.cfg.table} (primary key ${this.key.join(', ')})`);
    });
  }

  async write(rows: Row[]) {
    for (const r of rows) {
      const k = this.keyText(r);
      this.pending.delete(k); // re-inserted last: upserts keep the epoch's order
      this.pending.set(k, r);
    }
  }

  async preCommit() {
    if (!this.pending.size) return null;
    const rows = [...this.pending.values()].map(this.toDb);
    const size = this.cfg.batchSize;
    const merge = this.input.schema.map((f) => f.name).filter((n) => !this.key.includes(n));
    await withRetry(`upserting into ${this.cfg.table}`, this.log, this.ctx.signal, () =>
      this.db.transaction(async (trx) => {
        for (let i = 0; i < rows.length; i += size) {
          const q = trx(this.cfg.table)
            .insert(rows.slice(i, i + size))
            .onConflict(this.key);
          await (merge.length ? q.merge(merge) : q.ignore());
        }
      }),
    );
    this.log.debug(`${rows.length} row(s) upserted`);
    this.pending.clear();
    return null;
  }

  async commit() {}

  async close() {
    await this.db?.destroy();
  }
}

/** Row values as the database takes them, exactly. */
function dbRow(schema: Schema, zone: string): (r: Row) => Record<string, unknown> {
  const conv = schema.map((f): [string, (v: NonNullable<Value>) => unknown] => {
    const t = f.type;
    if (t.kind === 'decimal') {
      const s = t.scale ?? 0;
      return [f.name, (v) => formatDecimal(v as number | bigint, s)];
    }
    if (t.kind === 'timestamp') return [f.name, (v) => naiveTimestamp(v as number, zone)];
    if (t.kind === 'int') return [f.name, (v) => (typeof v === 'bigint' ? v.toString() : v)];
    return [f.name, (v) => v];
  });
  return (r) => {
    const o: Record<string, unknown> = {};
    for (const [n, c] of conv) {
      const v = r[n];
      o[n] = v === null || v === undefined ? null : c(v);
    }
    return o;
  };
}
