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
import type { StepDef, PlanContext, RunContext, StreamInfo } from './operator.js';
import { SILENT_PLAN } from './operator.js';
import { LookupTable, TableConfig, tableConfig, planTable, planOn, keyOf } from './lookup-table.js';
import { Row, Schema, Value, fieldOf } from '../types.js';

interface Config {
  type?: 'inner' | 'left';
  table: TableConfig;
  on: Record<string, string>;
  columns?: string[] | Record<string, string>;
}

export const joinStep: StepDef<Config> = {
  key: 'join',
  doc: 'Joins each row with a relational table kept fresh in memory (inner or left, on one or more columns).',
  config: {
    type: 'object',
    additionalProperties: false,
    required: ['table', 'on'],
    properties: {
      type: { enum: ['inner', 'left'], description: 'inner (default): rows without a match are dropped and counted; left: kept, with the table columns null.' },
      table: tableConfig,
      on: {
        type: 'object', minProperties: 1,
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
  },
  plan(cfg, input, ctx) {
    return planJoin(cfg, input, ctx)?.out;
  },
  create(cfg, input, out, ctx) {
    const p = planJoin(cfg, input, undefined)!;
    return new Join(cfg, p, out, ctx);
  },
};

interface Planned { out: StreamInfo; tableSchema: Schema; adds: [string, string][] }

function planJoin(cfg: Config, input: StreamInfo, ctx: PlanContext | undefined): Planned | undefined {
  const c = ctx ?? SILENT_PLAN;
  const tableSchema = planTable(cfg.table, c, ['table']);
  let ok = true;
  const err = (p: (string | number)[], m: string, code: string) => { ok = false; c.error(p, m, code); };
  planOn(cfg.on, input.schema, tableSchema, err);
  const keyCols = Object.values(cfg.on);
  const adds: [string, string][] = cfg.columns === undefined
    ? tableSchema.filter((f) => !keyCols.includes(f.name)).map((f) => [f.name, f.name])
    : Array.isArray(cfg.columns) ? cfg.columns.map((x) => [x, x]) : Object.entries(cfg.columns);
  const schema: Schema = [...input.schema];
  for (const [name, col] of adds) {
    const path = Array.isArray(cfg.columns) ? ['columns', cfg.columns.indexOf(col)] : cfg.columns ? ['columns', name] : ['columns'];
    const f = fieldOf(tableSchema, col);
    if (!f) { err(path, `column "${col}" is not declared in the table's schema`, 'column.unknown'); continue; }
    if (fieldOf(input.schema, name)) { err(path, `column "${name}" is already in the stream; rename it, e.g. columns: { table_${name}: ${col} }`, 'column.duplicate'); continue; }
    schema.push({ name, type: { ...f.type, nullable: f.type.nullable || cfg.type === 'left' } });
  }
  if (!ok) return undefined;
  return { out: { ...input, schema }, tableSchema, adds };
}

class Join {
  private table: LookupTable;
  private streamCols: string[];
  private misses = 0;
  private key: Value[] = [];

  constructor(private cfg: Config, private p: Planned, _out: StreamInfo, ctx: RunContext) {
    this.streamCols = Object.keys(cfg.on);
    this.table = new LookupTable(cfg.table, p.tableSchema, Object.values(cfg.on), ctx);
  }

  open() { return this.table.open(); }
  close() { return this.table.close(); }

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
    return { [this.cfg.type === 'left' ? 'unmatched (kept with nulls)' : 'unmatched (dropped)']: this.misses, 'table rows': this.table.size };
  }

  snapshot() { return { misses: this.misses }; }
  restore(s: unknown) { this.misses = (s as { misses?: number } | null)?.misses ?? 0; }
}
