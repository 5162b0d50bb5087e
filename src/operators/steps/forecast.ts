/**
 * @module `forecast` step: demand per series (e.g. per product) per day or
 * week, forecast `horizon` periods ahead whenever a period closes.
 *
 * Rules:
 * - The target (`sum(quantity_sold)`, `count(*)`) is summed per series and
 *   period. Periods are the pipeline time zone's calendar days (23 or 25
 *   hours across a DST change) or ISO weeks (Monday to Sunday). A series is
 *   zero-filled from its first period with a record: a day without sales
 *   is demand 0, a day before the product's first sale is not history.
 * - A period closes when the watermark (the event time reached, as for
 *   windows, minus `lateness`) passes its end. At the end of a drain run
 *   the input has been read to its end: every period that ended before the
 *   wall clock minus `lateness` closes too, so last night's history job
 *   forecasts through yesterday. A record for a closed period is late: it
 *   goes to the late or dead-letter output and counts nowhere.
 * - Forecasts are made at an epoch end, for every series, from the closed
 *   periods only (trained_through: the last of them): when a period closes
 *   that ended less than `horizon` + 1 periods before the wall clock, in a
 *   run without --drain (a live stream: `sales_predictions` follows the
 *   sales); in a drain run only at the end of its input, however many
 *   epochs it reads. Replaying years of history therefore makes one
 *   forecast, not one per day. A forecast never sees a record of a later period.
 * - Rows: per series and future period `{series…, period_start, forecast,
 *   p10, p90, method, trained_through, forecast_date, backtest_rmsse}`
 *   (p10/p90 at the configured `level`); an append stream keyed by the
 *   series and period_start, so a compacted topic keeps the latest forecast
 *   per series and period and a Parquet dataset the history of forecasts.
 * - State: per series its period totals; as a changelog one entry per
 *   series (`k/<series>`) and per 32 periods of it (`c/<series>/<n>`), so an
 *   epoch logs the chunks it touched. The step's meta holds the event time
 *   reached and the last period forecast, so a restart neither repeats nor
 *   skips a forecast.
 *
 * @example
 *   - forecast:
 *       series: [product_name, brand]
 *       target: sum(quantity_sold)
 *       period: day
 *       horizon: 14
 *       method: auto
 */
import type { ConfigOf, DeadLetter, PlanContext, Step, StepDef, StreamInfo } from '../operator.js';
import { Row, Schema, Value, fieldOf, typeName } from '../../core/types.js';
import { WindowAssigner, formatTimestamp, parseDuration } from '../../core/time.js';
import { RecordError, Eval } from '../../expr/compile.js';
import { deadLetters } from '../record-schema.js';
import { entryId } from '../keyed-state.js';
import { planAggregate } from './aggregate/index.js';
import { METHODS, MethodName } from '../../forecast/methods.js';
import { ForecastOptions, forecastAll } from '../../forecast/select.js';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['series', 'target'],
  properties: {
    series: {
      type: 'array',
      items: { type: 'string' },
      minItems: 1,
      uniqueItems: true,
      description: 'Columns naming a series, e.g. [product_name, brand] (or [brand] for brand level).',
    },
    target: { type: 'string', description: 'What is forecast per period: sum(<expression>) or count(*), e.g. sum(quantity_sold).' },
    period: {
      enum: ['day', 'week'],
      default: 'day',
      description: "Calendar days or ISO weeks (Monday first) in the pipeline's time zone.",
    },
    on: { type: 'string', description: "Event-time column (default: the source's eventTime)." },
    horizon: { type: 'integer', minimum: 1, maximum: 366, default: 14, description: 'Periods forecast ahead.' },
    method: {
      enum: ['auto', ...METHODS],
      default: 'auto',
      description: `auto (per series, the lowest rolling-origin RMSSE, shrunk towards the best over all series), or one of: ${METHODS.join(', ')}.`,
    },
    origins: {
      type: 'integer',
      minimum: 1,
      maximum: 20,
      default: 3,
      description: 'Backtest origins (windows of `horizon` periods at the end of the history) choosing the method and giving the interval.',
    },
    level: {
      type: 'number',
      exclusiveMinimum: 0,
      exclusiveMaximum: 100,
      default: 80,
      description: 'Central prediction interval in percent: 80 gives p10 and p90.',
    },
    window: { type: 'integer', minimum: 1, description: 'Moving average window in periods (default 28 for days, 8 for weeks).' },
    lateness: {
      type: 'string',
      default: '0s',
      description: 'Allowed lateness: a period closes once the event time reached passes its end by this.',
    },
  },
} as const;

