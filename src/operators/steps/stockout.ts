/**
 * @module `stockout` step: a product predicted to run out within its lead
 * time raises `predicted_stockout`, once per crossing, and `resolved` when
 * a restock or a new forecast moves it out.
 *
 * Rules:
 * - Input: a forecast stream (the forecast step's rows, e.g. read back from
 *   `sales_predictions`): per series and period_start a demand column
 *   (`forecast`, or `p90` for cautious alerts), with trained_through. Per
 *   series the step keeps the latest forecast (the largest
 *   trained_through; an older one arriving later is ignored).
 * - Stock: a relational table kept fresh (e.g. `inventory_levels`, which the
 *   inventory pipeline keeps: projected stock per product), matched `on`
 *   the series columns; `level` and `leadTime` (days) are expressions over
 *   its row, e.g. `coalesce(lead_time_days, 7)`.
 * - Days of cover: the stock consumed by the forecast demand period after
 *   period from the first forecast period's start (linearly within a
 *   period); beyond the horizon, no stock-out is predicted. A product is at
 *   risk while days of cover < lead time; stock at or below 0 is 0 days.
 * - Evaluated at each epoch end for the series with a new forecast and the
 *   products whose stock row changed; events carry the stock, days of
 *   cover, the predicted date (in the pipeline's zone), the demand forecast
 *   within the lead time and the forecast behind it (trained_through,
 *   method). `alert_id` is a hash of flow, key, crossing and event, so a
 *   replay after a crash repeats the same ids.
 * - A product without a stock row, or whose level is null, is not judged.
 *
 * @example
 *   - stockout:
 *       stock: { connection: sales_db, table: inventory_levels, refresh: 30s,
 *                schema: { product_name: string, brand: string, projected_stock: int } }
 *       on: { product_name: product_name, brand: brand }
 *       level: projected_stock
 *       leadTime: 7
 */
import type { ConfigOf, DeadLetter, PlanContext, RunContext, Step, StepDef, StreamInfo } from '../operator.js';
import { Row, Schema, Value, fieldOf, isNumeric, typeName } from '../../core/types.js';
import { RecordError, Eval } from '../../expr/compile.js';
import { planExpr } from '../expr-config.js';
import { LookupTable, Key, tableConfig, planTable, planOn, keyOf, describeTable } from '../lookup-table.js';
import { dateIn } from '../../core/time.js';
import type { ProblemCode } from '../../core/problems.js';
import { PERIOD_START } from './forecast.js';
import { alertId } from '../keyed-state.js';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['stock', 'on'],
  properties: {
    stock: tableConfig,
    on: {
      type: 'object',
      minProperties: 1,
      additionalProperties: { type: 'string', description: 'Table column matched by this series column.' },
      description: 'Series column -> stock table column, e.g. { product_name: product_name, brand: brand }.',
    },
    level: { type: 'string', default: 'projected_stock', description: 'Units on hand: an expression over the stock row.' },
    leadTime: {
      type: ['string', 'number'],
      default: 7,
      description: 'Lead time in days: a constant or an expression over the stock row, e.g. coalesce(lead_time_days, 7).',
    },
    demand: {
      type: 'string',
      default: 'forecast',
      description: 'Input column with the demand per period: forecast, or p90 for cautious alerts.',
    },
  },
} as const;

type Config = ConfigOf<typeof config>;

const OUT: [string, 'string' | 'int' | 'float', boolean][] = [
  ['event', 'string', false],
  ['alert_id', 'string', false],
  ['crossing', 'int', false],
];
const AFTER: [string, 'string' | 'int' | 'float', boolean][] = [
  ['stock', 'float', false],
  ['lead_time_days', 'float', false],
  ['days_of_cover', 'float', true],
  ['predicted_date', 'string', true],
  ['demand_in_lead_time', 'float', false],
  ['trained_through', 'string', false],
  ['method', 'string', true],
];

interface Planned {
  cfg: Config;
  tableSchema: Schema;
  series: string[];
  level: Eval;
  leadTime: Eval;
  inputSchema: Schema;
}

export const stockoutStep: StepDef<typeof config, Planned> = {
  key: 'stockout',
  doc: 'Predicted stock-outs: days of cover = stock (from a table kept fresh) / forecast demand; an event when a product is predicted to run out within its lead time, once per crossing, resolved when it no longer is.',
  config,
  plan: planStockout,
  describe: (c) =>
    `stockout when ${c.level ?? 'projected_stock'} (${describeTable(c.stock)}) covers less than ${c.leadTime ?? 7} day(s) of ${c.demand ?? 'forecast'}`,
  create: (p, ctx) => new Stockout(p, ctx),
};

