/**
 * @module `salespipe backtest`: how well a flow's forecast step would have
 * done, on its own history.
 *
 * Rules:
 * - The flow's source is read to its end (as `--drain` would, without
 *   touching its checkpoint or outputs), through the steps before the
 *   forecast step; the history ends with the last period that has a record.
 * - Evaluation origins are the last `origins` windows of `horizon` periods.
 *   At each, every method and `auto` forecast from the data before it alone
 *   (auto's own selection and interval included): what the nightly job
 *   would have published then. Scores per series: RMSSE and MASE (scaled on
 *   that origin's training part), averaged over the origins; the table
 *   gives their mean and median over the series, and the share of actuals
 *   inside the interval.
 * - WAPE and bias at aggregated levels: for each series column other than
 *   the first (brand, category), actuals and forecasts summed per value and
 *   week (per period for weekly forecasts), over the evaluation windows.
 * - `--plot DIR` writes one SVG per top series (by units in the evaluation
 *   windows): the actuals of the last weeks, and the last origin's auto
 *   forecast with its interval.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Plan, FlowPlan } from '../plan/plan.js';
import type { Logger } from '../core/log.js';
import type { Value } from '../core/types.js';
import { readThrough } from './read.js';
import { Forecast, Periods } from '../operators/steps/forecast.js';
import { CANDIDATES, Candidate, Evaluation, evaluate } from '../forecast/select.js';

export interface BacktestOptions {
  flow?: string;
  origins: number;
  plot?: string;
  top: number;
  log: Logger;
  signal?: AbortSignal;
}

export interface MethodScore {
  rmsse_mean: number;
  rmsse_median: number;
  mase_mean: number;
  mase_median: number;
  /** Share of actuals inside the interval (null: the method gave none at any origin). */
  coverage: number | null;
}

export interface LevelScore {
  wape: number;
  bias: number;
}

export interface BacktestReport {
  flow: string;
  series: number;
  /** Series with at least one evaluation origin (the others are too short). */
  scored: number;
  horizon: number;
  period: 'day' | 'week';
  origins: string[];
  level: number;
  methods: Record<Candidate, MethodScore>;
  /** How often auto chose each method, over series and origins. */
  auto_chosen: Record<string, number>;
  /** Per aggregation column, per candidate. */
  levels: Record<string, Record<string, LevelScore>>;
  plots: string[];
}

/** The flows of a plan that have a forecast step. */
export function forecastFlows(plan: Plan): FlowPlan[] {
  return plan.flows.filter((f) => f.steps.some((s) => s.key === 'forecast'));
}

export async function backtestForecast(plan: Plan, o: BacktestOptions): Promise<BacktestReport> {
  const flows = forecastFlows(plan);
  const flow = o.flow ? flows.find((f) => f.name === o.flow) : flows[0];
  if (!flow) throw new Error(o.flow ? `flow "${o.flow}" has no forecast step` : 'no flow of this spec has a forecast step');
  const { step: fc, read } = await readThrough<Forecast>(plan, flow, 'forecast', o, (rows, fc) => {
    fc.process(rows, []);
    fc.advance(undefined);
  });
  fc.advance(Infinity);
  const { options, series, periods } = fc.settings();
  const hist = fc.histories();
  o.log.info(`read ${read} record(s): ${hist.length} series; backtesting ${CANDIDATES.length} candidates at ${o.origins} origin(s)`);
  const h = options.horizon;
  const sums = new Map<Candidate, { rmsse: number[]; mase: number[]; inside: number; with: number }>(
    CANDIDATES.map((c) => [c, { rmsse: [], mase: [], inside: 0, with: 0 }]),
  );
  const chosen: Record<string, number> = {};
  // level column -> value -> week -> candidate -> [actual, forecast]
  const levelCols = series.slice(1);
  const cells = new Map<string, Map<string, Map<Candidate, [number, number]>>>(levelCols.map((c) => [c, new Map()]));
  const byVolume: { keys: Value[]; volume: number; y: Float64Array; first: number; last?: Evaluation }[] = [];
  let scored = 0,
    originPeriods: number[] = [];
  const evs = evaluate(
    hist.map((s) => s.y),
    options,
    o.origins,
    CANDIDATES,
  );
  for (const [si, s] of hist.entries()) {
    const ev = evs[si];
    const auto = ev.get('auto')!;
    if (!auto.length) continue;
    scored++;
    const n = s.y.length;
    const ors = auto.map((_, i) => n - (auto.length - i) * h);
    if (ors.length > originPeriods.length) originPeriods = ors.map((x) => s.first + x);
    for (const [c, list] of ev) {
      const acc = sums.get(c)!;
      acc.rmsse.push(mean(list.map((e) => e.rmsse)));
      acc.mase.push(mean(list.map((e) => e.mase)));
      for (const e of list) {
        acc.inside += e.inside;
        acc.with += e.withInterval;
      }
      list.forEach((e, i) => {
        for (const [j, col] of levelCols.entries()) {
          const byValue = cells.get(col)!;
          for (let k = 0; k < h; k++) {
            const p = s.first + ors[i] + k;
            const cell = `${String(s.keys[j + 1])}\u0000${periods.kind === 'day' ? Math.floor((p - 4) / 7) : p}`;
            let m = byValue.get(cell);
            if (!m) byValue.set(cell, (m = new Map()));
            const v = m.get(c) ?? [0, 0];
            v[0] += e.actual[k];
            v[1] += e.forecast[k];
            m.set(c, v);
          }
        }
      });
    }
    for (const e of auto) {
      const m = e.method.split(':')[0];
      chosen[m] = (chosen[m] ?? 0) + 1;
    }
    let volume = 0;
    for (const e of auto) for (const a of e.actual) volume += a;
    byVolume.push({ keys: s.keys, volume, y: s.y, first: s.first, last: auto[auto.length - 1] });
  }
  const methods = {} as Record<Candidate, MethodScore>;
  for (const [c, a] of sums)
    methods[c] = {
      rmsse_mean: mean(a.rmsse),
      rmsse_median: median(a.rmsse),
      mase_mean: mean(a.mase),
      mase_median: median(a.mase),
      coverage: a.with ? a.inside / a.with : null,
    };
  const levels: BacktestReport['levels'] = {};
  for (const [col, byCell] of cells) {
    const tot = new Map<Candidate, [number, number, number]>(); // sum |A-F|, sum (F-A), sum A
    for (const m of byCell.values())
      for (const [c, [a, f]] of m) {
        const t = tot.get(c) ?? [0, 0, 0];
        t[0] += Math.abs(a - f);
        t[1] += f - a;
        t[2] += a;
        tot.set(c, t);
      }
    levels[col] = {};
    for (const [c, [abs, diff, a]] of tot) levels[col][c] = { wape: a ? abs / a : 0, bias: a ? diff / a : 0 };
  }
  const plots: string[] = [];
  if (o.plot) {
    fs.mkdirSync(o.plot, { recursive: true });
    byVolume.sort((a, b) => b.volume - a.volume);
    for (const s of byVolume.slice(0, o.top)) {
      const file = path.join(o.plot, `${slug(s.keys.map(String).join(' '))}.svg`);
      fs.writeFileSync(file, chart(s, h, periods, options.level));
      plots.push(file);
    }
  }
  return {
    flow: flow.name,
    series: hist.length,
    scored,
    horizon: h,
    period: periods.kind,
    origins: originPeriods.map((p) => periods.date(p)),
    level: options.level,
    methods,
    auto_chosen: chosen,
    levels,
    plots,
  };
}

