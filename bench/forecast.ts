/**
 * `npm run bench:forecast [-- SERIES]`: the forecast step's model work for
 * SERIES (default 10,000) daily series of 730 days with `auto` over 3
 * origins, 14 days ahead: wall time and peak RSS of the process.
 *
 * Series are drawn like `generate --history`: a base rate from a long tail
 * (a third intermittent), a weekday profile, a trend, promotions, Poisson
 * units. Run alone (`node dist/bench/forecast.js N`) it prints one JSON line.
 */
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { forecastAll } from '../src/forecast/select.js';
import { METHODS } from '../src/forecast/methods.js';
import { poisson } from '../src/gen/history.js';
import { rng } from '../src/gen/generate.js';

export interface ForecastBench {
  series: number;
  days: number;
  seconds: number;
  series_per_s: number;
  peak_rss_mb: number;
}

function series(n: number, days: number, seed: number): Float64Array[] {
  const rand = rng(seed);
  const week = [1.4, 0.85, 0.9, 0.9, 0.95, 1.15, 1.6];
  return Array.from({ length: n }, (_, i) => {
    const base = i % 3 === 0 ? 0.02 + rand() * 0.5 : 1 + rand() ** 2 * 40;
    const trend = rand() * 0.8 - 0.3;
    const promoEvery = 30 + Math.floor(rand() * 70);
    return Float64Array.from({ length: days }, (_, d) =>
      poisson(rand, base * (1 + (trend * d) / 365) * week[d % 7] * (d % promoEvery < 4 ? 2 : 1)),
    );
  });
}

export function runForecastBench(n: number, days = 730): ForecastBench {
  const ys = series(n, days, 42);
  const t0 = process.hrtime.bigint();
  forecastAll(ys, { season: 7, window: 28, horizon: 14, origins: 3, methods: METHODS, level: 80, minTrain: 14 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    series: n,
    days,
    seconds: Number(seconds.toFixed(2)),
    series_per_s: Math.round(n / seconds),
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

/** Runs the bench in a child process of its own, so its peak RSS is its own. */
export function forecastBench(n: number): ForecastBench {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), String(n)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`forecast bench failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(runForecastBench(Number(process.argv[2] ?? process.env.BENCH_FORECAST_SERIES ?? 10_000))));
}
