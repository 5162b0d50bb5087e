/**
 * @module `type: kafka` source: JSON records from a topic, in a consumer group.
 *
 * Rules:
 * - The checkpoint, not the group's committed offsets, is the position: on
 *   start the consumer seeks every partition to the checkpoint's next offset
 *   (or to the start/end of the topic on a first run), and messages before
 *   that offset are skipped. Group offsets are committed after each
 *   checkpoint so that standard tools show the lag.
 * - Each message must be a JSON object fitting the declared schema; anything
 *   else (empty, oversized, invalid UTF-8, not JSON, wrong or missing fields)
 *   becomes a dead letter with the reason and the original bytes.
 * - Backpressure: kafkajs hands over one batch at a time and waits until the
 *   runtime has taken it.
 * - Drain mode reads up to the end offsets seen once upstream flows are done.
 */
import { isUtf8 } from 'node:buffer';
import kafkajs from 'kafkajs';
import type { SourceDef, Source, SourceBatch, StreamInfo, RunContext, DeadLetter } from './operator.js';
import { connectionField } from './operator.js';
import { schemaConfig, planSchema, makeDecoder } from './record-schema.js';
import { checkConnection, connection, kafkaClient, withRetry, topicId, topicName, sleep } from './connections.js';
import { fieldOf } from '../types.js';

interface Config {
  type: 'kafka';
  connection: string;
  topic: string;
  group?: string;
  startFrom?: 'earliest' | 'latest';
  eventTime?: string;
  schema: Record<string, string>;
  maxMessageBytes?: number;
  maxStringLength?: number;
}

type Offsets = Record<string, string>; // partition -> next offset to read

export const kafkaSource: SourceDef<Config> = {
  type: 'kafka',
  doc: 'Consumes JSON records from a Kafka topic in a consumer group; records that do not fit the declared schema go to the dead-letter output.',
  config: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'connection', 'topic', 'schema'],
    properties: {
      type: { const: 'kafka' },
      connection: connectionField('kafka'),
      topic: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$', description: 'Topic to consume.' },
      group: { type: 'string', description: 'Consumer group id (default salespipe.<pipeline>.<flow>).' },
      startFrom: { enum: ['earliest', 'latest'], description: 'Where a first run (no checkpoint) starts (default earliest).' },
      eventTime: { type: 'string', description: 'Timestamp column carrying event time.' },
      schema: schemaConfig,
      maxMessageBytes: { type: 'integer', minimum: 1, description: 'Larger messages are dead-lettered (default 1048576).' },
      maxStringLength: { type: 'integer', minimum: 1, description: 'Longer string fields are dead-lettered (default 4096).' },
    },
  },
  plan(cfg, ctx) {
    checkConnection(ctx, ['connection'], cfg.connection, 'kafka');
    const schema = planSchema(cfg.schema, ctx, ['schema']);
    if (cfg.eventTime) {
      const et = fieldOf(schema, cfg.eventTime);
      if (!et) ctx.error(['eventTime'], `event-time column "${cfg.eventTime}" is not declared in schema`, 'column.unknown');
      else if (et.type.kind !== 'timestamp') ctx.error(['eventTime'], `event-time column "${cfg.eventTime}" must be a timestamp`, 'type.mismatch');
    }
    return { schema, mode: 'append', eventTime: cfg.eventTime };
  },
  reads: (cfg, conns) => topicId(conns, cfg.connection, cfg.topic),
  create(cfg, out, ctx) {
    return new KafkaSource(cfg, out, ctx);
  },
};

interface Handoff { batch: SourceBatch; partition: string; next: string }

const MAX_QUEUED = 4;


class KafkaSource implements Source {
  private kafka!: kafkajs.Kafka;
  private consumer!: kafkajs.Consumer;
  private next_: Offsets = {};
  private end: Offsets | null = null;
  private high: Record<string, string> = {};
  private queue: Handoff[] = [];
  private wake: (() => void) | null = null;
  private failed: Error | null = null;
  private decode;
  private maxBytes: number;
  private group: string;
  private log;
  private endKnown: Promise<void> = Promise.resolve();
  private reseeked = new Set<string>();
  /** Next offset after the last message handed over, per partition (ahead of next_ while queued). */
  private fetched: Record<string, number> = {};
  private spaceWaiters: (() => void)[] = [];
  private topic: string;
  private absent = false;

