/**
 * @module Exactly-once for flows that read or write Kafka: one Kafka
 * transaction per epoch holds the flow's Kafka outputs (if any) *and* its
 * checkpoint.
 *
 * Rules:
 * - One transactional producer per flow, transactional.id
 *   `<topicPrefix>salespipe.<pipeline>.<flow>`. Starting it fences any
 *   earlier producer of the same flow (a zombie of a killed run, or another
 *   instance): the broker aborts that producer's open transaction and
 *   refuses its further writes.
 * - Every Kafka output of the flow (sinks, dead letters, late records) is
 *   sent inside the epoch's transaction; the epoch's checkpoint (operator
 *   state, source position, staged files) is written to the compacted
 *   checkpoint topic inside the same transaction, then the transaction
 *   commits. Outputs and checkpoint become visible together, or not at all;
 *   `read_committed` consumers see every output record once.
 * - A checkpoint is cut into chunks (each under the broker's message limit)
 *   keyed `<pipeline>/<flow>/<i>`; chunk headers carry the epoch and the
 *   chunk count. Chunks left over from a larger checkpoint get tombstones,
 *   so compaction keeps exactly the latest checkpoint per flow.
 * - Keyed operator state goes as a changelog into the same topic and
 *   transaction: one message per entry changed in the epoch, keyed
 *   `<pipeline>/<flow>/s/<step>/<entry>` (a removed entry: a tombstone), so
 *   compaction keeps the latest value of each live entry and an epoch costs
 *   what changed. The checkpoint then holds only the step's small rest.
 * - Recovery: after fencing, the checkpoint topic is read with
 *   `read_committed` to its end; the latest chunks of this flow form the
 *   last committed checkpoint, the latest values of its entries its state.
 * - A failed commit is not guessed at: the flow is restarted from whatever
 *   checkpoint the topic then holds (the epoch either committed or not).
 */
import kafkajs from 'kafkajs';
import crypto from 'node:crypto';
import type { Logger } from '../core/log.js';
import { kafkaAuthError, kafkaClient, KafkaConn, kafkaWhere } from '../connections/kafka.js';
import { sleep, withRetry } from '../connections/retry.js';
import { Checkpoint, parseCheckpoint, serializeCheckpoint } from './checkpoint.js';

/** What a flow's key prefix is followed by in the keys of its state entries. */
export const STATE_KEY = 's/';

/** Bytes of checkpoint per chunk: well under the broker's default message.max.bytes (1 MB). */
const CHUNK_BYTES = 512 * 1024;
const H_EPOCH = 'salespipe-epoch';
const H_CHUNK = 'salespipe-chunk';
const H_CHUNKS = 'salespipe-chunks';

export interface KafkaCheckpointOptions {
  conn: KafkaConn;
  /** Checkpoint topic, prefix included. */
  topic: string;
  transactionalId: string;
  /** Key prefix of this flow's chunks: `<pipeline>/<flow>`, or a task's `<pipeline>/<flow>.<partition>`. */
  key: string;
  /** The flow's own key (`<pipeline>/<flow>`): its checkpoint and its tasks' are read too (family()). */
  family?: string;
  /** Reads of the topic shared with the other tasks of the flow that start with this one (SharedReads). */
  reads?: SharedReads;
  /** Replication factor of a created checkpoint topic; undefined: the brokers' default. */
  replicationFactor?: number;
  /** How long the broker lets a transaction stay open before aborting it. */
  transactionTimeout: number;
  log: Logger;
  signal: AbortSignal;
}

/** The flow's checkpoint could not be committed, or its producer was fenced: restart from the last checkpoint. */
export class TransactionLost extends Error {
  constructor(
    message: string,
    readonly fenced = false,
  ) {
    super(message);
  }
}

/** A Kafka error that means another producer with our transactional.id took over. */
export function isFenced(e: unknown): boolean {
  const t = (e as { type?: string })?.type ?? '';
  return (
    /PRODUCER_FENCED|INVALID_PRODUCER_EPOCH|TRANSACTIONAL_ID_AUTHORIZATION_FAILED/.test(t) ||
    /fenced|old epoch|epoch is not valid/i.test((e as Error)?.message ?? '')
  );
}

/**
 * Creates the compacted one-partition checkpoint topic if it is missing; a
 * topic another process creates at the same moment is fine.
 */
