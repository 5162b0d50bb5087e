/**
 * @module `aggregate` step: running aggregates per group key.
 *
 * Rules:
 * - `compute` maps output columns to one aggregate call each: sum, count,
 *   min, max, avg over an expression (`count(*)` counts rows). Nulls are
 *   ignored, as in SQL.
 * - Sums of int and decimal are exact: they stay JS numbers while safe and
 *   move to BigInt past 2^53, so totals equal a SQL DECIMAL sum to the cent.
 * - Output is keyed by the group-by columns. `update` emits, at each epoch
 *   end, the groups that changed in it; `complete` emits every group. Rows
 *   are never appended: they are the latest value per key.
 * - State (every group's accumulators) is snapshotted into the checkpoint.
 * - With `window`, groups are per event-time window as well (tumbling, or
 *   hopping with `slide`), aligned to the pipeline's time zone. The
 *   watermark is the event time reached minus `lateness`, where the event
 *   time reached is the source's progress (for Kafka: the smallest of the
 *   partitions' largest event times) or else the largest event time seen.
 *   It advances after each batch and never goes back; a window is final
 *   once the watermark reaches its end. A row for a final window is late: it goes to the flow's late
 *   output (or its dead-letter output) with the reason and counts nowhere;
 *   a hopping row still counts in its windows that are open. Modes: append
 *   emits each window once, when final; update emits changed windows each
 *   epoch; complete emits every open window each epoch. Final windows are
 *   released from state after their last emission.
 *
 * @example
 *   - aggregate:
 *       groupBy: [product_name, brand, product_category]
 *       compute:
 *         total_quantity_sold: sum(quantity_sold)
 *         total_revenue: sum(quantity_sold * price_per_unit)
 *       mode: update
 */
import type { StepDef, StreamInfo, PlanContext, RunContext, DeadLetter } from './operator.js';
import { ExprError, parseExpr, Node } from '../expr/parse.js';
import { compileNode, RecordError, AGGREGATES, Eval } from '../expr/compile.js';
import { ColumnType, Row, Schema, Value, fieldOf, isNumeric, typeName, POW10 } from '../types.js';
import { WindowAssigner, formatTimestamp, parseDuration } from '../time.js';
import { deadLetters } from './record-schema.js';

interface WindowConfig {
  size: string;
  slide?: string;
  on?: string;
  lateness?: string;
}

interface Config {
  groupBy: string[];
  compute: Record<string, string>;
  mode?: 'update' | 'complete' | 'append';
  window?: WindowConfig;
}

export const WINDOW_START = 'window_start';
export const WINDOW_END = 'window_end';

type Fn = 'sum' | 'count' | 'min' | 'max' | 'avg';

interface AggSpec { name: string; fn: Fn; arg: Eval | null; argType: ColumnType | null; out: ColumnType }

