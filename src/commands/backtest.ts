/**
 * @module `salespipe backtest FILE`: a flow's forecast step (its methods,
 * backtest/forecast.ts) or recommend step (the model against its baselines,
 * backtest/recommend.ts) scored on the flow's own history.
 */
import type { IO } from '../core/io.js';
import type { Logger } from '../core/log.js';
import { backtestForecast, BacktestReport } from '../backtest/forecast.js';
import { planOrPrint, oneSpec, UsageError } from './common.js';
import { backtestRecommendFlow, ProtocolResult, RecommendFlowReport } from '../backtest/recommend.js';

export interface BacktestFlags {
  flow?: string;
  origins: number;
  testDays: number;
  format: 'text' | 'json';
  plot?: string;
  top: number;
}

export default async function backtestCommand(file: string, o: BacktestFlags, io: IO, log: Logger): Promise<number> {
  const plan = planOrPrint(oneSpec(file), io);
  if (!plan) return 2;
  if (o.origins < 1) throw new UsageError('--origins must be at least 1');
  if (o.testDays < 1) throw new UsageError('--test-days must be at least 1');
  // The flow named, else the first with a forecast or a recommend step.
  const flow = plan.flows.find((f) => (o.flow ? f.name === o.flow : f.steps.some((s) => s.key === 'forecast' || s.key === 'recommend')));
  if (!flow) throw new UsageError(o.flow ? `no flow "${o.flow}" in ${file}` : `no flow of ${file} has a forecast or a recommend step`);
  try {
    if (flow.steps.some((s) => s.key === 'recommend') && !flow.steps.some((s) => s.key === 'forecast')) {
      const report = await backtestRecommendFlow(plan, { flow: flow.name, testDays: o.testDays, log, signal: io.signal });
      io.stdout(o.format === 'json' ? `${JSON.stringify(report)}\n` : formatRecommendReport(report));
    } else {
      const report = await backtestForecast(plan, {
        flow: flow.name,
        origins: o.origins,
        plot: o.plot,
        top: o.top,
        log,
        signal: io.signal,
      });
      io.stdout(o.format === 'json' ? `${JSON.stringify(report)}\n` : formatReport(report));
    }
  } catch (e) {
    if (e instanceof Error && /(forecast|recommend) step|no purchases/.test(e.message)) throw new UsageError(e.message);
    throw e;
  }
  return 0;
}

export function formatRecommendReport(r: RecommendFlowReport): string {
  const s = r.settings;
  const lines = [
    `backtest of ${r.flow}: ${r.customers} customers, ${r.items} items; trained on ${r.trainPurchases} purchases before ${r.cutoff}, tested on ${r.testPurchases} from ${r.cutoff} to ${r.end} (${r.testDays} days)`,
    `model: implicit ALS, ${s.factors} factors, regularization ${s.regularization}, alpha ${s.alpha} (${s.confidence}), ${s.iterations} iterations; regional blend ${s.blend}, shrink ${s.shrink}`,
  ];
  const block = (title: string, p: ProtocolResult) => {
    lines.push('', `${title}: ${p.customers} customers scored`);
    lines.push(
      ...table([
        ['model', 'precision@5', 'recall@10', 'NDCG@10', 'coverage'],
        ...p.models.map((m) => [m.model, f3(m.precision5), f3(m.recall10), f3(m.ndcg10), pct(m.coverage)]),
      ]),
    );
  };
  block('new items (not bought before the cut-off)', r.new);
  block('all items', r.all);
  block('new customers (first purchase after the cut-off)', r.cold);
  const m = Object.fromEntries(r.new.models.map((x) => [x.model, x.ndcg10]));
  lines.push(
    '',
    `new items: salespipe's NDCG@10 is ${f2(m.salespipe / m.popularity)} x popularity's and ${f2(m.salespipe / m['item-cosine'])} x item-item cosine's.`,
  );
  return `${lines.join('\n')}\n`;
}

const f3 = (v: number) => v.toFixed(3);
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
