/**
 * @module Where the dashboard reads from: the outputs the given pipelines
 * write (Kafka topics, Parquet datasets) and the sales topic they read,
 * each fed into the model (model.ts).
 *
 * Rules:
 * - Kafka is read with read_committed isolation, so the page shows only
 *   what the pipelines committed, exactly once. Keyed outputs are read from
 *   the beginning (latest value per key, as their compacted topics keep
 *   them); the sales topic only from 48 hours back (by message time).
 *   Topics that do not exist yet are looked for again every 10 s. Each
 *   partition's next offset is kept: a reconnect resumes there, and a
 *   message below it (a batch kafkajs fetched before a seek took effect)
 *   is skipped, so no sale is counted twice.
 * - The consumer group is the dashboard's own (random, removed on close):
 *   it never moves a pipeline's offsets.
 * - A broker that stops answering makes the feed stale (`staleSince`);
 *   the feed reconnects by itself, with backoff, and resumes.
 * - A Parquet dataset is read whole again when its files change (checked
 *   every 2 s); date partitions older than the model's 60 days are skipped.
 */
import crypto from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import type kafkajs from 'kafkajs';
import type { Plan } from '../plan/plan.js';
import type { Logger } from '../core/log.js';
import { formatDecimal, type Row, type Schema } from '../core/types.js';
import { parseJsonExact } from '../core/json.js';
import { kafkaClient, kafkaConn, type KafkaConn } from '../connections/kafka.js';
import { connection, topicName } from '../connections/config.js';
import { flowContext } from '../runtime/flow.js';
import { sleep } from '../connections/retry.js';
import { locate, openStore, visible, type Location, type Store, type StoreContext } from '../storage/store.js';
import { DATASETS, type Model, type Rec } from './model.js';

const KNOWN = new Set<string>(DATASETS);

export interface FeedStatus {
  name: string;
  what: string;
  staleSince?: number;
  error?: string;
}

export interface Feed {
  status(): FeedStatus;
  start(): void;
  close(): Promise<void>;
}

interface KafkaWanted {
  conn: KafkaConn;
  /** Physical topic -> dataset. */
  topics: Map<string, string>;
  /** The topic a dataset has on this cluster (the connection's prefix first). */
  physical: (dataset: string) => string;
}

interface ParquetWanted {
  /** Where it is, for messages: a local folder or an s3:// / hdfs:// path. */
  dir: string;
  dataset: string;
  schema: Schema;
  loc: Location;
  ctx: StoreContext;
}

/** The datasets the pipelines of `plans` write (and the sales topic they read), grouped by where they are. */
export function outputsOf(plans: Plan[], log: Logger): { kafka: KafkaWanted[]; parquet: ParquetWanted[] } {
  const kafka = new Map<string, KafkaWanted>();
  const parquet = new Map<string, ParquetWanted>();
  for (const plan of plans) {
    for (const flow of plan.flows) {
      const ctx = flowContext(plan, flow, { stateDir: os.tmpdir(), log });
      const addTopic = (connName: string, topic: string) => {
        if (!KNOWN.has(topic)) return;
        const conn = kafkaConn(ctx, connName);
        const id = `${conn.brokers}|${JSON.stringify(conn.security ?? {})}`;
        const c = connection(ctx, connName);
        let w = kafka.get(id);
        if (!w) kafka.set(id, (w = { conn, topics: new Map(), physical: (d) => topicName(c, d) }));
        w.topics.set(topicName(c, topic), topic);
      };
      const src = flow.source.cfg as { connection?: string; topic?: string };
      if (flow.source.type === 'kafka' && src.topic && src.connection) addTopic(src.connection, src.topic);
      for (const s of flow.sinks) {
        const cfg = s.cfg as { connection?: string; topic?: string; path?: string };
        if (s.type === 'kafka' && cfg.topic && cfg.connection) addTopic(cfg.connection, cfg.topic);
        if (s.type === 'parquet' && cfg.path) {
          const loc = locate(cfg.path, cfg.connection, ctx.specDir);
          if (typeof loc === 'string') continue;
          const dir = loc.kind === 'local' ? loc.dir : cfg.path.replace(/\/+$/, '');
          const dataset = dir
            .split(loc.kind === 'local' ? path.sep : '/')
            .reverse()
            .find((seg) => KNOWN.has(seg));
          if (dataset) parquet.set(dir, { dir, dataset, schema: s.input.schema, loc, ctx });
        }
      }
    }
  }
  // One source per dataset: a topic (live) wins over a Parquet copy of the same output, and the sales
  // topic over the sales history; two sources of one dataset would count its records twice.
  const onKafka = new Set([...kafka.values()].flatMap((w) => [...w.topics.values()]));
  if (onKafka.has('product_sales')) onKafka.add('sales_history');
  const files = [...parquet.values()].filter((w) => !onKafka.has(w.dataset));
  const history = files.filter((w) => w.dataset === 'sales_history');
  // Datasets other pipelines write (forecasts, recommendations, …) are looked for on every cluster too:
  // the page shows them once their topics exist.
  const written = new Set([...onKafka, ...files.map((w) => w.dataset)]);
  for (const w of kafka.values()) for (const d of DATASETS) if (!written.has(d) && d !== 'sales_history') w.topics.set(w.physical(d), d);
  return { kafka: [...kafka.values()], parquet: files.filter((w) => w.dataset !== 'sales_history' || w === history[0]) };
}

