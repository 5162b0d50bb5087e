/**
 * @module `balance` step: a running balance per key from an opening value
 * kept in a relational table and the stream's movements since then, e.g.
 * projected stock = inventory.stock_level - units sold since that row was
 * last updated.
 *
 * Rules:
 * - The table (kept fresh, lookup-table.ts) holds per key an `opening`
 *   balance counted at `asOf`. A stream row moves the balance by `add` (or
 *   `subtract`) when its event time is after `asOf`; earlier rows are
 *   already in the opening balance.
 * - Movements are kept per key and event time (summed per millisecond)
 *   only while they are after the table row's `asOf`, so the balance is
 *   exact whenever the table changes: a restock read a little late still
 *   counts exactly the sales after it, and releases the state before it.
 * - Output is an update stream keyed by the `on` columns: at each epoch end,
 *   every key whose balance changed (by a stream row or a table change, e.g.
 *   a restock with no sale since) is emitted; when the flow starts, every
 *   key of the table is (upserts downstream make that harmless). Keys with
 *   no table row are held (and counted) until one appears.
 *
 * @example
 *   - balance:
 *       table: { connection: sales_db, table: inventory, refresh: 5s, updatedAt: updated_at, schema: {...} }
 *       on: { product_name: product_name }
 *       opening: stock_level
 *       asOf: updated_at
 *       subtract: quantity_sold
 *       as: projected_stock
 */
import type { StepDef, PlanContext, RunContext, StreamInfo, DeadLetter, ConfigOf } from '../operator.js';
import type { ProblemCode } from '../../core/problems.js';
import { LookupTable, tableConfig, planTable, planOn, keyOf, Key, describeTable } from '../lookup-table.js';
import { planExpr } from '../expr-config.js';
import { RecordError, Eval } from '../../expr/compile.js';
import { ColumnType, POW10, Row, Schema, Value, fieldOf, typeName } from '../../core/types.js';
import { deadLetters } from '../record-schema.js';
import { entryId } from '../keyed-state.js';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['table', 'on', 'opening', 'asOf'],
  oneOf: [{ required: ['add'] }, { required: ['subtract'] }],
  properties: {
    table: tableConfig,
    on: {
      type: 'object',
      minProperties: 1,
      additionalProperties: { type: 'string', description: 'Table column matched by this stream column.' },
      description: 'Stream column -> table column: the balance key, e.g. { product_name: product_name }.',
    },
    opening: { type: 'string', description: 'Table column holding the balance counted at asOf (int or decimal), e.g. stock_level.' },
    asOf: { type: 'string', description: 'Table timestamp column: when the opening balance was counted, e.g. updated_at.' },
    add: { type: 'string', description: 'Expression added to the balance for each stream row after asOf.' },
    subtract: { type: 'string', description: 'Expression subtracted from the balance for each stream row after asOf, e.g. quantity_sold.' },
    eventTime: { type: 'string', description: "Stream event-time column compared with asOf (default: the source's eventTime)." },
    columns: {
      type: 'array',
      items: { type: 'string' },
      uniqueItems: true,
      description: 'Further table columns carried to the output, e.g. [brand, reorder_threshold].',
    },
    as: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', default: 'balance', description: 'Name of the balance column.' },
    movementAs: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
      default: 'movement',
      description: 'Name of the column with the sum of `add` (or `subtract`) since asOf, e.g. units_sold_since_update.',
    },
  },
} as const;

type Config = ConfigOf<typeof config>;

interface Planned {
  cfg: Config;
  inputSchema: Schema;
  tableSchema: Schema;
  eventTime: string;
  move: Eval;
  sign: 1 | -1;
  scale: number;
  openingScale: number;
}

