/**
 * @module A relational table held in memory by key and kept fresh: the table
 * side of stream-table joins (`join`, `balance`).
 *
 * Rules:
 * - Loaded in full when the flow opens (retrying while the database is
 *   unreachable), then refreshed every `refresh` interval. With `updatedAt`
 *   a refresh reads only rows changed since the newest change seen (minus a
 *   settle margin, for rows committed late with an earlier timestamp) and a
 *   full reload every `fullRefresh` picks up deletions; without it every
 *   refresh is a full reload. A change is thus visible within `refresh`
 *   plus the query time.
 * - A failed refresh keeps the last good table, logs one warning per
 *   outage, and is retried on the next tick: the stream keeps flowing.
 * - A row that does not fit the declared schema is skipped with a warning
 *   naming its key; the other rows are unaffected.
 * - Keys are the `on` columns' values (their text, for several columns);
 *   the planner allows only columns of one kind (and decimals of one scale)
 *   on both sides, so equal values are equal keys.
 */
import type { Knex } from 'knex';
import type { PlanContext, RunContext, ConfigOf } from './operator.js';
import { connectionField } from './operator.js';
import { schemaConfig, planSchema, makeDecoder } from './record-schema.js';
import { checkConnection, connection, sqlWhere } from '../connections/config.js';
import { withRetry } from '../connections/retry.js';
import { parseDuration, naiveTimestamp } from '../core/time.js';
import { ColumnType, Field, Row, Schema, Value, fieldOf, typeName } from '../core/types.js';
import { redact } from '../core/log.js';
import type { ProblemCode } from '../core/problems.js';

export const tableConfig = {
  type: 'object',
  additionalProperties: false,
  required: ['connection', 'table', 'schema'],
  description: 'A relational table held in memory and kept fresh.',
  properties: {
    connection: connectionField('sql'),
    table: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$',
      description: 'Table to read, optionally schema-qualified.',
    },
    schema: schemaConfig,
    refresh: {
      type: 'string',
      default: '30s',
      description: 'How often the table is re-read; a change is visible to the join within this bound.',
    },
    updatedAt: { type: 'string', description: 'Timestamp column set on every insert and update: refreshes then read only changed rows.' },
    fullRefresh: {
      type: 'string',
      default: '10m',
      description: 'With updatedAt: how often the whole table is re-read, to see deleted rows.',
    },
  },
} as const;

/** A table as the spec gives it, defaults filled in. */
export type TableConfig = ConfigOf<typeof tableConfig>;

/** How explain names a lookup table. */
export const describeTable = (t: TableConfig) =>
  `table ${t.table} (refreshed every ${t.refresh}${t.updatedAt ? ` by ${t.updatedAt}` : ''})`;

/** Settle margin of incremental refreshes: a row committed this long after its updated_at is still seen. */
const SETTLE_MS = 60_000;

export function planTable(cfg: TableConfig, ctx: PlanContext, path: (string | number)[]): Schema {
  checkConnection(ctx, [...path, 'connection'], cfg.connection, 'sql');
  const schema = planSchema(cfg.schema, ctx, [...path, 'schema']);
  for (const k of ['refresh', 'fullRefresh'] as const) {
    if (cfg[k] !== undefined && !(parseDuration(cfg[k]!)! > 0))
      ctx.error([...path, k], `invalid duration "${cfg[k]}" (e.g. 5s, 1m)`, 'value.duration');
  }
  if (cfg.updatedAt) {
    const f = fieldOf(schema, cfg.updatedAt);
    if (!f) ctx.error([...path, 'updatedAt'], `column "${cfg.updatedAt}" is not declared in the table's schema`, 'column.unknown');
    else if (f.type.kind !== 'timestamp')
      ctx.error([...path, 'updatedAt'], `updatedAt column "${cfg.updatedAt}" must be a timestamp`, 'type.mismatch');
  }
  return schema;
}

/**
 * Checks `on` (stream column -> table column): both exist and are of one kind.
 * Returns the stream fields matched, in order.
 */
export function planOn(
  on: { readonly [k: string]: string },
  input: Schema,
  table: Schema,
  err: (p: (string | number)[], m: string, code: ProblemCode) => void,
): Field[] {
  const matched: Field[] = [];
  for (const [s, t] of Object.entries(on)) {
    const sf = fieldOf(input, s),
      tf = fieldOf(table, t);
    if (!sf) err(['on'], `unknown stream column "${s}"; available: ${input.map((f) => f.name).join(', ')}`, 'column.unknown');
    if (!tf) err(['on', s], `column "${t}" is not declared in the table's schema`, 'column.unknown');
    if (sf && tf && !joinable(sf.type, tf.type))
      err(['on', s], `cannot match ${s} (${typeName(sf.type)}) with ${t} (${typeName(tf.type)})`, 'type.mismatch');
    if (sf) matched.push(sf);
  }
  return matched;
}

/** Key values compare by their text, so both sides must be of one kind (and decimals of one scale); floats never. */
export function joinable(a: ColumnType, b: ColumnType): boolean {
  return a.kind === b.kind && a.kind !== 'float' && (a.kind !== 'decimal' || (a.scale ?? 0) === (b.scale ?? 0));
}

/** A table key: the value itself for one column (no string built per lookup), the values' text for several. */
export type Key = Exclude<Value, null>;

/** The key of `values`; null when any is null (a null never matches). */
export function keyOf(values: Value[]): Key | null {
  if (values.length === 1) return values[0];
  if (values.some((v) => v === null)) return null;
  return JSON.stringify(values.map(String));
}