/** A row of a Parquet dataset as the model takes it: numbers as exact text, timestamps as ISO text. */
export function toRec(row: Row, schema: Schema): Rec {
  const out: Rec = {};
  for (const f of schema) {
    const v = row[f.name];
    if (v === null || v === undefined) out[f.name] = null;
    else if (f.type.kind === 'decimal' && (typeof v === 'number' || typeof v === 'bigint'))
      out[f.name] = formatDecimal(v, f.type.scale ?? 0);
    else if (f.type.kind === 'timestamp' && typeof v === 'number') out[f.name] = new Date(v).toISOString();
    else if (typeof v === 'number' || typeof v === 'bigint') out[f.name] = String(v);
    else out[f.name] = v;
  }
  return out;
}

export class ParquetFeed implements Feed {
  private timer?: NodeJS.Timeout;
  private signature = '';
  private error?: string;
  private reading = false;
  private store?: Store;

  constructor(
    private w: ParquetWanted,
    private model: Model,
    private log: Logger,
    private cutoff: () => string,
  ) {}

  status(): FeedStatus {
    // The page names where data comes from, never how to reach it (no paths, brokers or URLs).
    return { name: this.w.dataset, what: 'Parquet dataset', error: this.error ? 'unreadable, retrying' : undefined };
  }

  start(): void {
    const tick = () => void this.poll().finally(() => (this.timer = setTimeout(tick, 2000)));
    tick();
  }

  private async poll() {
    if (this.reading) return;
    this.reading = true;
    try {
      const store = (this.store ??= await openStore(this.w.loc, this.w.ctx));
      const sig = (await store.list())
        .filter((e) => visible(e.key) && e.key.endsWith('.parquet'))
        .map((e) => `${e.key}:${e.size}:${e.mtime}`)
        .sort()
        .join('\n');
      if (sig === this.signature) return;
      const { readDataset } = await import('../operators/sinks/parquet/index.js');
      const cutoff = this.cutoff();
      const rows = await readDataset(store, this.w.schema, (parts) =>
        Object.values(parts).every((v) => v === null || !/^\d{4}-\d{2}-\d{2}$/.test(v) || v >= cutoff),
      );
      this.model.replace(
        this.w.dataset,
        rows.map((r) => toRec(r, this.w.schema)),
        this.w.dir,
      );
      this.signature = sig;
      this.error = undefined;
    } catch (e) {
      // A file replaced while it was read: the next poll reads it again.
      this.error = (e as Error).message;
      this.log.debug(`reading ${this.w.dir}: ${this.error}`);
    } finally {
      this.reading = false;
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.store?.close();
  }
}

/** How far back the sales topic is read. */
const SALES_BACK_MS = 48 * 3_600_000;

export class KafkaFeed implements Feed {
  private stopped = false;
  private staleSince?: number;
  private error?: string;
  private running?: Promise<void>;
  private wake?: () => void;
  /** The next offset to read, per topic and partition: a reconnect resumes there, so nothing is counted twice. */
  private positions = new Map<string, Map<number, string>>();
  private readonly group = `salespipe-dashboard-${os.hostname()}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`;

  constructor(
    private w: KafkaWanted,
    private model: Model,
    private log: Logger,
  ) {}

  status(): FeedStatus {
    return {
      name: [...new Set(this.w.topics.values())].join(', '),
      what: 'Kafka',
      staleSince: this.staleSince,
      error: this.error ? 'not answering, reconnecting' : undefined,
    };
  }

  start(): void {
    this.running = this.loop();
  }