export const balanceStep: StepDef<typeof config, Planned> = {
  key: 'balance',
  doc: "Running balance per key: an opening value from a relational table (kept fresh) plus the stream's movements after the row's as-of time; emits changed balances as an update stream.",
  config,
  plan: planBalance,
  describe: (b) =>
    `balance ${b.as} = ${b.opening} ${b.add !== undefined ? `+ sum(${b.add})` : `- sum(${b.subtract})`} after ${b.asOf}, from ${describeTable(b.table)} on ${Object.entries(
      b.on,
    )
      .map(([x, y]) => `${x} = ${y}`)
      .join(' and ')}`,
  create(p, ctx) {
    return new Balance(p, ctx);
  },
};

const scaleOf = (t: ColumnType) => (t.kind === 'decimal' ? (t.scale ?? 0) : 0);

function planBalance(cfg: Config, input: StreamInfo, c: PlanContext): { out: StreamInfo; planned: Planned } | undefined {
  let ok = true;
  const err = (p: (string | number)[], m: string, code: ProblemCode) => {
    ok = false;
    c.error(p, m, code);
  };
  const tableSchema = planTable(cfg.table, c, ['table']);
  const schema: Schema = [];
  for (const f of planOn(cfg.on, input.schema, tableSchema, err)) schema.push({ name: f.name, type: { ...f.type, nullable: false } });
  for (const [i, col] of (cfg.columns ?? []).entries()) {
    const f = fieldOf(tableSchema, col);
    if (!f) err(['columns', i], `column "${col}" is not declared in the table's schema`, 'column.unknown');
    else if (fieldOf(schema, col)) err(['columns', i], `column "${col}" is already a key column`, 'column.duplicate');
    else schema.push(f);
  }
  const opening = fieldOf(tableSchema, cfg.opening);
  if (!opening) err(['opening'], `column "${cfg.opening}" is not declared in the table's schema`, 'column.unknown');
  else if (opening.type.kind !== 'int' && opening.type.kind !== 'decimal')
    err(['opening'], `opening balance "${cfg.opening}" must be an int or a decimal, got ${typeName(opening.type)}`, 'type.mismatch');
  const asOf = fieldOf(tableSchema, cfg.asOf);
  if (!asOf) err(['asOf'], `column "${cfg.asOf}" is not declared in the table's schema`, 'column.unknown');
  else if (asOf.type.kind !== 'timestamp')
    err(['asOf'], `asOf column "${cfg.asOf}" must be a timestamp, got ${typeName(asOf.type)}`, 'type.mismatch');
  const eventTime = cfg.eventTime ?? input.eventTime;
  if (!eventTime) err([], "balance needs the stream's event time: set eventTime here or on the source", 'window.eventTime');
  else {
    const f = fieldOf(input.schema, eventTime);
    if (!f) err(['eventTime'], `unknown event-time column "${eventTime}"`, 'column.unknown');
    else if (f.type.kind !== 'timestamp') err(['eventTime'], `event-time column "${eventTime}" must be a timestamp`, 'type.mismatch');
  }
  const moveKey = cfg.add !== undefined ? 'add' : 'subtract';
  const move = planExpr(cfg.add ?? cfg.subtract, input.schema, c, [moveKey]);
  if (!move) ok = false;
  else if (move.type.kind !== 'int' && move.type.kind !== 'decimal')
    err([moveKey], `${moveKey} must be an int or decimal expression, got ${typeName(move.type)}`, 'type.mismatch');
  if (!ok || !opening || !asOf || !move) return undefined;
  const scale = Math.max(scaleOf(opening.type), scaleOf(move.type));
  const numType: ColumnType = scale ? { kind: 'decimal', precision: 18, scale, nullable: false } : { kind: 'int', nullable: false };
  const { as, movementAs } = cfg;
  for (const [name, f] of [
    [cfg.opening, { ...opening.type, nullable: false }],
    [cfg.asOf, { ...asOf.type, nullable: false }],
    [movementAs, numType],
    [as, numType],
  ] as const) {
    if (fieldOf(schema, name)) err([], `output column "${name}" would appear twice; rename with as/movementAs`, 'column.duplicate');
    schema.push({ name, type: f });
  }
  schema.push({ name: 'last_movement_at', type: { kind: 'timestamp', nullable: true } });
  if (input.mode !== 'append') err([], `balance needs an append stream of movements as input, got ${input.mode}`, 'mode.invalid');
  if (!ok) return undefined;
  // Movements are summed at the balance's scale.
  const up = POW10[scale - scaleOf(move.type)];
  const fn = move.fn;
  const moved: Eval =
    up === 1
      ? fn
      : (r) => {
          const v = fn(r);
          return v === null ? null : (v as number) * up;
        };
  return {
    out: { schema, mode: 'update', key: Object.keys(cfg.on) },
    planned: {
      cfg,
      inputSchema: input.schema,
      tableSchema,
      eventTime: eventTime!,
      move: moved,
      sign: cfg.add !== undefined ? 1 : -1,
      scale,
      openingScale: scaleOf(opening.type),
    },
  };
}