export const aggregateStep: StepDef<Config> = {
  key: 'aggregate',
  doc: 'Running aggregates (sum, count, min, max, avg) per group; emits the changed groups (update) or all groups (complete) at each epoch end.',
  config: {
    type: 'object',
    additionalProperties: false,
    required: ['groupBy', 'compute'],
    properties: {
      groupBy: { type: 'array', items: { type: 'string' }, uniqueItems: true, description: 'Group key columns.' },
      compute: {
        type: 'object',
        minProperties: 1,
        propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
        additionalProperties: { type: 'string', description: 'One aggregate call, e.g. sum(quantity_sold * price_per_unit) or count(*).' },
        description: 'Output column -> aggregate expression.',
      },
      mode: { enum: ['update', 'complete', 'append'], description: 'update (changed groups each epoch, default), complete (all groups each epoch) or append (windowed only: each window once, when the watermark has passed it).' },
      window: {
        type: 'object',
        additionalProperties: false,
        required: ['size'],
        description: 'Event-time windows: adds window_start and window_end columns; groups are per window.',
        properties: {
          size: { type: 'string', description: 'Window length, e.g. 15m, 1h, 1d. Windows align to the time zone\'s hours and midnights.' },
          slide: { type: 'string', description: 'Hopping windows: a new window starts this often (default: size, i.e. tumbling).' },
          on: { type: 'string', description: 'Event-time column (default: the source\'s eventTime).' },
          lateness: { type: 'string', description: 'Allowed lateness: watermark = largest event time seen - lateness (default 0s).' },
        },
      },
    },
  },
  plan(cfg, input, ctx) {
    const schema: Schema = [];
    const win = cfg.window ? planWindow(cfg.window, input, ctx) : undefined;
    if (cfg.window) {
      schema.push({ name: WINDOW_START, type: { kind: 'timestamp', nullable: false } }, { name: WINDOW_END, type: { kind: 'timestamp', nullable: false } });
    }
    for (const [i, g] of cfg.groupBy.entries()) {
      const f = fieldOf(input.schema, g);
      if (!f) ctx.error(['groupBy', i], `unknown column "${g}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown');
      else if (cfg.window && (g === WINDOW_START || g === WINDOW_END)) ctx.error(['groupBy', i], `"${g}" is the window's own column`, 'column.duplicate');
      else schema.push(f);
    }
    for (const [name, src] of Object.entries(cfg.compute)) {
      if (cfg.groupBy.includes(name) || (cfg.window && (name === WINDOW_START || name === WINDOW_END))) ctx.error(['compute', name], `"${name}" is already a group-by or window column`, 'column.duplicate');
      const a = planAggregate(name, src, input.schema, ctx, ['compute', name]);
      if (a) schema.push({ name, type: a.out });
    }
    if (cfg.mode === 'append' && !cfg.window) {
      ctx.error(['mode'], 'append is not allowed for a running aggregate: its rows are updated, not final. Use update or complete, or add a window (rows of a window are final once the watermark passes its end)', 'mode.invalid');
    }
    if (input.mode !== 'append') ctx.error([], `aggregate needs an append stream as input, got ${input.mode}`, 'mode.invalid');
    if (cfg.window) {
      return { schema, mode: cfg.mode ?? 'update', key: [WINDOW_START, ...cfg.groupBy], eventTime: WINDOW_START, watermark: win } satisfies StreamInfo;
    }
    return { schema, mode: cfg.mode === 'complete' ? 'complete' : 'update', key: cfg.groupBy } satisfies StreamInfo;
  },
  create(cfg, input, _out, ctx) {
    return cfg.window ? new WindowedAggregate(cfg, input, ctx) : new Aggregate(cfg, input.schema, ctx);
  },
};

function planWindow(w: WindowConfig, input: StreamInfo, ctx: PlanContext): StreamInfo['watermark'] {
  let ok = true;
  const dur = (k: 'size' | 'slide' | 'lateness', d: string) => {
    const v = parseDuration(w[k] ?? d);
    if (v === undefined || (k !== 'lateness' && v <= 0)) { ctx.error(['window', k], `invalid duration "${w[k]}" (e.g. 15m, 1h, 1d)`, 'value.duration'); ok = false; }
    return v ?? 0;
  };
  const size = dur('size', ''), slide = w.slide === undefined ? size : dur('slide', ''), lateness = dur('lateness', '0s');
  if (ok && slide > size) { ctx.error(['window', 'slide'], `slide (${w.slide}) must not exceed size (${w.size}): rows between windows would be lost`, 'value.window'); ok = false; }
  const on = w.on ?? input.eventTime;
  if (!on) { ctx.error(['window'], 'a window needs an event-time column: set window.on, or eventTime on the source', 'window.eventTime'); ok = false; }
  else {
    const f = fieldOf(input.schema, on);
    if (!f) { ctx.error(w.on ? ['window', 'on'] : ['window'], `unknown event-time column "${on}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown'); ok = false; }
    else if (f.type.kind !== 'timestamp') { ctx.error(w.on ? ['window', 'on'] : ['window'], `event-time column "${on}" must be a timestamp, got ${typeName(f.type)}`, 'type.mismatch'); ok = false; }
  }
  return ok ? { on: on!, lateness, size, slide } : undefined;
}

function planAggregate(name: string, src: string, schema: Schema, ctx: PlanContext | RunContext, path: (string | number)[]): AggSpec | undefined {
  const report = (msg: string, code: string, offset: number) => {
    if ('error' in ctx) ctx.error(path, msg, code, offset);
    else throw new Error(`internal: ${msg}`);
  };
  let node: Node;
  try {
    node = parseExpr(String(src));
  } catch (e) {
    if (e instanceof ExprError) return void report(e.message, 'expr.syntax', e.offset);
    throw e;
  }
  if (node.t !== 'call' || !AGGREGATES.includes(node.name)) {
    return void report(`compute needs one aggregate call (${AGGREGATES.join(', ')}), e.g. sum(quantity_sold)`, 'expr.aggregate', node.pos);
  }
  const fn = node.name as Fn;
  if (node.star) {
    if (fn !== 'count') return void report(`${fn}(*) is not defined; only count(*)`, 'expr.aggregate', node.pos);
    return { name, fn, arg: null, argType: null, out: { kind: 'int', nullable: false } };
  }
  if (node.args.length !== 1) return void report(`${fn}() takes exactly one argument`, 'expr.aggregate', node.pos);
  let arg;
  try {
    arg = compileNode(node.args[0], schema, { timeZone: ctx.timeZone });
  } catch (e) {
    if (e instanceof ExprError) {
      return void report(e.message, /unknown column/.test(e.message) ? 'column.unknown' : 'type.mismatch', e.offset);
    }
    throw e;
  }
  const t = arg.type;
  let out: ColumnType;
  switch (fn) {
    case 'count': out = { kind: 'int', nullable: false }; break;
    case 'sum':
      if (!isNumeric(t)) return void report(`sum() needs a number, got ${typeName(t)}`, 'type.mismatch', node.args[0].pos);
      out = { ...t, nullable: t.nullable, precision: t.kind === 'decimal' ? 38 : undefined };
      break;
    case 'avg':
      if (!isNumeric(t)) return void report(`avg() needs a number, got ${typeName(t)}`, 'type.mismatch', node.args[0].pos);
      out = { kind: 'float', nullable: true };
      break;
    default:
      if (t.kind === 'bool') return void report(`${fn}() is not defined for bool`, 'type.mismatch', node.args[0].pos);
      out = { ...t, nullable: true };
  }
  return { name, fn, arg: arg.fn, argType: t, out };
}

/** Exact sum: a number while safe, a BigInt past 2^53. */
function addExact(a: number | bigint, b: number): number | bigint {
  if (typeof a === 'number') {
    const s = a + b;
    if (Number.isSafeInteger(s)) return s;
    return BigInt(a) + BigInt(b);
  }
  return a + BigInt(b);
}

type Acc = Value | [number | bigint, number];
interface Group { key: Value[]; acc: Acc[]; dirty: boolean }

/** Groups are found through one Map per group-by column: no key strings are built per row. */
type Level = Map<Value, Level | Group>;

/** The groups of one aggregate (or of one window), with the accumulators' arithmetic. */
class Groups {
  private root: Level = new Map();
  all: Group[] = [];
  changed: Group[] = [];

  constructor(private by: string[], private specs: AggSpec[]) {}

  find(key: Value[] | null, r: Row | null): Group {
    const by = this.by;
    let level = this.root;
    for (let i = 0; i < by.length - 1; i++) {
      const v = (r ? r[by[i]] : key![i]) ?? null;
      let next = level.get(v) as Level | undefined;
      if (!next) level.set(v, (next = new Map()));
      level = next;
    }
    const v = by.length ? (r ? r[by[by.length - 1]] : key![by.length - 1]) ?? null : null;
    let g = level.get(v) as Group | undefined;
    if (!g) {
      g = { key: key ?? by.map((c) => r![c] ?? null), acc: this.specs.map((s) => (s.fn === 'avg' ? [0, 0] as [number, number] : s.fn === 'count' ? 0 : null)), dirty: false };
      level.set(v, g);
      this.all.push(g);
    }
    return g;
  }

  /** Adds one row's evaluated arguments to its group. */
  add(r: Row, args: Value[]): void {
    const specs = this.specs;
    const g = this.find(null, r);
    const acc = g.acc;
    for (let i = 0; i < specs.length; i++) {
      const v = args[i];
      if (v === null) continue;
      switch (specs[i].fn) {
        case 'sum':
          acc[i] = specs[i].out.kind === 'float' ? ((acc[i] as number | null) ?? 0) + (v as number) : addExact((acc[i] as number | bigint | null) ?? 0, v as number);
          break;
        case 'count': acc[i] = (acc[i] as number) + 1; break;
        case 'min': if (acc[i] === null || (v as number) < (acc[i] as number)) acc[i] = v; break;
        case 'max': if (acc[i] === null || (v as number) > (acc[i] as number)) acc[i] = v; break;
        case 'avg': { const a = acc[i] as [number | bigint, number]; a[0] = addExact(a[0], v as number); a[1]++; break; }
      }
    }
    if (!g.dirty) { g.dirty = true; this.changed.push(g); }
  }

  row(g: Group, o: Row = {}): Row {
    this.by.forEach((c, i) => { o[c] = g.key[i]; });
    this.specs.forEach((s, i) => {
      const a = g.acc[i];
      if (s.fn === 'avg') {
        const [sum, n] = a as [number | bigint, number];
        const div = s.argType?.kind === 'decimal' ? POW10[s.argType.scale ?? 0] : 1;
        o[s.name] = n === 0 ? null : Number(sum) / div / n;
      } else o[s.name] = a as Value;
    });
    return o;
  }

  /** Marks every group unchanged; returns the ones that had changed. */
  takeChanged(): Group[] {
    const c = this.changed;
    for (const g of c) g.dirty = false;
    this.changed = [];
    return c;
  }

  snapshot(): [Value[], Acc[]][] {
    return this.all.map((g) => [g.key, g.acc]);
  }

  restore(state: [Value[], Acc[]][]): void {
    for (const [key, acc] of state) this.find(key, null).acc = acc;
  }
}

/**
 * Evaluates every aggregate argument of a row into `args` first, so that a
 * failing row changes nothing: it becomes a dead letter and false is returned.
 */
function evalArgs(specs: AggSpec[], args: Value[], r: Row, dead: DeadLetter[], toDead: (r: Row, reason: string) => DeadLetter): boolean {
  try {
    for (let i = 0; i < specs.length; i++) args[i] = specs[i].arg ? specs[i].arg!(r) : 1;
    return true;
  } catch (e) {
    if (!(e instanceof RecordError)) throw e;
    dead.push(toDead(r, `aggregate: ${e.message}`));
    return false;
  }
}

class Aggregate {
  private groups: Groups;
  private specs: AggSpec[];
  private args: Value[];
  private mode: 'update' | 'complete';
  private toDead: (r: Row, reason: string) => DeadLetter;

  constructor(private cfg: Config, schema: Schema, ctx: RunContext) {
    this.specs = Object.entries(cfg.compute).map(([n, s]) => planAggregate(n, s, schema, ctx, [])!);
    this.args = new Array(this.specs.length);
    this.mode = cfg.mode === 'complete' ? 'complete' : 'update';
    this.toDead = deadLetters(schema, `${ctx.flow}/aggregate`);
    this.groups = new Groups(cfg.groupBy, this.specs);
  }

  process(rows: Row[], dead: DeadLetter[]): Row[] {
    const { specs, args, groups } = this;
    for (const r of rows) {
      if (!evalArgs(specs, args, r, dead, this.toDead)) continue;
      groups.add(r, args);
    }
    return [];
  }

  flush(): Row[] {
    const changed = this.groups.takeChanged();
    return (this.mode === 'complete' ? this.groups.all : changed).map((g) => this.groups.row(g));
  }

  snapshot(): unknown {
    return this.groups.snapshot();
  }

  restore(state: unknown): void {
    this.groups = new Groups(this.cfg.groupBy, this.specs);
    this.groups.restore(state as [Value[], Acc[]][]);
  }
}

interface WindowState { start: number; end: number; groups: Groups }

interface WindowSnapshot { maxEventTime: number | null; windows: [number, [Value[], Acc[]][]][] }

class WindowedAggregate {
  private windows = new Map<number, WindowState>();
  private last: WindowState | null = null;
  private maxEventTime = -Infinity;
  private batchMax = -Infinity;
  private watermark_ = -Infinity;
  private specs: AggSpec[];
  private args: Value[];
  private starts: number[] = [];
  private missed: number[] = [];
  private assign: WindowAssigner;
  private on: string;
  private lateness: number;
  private mode: 'append' | 'update' | 'complete';
  private toDead: (r: Row, reason: string) => DeadLetter;

  constructor(private cfg: Config, input: StreamInfo, ctx: RunContext) {
    this.specs = Object.entries(cfg.compute).map(([n, s]) => planAggregate(n, s, input.schema, ctx, [])!);
    this.args = new Array(this.specs.length);
    const w = cfg.window!;
    const size = parseDuration(w.size)!;
    this.assign = new WindowAssigner(size, w.slide ? parseDuration(w.slide)! : size, ctx.timeZone);
    this.on = w.on ?? input.eventTime!;
    this.lateness = parseDuration(w.lateness ?? '0s')!;
    this.mode = cfg.mode ?? 'update';
    this.toDead = deadLetters(input.schema, `${ctx.flow}/aggregate`);
  }

  private window(start: number): WindowState {
    let w = this.windows.get(start);
    if (!w) {
      w = { start, end: this.assign.end(start), groups: new Groups(this.cfg.groupBy, this.specs) };
      this.windows.set(start, w);
    }
    return w;
  }

  process(rows: Row[], dead: DeadLetter[]): Row[] {
    const { specs, args, on, starts, missed } = this;
    const wm = this.watermark_;
    let max = this.batchMax;
    for (const r of rows) {
      const t = r[on] as number | null;
      if (t === null || t === undefined) {
        dead.push(this.toDead(r, `aggregate: event-time column ${on} is null`));
        continue;
      }
      if (!evalArgs(specs, args, r, dead, this.toDead)) continue;
      this.assign.starts(t, starts);
      missed.length = 0;
      for (const s of starts) {
        // Rows mostly fall in the window of the row before: no map lookup then.
        let w = this.last !== null && this.last.start === s ? this.last : this.windows.get(s);
        if (!w && this.assign.end(s) <= wm) { missed.push(s); continue; }
        if (!w) w = this.window(s);
        if (w.end <= wm) { missed.push(s); continue; }
        this.last = w;
        w.groups.add(r, args);
      }
      if (missed.length) dead.push(this.late(r, t, wm, missed));
      if (t > max) max = t;
    }
    this.batchMax = max;
    return [];
  }

  /** After a batch: the event time reached is the source's progress (null: not known yet), or else the largest seen. */
  advance(progress: number | null | undefined): void {
    const reached = progress === undefined ? this.batchMax : progress ?? -Infinity;
    this.batchMax = -Infinity;
    if (reached > this.maxEventTime) this.maxEventTime = reached;
    // The watermark never goes back.
    if (this.maxEventTime - this.lateness > this.watermark_) this.watermark_ = this.maxEventTime - this.lateness;
  }

  watermark(): number | undefined {
    return Number.isFinite(this.watermark_) ? this.watermark_ : undefined;
  }

  private late(r: Row, t: number, wm: number, missed: number[]): DeadLetter {
    const ws = missed.map((s) => `[${formatTimestamp(s)}, ${formatTimestamp(this.assign.end(s))})`).join(', ');
    return { ...this.toDead(r, `late: event time ${formatTimestamp(t)} is behind the watermark ${formatTimestamp(wm)}; window ${ws} already final`), late: true };
  }

  flush(): Row[] {
    const out: Row[] = [];
    const wm = this.watermark_;
    const ordered = [...this.windows.values()].sort((a, b) => a.start - b.start);
    for (const w of ordered) {
      const final = w.end <= wm;
      const changed = w.groups.takeChanged();
      const emit = this.mode === 'append' ? (final ? w.groups.all : []) : this.mode === 'complete' ? w.groups.all : changed;
      for (const g of emit) out.push(w.groups.row(g, { [WINDOW_START]: w.start, [WINDOW_END]: w.end }));
      if (final) this.windows.delete(w.start); // released: a later row for it is late
      if (final && this.last === w) this.last = null;
    }
    return out;
  }

  /** Open windows held in state (for tests and progress). */
  openWindows(): number {
    return this.windows.size;
  }

  snapshot(): unknown {
    return {
      maxEventTime: Number.isFinite(this.maxEventTime) ? this.maxEventTime : null,
      windows: [...this.windows.values()].map((w) => [w.start, w.groups.snapshot()]),
    } satisfies WindowSnapshot;
  }

  restore(state: unknown): void {
    const s = state as WindowSnapshot;
    this.windows = new Map();
    this.last = null;
    this.maxEventTime = s.maxEventTime ?? -Infinity;
    this.watermark_ = this.maxEventTime - this.lateness;
    for (const [start, groups] of s.windows) this.window(start).groups.restore(groups);
  }
}