  private async loop() {
    const kafka = kafkaClient({ ...this.w.conn, clientId: 'salespipe-dashboard' }, this.log);
    let attempt = 0;
    while (!this.stopped) {
      const admin = kafka.admin();
      let consumer: kafkajs.Consumer | undefined;
      try {
        await admin.connect();
        const existing = new Set(await admin.listTopics());
        const topics = [...this.w.topics.keys()].filter((t) => existing.has(t));
        // Where each partition starts: where this feed left it; else the sales topic from 48 hours back
        // (by message time) and every other topic from its beginning.
        const starts: { topic: string; partition: number; offset: string }[] = [];
        for (const t of topics) {
          const known = this.positions.get(t) ?? new Map<number, string>();
          this.positions.set(t, known);
          const back =
            this.w.topics.get(t) === 'product_sales' ? await admin.fetchTopicOffsetsByTimestamp(t, Date.now() - SALES_BACK_MS) : [];
          for (const p of await admin.fetchTopicOffsets(t)) {
            const at = known.get(p.partition) ?? back.find((b) => b.partition === p.partition)?.offset ?? p.low;
            known.set(p.partition, at);
            starts.push({ topic: t, partition: p.partition, offset: at });
          }
        }
        if (topics.length) {
          consumer = kafka.consumer({
            groupId: this.group,
            readUncommitted: false,
            allowAutoTopicCreation: false,
            sessionTimeout: 30_000,
            retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 2000 },
          });
          let crashed: ((e: Error) => void) | undefined;
          const crash = new Promise<never>((_, reject) => (crashed = reject));
          crash.catch(() => undefined);
          consumer.on(consumer.events.CRASH, (e) => crashed?.(e.payload.error));
          await consumer.connect();
          await consumer.subscribe({ topics, fromBeginning: true });
          await consumer.run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              const dataset = this.w.topics.get(batch.topic)!;
              const positions = this.positions.get(batch.topic)!;
              for (const m of batch.messages) {
                // kafkajs may hand over a batch fetched before the seek took effect: what is below the
                // position was counted already (or is before where this feed starts), and is skipped.
                const next = positions.get(batch.partition);
                if (next !== undefined && BigInt(m.offset) < BigInt(next)) continue;
                positions.set(batch.partition, String(BigInt(m.offset) + 1n));
                const key = m.key?.toString('utf8') ?? `${batch.partition}/${m.offset}`;
                let rec: Rec | null = null;
                if (m.value) {
                  try {
                    const v = parseJsonExact(m.value.toString('utf8'));
                    if (v && typeof v === 'object') rec = v as Rec;
                    else continue;
                  } catch {
                    continue; // not a record the dashboard can show
                  }
                }
                this.model.upsert(dataset, key, rec);
              }
            },
          });
          for (const s of starts) consumer.seek(s);
          attempt = 0;
          this.staleSince = undefined;
          this.error = undefined;
          // Watch the cluster: a broker that stops answering makes the page stale; new topics restart the consumer.
          await Promise.race([crash, this.watch(admin, topics)]);
        } else {
          this.staleSince = undefined;
          await this.pause(10_000);
        }
      } catch (e) {
        if (this.stopped) break;
        this.staleSince ??= Date.now();
        this.error = (e as Error).message;
        this.log.warn(`dashboard: Kafka at ${this.w.conn.brokers}: ${this.error}; reconnecting`);
        await this.pause(Math.min(10_000, 500 * 2 ** Math.min(attempt++, 5)));
      } finally {
        await Promise.allSettled([consumer?.disconnect(), admin.disconnect()]);
      }
    }
    // The dashboard's own group goes with it.
    const admin = kafka.admin();
    try {
      await withTimeout(
        admin.connect().then(() => admin.deleteGroups([this.group])),
        5000,
      );
    } catch {
      // a group left behind expires with the broker's offsets retention
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /** Returns when new topics appear (the consumer must subscribe again); throws when the cluster stops answering for 10 s. */
  private async watch(admin: kafkajs.Admin, subscribed: string[]): Promise<void> {
    let failingSince: number | undefined;
    for (let n = 0; !this.stopped; n++) {
      await this.pause(2000);
      if (this.stopped) return;
      try {
        const existing = await withTimeout(admin.listTopics(), 4000);
        failingSince = undefined;
        this.staleSince = undefined;
        const wanted = [...this.w.topics.keys()].filter((t) => existing.includes(t));
        if (wanted.length > subscribed.length && n % 5 === 4) return;
      } catch (e) {
        failingSince ??= Date.now();
        this.staleSince ??= failingSince;
        this.error = (e as Error).message;
        if (Date.now() - failingSince > 10_000) throw e;
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await withTimeout(this.running ?? Promise.resolve(), 15_000).catch(() => undefined);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`no answer within ${ms / 1000} s`)))]);
}
