/**
 * @module The Kafka part of the benchmark, shared by bench.ts and workers.ts:
 * a topic of N sales, the ceiling (the same client reading it with no
 * processing), a salespipe run over it, and removing the topics after.
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

const ROOT = PACKAGE_ROOT;
export const N = Number(process.argv[2] ?? process.env.BENCH_RECORDS ?? 1_000_000);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const kafka = new kafkajs.Kafka({ brokers, clientId: 'salespipe-bench', logLevel: kafkajs.logLevel.ERROR });
const id = `bench.${Date.now().toString(36)}`;
const topic = `${id}.product_sales`;
export const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

export async function produce() {
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
export async function ceiling(): Promise<number> {
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

/**
 * Runs `spec` with --drain (and `args`) in its own process; `flows` are the
 * flows whose summaries count. The rate is their records over the slowest
 * one's time (each from its start to its last commit: they run at once).
 */
export async function pipeline(
  spec: string,
  flows: string[],
  args: string[] = [],
  tag = flows[0],
): Promise<{ rate: number; rss: number; secs: number; cpu: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salespipe-bench-'));
  await customerTable(dir);
  // A pipeline of its own per bench run: its checkpoints refer to this run's topic only.
  const env = {
    ...process.env,
    BENCH_TOPIC: topic,
    BENCH_GROUP: `${id}.${tag}`,
    BENCH_PIPELINE: `bench-${id.slice(6)}-${tag}`,
    BENCH_DIR: dir,
    SALESPIPE_STATE_DIR: path.join(dir, 'state'),
  };
  // BENCH_NODE_ARGS passes flags to the measured process, e.g. --cpu-prof for profiling.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(
    process.execPath,
    [...nodeArgs, path.join(ROOT, 'bin/salespipe.js'), 'run', path.join(ROOT, 'bench', spec), '--drain', ...args],
    { env, stdio: ['ignore', 'inherit', 'pipe'] },
  );
  let err = '';
  child.stderr.on('data', (d) => {
    err += d;
    process.stderr.write(d);
  });
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  if (code !== 0) throw new Error(`salespipe exited ${code}`);
  const rss = /peak RSS (\d+) MB/.exec(err);
  if (!rss) throw new Error('could not read salespipe summary');
  let records = 0;
  let secs = 0;
  for (const flow of flows) {
    const m = new RegExp(`${flow}: ([\\d,]+) records in, .* in ([\\d.]+) s`).exec(err);
    if (!m) throw new Error(`could not read the summary of ${flow}`);
    const n = Number(m[1].replace(/,/g, ''));
    if (n !== N) throw new Error(`salespipe's ${flow} read ${n} records, expected ${N}`);
    // The bench's sales are valid and in event-time order: a dead letter means the figures measure something else.
    const dead = new RegExp(`${flow}: [\\d,]+ records in, [\\d,]+ out, ([\\d,]+) dead letters`).exec(err);
    if (!dead || dead[1] !== '0') throw new Error(`salespipe dead-lettered ${dead?.[1] ?? 'an unknown number of'} of the bench's records`);
    records += n;
    secs = Math.max(secs, Number(m[2]));
  }
  if (!process.env.BENCH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  const cpu = Number(/CPU ([\d.]+) s/.exec(err)?.[1] ?? NaN);
  return { rate: records / secs, rss: Number(rss[1]), secs, cpu };
}

/** Removes the bench topic and the topics the pipelines wrote. */
export async function cleanup() {
  const admin = kafka.admin();
  await admin.connect();
  // Only those that exist: a phase run alone leaves the others uncreated, and deleting them logs errors.
  const existing = new Set(await admin.listTopics());
  const topics = [topic, `${topic}.aggregated`, `${topic}.windowed`, `${topic}.segments`].filter((t) => existing.has(t));
  await admin.deleteTopics({ topics }).catch(() => undefined);
  await admin.disconnect();
}