function planStockout(cfg: Config, input: StreamInfo, c: PlanContext): { out: StreamInfo; planned: Planned } | undefined {
  let ok = true;
  const err = (p: (string | number)[], m: string, code: ProblemCode) => {
    ok = false;
    c.error(p, m, code);
  };
  const tableSchema = planTable(cfg.stock, c, ['stock']);
  const matched = planOn(cfg.on, input.schema, tableSchema, err);
  const need: [string, string[]][] = [
    [PERIOD_START, ['timestamp']],
    [cfg.demand, ['float', 'int', 'decimal']],
    ['trained_through', ['string']],
  ];
  for (const [col, kinds] of need) {
    const f = fieldOf(input.schema, col);
    if (!f)
      err(
        col === cfg.demand ? ['demand'] : [],
        `the input has no column "${col}": stockout reads a forecast step's rows`,
        'column.unknown',
      );
    else if (!kinds.includes(f.type.kind))
      err(col === cfg.demand ? ['demand'] : [], `column "${col}" must be ${kinds.join(' or ')}, got ${typeName(f.type)}`, 'type.mismatch');
  }
  const level = planExpr(cfg.level, tableSchema, c, ['level']);
  const lead = planExpr(cfg.leadTime, tableSchema, c, ['leadTime']);
  if (level && !isNumeric(level.type)) err(['level'], `level must be numeric, got ${typeName(level.type)}`, 'type.mismatch');
  if (lead && !isNumeric(lead.type)) err(['leadTime'], `leadTime must be numeric (days), got ${typeName(lead.type)}`, 'type.mismatch');
  if (!ok || !level || !lead) return undefined;
  const schema: Schema = [
    ...OUT.map(([name, kind, nullable]) => ({ name, type: { kind, nullable } })),
    ...matched,
    ...AFTER.map(([name, kind, nullable]) => ({ name, type: { kind, nullable } })),
  ];
  const series = Object.keys(cfg.on);
  return {
    out: { schema, mode: 'append', key: series },
    planned: { cfg, tableSchema, series, level: level.fn, leadTime: lead.fn, inputSchema: input.schema },
  };
}

interface SeriesForecast {
  keys: Value[];
  trained: string;
  method: Value;
  /** period_start -> demand */
  periods: Map<number, number>;
}

interface KeyState {
  alerting: boolean;
  crossings: number;
}

const DAY = 86_400_000;

export class Stockout implements Step {
  private table: LookupTable;
  private forecasts = new Map<Key, SeriesForecast>();
  private state = new Map<Key, KeyState>();
  private dirty = new Set<Key>();
  private seenVersion = -1;
  private logged = new Set<Key>();
  private logAll = false;
  private scope: string;
  private keyBuf: Value[] = [];
  private timeZone: string;

  constructor(
    private p: Planned,
    ctx: RunContext,
  ) {
    this.table = new LookupTable(p.cfg.stock, p.tableSchema, Object.values(p.cfg.on), ctx, true);
    this.scope = `${ctx.pipeline}/${ctx.flow}`;
    this.timeZone = ctx.timeZone;
  }

  open() {
    return this.table.open();
  }
  close() {
    return this.table.close();
  }

  process(rows: Row[], _dead: DeadLetter[]): Row[] {
    const { series, cfg } = this.p;
    for (const r of rows) {
      this.keyBuf.length = 0;
      for (const c of series) this.keyBuf.push(r[c] ?? null);
      const k = keyOf(this.keyBuf);
      const start = r[PERIOD_START] as number | null,
        demand = r[cfg.demand],
        trained = r.trained_through as string | null;
      if (k === null || start === null || demand === null || demand === undefined || trained === null) continue;
      let f = this.forecasts.get(k);
      if (f && trained < f.trained) continue; // an older forecast
      if (!f || trained > f.trained) {
        f = { keys: this.keyBuf.slice(), trained, method: r.method ?? null, periods: new Map() };
        this.forecasts.set(k, f);
      }
      f.periods.set(start, Number(demand));
      this.dirty.add(k);
      this.logged.add(k);
    }
    return [];
  }

  pending(): boolean {
    return this.table.version !== this.seenVersion;
  }