interface KeyState {
  key: Value[];
  /** Event time (ms) -> summed movement, only after the table row's asOf. */
  moves: Map<number, number>;
  last: number | null;
}

class Balance {
  private table: LookupTable;
  private state = new Map<Key, KeyState>();
  private dirty = new Set<Key>();
  /** For the changelog: keys whose entry changed, moves changed per key, moves removed. */
  private logKeys = new Set<Key>();
  private logMoves = new Map<Key, Set<number>>();
  private dropped: [Key, number][] = [];
  private move: Eval;
  private sign: number;
  private streamCols: string[];
  private key: Value[] = [];
  private held = 0;
  private seenVersion = -1;
  private toDead: (r: Row, reason: string) => DeadLetter;

  private cfg: Config;

  constructor(
    private p: Planned,
    ctx: RunContext,
  ) {
    this.cfg = p.cfg;
    this.streamCols = Object.keys(p.cfg.on);
    this.table = new LookupTable(p.cfg.table, p.tableSchema, Object.values(p.cfg.on), ctx, true);
    this.move = p.move;
    this.sign = p.sign;
    this.toDead = deadLetters(p.inputSchema, `${ctx.flow}/balance`);
  }

  open() {
    return this.table.open();
  }
  close() {
    return this.table.close();
  }

  private asOf(k: Key): number | null {
    const row = this.table.get(k);
    return row ? (row[this.cfg.asOf] as number | null) : null;
  }

  process(rows: Row[], dead: DeadLetter[]): Row[] {
    const et = this.p.eventTime;
    for (const r of rows) {
      this.key.length = 0;
      for (const c of this.streamCols) this.key.push(r[c] ?? null);
      const k = keyOf(this.key);
      const t = r[et] as number | null;
      if (k === null || t === null) {
        dead.push(this.toDead(r, `balance: ${k === null ? 'key' : 'event time'} is null`));
        continue;
      }
      let m: Value;
      try {
        m = this.move(r);
      } catch (e) {
        if (!(e instanceof RecordError)) throw e;
        dead.push(this.toDead(r, `balance: ${e.message}`));
        continue;
      }
      if (m === null || m === 0) continue;
      const asOf = this.asOf(k);
      if (asOf !== null && t <= asOf) continue; // already counted in the opening balance
      let s = this.state.get(k);
      if (!s) this.state.set(k, (s = { key: this.key.slice(), moves: new Map(), last: null }));
      s.moves.set(t, (s.moves.get(t) ?? 0) + (m as number));
      if (s.last === null || t > s.last) {
        s.last = t;
        this.logKeys.add(k);
      }
      let lm = this.logMoves.get(k);
      if (!lm) this.logMoves.set(k, (lm = new Set()));
      lm.add(t);
      this.dirty.add(k);
    }
    return [];
  }

  /** Balances to emit: table changes since the last epoch count as changes too. */
  pending(): boolean {
    return this.table.version !== this.seenVersion;
  }

