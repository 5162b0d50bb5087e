/**
 * @module `threshold` step: alert events when a value crosses a threshold,
 * and resolved events when it crosses back.
 *
 * Rules:
 * - Per key (default: the input stream's key) the step remembers whether
 *   the condition (`value < below`, or `value > above`) holds. It emits an
 *   `alert` when the condition starts to hold and a `resolved` when it stops:
 *   once per crossing, never again while the state is unchanged, however
 *   many updates arrive. A key first seen outside the condition emits
 *   nothing.
 * - The threshold is an expression: a constant (10), a column
 *   (reorder_threshold) or both (coalesce(reorder_threshold, 10)).
 * - Each event carries a deterministic `alert_id` (a hash of the flow, key,
 *   crossing number and event), so a consumer can deduplicate; the crossing
 *   number is part of the step's checkpointed state, so a replay after a
 *   crash reproduces the same ids. The event carries the input row's
 *   columns (the values that triggered it) and the threshold.
 * - A row whose value or threshold is null leaves the state unchanged.
 *
 * @example
 *   - threshold:
 *       value: projected_stock
 *       below: coalesce(reorder_threshold, 10)
 */
import type { StepDef, PlanContext, RunContext, StreamInfo, DeadLetter, ConfigOf } from '../operator.js';
import { planExpr } from '../expr-config.js';
import { RecordError, Eval } from '../../expr/compile.js';
import { Row, Schema, Value, fieldOf, isNumeric, typeName } from '../../core/types.js';
import { deadLetters } from '../record-schema.js';
import { alertId } from '../keyed-state.js';

const EVENT = 'event',
  ID = 'alert_id',
  SEQ = 'crossing',
  THRESHOLD = 'threshold';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['value'],
  oneOf: [{ required: ['below'] }, { required: ['above'] }],
  properties: {
    value: { type: 'string', description: 'Numeric expression watched, e.g. projected_stock.' },
    below: {
      type: ['string', 'number'],
      description: 'Alert while value < this: a constant, a column or an expression, e.g. coalesce(reorder_threshold, 10).',
    },
    above: { type: ['string', 'number'], description: 'Alert while value > this.' },
    key: {
      type: 'array',
      items: { type: 'string' },
      minItems: 1,
      uniqueItems: true,
      description: "Columns identifying what is watched (default: the input stream's key).",
    },
  },
} as const;

type Config = ConfigOf<typeof config>;

interface Planned {
  key: string[];
  value: Eval;
  threshold: Eval;
  crosses: Eval;
  inputSchema: Schema;
}

export const thresholdStep: StepDef<typeof config, Planned> = {
  key: 'threshold',
  doc: 'Emits an alert event when a value crosses below (or above) a threshold, once per crossing, and a resolved event when it crosses back.',
  config,
  plan: planThreshold,
  describe: (t) =>
    `threshold alert while ${t.value} ${t.below !== undefined ? `< ${t.below}` : `> ${t.above}`}; resolved when it no longer holds`,
  create(p, ctx) {
    return new Threshold(p, ctx);
  },
};

