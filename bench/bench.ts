/**
 * `npm run bench [-- N]`: throughput and memory of three pipelines, each as
 * a ratio to the ceiling — the same kafkajs client reading the same topic
 * with no processing at all.
 *
 * 1. Produces N sales (default 1,000,000) as JSON to a fresh 3-partition topic.
 * 2. Ceiling: a kafkajs consumer in a new group reads all N, doing nothing.
 * 3. salespipe runs, each with --drain in its own process and consumer group:
 *    bench/aggregate.yaml (running totals), bench/windowed.yaml (hourly
 *    event-time windows) and bench/segments.yaml (join with 500 customers
 *    from SQLite, totals per segment). Each one's summary gives records/s
 *    (from start to last commit) and peak RSS. Then bench/sales.yaml (the
 *    two Kafka flows of sales.yaml) with --workers 1 and --workers 2.
 * 4. Latency (latency.ts): sales offered at 5,000/s for BENCH_LATENCY_SECS
 *    (default 20) to the aggregate flow at the default checkpoint
 *    interval, p50/p99 until read_committed.
 * 5. Start-up (startup.ts): `--help` and `validate` of one spec, median
 *    wall time beside a bare `node`.
 * 6. Forecasting (forecast.ts): BENCH_FORECAST_SERIES (default 10,000)
 *    series x 730 days, auto over 3 origins: time and peak RSS.
 * 7. Recommendations (recommend.ts): BENCH_RECOMMEND customers,products,
 *    purchases (default 100000,5000,2000000): training, every customer's
 *    top 5, fold-ins per second, peak RSS.
 * The last line printed is JSON: the aggregate's figures at the top level
 * (as before), every pipeline's under `pipelines`, start-up under `startup`,
 * forecasting under `forecast`, recommendations under `recommend`.
 */
import { N, ceiling, cleanup, log, pipeline, produce } from './kafka-run.js';
import { workersBench } from './workers.js';
import { startupTimes } from './startup.js';
import { latency } from './latency.js';
import { forecastBench } from './forecast.js';
import { recommendBench } from './recommend.js';
import { archiveBench } from './archive.js';

await produce();
const ceil = await ceiling();
const results: Record<string, { records_per_s: number; ratio: number; peak_rss_mb: number }> = {};
for (const [name, spec, flow] of [
  ['aggregate', 'aggregate.yaml', 'aggregate_sales'],
  ['windowed', 'windowed.yaml', 'hourly_sales'],
  ['join', 'segments.yaml', 'segment_sales'],
]) {
  const run = await pipeline(spec, [flow]);
  log(`salespipe ${name}: ${Math.round(run.rate)} records/s over ${run.secs} s, peak RSS ${run.rss} MB`);
  results[name] = { records_per_s: Math.round(run.rate), ratio: Number((run.rate / ceil).toFixed(3)), peak_rss_mb: run.rss };
}
// The two Kafka flows of sales.yaml in one process: on the main thread, then on two worker threads.
const sales = await workersBench();
await cleanup();
// At the shipped default interval (auto: 100ms for this Kafka-only flow).
const lat = await latency('auto', 5000, Number(process.env.BENCH_LATENCY_SECS ?? 20));
const startup = startupTimes();
log(
  `start-up (median): node ${startup.node_ms} ms, salespipe --help ${startup.help_ms} ms, validate pipelines/sales.yaml ${startup.validate_ms} ms`,
);
const fc = forecastBench(Number(process.env.BENCH_FORECAST_SERIES ?? 10_000));
log(`forecast: ${fc.series} series x ${fc.days} days (auto, 3 origins) in ${fc.seconds} s, peak RSS ${fc.peak_rss_mb} MB`);
const [rc, rp, rn] = (process.env.BENCH_RECOMMEND ?? '100000,5000,2000000').split(',').map(Number);
const rec = recommendBench(rc, rp, rn);
log(
  `recommend: ${rec.customers} customers x ${rec.products} products x ${rec.purchases} purchases: trained in ${rec.train_seconds} s, top 5 for all in ${rec.recommend_all_seconds} s, ${rec.fold_ins_per_s} fold-ins/s, peak RSS ${rec.peak_rss_mb} MB`,
);
const arc = archiveBench(Number(process.env.BENCH_ARCHIVE_ROWS ?? 1_000_000));
log(
  `archive: ${arc.rows} rows in ${arc.epochs} epochs: S3 ${arc.s3_rows_per_s} rows/s (${arc.s3_to_local} x local disk's ${arc.local_rows_per_s}, ${arc.s3_to_raw} x plain PUTs of the same files' ${arc.s3_raw_put_rows_per_s})`,
);
const a = results.aggregate;
console.log(
  JSON.stringify({
    records: N,
    records_per_s: a.records_per_s,
    ceiling_records_per_s: Math.round(ceil),
    ratio: a.ratio,
    peak_rss_mb: a.peak_rss_mb,
    latency_p50_ms: lat.p50_ms,
    latency_p99_ms: lat.p99_ms,
    pipelines: { ...results, sales },
    startup,
    forecast: fc,
    recommend: rec,
    archive: arc,
  }),
);
