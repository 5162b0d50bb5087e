/**
 * @module `aggregate` step: aggregates per group key, running or per
 * event-time window.
 *
 * Rules:
 * - `compute` maps output columns to one aggregate call each: sum, count,
 *   min, max, avg over an expression (`count(*)` counts rows). Nulls are
 *   ignored, as in SQL. Sums of int and decimal are exact (groups.ts), so
 *   totals equal a SQL DECIMAL sum to the cent.
 * - Without `window` (running.ts): output keyed by the group-by columns;
 *   `update` emits, at each epoch end, the groups that changed in it,
 *   `complete` every group. Rows are never appended: they are the latest
 *   value per key.
 * - With `window` (windowed.ts): groups per event-time window too, keyed by
 *   (window_start, group-by columns); the watermark decides when a window
 *   is final; `append` emits each window once, when final.
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
import type { StepDef, StreamInfo, PlanContext } from '../../operator.js';
import { ExprError, parseExpr, Node } from '../../../expr/parse.js';
import { compileNode, AGGREGATES } from '../../../expr/compile.js';
import { ColumnType, Schema, fieldOf, isNumeric, typeName } from '../../../core/types.js';
import { parseDuration } from '../../../core/time.js';
import { deadLetters } from '../../record-schema.js';
import type { ProblemCode } from '../../../core/problems.js';
import type { AggSpec, Fn } from './groups.js';
import { Aggregate } from './running.js';
import { WindowedAggregate, WindowSpec, WINDOW_START, WINDOW_END } from './windowed.js';

export { WINDOW_START, WINDOW_END };

const config = {
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
    mode: {
      enum: ['update', 'complete', 'append'],
      default: 'update',
      description:
        'update (changed groups each epoch), complete (all groups each epoch) or append (windowed only: each window once, when the watermark has passed it).',
    },
    window: {
      type: 'object',
      additionalProperties: false,
      required: ['size'],
      description: 'Event-time windows: adds window_start and window_end columns; groups are per window.',
      properties: {
        size: { type: 'string', description: "Window length, e.g. 15m, 1h, 1d. Windows align to the time zone's hours and midnights." },
        slide: { type: 'string', description: 'Hopping windows: a new window starts this often (default: size, i.e. tumbling).' },
        on: { type: 'string', description: "Event-time column (default: the source's eventTime)." },
        lateness: { type: 'string', default: '0s', description: 'Allowed lateness: watermark = largest event time seen - lateness.' },
      },
    },
  },
} as const;

interface Planned {
  groupBy: string[];
  specs: AggSpec[];
  mode: 'update' | 'complete' | 'append';
  window?: WindowSpec;
  inputSchema: Schema;
}

export const aggregateStep: StepDef<typeof config, Planned> = {
  key: 'aggregate',
  doc: 'Aggregates (sum, count, min, max, avg) per group, running or per event-time window; emits the changed groups (update), all groups (complete) or final windows (append) at each epoch end.',
  config,
  plan(cfg, input, ctx) {
    const groupBy = [...cfg.groupBy];
    const schema: Schema = [];
    const win = cfg.window ? planWindow(cfg.window, input, ctx) : undefined;
    if (cfg.window) {
      schema.push(
        { name: WINDOW_START, type: { kind: 'timestamp', nullable: false } },
        { name: WINDOW_END, type: { kind: 'timestamp', nullable: false } },
      );
    }
    let ok = true;
    for (const [i, g] of groupBy.entries()) {
      const f = fieldOf(input.schema, g);
      if (!f) {
        ok = false;
        ctx.error(['groupBy', i], `unknown column "${g}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown');
      } else if (cfg.window && (g === WINDOW_START || g === WINDOW_END)) {
        ok = false;
        ctx.error(['groupBy', i], `"${g}" is the window's own column`, 'column.duplicate');
      } else schema.push(f);
    }
    const specs: AggSpec[] = [];
    for (const [name, src] of Object.entries(cfg.compute)) {
      if (groupBy.includes(name) || (cfg.window && (name === WINDOW_START || name === WINDOW_END))) {
        ok = false;
        ctx.error(['compute', name], `"${name}" is already a group-by or window column`, 'column.duplicate');
      }
      const a = planAggregate(name, src, input.schema, ctx, ['compute', name]);
      if (a) {
        specs.push(a);
        schema.push({ name, type: a.out });
      } else ok = false;
    }
    if (cfg.mode === 'append' && !cfg.window) {
      ok = false;
      ctx.error(
        ['mode'],
        'append is not allowed for a running aggregate: its rows are updated, not final. Use update or complete, or add a window (rows of a window are final once the watermark passes its end)',
        'mode.invalid',
      );
    }
    if (input.mode !== 'append') {
      ok = false;
      ctx.error([], `aggregate needs an append stream as input, got ${input.mode}`, 'mode.invalid');
    }
    if (cfg.window && !win) ok = false;
    const planned: Planned = { groupBy, specs, mode: cfg.mode, window: win, inputSchema: input.schema };
    const out: StreamInfo = win
      ? { schema, mode: cfg.mode, key: [WINDOW_START, ...groupBy], eventTime: WINDOW_START, watermark: win }
      : { schema, mode: cfg.mode === 'complete' ? 'complete' : 'update', key: groupBy };
    return { out, planned: ok ? planned : (undefined as never) };
  },
  describe: (cfg) =>
    `aggregate by (${cfg.groupBy.join(', ')}): ${Object.entries(cfg.compute)
      .map(([k, v]) => `${k} = ${v}`)
      .join('; ')}`,
  create(p, ctx) {
    const toDead = deadLetters(p.inputSchema, `${ctx.flow}/aggregate`);
    return p.window
      ? new WindowedAggregate(p.groupBy, p.specs, p.window, ctx.timeZone, p.mode, toDead)
      : new Aggregate(p.groupBy, p.specs, p.mode === 'complete' ? 'complete' : 'update', toDead);
  },
};

type WindowConfig = NonNullable<Parameters<typeof aggregateStep.plan>[0]['window']>;

function planWindow(w: WindowConfig, input: StreamInfo, ctx: PlanContext): WindowSpec | undefined {
  let ok = true;
  const dur = (k: 'size' | 'slide' | 'lateness', text: string) => {
    const v = parseDuration(text);
    if (v === undefined || (k !== 'lateness' && v <= 0)) {
      ctx.error(['window', k], `invalid duration "${text}" (e.g. 15m, 1h, 1d)`, 'value.duration');
      ok = false;
    }
    return v ?? 0;
  };
  const size = dur('size', w.size),
    slide = w.slide === undefined ? size : dur('slide', w.slide),
    lateness = dur('lateness', w.lateness);
  if (ok && slide > size) {
    ctx.error(
      ['window', 'slide'],
      `slide (${w.slide}) must not exceed size (${w.size}): rows between windows would be lost`,
      'value.window',
    );
    ok = false;
  }
  const on = w.on ?? input.eventTime;
  if (!on) {
    ctx.error(['window'], 'a window needs an event-time column: set window.on, or eventTime on the source', 'window.eventTime');
    ok = false;
  } else {
    const f = fieldOf(input.schema, on);
    if (!f) {
      ctx.error(
        w.on ? ['window', 'on'] : ['window'],
        `unknown event-time column "${on}"; available: ${input.schema.map((x) => x.name).join(', ')}`,
        'column.unknown',
      );
      ok = false;
    } else if (f.type.kind !== 'timestamp') {
      ctx.error(
        w.on ? ['window', 'on'] : ['window'],
        `event-time column "${on}" must be a timestamp, got ${typeName(f.type)}`,
        'type.mismatch',
      );
      ok = false;
    }
  }
  return ok ? { on: on!, lateness, size, slide } : undefined;
}

/** Parses and type-checks one `compute` entry (one aggregate call), reporting at its position (also the forecast step's target). */
export function planAggregate(name: string, src: string, schema: Schema, ctx: PlanContext, path: (string | number)[]): AggSpec | undefined {
  const report = (msg: string, code: ProblemCode, at: { start: number; end: number } | ExprError) =>
    at instanceof ExprError
      ? ctx.error(path, msg, code, at.offset, at.length)
      : ctx.error(path, msg, code, at.start, Math.max(1, at.end - at.start));
  let node: Node;
  try {
    node = parseExpr(String(src));
  } catch (e) {
    if (e instanceof ExprError) return void report(e.message, e.code, e);
    throw e;
  }
  if (node.t !== 'call' || !AGGREGATES.includes(node.name)) {
    return void report(`compute needs one aggregate call (${AGGREGATES.join(', ')}), e.g. sum(quantity_sold)`, 'expr.aggregate', node);
  }
  const fn = node.name as Fn;
  if (node.star) {
    if (fn !== 'count') return void report(`${fn}(*) is not defined; only count(*)`, 'expr.aggregate', node);
    return { name, fn, arg: null, argType: null, out: { kind: 'int', nullable: false } };
  }
  if (node.args.length !== 1) return void report(`${fn}() takes exactly one argument`, 'expr.aggregate', node);
  let arg;
  try {
    arg = compileNode(node.args[0], schema, { timeZone: ctx.timeZone });
  } catch (e) {
    if (e instanceof ExprError) return void report(e.message, e.code, e);
    throw e;
  }
  const t = arg.type;
  let out: ColumnType;
  switch (fn) {
    case 'count':
      out = { kind: 'int', nullable: false };
      break;
    case 'sum':
      if (!isNumeric(t)) return void report(`sum() needs a number, got ${typeName(t)}`, 'type.mismatch', node.args[0]);
      out = { ...t, nullable: t.nullable, precision: t.kind === 'decimal' ? 38 : undefined };
      break;
    case 'avg':
      if (!isNumeric(t)) return void report(`avg() needs a number, got ${typeName(t)}`, 'type.mismatch', node.args[0]);
      out = { kind: 'float', nullable: true };
      break;
    default:
      if (t.kind === 'bool') return void report(`${fn}() is not defined for bool`, 'type.mismatch', node.args[0]);
      out = { ...t, nullable: true };
  }
  return { name, fn, arg: arg.fn, argType: t, out };
}