function planThreshold(cfg: Config, input: StreamInfo, c: PlanContext): { out: StreamInfo; planned: Planned } | undefined {
  let ok = true;
  const v = planExpr(cfg.value, input.schema, c, ['value']);
  const side = cfg.below !== undefined ? 'below' : 'above';
  const thText = String(cfg.below ?? cfg.above);
  const th = planExpr(cfg.below ?? cfg.above, input.schema, c, [side]);
  if (v && !isNumeric(v.type)) {
    ok = false;
    c.error(['value'], `value must be numeric, got ${typeName(v.type)}`, 'type.mismatch');
  }
  if (th && !isNumeric(th.type)) {
    ok = false;
    c.error([side], `threshold must be numeric, got ${typeName(th.type)}`, 'type.mismatch');
  }
  const key = cfg.key ?? input.key;
  if (!key?.length) {
    ok = false;
    c.error([], 'threshold needs a key: what is watched (set key, or feed it a keyed stream such as an aggregate)', 'value.key');
  }
  for (const [i, k] of (cfg.key ?? []).entries()) {
    if (!fieldOf(input.schema, k)) {
      ok = false;
      c.error(['key', i], `unknown column "${k}"; available: ${input.schema.map((f) => f.name).join(', ')}`, 'column.unknown');
    }
  }
  for (const n of [EVENT, ID, SEQ, THRESHOLD]) {
    if (fieldOf(input.schema, n)) {
      ok = false;
      c.error([], `the input already has a column "${n}", which the alert events add`, 'column.duplicate');
    }
  }
  if (!ok || !v || !th) return undefined;
  const schema: Schema = [
    { name: EVENT, type: { kind: 'string', nullable: false } },
    { name: ID, type: { kind: 'string', nullable: false } },
    { name: SEQ, type: { kind: 'int', nullable: false } },
    ...input.schema,
    { name: THRESHOLD, type: { ...th.type, nullable: false } },
  ];
  // One comparison compiled from both expressions: scales and types are aligned by the compiler.
  const crosses = planExpr(`(${cfg.value}) ${side === 'below' ? '<' : '>'} (${thText})`, input.schema, c, [side]);
  if (!crosses) return undefined;
  return {
    out: { schema, mode: 'append', key: [...key!], eventTime: input.eventTime },
    planned: { key: [...key!], value: v.fn, threshold: th.fn, crosses: crosses.fn, inputSchema: input.schema },
  };
}

interface KeyState {
  alerting: boolean;
  crossings: number;
}

class Threshold {
  private state = new Map<string, KeyState>();
  /** Keys whose state changed since the last changelog call. */
  private logged = new Set<string>();
  private crosses: Eval;
  private threshold: Eval;
  private value: Eval;
  private toDead: (r: Row, reason: string) => DeadLetter;
  private scope: string;

  private key: string[];

  constructor(p: Planned, ctx: RunContext) {
    this.key = p.key;
    this.value = p.value;
    this.threshold = p.threshold;
    this.crosses = p.crosses;
    this.toDead = deadLetters(p.inputSchema, `${ctx.flow}/threshold`);
    this.scope = `${ctx.pipeline}/${ctx.flow}`;
  }

  process(rows: Row[], dead: DeadLetter[]): Row[] {
    const out: Row[] = [];
    for (const r of rows) {
      let holds: Value, threshold: Value;
      try {
        if (this.value(r) === null || (threshold = this.threshold(r)) === null) continue;
        holds = this.crosses(r);
      } catch (e) {
        if (!(e instanceof RecordError)) throw e;
        dead.push(this.toDead(r, `threshold: ${e.message}`));
        continue;
      }
      const keyVals = this.key.map((c) => r[c] ?? null);
      const k = JSON.stringify(keyVals.map((v) => (typeof v === 'bigint' ? v.toString() : v)));
      // A key that never crossed has no state.
      let s = this.state.get(k);
      if (holds === (s?.alerting ?? false)) continue;
      if (!s) this.state.set(k, (s = { alerting: false, crossings: 0 }));
      s.alerting = holds === true;
      if (s.alerting) s.crossings++;
      this.logged.add(k);
      const event = s.alerting ? 'alert' : 'resolved';
      const id = alertId(this.scope, k, s.crossings, event);
      out.push({ [EVENT]: event, [ID]: id, [SEQ]: s.crossings, ...r, [THRESHOLD]: threshold });
    }
    return out;
  }

  snapshot(): unknown {
    return [...this.state].map(([k, s]) => [k, s.alerting, s.crossings]);
  }

  restore(state: unknown): void {
    this.state = new Map((state as [string, boolean, number][]).map(([k, a, n]) => [k, { alerting: a, crossings: n }]));
  }

  /** One changelog entry per key that has crossed: `[alerting, crossings]`. */
  stateChanges(all: boolean): [string, unknown][] {
    const keys = all ? [...this.state.keys()] : [...this.logged];
    this.logged.clear();
    return keys.map((k) => {
      const s = this.state.get(k)!;
      return [k, [s.alerting, s.crossings]];
    });
  }

  stateMeta(): unknown {
    return null;
  }

  loadState(_meta: unknown, entries: Map<string, unknown>): void {
    this.state = new Map();
    for (const [k, v] of entries) {
      const [alerting, crossings] = v as [boolean, number];
      this.state.set(k, { alerting, crossings });
    }
  }
}
