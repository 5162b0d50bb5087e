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
import { deadRow } from './record-schema.js';

interface Config {
  groupBy: string[];
  compute: Record<string, string>;
  mode?: 'update' | 'complete';
}

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
      mode: { enum: ['update', 'complete', 'append'], description: 'update (changed groups each epoch, default) or complete (all groups each epoch). append is refused: a running aggregate changes.' },
    },
  },
  plan(cfg, input, ctx) {
    const schema: Schema = [];
    for (const [i, g] of cfg.groupBy.entries()) {
      const f = fieldOf(input.schema, g);
      if (!f) ctx.error(['groupBy', i], `unknown column "${g}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown');
      else schema.push(f);
    }
    for (const [name, src] of Object.entries(cfg.compute)) {
      if (cfg.groupBy.includes(name)) ctx.error(['compute', name], `"${name}" is already a group-by column`, 'column.duplicate');
      const a = planAggregate(name, src, input.schema, ctx, ['compute', name]);
      if (a) schema.push({ name, type: a.out });
    }
    if ((cfg.mode as string) === 'append') {
      ctx.error(['mode'], 'append is not allowed for a running aggregate: its rows are updated, not final. Use update or complete (or a windowed aggregate with a watermark)', 'mode.invalid');
    }
    if (input.mode !== 'append') ctx.error([], `aggregate needs an append stream as input, got ${input.mode}`, 'mode.invalid');
    return { schema, mode: cfg.mode === 'complete' ? 'complete' : 'update', key: cfg.groupBy } satisfies StreamInfo;
  },
  create(cfg, input, _out, ctx) {
    return new Aggregate(cfg, input.schema, ctx);
  },
};

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

interface Group { key: Value[]; acc: (Value | [number | bigint, number])[]; dirty: boolean }

/** Groups are found through one Map per group-by column: no key strings are built per row. */
type Level = Map<Value, Level | Group>;

class Aggregate {
  private root: Level = new Map();
  private all: Group[] = [];
  private changed: Group[] = [];
  private specs: AggSpec[];
  private args: Value[];
  private mode: 'update' | 'complete';
  private origin: string;

  constructor(private cfg: Config, schema: Schema, ctx: RunContext) {
    this.specs = Object.entries(cfg.compute).map(([n, s]) => planAggregate(n, s, schema, ctx, [])!);
    this.args = new Array(this.specs.length);
    this.mode = cfg.mode === 'complete' ? 'complete' : 'update';
    this.origin = `${ctx.flow}/aggregate`;
  }

  private group(key: Value[] | null, r: Row | null): Group {
    const by = this.cfg.groupBy;
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

  process(rows: Row[], dead: DeadLetter[]): Row[] {
    const specs = this.specs;
    const args = this.args;
    for (const r of rows) {
      // Evaluate every argument first, so a failing row changes nothing.
      try {
        for (let i = 0; i < specs.length; i++) args[i] = specs[i].arg ? specs[i].arg!(r) : 1;
      } catch (e) {
        if (!(e instanceof RecordError)) throw e;
        dead.push(deadRow(r, `aggregate: ${e.message}`, this.origin));
        continue;
      }
      const g = this.group(null, r);
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
    return [];
  }

  private row(g: Group): Row {
    const o: Row = {};
    this.cfg.groupBy.forEach((c, i) => { o[c] = g.key[i]; });
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

  flush(): Row[] {
    const out = (this.mode === 'complete' ? this.all : this.changed).map((g) => this.row(g));
    for (const g of this.changed) g.dirty = false;
    this.changed = [];
    return out;
  }

  snapshot(): unknown {
    return this.all.map((g) => [g.key, g.acc]);
  }

  restore(state: unknown): void {
    this.root = new Map();
    this.all = [];
    this.changed = [];
    for (const [key, acc] of state as [Value[], Group['acc']][]) this.group(key, null).acc = acc;
  }
}