type Config = ConfigOf<typeof config>;

export const PERIOD_START = 'period_start';
const OUT = [
  ['forecast', 'float', false],
  ['p10', 'float', true],
  ['p90', 'float', true],
  ['method', 'string', false],
  ['trained_through', 'string', false],
  ['forecast_date', 'string', false],
  ['backtest_rmsse', 'float', true],
] as const;

interface Planned {
  series: string[];
  target: Eval | null;
  /** 10^scale of a decimal target, else 1. */
  divisor: number;
  on: string;
  period: 'day' | 'week';
  lateness: number;
  options: ForecastOptions;
  inputSchema: Schema;
}

export const forecastStep: StepDef<typeof config, Planned> = {
  key: 'forecast',
  doc: 'Forecasts a target (e.g. units sold) per series and day or week, horizon periods ahead, when a period closes: seasonal naive, moving average, exponential smoothing (simple, Holt, damped, Holt-Winters), Croston-SBA, TSB, ADIDA, or auto per series by rolling-origin backtest; with a prediction interval.',
  config,
  plan: planForecast,
  describe: (c) =>
    `forecast ${c.target} per ${c.period ?? 'day'} by (${c.series.join(', ')}): ${c.method ?? 'auto'}, ${c.horizon ?? 14} periods ahead`,
  create: (p, ctx) => new Forecast(p, ctx.timeZone, deadLetters(p.inputSchema, `${ctx.flow}/forecast`), ctx.drain),
};