  flush(): Row[] {
    this.seenVersion = this.table.version;
    for (const k of this.table.takeChanged()) {
      const s = this.state.get(k);
      const asOf = this.asOf(k);
      if (s && asOf !== null)
        for (const t of [...s.moves.keys()])
          if (t <= asOf) {
            s.moves.delete(t);
            this.logMoves.get(k)?.delete(t);
            this.dropped.push([k, t]);
          }
      if (this.table.get(k)) this.dirty.add(k);
    }
    const out: Row[] = [];
    const { cfg, p } = this;
    const up = POW10[p.scale - p.openingScale];
    this.held = 0;
    for (const k of [...this.dirty].sort((a, b) => (String(a) < String(b) ? -1 : 1))) {
      const row = this.table.get(k);
      if (!row) {
        this.held++;
        continue;
      }
      const s = this.state.get(k);
      let moved = 0;
      if (s) for (const v of s.moves.values()) moved += v;
      const opening = (row[cfg.opening] as number) ?? 0;
      const o: Row = {};
      const keyVals = s?.key ?? Object.values(cfg.on).map((c) => row[c]);
      this.streamCols.forEach((c, i) => {
        o[c] = keyVals[i];
      });
      for (const c of cfg.columns ?? []) o[c] = row[c];
      o[cfg.opening] = opening;
      o[cfg.asOf] = row[cfg.asOf];
      o[cfg.movementAs] = moved;
      o[cfg.as] = opening * up + this.sign * moved;
      o.last_movement_at = s?.last ?? null;
      out.push(o);
    }
    // Keys still without a table row stay dirty, to be emitted once it appears.
    this.dirty = new Set([...this.dirty].filter((k) => !this.table.get(k)));
    return out;
  }

  counters() {
    return { 'keys without a table row': this.held, 'table rows': this.table.size };
  }

  snapshot(): unknown {
    return [...this.state].map(([k, s]) => [k, s.key, [...s.moves], s.last]);
  }

  restore(state: unknown): void {
    this.state = new Map();
    for (const [k, key, moves, last] of state as [Key, Value[], [number, number][], number | null][]) {
      this.state.set(k, { key, moves: new Map(moves), last });
    }
  }

  /**
   * Changelog entries: `k/<key>` holds the key and its last movement time,
   * `m/<event time>/<key>` one movement sum, so an epoch logs the movements
   * it added or dropped, not every key's history.
   */
  stateChanges(all: boolean): [string, unknown][] {
    const out: [string, unknown][] = [];
    for (const [k, t] of this.dropped) out.push([`m/${t}/${entryId(k)}`, null]);
    if (all) {
      for (const [k, s] of this.state) {
        out.push([`k/${entryId(k)}`, [k, s.key, s.last]]);
        for (const [t, v] of s.moves) out.push([`m/${t}/${entryId(k)}`, v]);
      }
    } else {
      for (const k of this.logKeys) {
        const s = this.state.get(k)!;
        out.push([`k/${entryId(k)}`, [k, s.key, s.last]]);
      }
      for (const [k, ts] of this.logMoves) {
        const s = this.state.get(k)!;
        for (const t of ts) out.push([`m/${t}/${entryId(k)}`, s.moves.get(t)]);
      }
    }
    this.dropped = [];
    this.logKeys.clear();
    this.logMoves.clear();
    return out;
  }

  stateMeta(): unknown {
    return null;
  }

  loadState(_meta: unknown, entries: Map<string, unknown>): void {
    this.state = new Map();
    const byId = new Map<string, KeyState>();
    for (const [e, v] of entries) {
      if (!e.startsWith('k/')) continue;
      const [k, key, last] = v as [Key, Value[], number | null];
      const s: KeyState = { key, moves: new Map(), last };
      this.state.set(k, s);
      byId.set(e.slice(2), s);
    }
    for (const [e, v] of entries) {
      if (!e.startsWith('m/')) continue;
      const slash = e.indexOf('/', 2);
      const s = byId.get(e.slice(slash + 1));
      if (!s) throw new Error(`balance state: movement ${e} has no key entry`);
      s.moves.set(Number(e.slice(2, slash)), v as number);
    }
  }
}