export async function ensureCheckpointTopic(
  kafka: kafkajs.Kafka,
  topic: string,
  replicationFactor: number | undefined,
  log: Logger,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if ((await admin.listTopics()).includes(topic)) return;
    const created = await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions: 1,
          replicationFactor: replicationFactor ?? -1,
          configEntries: [
            { name: 'cleanup.policy', value: 'compact' },
            // Small segments, cleaned early: a restart reads the topic from its start.
            { name: 'segment.bytes', value: String(16 << 20) },
            { name: 'segment.ms', value: String(10 * 60_000) },
            { name: 'min.cleanable.dirty.ratio', value: '0.1' },
            { name: 'delete.retention.ms', value: String(60 * 60_000) },
          ],
        },
      ],
    });
    if (created) log.info(`created checkpoint topic ${topic}`);
    // A topic just created is not known to every broker at once: wait until its metadata is.
    await admin.fetchTopicMetadata({ topics: [topic] });
  } finally {
    await admin.disconnect();
  }
}

/**
 * The last committed checkpoint under each key prefix (`<pipeline>/<flow>`)
 * of a checkpoint topic, read with read_committed to the end offset taken
 * first; `chunks` counts the prefix's keys still holding a value.
 * `group` is the consumer group the read uses (its offsets are never committed).
 * For each of `tasksOf` (`<pipeline>/<flow>`), the checkpoints of the
 * flow's tasks (`<pipeline>/<flow>.<partition>`) found come too, under
 * their keys.
 */
export async function readCheckpoints(
  kafka: kafkajs.Kafka,
  topic: string,
  group: string,
  keys: string[],
  withState = false,
  tasksOf: string[] = [],
): Promise<Map<string, { checkpoint?: Checkpoint; chunks: number; state?: Map<string, Buffer> }>> {
  const out = new Map<string, { checkpoint?: Checkpoint; chunks: number; state?: Map<string, Buffer> }>();
  const admin = kafka.admin();
  await admin.connect();
  let end: number, low: number;
  try {
    const [p] = await admin.fetchTopicOffsets(topic);
    end = Number(p.offset);
    low = Number(p.low);
  } finally {
    await admin.disconnect();
  }
  if (end <= low) {
    for (const k of keys) out.set(k, { chunks: 0, state: withState ? new Map() : undefined });
    return out;
  }
  const latest = new Map<string, kafkajs.KafkaMessage>();
  const prefixes = keys.map((k) => `${k}/`);
  /** Keys of tasks found (tasksOf). */
  const tasks = new Set<string>();
  /** The task key a message key belongs to, if it is a chunk of a task of one of tasksOf. */
  const taskKey = (k: string): string | undefined => {
    for (const b of tasksOf) {
      if (!k.startsWith(`${b}.`)) continue;
      const slash = k.indexOf('/', b.length + 1);
      if (slash > b.length + 1 && /^\d+$/.test(k.slice(b.length + 1, slash)) && /^\d+$/.test(k.slice(slash + 1))) return k.slice(0, slash);
    }
    return undefined;
  };
  /** Live state entries per prefix, by id (withState). */
  const states = new Map(prefixes.map((p) => [p, new Map<string, Buffer>()]));
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 200, sessionTimeout: 10_000 });
  let reached = low;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const note = (next: number) => {
    if (next > reached) reached = next;
    if (reached >= end) resolve();
  };
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => note(Number((e.payload as { lastOffset: string }).lastOffset) + 1));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          const k = m.key?.toString();
          if (!k) continue;
          const p = prefixes.find((p) => k.startsWith(p));
          if (p === undefined) {
            const t = tasksOf.length ? taskKey(k) : undefined;
            if (t !== undefined) {
              tasks.add(t);
              latest.set(k, m);
            }
            continue;
          }
          if (!k.startsWith(STATE_KEY, p.length)) latest.set(k, m);
          else if (withState) {
            const id = k.slice(p.length + STATE_KEY.length);
            const state = states.get(p)!;
            // A copy: the value is a slice of the whole fetch response, which it would keep alive.
            if (m.value) state.set(id, Buffer.from(m.value));
            else state.delete(id);
          }
        }
        note(Number(batch.lastOffset()) + 1);
      },
    });
    await Promise.race([
      done,
      new Promise((_, reject) => {
        const t = setTimeout(
          () => reject(new Error(`reading checkpoint topic ${topic} timed out at offset ${reached} of ${end}`)),
          120_000,
        );
        done.finally(() => clearTimeout(t));
      }),
    ]);
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  const header = (m: kafkajs.KafkaMessage, h: string) => Number(m.headers?.[h]?.toString());
  for (const key of [...keys, ...[...tasks].filter((t) => !keys.includes(t))]) {
    const prefix = `${key}/`;
    let chunks = 0;
    for (const [k, m] of latest)
      if (k.startsWith(prefix) && m.value && /^\d+$/.test(k.slice(prefix.length)))
        chunks = Math.max(chunks, Number(k.slice(prefix.length)) + 1);
    const head = latest.get(`${prefix}0`);
    const state = withState ? states.get(prefix) : undefined;
    if (!head?.value) {
      out.set(key, { chunks, state });
      continue;
    }
    const epoch = header(head, H_EPOCH);
    const n = header(head, H_CHUNKS);
    const parts: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const m = latest.get(`${prefix}${i}`);
      if (!m?.value || header(m, H_EPOCH) !== epoch)
        throw new Error(`checkpoint of epoch ${epoch} in ${topic} is missing chunk ${i} of ${n}`);
      parts.push(m.value);
    }
    out.set(key, { checkpoint: parseCheckpoint(Buffer.concat(parts).toString('utf8')), chunks: Math.max(chunks, n), state });
  }
  return out;
}