function planForecast(cfg: Config, input: StreamInfo, ctx: PlanContext) {
  let ok = true;
  const schema: Schema = [];
  for (const [i, c] of cfg.series.entries()) {
    const f = fieldOf(input.schema, c);
    if (!f) {
      ok = false;
      ctx.error(['series', i], `unknown column "${c}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown');
    } else schema.push(f);
  }
  schema.push({ name: PERIOD_START, type: { kind: 'timestamp', nullable: false } });
  for (const [name, kind, nullable] of OUT) schema.push({ name, type: { kind, nullable } });
  const agg = planAggregate('target', cfg.target, input.schema, ctx, ['target']);
  if (!agg) ok = false;
  else if (agg.fn !== 'sum' && agg.fn !== 'count') {
    ok = false;
    ctx.error(['target'], `a forecast target is a sum(...) or count(*) per period, got ${agg.fn}()`, 'expr.aggregate');
  }
  const on = cfg.on ?? input.eventTime;
  if (!on) {
    ok = false;
    ctx.error([], 'a forecast needs an event-time column: set on, or eventTime on the source', 'window.eventTime');
  } else {
    const f = fieldOf(input.schema, on);
    if (!f || f.type.kind !== 'timestamp') {
      ok = false;
      ctx.error(
        cfg.on ? ['on'] : [],
        f ? `event-time column "${on}" must be a timestamp, got ${typeName(f.type)}` : `unknown event-time column "${on}"`,
        f ? 'type.mismatch' : 'column.unknown',
      );
    }
  }
  const lateness = parseDuration(cfg.lateness);
  if (lateness === undefined) {
    ok = false;
    ctx.error(['lateness'], `invalid duration "${cfg.lateness}" (e.g. 15m, 1h, 1d)`, 'value.duration');
  }
  if (input.mode !== 'append') {
    ok = false;
    ctx.error([], `forecast needs an append stream of facts (e.g. sales) as input, got ${input.mode}`, 'mode.invalid');
  }
  const week = cfg.period === 'week';
  const options: ForecastOptions = {
    season: week ? 52 : 7,
    window: cfg.window ?? (week ? 8 : 28),
    horizon: cfg.horizon,
    origins: cfg.origins,
    methods: cfg.method === 'auto' ? METHODS : [cfg.method as MethodName],
    level: cfg.level,
    minTrain: week ? 8 : 14,
  };
  const out: StreamInfo = { schema, mode: 'append', key: [...cfg.series, PERIOD_START] };
  const planned: Planned = {
    series: [...cfg.series],
    target: agg?.arg ?? null,
    divisor: agg?.argType?.kind === 'decimal' && agg.fn === 'sum' ? 10 ** (agg.argType.scale ?? 0) : 1,
    on: on ?? '',
    period: cfg.period,
    lateness: lateness ?? 0,
    options,
    inputSchema: input.schema,
  };
  return { out, planned: ok ? planned : (undefined as never) };
}

const DAY = 86_400_000;
/** Values per changelog chunk of a series. */
const CHUNK = 32;

/** Calendar periods of a time zone, numbered: local days since 1970-01-01, or ISO weeks since the one of 1970-01-05. */
export class Periods {
  private clock: WindowAssigner;
  constructor(
    readonly kind: 'day' | 'week',
    zone: string,
  ) {
    this.clock = new WindowAssigner(DAY, DAY, zone);
  }
  index(t: number): number {
    const day = Math.floor(this.clock.toLocal(t) / DAY);
    return this.kind === 'day' ? day : Math.floor((day - 4) / 7);
  }
  start(i: number): number {
    return this.clock.toUtc((this.kind === 'day' ? i : i * 7 + 4) * DAY);
  }
  end(i: number): number {
    return this.start(i + 1);
  }
  /** The local date of a period's first day. */
  date(i: number): string {
    return new Date((this.kind === 'day' ? i : i * 7 + 4) * DAY).toISOString().slice(0, 10);
  }
}

interface SeriesState {
  id: string;
  keys: Value[];
  /** Period index of values[0]: the first period with a record. */
  first: number;
  values: number[];
  /** Chunks changed since they last went to the changelog. */
  unlogged: Set<number>;
  /** The key entry is not in the changelog yet. */
  newKey: boolean;
}

interface Meta {
  maxEventTime: number | null;
  /** Closed through this period by the end of a drain run (wall clock), beyond the watermark. */
  closedByEnd: number | null;
  /** The last period a forecast was made through. */
  done: number | null;
}

export class Forecast implements Step {
  private series = new Map<string, SeriesState>();
  private maxEventTime = -Infinity;
  private batchMax = -Infinity;
  private closedByEnd: number | null = null;
  private done: number | null = null;
  private ended = false;
  private periods: Periods;
  private keyBuf: Value[];
  private forecasts = 0;
  private logAllKeys = false;

  constructor(
    private p: Planned,
    timeZone: string,
    private toDead: (r: Row, reason: string) => DeadLetter,
    /** A drain run forecasts once, at the end of its input, not at epochs while it catches up. */
    private drain = false,
  ) {
    this.periods = new Periods(p.period, timeZone);
    this.keyBuf = new Array(p.series.length);
  }

  private watermark_(): number {
    return this.maxEventTime - this.p.lateness;
  }

  /** The last closed period (null: none yet). */
  private closed(): number | null {
    const wm = this.watermark_();
    let c: number | null = null;
    if (wm === Infinity) {
      // A bounded input ended: every period with a record is final.
      for (const s of this.series.values()) {
        const last = s.first + s.values.length - 1;
        if (c === null || last > c) c = last;
      }
    } else if (Number.isFinite(wm)) {
      const i = this.periods.index(wm);
      c = this.periods.end(i) <= wm ? i : i - 1;
    }
    if (this.closedByEnd !== null && (c === null || this.closedByEnd > c)) c = this.closedByEnd;
    return c;
  }

  process(rows: Row[], dead: DeadLetter[]): Row[] {
    const { on, series, target, divisor } = this.p;
    const closed = this.closed();
    let max = this.batchMax;
    for (const r of rows) {
      const t = r[on] as number | null;
      if (t === null || t === undefined) {
        dead.push(this.toDead(r, `forecast: event-time column ${on} is null`));
        continue;
      }
      let v: Value;
      try {
        v = target ? target(r) : 1;
      } catch (e) {
        if (!(e instanceof RecordError)) throw e;
        dead.push(this.toDead(r, `forecast: ${e.message}`));
        continue;
      }
      const i = this.periods.index(t);
      if (closed !== null && i <= closed) {
        dead.push({
          ...this.toDead(
            r,
            `late: event time ${formatTimestamp(t)} is in the ${this.p.period} starting ${formatTimestamp(this.periods.start(i))}, already closed (forecast through ${this.periods.date(closed)})`,
          ),
          late: true,
        });
        continue;
      }
      if (t > max) max = t;
      if (v === null) continue;
      for (let k = 0; k < series.length; k++) this.keyBuf[k] = r[series[k]];
      this.add(this.keyBuf, i, Number(v) / divisor);
    }
    this.batchMax = max;
    return [];
  }

  private add(keys: Value[], i: number, v: number) {
    const id = entryId(keys);
    let s = this.series.get(id);
    if (!s) {
      s = { id, keys: keys.slice(), first: i, values: [], unlogged: new Set(), newKey: true };
      this.series.set(id, s);
    }
    if (i < s.first) {
      // A record before the series' first: the history starts earlier.
      const pad = s.first - i;
      s.values = new Array<number>(pad).fill(0).concat(s.values);
      s.first = i;
      s.newKey = true;
      for (let c = Math.floor(i / CHUNK); c * CHUNK < i + pad; c++) s.unlogged.add(c);
    }
    const at = i - s.first;
    while (s.values.length <= at) s.values.push(0);
    s.values[at] += v;
    s.unlogged.add(Math.floor(i / CHUNK));
  }

  advance(progress: number | null | undefined): void {
    const reached = progress === undefined ? this.batchMax : (progress ?? -Infinity);
    this.batchMax = -Infinity;
    if (reached > this.maxEventTime) this.maxEventTime = reached;
  }

  watermark(): number | undefined {
    const wm = this.watermark_();
    return Number.isFinite(wm) ? wm : undefined;
  }

  /** The input of a drain run has been read to its end: periods that ended before now - lateness are closed. */
  inputEnded(): void {
    this.ended = true;
    const i = this.periods.index(Date.now() - this.p.lateness);
    const c = i - 1;
    const current = this.closed();
    if (current === null || c > current) this.closedByEnd = c;
  }

  pending(): boolean {
    const c = this.closed();
    return this.ended && c !== null && (this.done === null || c > this.done) && this.series.size > 0;
  }

  flush(): Row[] {
    const c = this.closed();
    if (c === null || (this.done !== null && c <= this.done)) return [];
    const live = this.periods.end(c) >= Date.now() - (this.p.options.horizon + 1) * (this.p.period === 'week' ? 7 * DAY : DAY);
    // A bounded input (a test, a backfill) has ended like a drain: event time reached Infinity.
    if ((this.drain || !live) && !this.ended && this.maxEventTime !== Infinity) return [];
    this.done = c;
    return this.forecastAll(c);
  }

  private forecastAll(c: number): Row[] {
    const { options, series } = this.p;
    const out: Row[] = [];
    const trained = this.periods.date(c);
    const starts: number[] = [];
    for (let k = 1; k <= options.horizon; k++) starts.push(this.periods.start(c + k));
    const forecastDate = this.periods.date(c + 1);
    const hist = this.histories();
    const fcs = forecastAll(
      hist.map((s) => s.y),
      options,
    );
    for (const [i, { keys }] of hist.entries()) {
      const fc = fcs[i];
      this.forecasts++;
      for (let k = 0; k < options.horizon; k++) {
        const row: Row = {};
        for (let j = 0; j < series.length; j++) row[series[j]] = keys[j];
        row[PERIOD_START] = starts[k];
        row.forecast = fc.forecast[k];
        row.p10 = fc.lo ? fc.lo[k] : null;
        row.p90 = fc.hi ? fc.hi[k] : null;
        row.method = fc.method;
        row.trained_through = trained;
        row.forecast_date = forecastDate;
        row.backtest_rmsse = fc.rmsse;
        out.push(row);
      }
    }
    return out;
  }

  counters(): Record<string, number> {
    return { series: this.series.size, refreshed: this.forecasts };
  }

  /** Each series' closed history, zero-filled through the last closed period (backtests). */
  histories(): { keys: Value[]; first: number; y: Float64Array }[] {
    const c = this.closed();
    if (c === null) return [];
    const out = [];
    for (const s of this.series.values()) {
      if (s.first > c) continue;
      const y = new Float64Array(c - s.first + 1);
      const n = Math.min(y.length, s.values.length);
      for (let t = 0; t < n; t++) y[t] = s.values[t];
      out.push({ keys: s.keys, first: s.first, y });
    }
    return out;
  }

  /** What the step was planned with, and its calendar (backtests). */
  settings(): { options: ForecastOptions; series: string[]; periods: Periods } {
    return { options: this.p.options, series: this.p.series, periods: this.periods };
  }

  private meta(): Meta {
    return {
      maxEventTime: Number.isFinite(this.maxEventTime) ? this.maxEventTime : null,
      closedByEnd: this.closedByEnd,
      done: this.done,
    };
  }

  private loadMeta(m: Meta) {
    this.series = new Map();
    this.maxEventTime = m.maxEventTime ?? -Infinity;
    this.closedByEnd = m.closedByEnd;
    this.done = m.done;
  }

  snapshot(): unknown {
    return { ...this.meta(), series: [...this.series.values()].map((s) => [s.keys, s.first, s.values]) };
  }

  restore(state: unknown): void {
    const st = state as Meta & { series: [Value[], number, number[]][] };
    this.loadMeta(st);
    for (const [keys, first, values] of st.series) {
      const id = entryId(keys);
      this.series.set(id, { id, keys, first, values, unlogged: new Set(), newKey: false });
    }
    this.logAllKeys = true;
  }

  stateChanges(all: boolean): [string, unknown][] {
    const out: [string, unknown][] = [];
    all ||= this.logAllKeys;
    this.logAllKeys = false;
    for (const s of this.series.values()) {
      if (all || s.newKey) out.push([`k/${s.id}`, [s.keys, s.first]]);
      s.newKey = false;
      const chunks = all ? chunksOf(s) : s.unlogged;
      for (const ch of chunks) {
        const from = ch * CHUNK;
        const vals: number[] = [];
        for (let i = from; i < from + CHUNK; i++) vals.push(s.values[i - s.first] ?? 0);
        out.push([`c/${s.id}/${ch}`, vals]);
      }
      s.unlogged.clear();
    }
    return out;
  }

  stateMeta(): unknown {
    return this.meta();
  }

  loadState(meta: unknown, entries: Map<string, unknown>): void {
    this.loadMeta(meta as Meta);
    const chunks: [string, number, number[]][] = [];
    for (const [id, v] of entries) {
      if (id.startsWith('k/')) {
        const [keys, first] = v as [Value[], number];
        this.series.set(id.slice(2), { id: id.slice(2), keys, first, values: [], unlogged: new Set(), newKey: false });
      } else {
        const slash = id.lastIndexOf('/');
        chunks.push([id.slice(2, slash), Number(id.slice(slash + 1)), v as number[]]);
      }
    }
    for (const [sid, ch, vals] of chunks) {
      const s = this.series.get(sid);
      if (!s) continue;
      for (let k = 0; k < CHUNK; k++) {
        const i = ch * CHUNK + k - s.first;
        if (i < 0) continue;
        while (s.values.length <= i) s.values.push(0);
        s.values[i] = vals[k];
      }
    }
    // Trailing zeros of the last chunk are not history yet.
    for (const s of this.series.values()) {
      let n = s.values.length;
      while (n > 1 && s.values[n - 1] === 0) n--;
      s.values.length = n;
    }
  }
}

function chunksOf(s: SeriesState): number[] {
  const out: number[] = [];
  for (let c = Math.floor(s.first / CHUNK); c * CHUNK < s.first + s.values.length; c++) out.push(c);
  return out;
}
