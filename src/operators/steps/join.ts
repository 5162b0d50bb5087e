/**
 * @module `join` step: each stream row joined with a relational table kept
 * fresh in memory (a stream-table lookup join).
 *
 * Rules:
 * - `on` maps stream columns to table columns; the table side is unique by
 *   those columns (the last row read wins).
 * - `inner` drops a row without a match and counts it (shown in progress
 *   and the run summary); `left` keeps it with the table's columns null, and
 *   the planner makes those columns nullable so later steps are checked
 *   against that.
 * - The table is refreshed in the background (lookup-table.ts): a row sees
 *   the table as of at most `refresh` ago. A join is therefore not replayed
 *   against the table as it was: after a restart, replayed rows see today's
 *   table, as in every lookup join.
 *
 * @example
 *   - join:
 *       type: left
 *       table: { connection: sales_db, table: customer_data, refresh: 30s, schema: { customer_id: int, customer_segment: string } }
 *       on: { customer_id: customer_id }
 *       columns: [customer_segment]
 */
import type { StepDef, PlanContext, RunContext, StreamInfo, ConfigOf } from '../operator.js';
import type { ProblemCode } from '../../core/problems.js';
import { LookupTable, tableConfig, planTable, planOn, keyOf, describeTable } from '../lookup-table.js';
import { Row, Schema, Value, fieldOf } from '../../core/types.js';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['table', 'on'],
  properties: {
    type: {
      enum: ['inner', 'left'],
      default: 'inner',
      description: 'inner: rows without a match are dropped and counted; left: kept, with the table columns null.',
    },
    table: tableConfig,
    on: {
      type: 'object',
      minProperties: 1,
      additionalProperties: { type: 'string', description: 'Table column matched by this stream column.' },
      description: 'Stream column -> table column, e.g. { customer_id: customer_id }.',
    },
    columns: {
      oneOf: [
        { type: 'array', items: { type: 'string' }, uniqueItems: true },
        { type: 'object', additionalProperties: { type: 'string' } },
      ],
      description: 'Table columns added to each row: a list, or output name -> table column (default: every table column not in `on`).',
    },
  },
} as const;

type Config = ConfigOf<typeof config>;

interface Planned {
  cfg: Config;
  tableSchema: Schema;
  adds: [string, string][];
}

export const joinStep: StepDef<typeof config, Planned> = {
  key: 'join',
  doc: 'Joins each row with a relational table kept fresh in memory (inner or left, on one or more columns).',
  config,
  plan: planJoin,
  describe: (cfg) =>
    `${cfg.type} join ${describeTable(cfg.table)} on ${Object.entries(cfg.on)
      .map(([a, b]) => `${a} = ${b}`)
      .join(' and ')}`,
  create(p, ctx) {
    return new Join(p, ctx);
  },
};

function planJoin(cfg: Config, input: StreamInfo, c: PlanContext): { out: StreamInfo; planned: Planned } | undefined {
  const tableSchema = planTable(cfg.table, c, ['table']);
  let ok = true;
  const err = (p: (string | number)[], m: string, code: ProblemCode) => {
    ok = false;
    c.error(p, m, code);
  };
  planOn(cfg.on, input.schema, tableSchema, err);
  const keyCols = Object.values(cfg.on);
  const adds: [string, string][] =
    cfg.columns === undefined
      ? tableSchema.filter((f) => !keyCols.includes(f.name)).map((f) => [f.name, f.name])
      : isList(cfg.columns)
        ? cfg.columns.map((x): [string, string] => [x, x])
        : Object.entries(cfg.columns);
  const schema: Schema = [...input.schema];
  for (const [name, col] of adds) {
    const path = isList(cfg.columns) ? ['columns', cfg.columns.indexOf(col)] : cfg.columns ? ['columns', name] : ['columns'];
    const f = fieldOf(tableSchema, col);
    if (!f) {
      err(path, `column "${col}" is not declared in the table's schema`, 'column.unknown');
      continue;
    }
    if (fieldOf(input.schema, name)) {
      err(path, `column "${name}" is already in the stream; rename it, e.g. columns: { table_${name}: ${col} }`, 'column.duplicate');
      continue;
    }
    schema.push({ name, type: { ...f.type, nullable: f.type.nullable || cfg.type === 'left' } });
  }
  if (!ok) return undefined;
  return { out: { ...input, schema }, planned: { cfg, tableSchema, adds } };
}

const isList = (c: Config['columns']): c is Extract<Config['columns'], readonly string[]> => Array.isArray(c);

class Join {
  private table: LookupTable;
  private streamCols: string[];
  private misses = 0;
  private key: Value[] = [];

  private cfg: Config;

  constructor(
    private p: Planned,
    ctx: RunContext,
  ) {
    this.cfg = p.cfg;
    this.streamCols = Object.keys(p.cfg.on);
    this.table = new LookupTable(p.cfg.table, p.tableSchema, Object.values(p.cfg.on), ctx);
  }

  open() {
    return this.table.open();
  }
  close() {
    return this.table.close();
  }

  /** Rows are extended in place: a batch belongs to the flow, nobody else holds its rows. */
  process(rows: Row[]): Row[] {
    const out: Row[] = [];
    const { adds } = this.p;
    const left = this.cfg.type === 'left';
    const single = this.streamCols.length === 1 ? this.streamCols[0] : null;
    for (const r of rows) {
      let k;
      if (single !== null) k = r[single] ?? null;
      else {
        this.key.length = 0;
        for (const c of this.streamCols) this.key.push(r[c] ?? null);
        k = keyOf(this.key);
      }
      const hit = k === null ? undefined : this.table.get(k);
      if (!hit) {
        this.misses++;
        if (!left) continue;
      }
      for (let i = 0; i < adds.length; i++) r[adds[i][0]] = hit ? hit[adds[i][1]] : null;
      out.push(r);
    }
    return out;
  }

  counters() {
    return {
      [this.cfg.type === 'left' ? 'unmatched (kept with nulls)' : 'unmatched (dropped)']: this.misses,
      'table rows': this.table.size,
    };
  }

  snapshot() {
    return { misses: this.misses };
  }
  restore(s: unknown) {
    this.misses = (s as { misses?: number } | null)?.misses ?? 0;
  }
}
