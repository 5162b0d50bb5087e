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
 *    (from start to last commit) and peak RSS.
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
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { customers, randomSale, rng } from '../src/gen/generate.js';
import knexFactory from 'knex';
import { formatTimestamp } from '../src/core/time.js';
import { PACKAGE_ROOT } from '../src/core/paths.js';
import { startupTimes } from './startup.js';
import { latency } from './latency.js';
import { forecastBench } from './forecast.js';
import { recommendBench } from './recommend.js';
import { archiveBench } from './archive.js';

const ROOT = PACKAGE_ROOT;
const N = Number(process.argv[2] ?? process.env.BENCH_RECORDS ?? 1_000_000);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const kafka = new kafkajs.Kafka({ brokers, clientId: 'salespipe-bench', logLevel: kafkajs.logLevel.ERROR });
const id = `bench.${Date.now().toString(36)}`;
const topic = `${id}.product_sales`;
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

async function produce() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();
  const p = kafka.producer({ allowAutoTopicCreation: false });
  await p.connect();
  const rand = rng(7);
  const t0 = Date.now();
  const start = Date.UTC(2026, 0, 1);
  for (let i = 0; i < N; i += 10_000) {
    const messages = [];
    for (let j = i; j < Math.min(N, i + 10_000); j++) {
      const s = randomSale(rand, start + j * 1000);
      messages.push({
        key: String(j + 1),
        value: JSON.stringify({
          transaction_id: j + 1,
          ...s,
          price_per_unit: Number(s.price_per_unit),
          transaction_date: formatTimestamp(start + j * 1000),
        }),
      });
    }
    // One send at a time: concurrent sends of a non-idempotent producer can land out of order
    // (seen here: 290,000 of 1,000,000 records behind a later one), and the windowed pipeline
    // then rightly dead-letters them as late.
    await p.send({ topic, acks: 1, messages });
  }
  await p.disconnect();
  log(`produced ${N} messages to ${topic} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/** The ceiling: same client, same topic, no processing. */
async function ceiling(): Promise<number> {
  const c = kafka.consumer({ groupId: `${id}.ceiling`, maxBytesPerPartition: 4 << 20, maxBytes: 16 << 20, maxWaitTimeInMs: 500 });
  const t0 = Date.now();
  await c.connect();
  await c.subscribe({ topic, fromBeginning: true });
  let n = 0;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  await c.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      n += batch.messages.length;
      if (n >= N) done();
    },
  });
  await finished;
  const secs = (Date.now() - t0) / 1000;
  await c.disconnect();
  log(`ceiling: kafkajs read ${n} messages in ${secs.toFixed(2)} s`);
  return n / secs;
}

/** The customer table the join pipeline reads: 500 customers in SQLite. */
async function customerTable(dir: string) {
  const db = knexFactory({ client: 'better-sqlite3', connection: { filename: path.join(dir, 'customers.db') }, useNullAsDefault: true });
  await db.raw(
    fs
      .readFileSync(path.join(ROOT, 'sql/sqlite.sql'), 'utf8')
      .split(';')
      .find((q) => /customer_data/.test(q))!,
  );
  await db('customer_data').insert(customers(500, 1));
  await db.destroy();
}

async function pipeline(spec: string, flow: string): Promise<{ rate: number; rss: number; secs: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salespipe-bench-'));
  await customerTable(dir);
  // A pipeline of its own per bench run: its checkpoints refer to this run's topic only.
  const env = {
    ...process.env,
    BENCH_TOPIC: topic,
    BENCH_GROUP: `${id}.${flow}`,
    BENCH_PIPELINE: `bench-${id.slice(6)}-${flow}`,
    BENCH_DIR: dir,
    SALESPIPE_STATE_DIR: path.join(dir, 'state'),
  };
  // BENCH_NODE_ARGS passes flags to the measured process, e.g. --cpu-prof for profiling.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [...nodeArgs, path.join(ROOT, 'bin/salespipe.js'), 'run', path.join(ROOT, 'bench', spec), '--drain'],
    { env, stdio: ['ignore', 'inherit', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
    process.stderr.write(d);
  });
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`salespipe exited ${code}`);
  const m = new RegExp(`${flow}: ([\\d,]+) records in, .* in ([\\d.]+) s`).exec(err);
  const rss = /peak RSS (\d+) MB/.exec(err);
  if (!m || !rss) throw new Error('could not read salespipe summary');
  const records = Number(m[1].replace(/,/g, ''));
  if (records !== N) throw new Error(`salespipe read ${records} records, expected ${N}`);
  // The bench's sales are valid and in event-time order: a dead letter means the figures measure something else.
  const dead = new RegExp(`${flow}: [\\d,]+ records in, [\\d,]+ out, ([\\d,]+) dead letters`).exec(err);
  if (!dead || dead[1] !== '0') throw new Error(`salespipe dead-lettered ${dead?.[1] ?? 'an unknown number of'} of the bench's records`);
  if (!process.env.BENCH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  return { rate: records / Number(m[2]), rss: Number(rss[1]), secs: Number(m[2]) };
}

async function cleanup() {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, `${topic}.aggregated`, `${topic}.windowed`, `${topic}.segments`] }).catch(() => undefined);
  await admin.disconnect();
}

await produce();
const ceil = await ceiling();
const results: Record<string, { records_per_s: number; ratio: number; peak_rss_mb: number }> = {};
for (const [name, spec, flow] of [
  ['aggregate', 'aggregate.yaml', 'aggregate_sales'],
  ['windowed', 'windowed.yaml', 'hourly_sales'],
  ['join', 'segments.yaml', 'segment_sales'],
]) {
  const run = await pipeline(spec, flow);
  log(`salespipe ${name}: ${Math.round(run.rate)} records/s over ${run.secs} s, peak RSS ${run.rss} MB`);
  results[name] = { records_per_s: Math.round(run.rate), ratio: Number((run.rate / ceil).toFixed(3)), peak_rss_mb: run.rss };
}
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
    pipelines: results,
    startup,
    forecast: fc,
    recommend: rec,
    archive: arc,
  }),
);
