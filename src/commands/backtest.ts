/** @module `salespipe backtest FILE`: the forecast step's methods scored on the flow's own history (backtest/forecast.ts). */
import type { IO } from '../core/io.js';
import type { Logger } from '../core/log.js';
import { backtestForecast, BacktestReport } from '../backtest/forecast.js';
import { planOrPrint, oneSpec, UsageError } from './common.js';

export interface BacktestFlags {
  flow?: string;
  origins: number;
  format: 'text' | 'json';
  plot?: string;
  top: number;
}

export default async function backtestCommand(file: string, o: BacktestFlags, io: IO, log: Logger): Promise<number> {
  const plan = planOrPrint(oneSpec(file), io);
  if (!plan) return 2;
  if (o.origins < 1) throw new UsageError('--origins must be at least 1');
  let report: BacktestReport;
  try {
    report = await backtestForecast(plan, { flow: o.flow, origins: o.origins, plot: o.plot, top: o.top, log, signal: io.signal });
  } catch (e) {
    if (e instanceof Error && /forecast step/.test(e.message)) throw new UsageError(e.message);
    throw e;
  }
  io.stdout(o.format === 'json' ? `${JSON.stringify(report)}\n` : formatReport(report));
  return 0;
}

const f2 = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '-');
const pct = (v: number | null) => (v === null ? '-' : `${(v * 100).toFixed(1)} %`);

export function formatReport(r: BacktestReport): string {
  const lines: string[] = [];
  const unit = r.period === 'day' ? 'days' : 'weeks';
  lines.push(
    `backtest of ${r.flow}: ${r.series} series (${r.scored} long enough to score), ${r.origins.length} origin(s) x ${r.horizon} ${unit}: ${r.origins.join(', ')}`,
  );
  lines.push('');
  const rows = [['method', 'RMSSE mean', 'median', 'MASE mean', 'median', `${r.level} % coverage`, 'chosen by auto']];
  for (const [m, s] of Object.entries(r.methods))
    rows.push([
      m,
      f2(s.rmsse_mean),
      f2(s.rmsse_median),
      f2(s.mase_mean),
      f2(s.mase_median),
      pct(s.coverage),
      m === 'auto' ? '' : String(r.auto_chosen[m as never] ?? 0),
    ]);
  lines.push(...table(rows));
  const a = r.methods.auto,
    sn = r.methods.seasonal_naive,
    ma = r.methods.moving_average;
  lines.push('');
  lines.push(
    `auto's mean RMSSE is ${f2(a.rmsse_mean / sn.rmsse_mean)} x seasonal naive's and ${f2(a.rmsse_mean / ma.rmsse_mean)} x the moving average's.`,
  );
  for (const [col, by] of Object.entries(r.levels)) {
    lines.push('');
    lines.push(`per ${col} and week:`);
    lines.push(...table([['method', 'WAPE', 'bias'], ...Object.entries(by).map(([m, s]) => [m, pct(s.wape), pct(s.bias)])]));
  }
  if (r.plots.length) {
    lines.push('');
    lines.push(`charts: ${r.plots.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

function table(rows: string[][]): string[] {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  '));
}