type CheckpointsRead = Awaited<ReturnType<typeof readCheckpoints>>;

/** How long the first task of a shared read waits for the others to ask. */
const SHARED_READ_WAIT_MS = 2_000;

/**
 * One read of the checkpoint topic for the tasks of a flow that start
 * together (tasks.ts): the topic holds every flow's checkpoints and state
 * entries and is read to its end, so tasks reading it each on their own
 * would read it once per task. Each task asks after fencing its own
 * producer (so no zombie's open transaction of its own holds the read
 * back); the topic is read once, as soon as the `expected` tasks have
 * asked or SHARED_READ_WAIT_MS after the first, for all that have. Later
 * reads (a task restarting) are its own.
 */
export class SharedReads {
  private batch?: {
    kafka: kafkajs.Kafka;
    topic: string;
    group: string;
    keys: Set<string>;
    tasksOf: Set<string>;
    waiting: { resolve: (r: CheckpointsRead) => void; reject: (e: unknown) => void }[];
    timer: NodeJS.Timeout;
  };

  constructor(
    private expected: number,
    private log: Logger,
  ) {}

  read(kafka: kafkajs.Kafka, topic: string, group: string, keys: string[], tasksOf: string[]): Promise<CheckpointsRead> {
    return new Promise((resolve, reject) => {
      const b = (this.batch ??= {
        kafka,
        topic,
        group,
        keys: new Set(),
        tasksOf: new Set(),
        waiting: [],
        timer: setTimeout(() => void this.flush(), SHARED_READ_WAIT_MS),
      });
      for (const k of keys) b.keys.add(k);
      for (const k of tasksOf) b.tasksOf.add(k);
      b.waiting.push({ resolve, reject });
      if (b.waiting.length >= this.expected) void this.flush();
    });
  }

  private async flush() {
    const b = this.batch;
    if (!b) return;
    this.batch = undefined;
    clearTimeout(b.timer);
    this.expected = 1;
    const started = Date.now();
    try {
      const got = await readCheckpoints(b.kafka, b.topic, b.group, [...b.keys], true, [...b.tasksOf]);
      if (b.waiting.length > 1) {
        const tasks = [...b.keys].filter((k) => !b.tasksOf.has(k)).map((k) => k.slice(k.indexOf('/') + 1));
        this.log.info(
          `checkpoint topic ${b.topic} read once for ${b.waiting.length} tasks (${tasks.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).join(', ')}) in ${Date.now() - started} ms`,
        );
      }
      for (const w of b.waiting) w.resolve(got);
    } catch (e) {
      for (const w of b.waiting) w.reject(e);
    }
  }
}