export class LookupTable {
  private db!: Knex;
  private rows = new Map<Key, Row>();
  private decode;
  private columns: string[];
  private refreshMs: number;
  private fullMs: number;
  private lastFull = 0;
  private newest = -Infinity;
  private timer?: NodeJS.Timeout;
  private refreshing?: Promise<void>;
  private failing = false;
  private log;
  /** Keys whose row changed in refreshes not yet taken (see takeChanged). */
  private changed = new Set<Key>();
  /** Increments on every refresh that changed something. */
  version = 0;
  loadedAt = 0;

  /** `trackChanges`: remember changed keys for takeChanged (every key counts as changed by the first load). */
  constructor(
    private cfg: TableConfig,
    readonly schema: Schema,
    private keyColumns: string[],
    private ctx: RunContext,
    private trackChanges = false,
  ) {
    this.decode = makeDecoder(schema, { timeZone: ctx.timeZone, numericText: true });
    this.columns = schema.map((f) => f.name);
    this.refreshMs = parseDuration(cfg.refresh)!;
    this.fullMs = parseDuration(cfg.fullRefresh)!;
    this.log = ctx.log.child(`table ${cfg.table}`);
  }

  get size(): number {
    return this.rows.size;
  }

  async open(): Promise<void> {
    const given = this.ctx.tables;
    if (given) {
      // A bounded run with its own rows (`salespipe test`): no database, no refresh.
      const rows = given[this.cfg.table];
      if (!rows) throw new Error(`the test gives no rows for table ${this.cfg.table} (add tables: { ${this.cfg.table}: [...] })`);
      this.apply(rows, true);
      return;
    }
    const c = connection(this.ctx, this.cfg.connection);
    const [{ openKnex }, { openTable }] = await Promise.all([import('../connections/sql.js'), import('./sql-table.js')]);
    const k = await openKnex(c.url!, this.ctx.specDir, 2);
    this.db = k.db;
    await openTable(
      this.db,
      k.dialect,
      this.cfg.table,
      this.columns,
      this.schema,
      sqlWhere(this.ctx, this.cfg.connection),
      this.log,
      this.ctx.signal,
    );
    await withRetry(`loading ${this.cfg.table} from ${redact(c.url!)}`, this.log, this.ctx.signal, () => this.refresh(true));
    this.log.info(
      `${this.rows.size} row(s) loaded; refreshed every ${this.refreshMs} ms${this.cfg.updatedAt ? ` by ${this.cfg.updatedAt}` : ''}`,
    );
    this.schedule();
  }

  private schedule() {
    if (this.ctx.signal.aborted) return;
    this.timer = setTimeout(() => {
      const full = !this.cfg.updatedAt || Date.now() - this.lastFull >= this.fullMs;
      this.refreshing = this.refresh(full)
        .then(() => {
          if (this.failing) this.log.info('refresh works again');
          this.failing = false;
        })
        .catch((e) => {
          if (!this.failing)
            this.log.warn(
              `refresh failed (${redact((e as Error).message)}); keeping the last loaded rows and retrying every ${this.refreshMs} ms`,
            );
          this.failing = true;
        })
        .finally(() => {
          this.refreshing = undefined;
          this.schedule();
        });
    }, this.refreshMs);
    this.timer.unref();
  }

  /** Reads the table (all of it, or what changed) and applies it; all or nothing. */
  async refresh(full: boolean): Promise<void> {
    let q = this.db(this.cfg.table).select(this.columns);
    if (!full && Number.isFinite(this.newest))
      q = q.where(this.cfg.updatedAt!, '>=', naiveTimestamp(this.newest - SETTLE_MS, this.ctx.timeZone));
    this.apply((await q) as Record<string, unknown>[], full);
  }

  private apply(raw: Record<string, unknown>[], full: boolean): void {
    const next = full ? new Map<Key, Row>() : this.rows;
    let skipped = 0;
    let newest = this.newest;
    for (const r of raw) {
      const row = this.decode(r);
      if (typeof row === 'string') {
        if (++skipped <= 3) this.log.warn(`row with key ${this.keyColumns.map((k) => String(r[k])).join(', ')} skipped: ${row}`);
        continue;
      }
      const k = keyOf(this.keyColumns.map((c) => row[c]));
      if (k === null) continue;
      if (this.trackChanges && !sameRow(this.rows.get(k), row, this.columns)) this.changed.add(k);
      next.set(k, row);
      if (this.cfg.updatedAt) {
        const u = row[this.cfg.updatedAt] as number | null;
        if (u !== null && u > newest) newest = u;
      }
    }
    if (skipped > 3) this.log.warn(`${skipped} row(s) of ${this.cfg.table} skipped in all`);
    if (full) {
      if (this.trackChanges) for (const k of this.rows.keys()) if (!next.has(k)) this.changed.add(k);
      this.rows = next;
      this.lastFull = Date.now();
    }
    this.newest = newest;
    if (this.changed.size) this.version++;
    this.loadedAt = Date.now();
  }

  get(key: Key): Row | undefined {
    return this.rows.get(key);
  }

  /** Keys changed (added, updated, deleted) since the last call. */
  takeChanged(): Key[] {
    const c = [...this.changed];
    this.changed.clear();
    return c;
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.refreshing;
    await this.db?.destroy();
  }
}

function sameRow(a: Row | undefined, b: Row, columns: string[]): boolean {
  return !!a && columns.every((c) => a[c] === b[c]);
}
