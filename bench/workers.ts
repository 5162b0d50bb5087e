/**
 * Flows on worker threads: bench/sales.yaml (the two Kafka-reading flows of
 * pipelines/sales.yaml) drained with --workers 1, then --workers 2, over
 * the bench topic. The rate counts both flows' records over the slower
 * one's time.
 *
 * Alone: `npm run bench:workers [-- N]` (default 1,000,000 sales), its own
 * topic; also a phase of `npm run bench`.
 */
import { fileURLToPath } from 'node:url';
import { cleanup, log, pipeline, produce } from './kafka-run.js';

export interface WorkersResult {
  records_per_s: number;
  workers2_records_per_s: number;
  workers2_speedup: number;
  peak_rss_mb: number;
  workers2_peak_rss_mb: number;
  /** CPU seconds of the measured process, all threads (kafkajs's fetch threads included). */
  cpu_s: number;
  workers2_cpu_s: number;
}

export async function workersBench(): Promise<WorkersResult> {
  const flows = ['aggregate_sales', 'archive_sales'];
  const w1 = await pipeline('sales.yaml', flows, ['--workers', '1'], 'sales-w1');
  const w2 = await pipeline('sales.yaml', flows, ['--workers', '2'], 'sales-w2');
  const r: WorkersResult = {
    records_per_s: Math.round(w1.rate),
    workers2_records_per_s: Math.round(w2.rate),
    workers2_speedup: Number((w2.rate / w1.rate).toFixed(2)),
    peak_rss_mb: w1.rss,
    workers2_peak_rss_mb: w2.rss,
    cpu_s: w1.cpu,
    workers2_cpu_s: w2.cpu,
  };
  log(
    `salespipe sales (2 flows; both flows' records over the slower one's time): ${r.records_per_s} records/s on one thread, ${r.workers2_records_per_s} on 2 workers (${r.workers2_speedup} x), peak RSS ${w1.rss} / ${w2.rss} MB, CPU ${w1.cpu} / ${w2.cpu} s over ${w1.secs} / ${w2.secs} s`,
  );
  return r;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await produce();
  try {
    console.log(JSON.stringify(await workersBench()));
  } finally {
    await cleanup();
  }
}