const mean = (a: number[]) => (a.length ? a.reduce((x, y) => x + y, 0) / a.length : NaN);
function median(a: number[]): number {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y),
    m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** An SVG: actuals (the last 8 horizons before the last origin, and after it), the auto forecast and its interval. */
function chart(
  s: { keys: Value[]; y: Float64Array; first: number; last?: Evaluation },
  h: number,
  periods: Periods,
  level: number,
): string {
  const e = s.last!;
  const end = s.y.length,
    origin = end - h,
    start = Math.max(0, origin - 4 * h);
  const W = 720,
    H = 300,
    L = 48,
    R = 12,
    T = 34,
    B = 36;
  const xs = (i: number) => L + ((i - start) / Math.max(1, end - 1 - start)) * (W - L - R);
  let max = 1;
  for (let i = start; i < end; i++) max = Math.max(max, s.y[i]);
  for (let k = 0; k < h; k++) max = Math.max(max, e.forecast[k], e.hi?.[k] ?? 0);
  const ys = (v: number) => T + (1 - v / max) * (H - T - B);
  const line = (pts: [number, number][]) => pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
  const actual = line(Array.from({ length: end - start }, (_, j) => [xs(start + j), ys(s.y[start + j])]));
  const fc = line(Array.from({ length: h }, (_, k) => [xs(origin + k), ys(e.forecast[k])]));
  let band = '';
  if (e.lo && e.hi) {
    const up = Array.from({ length: h }, (_, k) => [xs(origin + k), ys(e.hi![k])] as [number, number]);
    const down = Array.from({ length: h }, (_, k) => [xs(origin + h - 1 - k), ys(e.lo![h - 1 - k])] as [number, number]);
    band = `<path d="${line([...up, ...down])} Z" fill="#4c78a8" fill-opacity="0.2" stroke="none"/>`;
  }
  const ticks = [0, 0.5, 1]
    .map((f) => {
      const v = max * f;
      return `<text x="${L - 6}" y="${ys(v) + 4}" text-anchor="end">${v.toFixed(v < 10 ? 1 : 0)}</text><line x1="${L}" x2="${W - R}" y1="${ys(v)}" y2="${ys(v)}" stroke="#ddd"/>`;
    })
    .join('');
  const dates = (
    [
      [start, 'start'],
      [origin, 'middle'],
      [end - 1, 'end'],
    ] as const
  )
    .map(([i, anchor]) => `<text x="${xs(i)}" y="${H - 14}" text-anchor="${anchor}">${periods.date(s.first + i)}</text>`)
    .join('');
  const title = `${s.keys.map(String).join(' / ')}: actual vs forecast made ${periods.date(s.first + origin)} (${e.method}, ${level} % interval)`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">
<title>${esc(title)}</title>
<rect width="${W}" height="${H}" fill="#fff"/>
<text x="${L}" y="18" font-size="13">${esc(title)}</text>
${ticks}${dates}
<line x1="${xs(origin)}" x2="${xs(origin)}" y1="${T}" y2="${H - B}" stroke="#999" stroke-dasharray="3,3"/>
${band}
<path d="${actual}" fill="none" stroke="#222" stroke-width="1.5"/>
<path d="${fc}" fill="none" stroke="#4c78a8" stroke-width="2"/>
<text x="${W - R}" y="${H - 2}" text-anchor="end"><tspan fill="#222">— actual</tspan>  <tspan fill="#4c78a8">— forecast, band p${(50 - level / 2).toFixed(0)}–p${(50 + level / 2).toFixed(0)}</tspan></text>
</svg>
`;
}
