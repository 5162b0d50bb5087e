/**
 * `npm run bench:inventory [-- SECONDS]`: pipelines/inventory.yaml over a
 * long run, for what a checkpoint costs as the state grows and what the
 * process holds in memory.
 *
 * - The inventory table is in SQLite; sales are produced to a fresh
 *   3-partition product_sales at BENCH_RATE per second (default 2,000),
 *   with event time now; every 10 s one product is recounted (a restock),
 *   which drops its movements from the state.
 * - The run serves /metrics; every 250 ms the bench reads the checkpoint
 *   bytes written (salespipe_checkpoint_bytes_total), the epochs and the
 *   resident memory of the process.
 * Prints a line per 10 s and, last, JSON: per flow the epochs, checkpoint
 * bytes per epoch over the whole run and over its last 10 s, and the peak
 * RSS.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import knexFactory from 'knex';
import { CATALOG, inventoryRows, randomSale, restock, rng } from '../src/gen/generate.js';
import { formatTimestamp } from '../src/core/time.js';
import { PACKAGE_ROOT } from '../src/core/paths.js';

const SECS = Number(process.argv[2] ?? process.env.BENCH_SECS ?? 120);
const RATE = Number(process.env.BENCH_RATE ?? 2000);
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const kafka = new kafkajs.Kafka({ brokers, clientId: 'salespipe-bench', logLevel: kafkajs.logLevel.ERROR });
const prefix = `bench.inv.${Date.now().toString(36)}.`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salespipe-bench-'));

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

/** Samples of /metrics: per flow, and the process's resident memory. */
function parse(text: string) {
  const flows = new Map<string, { bytes: number; epochs: number; last: number }>();
  let rss = 0;
  for (const line of text.split('\n')) {
    const m =
      /^(salespipe_checkpoint_bytes_total|salespipe_checkpoint_bytes|salespipe_epochs_total)\{[^}]*flow="([^"]+)"[^}]*\} (\S+)/.exec(line);
    if (m) {
      const f = flows.get(m[2]) ?? { bytes: 0, epochs: 0, last: 0 };
      if (m[1] === 'salespipe_epochs_total') f.epochs = Number(m[3]);
      else if (m[1] === 'salespipe_checkpoint_bytes') f.last = Number(m[3]);
      else f.bytes = Number(m[3]);
      flows.set(m[2], f);
    }
    const r = /^salespipe_process_resident_memory_bytes (\S+)/.exec(line);
    if (r) rss = Number(r[1]);
  }
  return { flows, rss };
}

const db = knexFactory({ client: 'better-sqlite3', connection: { filename: path.join(dir, 'sales.db') }, useNullAsDefault: true });
for (const q of fs.readFileSync(path.join(PACKAGE_ROOT, 'sql/sqlite.sql'), 'utf8').split(';'))
  if (/\S/.test(q.replace(/--.*$/gm, ''))) await db.raw(q);
await db('inventory').insert(inventoryRows(1));
const admin = kafka.admin();
await admin.connect();
await admin.createTopics({ topics: [{ topic: `${prefix}product_sales`, numPartitions: 3 }], waitForLeaders: true });
await admin.disconnect();

const port = await freePort();
const child = spawn(
  process.execPath,
  [
    path.join(PACKAGE_ROOT, 'bin/salespipe.js'),
    'run',
    path.join(PACKAGE_ROOT, 'pipelines/inventory.yaml'),
    '--no-progress',
    '--metrics-port',
    String(port),
  ],
  {
    env: {
      ...process.env,
      SALES_DB_URL: `sqlite:${path.join(dir, 'sales.db')}`,
      KAFKA_TOPIC_PREFIX: prefix,
      SALESPIPE_STATE_DIR: path.join(dir, 'state'),
      INVENTORY_REFRESH: '1s',
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  },
);
let err = '';
child.stderr.on('data', (d) => (err += d));
const scrape = async () => {
  try {
    return parse(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  } catch {
    return undefined;
  }
};

try {
  const t0 = Date.now();
  while (!(await scrape())?.flows.size) {
    if (child.exitCode !== null) throw new Error(`salespipe exited ${child.exitCode}: ${err}`);
    if (Date.now() - t0 > 60_000) throw new Error(`no metrics within 60 s: ${err}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const r = rng(9);
  let peak = 0;
  const history: { at: number; flows: Map<string, { bytes: number; epochs: number; last: number }> }[] = [];
  const sampler = setInterval(async () => {
    const s = await scrape();
    if (!s) return;
    peak = Math.max(peak, s.rss);
    history.push({ at: Date.now(), flows: s.flows });
  }, 250);
  const began = Date.now();
  let n = 0;
  let lastReport = began;
  while (Date.now() - began < SECS * 1000) {
    const due = Math.floor(((Date.now() - began) / 1000) * RATE);
    const messages = [];
    for (; n < due; n++) {
      const s = randomSale(r, Date.now());
      messages.push({
        key: String(n + 1),
        value: JSON.stringify({
          transaction_id: n + 1,
          ...s,
          price_per_unit: Number(s.price_per_unit),
          transaction_date: formatTimestamp(Date.now()),
        }),
      });
    }
    if (messages.length) await producer.send({ topic: `${prefix}product_sales`, acks: -1, messages });
    if (Date.now() - lastReport >= 10_000) {
      lastReport = Date.now();
      const p = CATALOG[Math.floor(r() * CATALOG.length)];
      await restock(db, p.name, p.brand, 100 + Math.floor(r() * 400));
      const last = history[history.length - 1];
      const f = last?.flows.get('inventory_levels');
      log(
        `${Math.round((Date.now() - began) / 1000)} s: ${n} sales, inventory_levels ${f?.epochs ?? 0} epochs, ${Math.round((f?.bytes ?? 0) / 1024)} KiB of checkpoints (the last ${Math.round((f?.last ?? 0) / 1024)} KiB), RSS ${Math.round(peak / 1048576)} MB peak`,
      );
    }
    await new Promise((res) => setTimeout(res, 20));
  }
  await producer.disconnect();
  await new Promise((res) => setTimeout(res, 3000));
  clearInterval(sampler);
  const end = history[history.length - 1];
  const tenBefore = [...history].reverse().find((h) => h.at <= end.at - 10_000) ?? history[0];
  const result: Record<string, unknown> = { seconds: SECS, sales: n, rate: RATE, peak_rss_mb: Math.round(peak / 1048576), flows: {} };
  for (const [flow, f] of end.flows) {
    const b = tenBefore.flows.get(flow) ?? { bytes: 0, epochs: 0, last: 0 };
    (result.flows as Record<string, unknown>)[flow] = {
      epochs: f.epochs,
      checkpoint_bytes_per_epoch: Math.round(f.bytes / Math.max(1, f.epochs)),
      last_10s_checkpoint_bytes_per_epoch: Math.round((f.bytes - b.bytes) / Math.max(1, f.epochs - b.epochs)),
      last_checkpoint_bytes: f.last,
    };
  }
  log(JSON.stringify(result));
  console.log(JSON.stringify(result));
} finally {
  child.kill('SIGTERM');
  await new Promise((res) => child.once('exit', res));
  await db.destroy();
  const a = kafka.admin();
  await a.connect();
  const topics = (await a.listTopics()).filter((t) => t.startsWith(prefix));
  await a.deleteTopics({ topics }).catch(() => undefined);
  await a.disconnect();
  if (!process.env.BENCH_KEEP) fs.rmSync(dir, { recursive: true, force: true });
}