  constructor(private cfg: Config, out: StreamInfo, private ctx: RunContext) {
    this.decode = makeDecoder(out.schema, { timeZone: ctx.timeZone, maxStringLength: cfg.maxStringLength, inPlace: true });
    this.maxBytes = cfg.maxMessageBytes ?? 1_048_576;
    const conn = connection(ctx, cfg.connection);
    this.topic = topicName(conn, cfg.topic);
    this.group = `${conn.topicPrefix ?? ''}${cfg.group ?? `salespipe.${ctx.pipeline}.${ctx.flow}`}`;
    this.log = ctx.log.child(`kafka:${this.topic}`);
  }

  async open(position: unknown) {
    const conn = connection(this.ctx, this.cfg.connection);
    this.kafka = kafkaClient({ brokers: conn.brokers!, clientId: conn.clientId }, this.log);
    const admin = this.kafka.admin();
    await withRetry('connecting to Kafka', this.log, this.ctx.signal, () => admin.connect());
    try {
      if (!(await this.waitForTopic(admin))) {
        this.absent = true;
        this.log.info(`topic ${this.topic} does not exist and nothing upstream created it: nothing to drain`);
        return;
      }
      const offs = await admin.fetchTopicOffsets(this.topic);
      const saved = (position as { offsets?: Offsets } | undefined)?.offsets;
      for (const o of offs) {
        const p = String(o.partition);
        this.next_[p] = saved?.[p] ?? (this.cfg.startFrom === 'latest' ? o.high : o.low);
        this.high[p] = o.high;
      }
    } finally {
      await admin.disconnect();
    }
    if (this.ctx.drain) this.endKnown = this.ctx.upstreamDone.then(() => this.snapshotEnd());

    this.consumer = this.kafka.consumer({ groupId: this.group, maxBytesPerPartition: 4 << 20, maxBytes: 16 << 20, sessionTimeout: 30_000, maxWaitTimeInMs: 500 });
    await withRetry('joining consumer group', this.log, this.ctx.signal, () => this.consumer.connect());
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.onBatch(payload),
    });
    for (const [p, off] of Object.entries(this.next_)) this.consumer.seek({ topic: this.topic, partition: Number(p), offset: off });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.failed = new Error(`Kafka consumer crashed: ${e.payload.error?.message}`);
      this.wake?.();
    });
  }

  /** Waits for the topic to exist (an upstream flow or producer creates it); false if a drain finds none. */
  private async waitForTopic(admin: kafkajs.Admin): Promise<boolean> {
    let logged = false;
    for (;;) {
      if ((await admin.listTopics()).includes(this.topic)) {
        // A new topic's partitions may still be electing leaders; fetchTopicOffsets needs them.
        await withRetry(`reading offsets of ${this.topic}`, this.log, this.ctx.signal, () => admin.fetchTopicOffsets(this.topic));
        return true;
      }
      if (this.ctx.drain) {
        await this.ctx.upstreamDone;
        if ((await admin.listTopics()).includes(this.topic)) continue;
        return false;
      }
      if (this.ctx.signal.aborted) return false;
      if (!logged) this.log.info(`waiting for topic ${this.topic} to be created`);
      logged = true;
      await sleep(2000, this.ctx.signal);
    }
  }

  private async snapshotEnd() {
    const admin = this.kafka.admin();
    await withRetry('reading end offsets', this.log, this.ctx.signal, () => admin.connect());
    try {
      const offs = await admin.fetchTopicOffsets(this.topic);
      this.end = Object.fromEntries(offs.map((o) => [String(o.partition), o.high]));
      this.log.info(`drain: reading ${this.topic} up to offsets ${JSON.stringify(this.end)}`);
    } finally {
      await admin.disconnect();
    }
  }

  private async onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: kafkajs.EachBatchPayload) {
    const p = String(batch.partition);
    this.high[p] = batch.highWatermark;
    // Offsets stay far below 2^53, so plain numbers compare them exactly and cheaply.
    const expected = this.fetched[p] ?? Number(this.next_[p] ?? 0);
    const msgs = batch.messages;
    let i = 0;
    while (i < msgs.length && Number(msgs[i].offset) < expected) i++; // already in the checkpointed state
    if (i === msgs.length) return;
    if (Number(msgs[i].offset) > expected && !this.reseeked.has(`${p}@${expected}`)) {
      // A fetch issued before our start-up seek took effect (group offsets ahead of the
      // checkpoint): seek again, once. A second fetch from here that still skips offsets
      // skips only transaction markers or compacted records, which is fine.
      this.reseeked.add(`${p}@${expected}`);
      this.consumer.seek({ topic: batch.topic, partition: batch.partition, offset: String(expected) });
      return;
    }
    const out: SourceBatch = { rows: [], dead: [] };
    for (; i < msgs.length; i++) this.decodeMessage(msgs[i], p, out);
    const last = Number(msgs[msgs.length - 1].offset);
    this.fetched[p] = last + 1;
    // Bounded hand-over: kafkajs may fetch ahead while the runtime works, up to MAX_QUEUED batches.
    while (this.queue.length >= MAX_QUEUED) await new Promise<void>((r) => this.spaceWaiters.push(r));
    this.queue.push({ batch: out, partition: p, next: String(last + 1) });
    this.wake?.();
    if (!isRunning() || isStale()) return;
    resolveOffset(String(last));
    await heartbeat();
  }

  private decodeMessage(m: kafkajs.KafkaMessage, p: string, out: SourceBatch) {
    const origin = `${this.topic}/${p}@${m.offset}`;
    const v = m.value;
    if (!v || v.length === 0) return void out.dead.push({ reason: 'empty message', payload: '', encoding: 'utf8', origin });
    if (v.length > this.maxBytes) return void out.dead.push({ reason: `message of ${v.length} bytes exceeds maxMessageBytes ${this.maxBytes}`, payload: v.subarray(0, 1024).toString('base64'), encoding: 'base64', origin });
    if (!isUtf8(v)) return void out.dead.push({ reason: 'payload is not valid UTF-8', payload: v.toString('base64'), encoding: 'base64', origin });
    const text = v.toString('utf8');
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      return void out.dead.push({ reason: `not JSON: ${(e as Error).message}`, payload: text, encoding: 'utf8', origin });
    }
    const r = this.decode(obj);
    if (typeof r === 'string') out.dead.push({ reason: r, payload: text, encoding: 'utf8', origin } satisfies DeadLetter);
    else out.rows.push(r);
  }

  private drained(): boolean {
    if (!this.end) return false;
    return Object.entries(this.end).every(([p, end]) => BigInt(this.next_[p] ?? '0') >= BigInt(end));
  }

  async next(): Promise<SourceBatch | null> {
    if (this.absent) return null;
    for (;;) {
      if (this.failed) throw this.failed;
      const h = this.queue.shift();
      if (h) {
        this.next_[h.partition] = h.next; // the position now covers this batch
        this.spaceWaiters.shift()?.();
        return h.batch;
      }
      if (this.ctx.signal.aborted) return null;
      if (this.ctx.drain && this.end && this.drained()) return null;
      // Wait for a batch, but come back regularly so the runtime can checkpoint.
      await new Promise<void>((r) => {
        const t = setTimeout(() => { this.wake = null; r(); }, 200);
        this.wake = () => { clearTimeout(t); this.wake = null; r(); };
      });
      if (!this.queue.length) return { rows: [], dead: [] };
    }
  }

  position() {
    return { offsets: { ...this.next_ } };
  }

  lag() {
    let lag = 0n;
    for (const [p, h] of Object.entries(this.high)) lag += BigInt(h) - BigInt(this.next_[p] ?? h) > 0n ? BigInt(h) - BigInt(this.next_[p] ?? h) : 0n;
    return Number(lag);
  }

  async commit(position: unknown) {
    if (this.absent) return;
    const offsets = (position as { offsets: Offsets }).offsets;
    await this.consumer
      .commitOffsets(Object.entries(offsets).map(([p, offset]) => ({ topic: this.topic, partition: Number(p), offset })))
      .catch((e) => this.log.debug(`group offset commit skipped: ${e.message}`));
  }

  async close() {
    await this.endKnown.catch(() => undefined);
    // Release kafkajs if it waits for room, then leave the group.
    this.queue.length = 0;
    for (const w of this.spaceWaiters.splice(0)) w();
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