export class KafkaCheckpointStore {
  private kafka: kafkajs.Kafka;
  private producer?: kafkajs.Producer;
  private txn?: kafkajs.Transaction;
  /** Chunks of the last committed checkpoint (tombstones go to the ones a smaller checkpoint leaves over). */
  private chunks = 0;
  /** The flow's live state entries as read at open, by id (`<step>/<entry>`), until taken. */
  private entries = new Map<string, Buffer>();

  constructor(private opts: KafkaCheckpointOptions) {
    this.kafka = kafkaClient(opts.conn, opts.log);
  }

  /**
   * Creates the checkpoint topic if needed, starts the transactional
   * producer (fencing earlier ones) and returns the last committed checkpoint.
   */
  async open(): Promise<Checkpoint | undefined> {
    const { log, signal, conn } = this.opts;
    await withRetry(`connecting to ${kafkaWhere(conn)}`, log, signal, () => this.ensureTopic()).catch((e) => {
      throw kafkaAuthError(e, conn) ?? e;
    });
    this.producer = this.kafka.producer({
      transactionalId: this.opts.transactionalId,
      transactionTimeout: this.opts.transactionTimeout,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    await withRetry('connecting producer', log, signal, () => this.producer!.connect());
    // The first transaction() registers the transactional.id with the coordinator: the
    // broker aborts whatever transaction an earlier producer of this flow left open.
    this.txn = await withRetry('starting the Kafka transaction', log, signal, () => this.producer!.transaction());
    const cp = await withRetry('reading the checkpoint', log, signal, () => this.read());
    return cp;
  }

  private ensureTopic() {
    return ensureCheckpointTopic(this.kafka, this.opts.topic, this.opts.replicationFactor, this.opts.log);
  }

  /**
   * The last committed checkpoint of this flow: the topic read with
   * read_committed until the position reaches the end offset taken first (a
   * transaction another flow has open there is waited for, at most an epoch).
   */
  async read(): Promise<Checkpoint | undefined> {
    // A group of its own per read: a killed run's reader would hold a shared one until its session expired.
    const group = `${this.opts.transactionalId}.recovery.${crypto.randomBytes(4).toString('hex')}`;
    const started = Date.now();
    const { key, family, reads } = this.opts;
    const keys = family && family !== key ? [key, family] : [key];
    const tasksOf = family ? [family] : [];
    const all = reads
      ? await reads.read(this.kafka, this.opts.topic, group, keys, tasksOf)
      : await readCheckpoints(this.kafka, this.opts.topic, group, keys, true, tasksOf);
    const got = all.get(key);
    this.relatives = new Map();
    for (const [k, v] of all) if (k !== key && v.checkpoint) this.relatives.set(k, v.checkpoint);
    // Chunks past the checkpoint's still holding a value (a bigger checkpoint committed before) get tombstones next commit.
    this.chunks = got?.chunks ?? 0;
    this.entries = got?.state ?? new Map();
    this.readMs = Date.now() - started;
    return got?.checkpoint;
  }

  private readMs = 0;
  private relatives = new Map<string, Checkpoint>();

  /** The checkpoints of the flow and of its tasks other than this one's, by key, as last read (with `family`). */
  family(): Map<string, Checkpoint> {
    return this.relatives;
  }

  /** The state entries read with the checkpoint, by id (`<step>/<entry>`), and how long the read took; given once. */
  takeEntries(): { entries: Map<string, Buffer>; ms: number; topic: string } {
    const e = this.entries;
    this.entries = new Map();
    return { entries: e, ms: this.readMs, topic: this.opts.topic };
  }

  /** Sends rows of a sink inside the epoch's transaction. */
  send(record: kafkajs.ProducerRecord): Promise<kafkajs.RecordMetadata[]> {
    if (!this.txn) throw new TransactionLost('no transaction is open');
    return this.txn.send({ ...record, acks: -1 }).catch((e) => {
      throw this.lost(e, 'sending');
    });
  }

  /**
   * Commits `cp` with the transaction's outputs and the state entries that
   * changed (`<step>/<entry>` -> JSON text, null: removed); then opens the
   * next transaction. Returns the bytes written (checkpoint and entries).
   */
  async commit(cp: Checkpoint, changes: [string, string | null][] = []): Promise<number> {
    if (!this.txn) throw new TransactionLost('no transaction is open');
    const bytes = Buffer.from(serializeCheckpoint(cp), 'utf8');
    const n = Math.max(1, Math.ceil(bytes.length / CHUNK_BYTES));
    const headers = (i: number) => ({ [H_EPOCH]: String(cp.epoch), [H_CHUNK]: String(i), [H_CHUNKS]: String(n) });
    // State entries, then the checkpoint's chunks, then tombstones for chunks a bigger checkpoint left.
    const messages: [kafkajs.Message, number][] = [];
    let stateBytes = 0;
    for (const [id, value] of changes) {
      const key = `${this.opts.key}/${STATE_KEY}${id}`;
      const size = Buffer.byteLength(key) + (value === null ? 0 : Buffer.byteLength(value));
      messages.push([{ key, value, partition: 0 }, size]);
      stateBytes += size;
    }
    for (let i = 0; i < n; i++) {
      const value = bytes.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES);
      messages.push([{ key: `${this.opts.key}/${i}`, value, headers: headers(i), partition: 0 }, value.length]);
    }
    for (let i = n; i < this.chunks; i++) messages.push([{ key: `${this.opts.key}/${i}`, value: null, partition: 0 }, 0]);
    try {
      // Requests of at most ~512 KB keep each under the broker's limit; a small epoch is one request.
      let batch: kafkajs.Message[] = [];
      let size = 0;
      for (const [m, b] of messages) {
        if (size + b > CHUNK_BYTES && batch.length) {
          await this.txn.send({ topic: this.opts.topic, acks: -1, messages: batch });
          batch = [];
          size = 0;
        }
        batch.push(m);
        size += b;
      }
      await this.txn.send({ topic: this.opts.topic, acks: -1, messages: batch });
      await this.txn.commit();
    } catch (e) {
      throw this.lost(e, `committing epoch ${cp.epoch}`);
    }
    this.chunks = n;
    this.txn = await this.producer!.transaction();
    return bytes.length + stateBytes;
  }

  /**
   * Deletes this key's checkpoint: tombstones for its chunks and for the
   * state entries read at open, committed (`salespipe reset` of a flow that
   * ran as tasks and now runs as one).
   */
  async remove(): Promise<void> {
    if (!this.txn) throw new TransactionLost('no transaction is open');
    const messages: kafkajs.Message[] = [];
    for (let i = 0; i < this.chunks; i++) messages.push({ key: `${this.opts.key}/${i}`, value: null, partition: 0 });
    for (const id of this.entries.keys()) messages.push({ key: `${this.opts.key}/${STATE_KEY}${id}`, value: null, partition: 0 });
    try {
      if (messages.length) await this.txn.send({ topic: this.opts.topic, acks: -1, messages });
      await this.txn.commit();
    } catch (e) {
      throw this.lost(e, 'removing the checkpoint');
    }
    this.chunks = 0;
    this.entries = new Map();
    this.txn = await this.producer!.transaction();
  }

  private lost(e: unknown, what: string): Error {
    if (e instanceof TransactionLost) return e;
    const err = e as Error;
    return new TransactionLost(`Kafka transaction failed while ${what}: ${err.message}`, isFenced(e));
  }

  async close(): Promise<void> {
    if (this.txn?.isActive()) await this.txn.abort().catch(() => undefined);
    this.txn = undefined;
    await Promise.race([this.producer?.disconnect().catch(() => undefined), sleep(10_000)]);
  }

  /**
   * After a graceful end (the last epoch committed, the producer closed):
   * waits until the broker has written the last transaction's commit markers:
   * the coordinator answers a new registration of the transactional.id only
   * then, so when `salespipe run` returns, read_committed readers see all of
   * its output (the markers are written after EndTxn has been answered).
   */
  async settle(): Promise<void> {
    const p = this.kafka.producer({
      transactionalId: this.opts.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 2_000 }, // bounded by the 30 s below
    });
    const settling = (async () => {
      await p.connect();
      await (await p.transaction()).abort();
    })();
    const done = await Promise.race([
      settling.then(
        () => true,
        () => false,
      ),
      sleep(30_000).then(() => false),
    ]);
    if (!done)
      this.opts.log.warn(
        "the last transaction's commit markers were not confirmed within 30 s; read_committed readers may see the last epoch's output a little later",
      );
    await p.disconnect().catch(() => undefined);
  }
}
