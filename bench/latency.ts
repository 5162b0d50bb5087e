/**
 * End-to-end latency at a fixed offered rate, exactly-once kept: from a
 * sale's send to `product_sales` until a read_committed consumer of the
 * aggregate topic reads a total that counts it.
 *
 * - bench/latency.yaml (the aggregate_sales flow, Kafka output only) runs
 *   as a service with the given checkpoint interval.
 * - Sales are sent at `rate` per second for `secs` seconds, keyed by
 *   product: a product's sales are in one partition, in order, so the
 *   total with `transactions` = n counts exactly its first n sales.
 * - A sale's latency is the time from just before its send to the read of
 *   the first total counting it. Percentiles over every sale.
 *
 * Alone: `npm run bench:latency [-- INTERVAL...]` (default 100ms 250ms 1s 5s).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { randomSale, rng } from '../src/gen/generate.js';
import { formatTimestamp } from '../src/core/time.js';
import { PACKAGE_ROOT } from '../src/core/paths.js';

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

export interface LatencyResult {
  interval: string;
  rate: number;
  sales: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
  /** Epochs the run committed, per second of the offered load. */
  epochs_per_s: number;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

export async function latency(interval: string, rate = 5000, secs = 20): Promise<LatencyResult> {
  const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const kafka = new kafkajs.Kafka({ brokers, clientId: 'salespipe-bench', logLevel: kafkajs.logLevel.ERROR });
  const id = `bench.lat.${Date.now().toString(36)}`;
  const topic = `${id}.product_sales`;
  const out = `${topic}.aggregated`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: 3 },
      { topic: out, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] },
    ],
  });
  await admin.disconnect();

  // The reader first: it must see every total from the start.
  const seen = new Map<string, number>();
  const sent = new Map<string, number[]>();
  const lat: number[] = [];
  const total = rate * secs;
  let resolve!: () => void;
  const all = new Promise<void>((r) => (resolve = r));
  const reader = kafka.consumer({ groupId: `${id}.reader`, maxWaitTimeInMs: 10, readUncommitted: false });
  await reader.connect();
  await reader.subscribe({ topic: out, fromBeginning: true });
  await reader.run({
    eachMessage: async ({ message }) => {
      const now = performance.now();
      const v = JSON.parse(message.value!.toString());
      const k = `${v.product_name}|${v.brand}|${v.product_category}`;
      const times = sent.get(k) ?? [];
      for (let i = seen.get(k) ?? 0; i < Math.min(v.transactions, times.length); i++) lat.push(now - times[i]);
      seen.set(k, Math.max(seen.get(k) ?? 0, v.transactions));
      if (lat.length >= total) resolve();
    },
  });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salespipe-bench-'));
  const env = {
    ...process.env,
    BENCH_TOPIC: topic,
    BENCH_GROUP: `${id}.salespipe`,
    BENCH_PIPELINE: `bench-${id.slice(10)}`,
    BENCH_DIR: dir,
    CHECKPOINT_INTERVAL: interval,
    SALESPIPE_STATE_DIR: path.join(dir, 'state'),
  };
  const child = spawn(
    process.execPath,
    [path.join(PACKAGE_ROOT, 'bin/salespipe.js'), 'run', path.join(PACKAGE_ROOT, 'bench/latency.yaml'), '--no-progress'],
    {
      env,
      stdio: ['ignore', 'inherit', 'pipe'],
    },
  );
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  try {
    // Sales start once the flow's consumer group is stable with it as a member.
    const t0 = Date.now();
    const ga = kafka.admin();
    await ga.connect();
    for (;;) {
      if (child.exitCode !== null) throw new Error(`salespipe exited ${child.exitCode}: ${err}`);
      if (Date.now() - t0 > 60_000) throw new Error(`salespipe did not join its consumer group within 60 s: ${err}`);
      const { groups } = await ga.describeGroups([env.BENCH_GROUP]);
      if (groups[0]?.state === 'Stable' && groups[0].members.length) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await ga.disconnect();
    await new Promise((r) => setTimeout(r, 1000));
    const p = kafka.producer({ allowAutoTopicCreation: false });
    await p.connect();
    const r = rng(3);
    const start = Date.UTC(2026, 0, 1);
    const tick = 10; // ms between sends
    const per = Math.round((rate * tick) / 1000);
    const began = performance.now();
    let n = 0;
    while (n < total) {
      const messages = [];
      const now = performance.now();
      for (let j = 0; j < per && n < total; j++, n++) {
        const s = randomSale(r, start + n);
        const k = `${s.product_name}|${s.brand}|${s.product_category}`;
        let times = sent.get(k);
        if (!times) sent.set(k, (times = []));
        times.push(now);
        messages.push({
          key: k,
          value: JSON.stringify({
            transaction_id: n + 1,
            ...s,
            price_per_unit: Number(s.price_per_unit),
            transaction_date: formatTimestamp(start + n),
          }),
        });
      }
      await p.send({ topic, acks: -1, messages });
      // Fixed rate: the next send at its slot, whatever this one cost.
      const next = began + (n / per) * tick;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    }
    await p.disconnect();
    const offered = (performance.now() - began) / 1000;
    await Promise.race([
      all,
      new Promise((_, rej) => setTimeout(() => rej(new Error(`only ${lat.length} of ${total} sales seen in the totals`)), 120_000)),
    ]);
    child.kill('SIGTERM');
    await exited;
    const epochs = Number(/aggregate_sales: .* (\d+) epoch\(s\)/.exec(err)?.[1] ?? NaN);
    lat.sort((a, b) => a - b);
    const res: LatencyResult = {
      interval,
      rate,
      sales: lat.length,
      p50_ms: Math.round(pct(lat, 50)),
      p99_ms: Math.round(pct(lat, 99)),
      max_ms: Math.round(lat[lat.length - 1]),
      epochs_per_s: Number((epochs / offered).toFixed(1)),
    };
    log(`latency at ${rate} sales/s, checkpoint interval ${interval}: p50 ${res.p50_ms} ms, p99 ${res.p99_ms} ms, max ${res.max_ms} ms`);
    return res;
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await reader.disconnect().catch(() => undefined);
    const a = kafka.admin();
    await a.connect();
    await a.deleteTopics({ topics: [topic, out] }).catch(() => undefined);
    await a.disconnect();
    if (!process.env.BENCH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const intervals = process.argv.slice(2).length ? process.argv.slice(2) : ['100ms', '250ms', '1s', '5s'];
  const results = [];
  for (const i of intervals) results.push(await latency(i));
  console.log(JSON.stringify(results));
}