  flush(): Row[] {
    this.seenVersion = this.table.version;
    for (const k of this.table.takeChanged()) if (this.forecasts.has(k)) this.dirty.add(k);
    const out: Row[] = [];
    for (const k of [...this.dirty].sort((a, b) => (String(a) < String(b) ? -1 : 1))) {
      const e = this.judge(k);
      if (e) out.push(e);
    }
    this.dirty.clear();
    return out;
  }

  /** The event for key k, if its risk changed. */
  private judge(k: Key): Row | null {
    const f = this.forecasts.get(k)!,
      row = this.table.get(k);
    if (!row) return null;
    let level: Value, lead: Value;
    try {
      level = this.p.level(row);
      lead = this.p.leadTime(row);
    } catch (e) {
      if (e instanceof RecordError) return null;
      throw e;
    }
    if (level === null || lead === null) return null;
    const stock = Number(level),
      leadDays = Number(lead);
    const starts = [...f.periods.keys()].sort((a, b) => a - b);
    if (!starts.length) return null;
    const t0 = starts[0];
    // Walk the periods until the demand has used the stock up.
    let left = stock,
      at: number | null = stock <= 0 ? t0 : null,
      inLead = 0;
    const leadEnd = t0 + leadDays * DAY;
    for (let i = 0; i < starts.length; i++) {
      const s = starts[i],
        e = i + 1 < starts.length ? starts[i + 1] : s + (i > 0 ? s - starts[i - 1] : DAY);
      const d = f.periods.get(s)!;
      if (s < leadEnd) inLead += d * Math.min(1, (leadEnd - s) / (e - s));
      if (at === null && d > 0 && left - d <= 0) at = s + (left / d) * (e - s);
      left -= d;
    }
    const cover = at === null ? null : Math.max(0, (at - t0) / DAY);
    const risk = cover !== null && cover < leadDays;
    let st = this.state.get(k);
    if (risk === (st?.alerting ?? false)) return null;
    if (!st) this.state.set(k, (st = { alerting: false, crossings: 0 }));
    st.alerting = risk;
    if (risk) st.crossings++;
    this.logged.add(k);
    const event = risk ? 'predicted_stockout' : 'resolved';
    const o: Row = {
      event,
      alert_id: alertId(this.scope, String(k), st.crossings, event),
      crossing: st.crossings,
    };
    this.p.series.forEach((c, i) => (o[c] = f.keys[i]));
    o.stock = stock;
    o.lead_time_days = leadDays;
    o.days_of_cover = cover;
    o.predicted_date = at === null ? null : dateIn(at, this.timeZone);
    o.demand_in_lead_time = inLead;
    o.trained_through = f.trained;
    o.method = f.method === null ? null : String(f.method);
    return o;
  }

  counters() {
    let atRisk = 0;
    for (const s of this.state.values()) if (s.alerting) atRisk++;
    return { 'at risk': atRisk, 'stock rows': this.table.size };
  }

  private entry(k: Key): unknown {
    const f = this.forecasts.get(k),
      s = this.state.get(k);
    return [s?.alerting ?? false, s?.crossings ?? 0, f ? [f.keys, f.trained, f.method, [...f.periods]] : null];
  }

  private load(k: Key, v: unknown) {
    const [alerting, crossings, f] = v as [boolean, number, [Value[], string, Value, [number, number][]] | null];
    if (crossings || alerting) this.state.set(k, { alerting, crossings });
    if (f) this.forecasts.set(k, { keys: f[0], trained: f[1], method: f[2], periods: new Map(f[3]) });
  }

  snapshot(): unknown {
    const keys = new Set<Key>([...this.forecasts.keys(), ...this.state.keys()]);
    return [...keys].map((k) => [k, this.entry(k)]);
  }

  restore(state: unknown): void {
    this.forecasts = new Map();
    this.state = new Map();
    for (const [k, v] of state as [Key, unknown][]) this.load(k, v);
  }

  /** One entry per series: its state and its latest forecast. */
  stateChanges(all: boolean): [string, unknown][] {
    const keys = all || this.logAll ? new Set<Key>([...this.forecasts.keys(), ...this.state.keys()]) : this.logged;
    this.logAll = false;
    const out: [string, unknown][] = [...keys].map((k) => [JSON.stringify(k), this.entry(k)]);
    this.logged = new Set();
    return out;
  }

  stateMeta(): unknown {
    return null;
  }

  loadState(_meta: unknown, entries: Map<string, unknown>): void {
    this.forecasts = new Map();
    this.state = new Map();
    for (const [id, v] of entries) this.load(JSON.parse(id) as Key, v);
  }
}
