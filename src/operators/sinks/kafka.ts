/**
 * @module `type: kafka` sink: rows as JSON values, keyed by a column.
 *
 * Rules:
 * - Values are real JSON (json-row.ts), keys the key column's text, so a
 *   compacted topic keeps the latest value per key.
 * - In a run, rows go into the flow's Kafka transaction (ctx.kafkaTxn): they
 *   commit with the epoch's checkpoint, and read_committed consumers see each
 *   once, even across kill -9 (runtime/kafka-checkpoint.ts). Without one (a
 *   backfill's --to-kafka), the sink's own producer is idempotent (acks=all,
 *   one request in flight per broker): broker retries never duplicate or
 *   reorder a message.
 * - Writes are pipelined: one send in flight while the next batch is built;
 *   `write` waits for the previous send, which is the backpressure.
 * - preCommit returns once every row written so far is acknowledged.
 * - With `createTopic` (default true) a missing topic is created with
 *   `partitions` and `replicationFactor` (else the brokers' default, with
 *   their min.insync.replicas); keyed streams get cleanup.policy=compact.
 */
import type kafkajs from 'kafkajs';
import type { SinkDef, Sink, StreamInfo, RunContext, ConfigOf } from '../operator.js';
import { connectionField } from '../operator.js';
import { checkConnection, connection, topicId, topicName } from '../../connections/config.js';
import { withRetry } from '../../connections/retry.js';
import { makeJsonEncoder, makeKeyEncoder } from '../json-row.js';
import { fieldOf } from '../../core/types.js';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'connection', 'topic'],
  properties: {
    type: { const: 'kafka' },
    connection: connectionField('kafka'),
    topic: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$', description: 'Topic to write.' },
    key: {
      anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1 }],
      description: 'Column(s) forming the message key (default: the stream key, e.g. the group-by columns).',
    },
    createTopic: { type: 'boolean', default: true, description: 'Create the topic if missing.' },
    partitions: { type: 'integer', minimum: 1, default: 1, description: 'Partitions of a created topic.' },
    replicationFactor: {
      type: 'integer',
      minimum: 1,
      description: "Replication factor of a created topic (default: the brokers' default.replication.factor).",
    },
    compact: { type: 'boolean', description: 'Create the topic with cleanup.policy=compact (default: true for keyed streams).' },
    compression: { enum: ['none', 'gzip'], default: 'none', description: 'Message compression.' },
    batchSize: { type: 'integer', minimum: 1, default: 2000, description: 'Messages per produce request.' },
    partialKey: {
      type: 'boolean',
      default: false,
      description:
        "Allow a key that leaves out some of a keyed stream's key columns (a compacted topic then keeps one row for rows differing only there): a warning instead of an error.",
    },
    decimals: {
      enum: ['number', 'string'],
      default: 'number',
      description:
        'Decimals as JSON numbers with their exact digits, or as strings, for consumers that read numbers into doubles (exact only to about 15 significant digits, e.g. totals past 90 trillion with 2 decimals).',
    },
  },
} as const;

type Config = ConfigOf<typeof config>;

interface Planned {
  cfg: Config;
  input: StreamInfo;
  keys: string[];
}

export const kafkaSink: SinkDef<typeof config, Planned> = {
  type: 'kafka',
  doc: 'Writes rows as JSON to a Kafka topic, keyed by a column, with an idempotent producer.',
  config,
  delivery: 'transactional',
  deadLetters: true,
  reemits: true,
  plan(cfg, input, ctx) {
    checkConnection(ctx, ['connection'], cfg.connection, 'kafka');
    const given = cfg.key === undefined ? [] : typeof cfg.key === 'string' ? [cfg.key] : [...cfg.key];
    let ok = true;
    given.forEach((k, i) => {
      if (!fieldOf(input.schema, k)) {
        ok = false;
        ctx.error(
          typeof cfg.key === 'string' ? ['key'] : ['key', i],
          `unknown key column "${k}"; available: ${input.schema.map((f) => f.name).join(', ')}`,
          'column.unknown',
        );
      }
    });
    // A keyed stream on a compacted topic: the latest message per Kafka key survives, so
    // the Kafka key must tell every row of the stream apart.
    const missing = cfg.key === undefined || input.mode === 'append' ? [] : (input.key ?? []).filter((k) => !given.includes(k));
    if (missing.length) {
      const msg =
        `the stream holds the latest row per (${input.key!.join(', ')}), but this key leaves out ${missing.join(', ')}: ` +
        `the topic would keep one row for rows that differ only there (e.g. two brands' products of one name). ` +
        `Leave key out (the stream's key is the default) or list every key column${cfg.partialKey ? '' : '; partialKey: true accepts the loss'}`;
      if (cfg.partialKey) ctx.warn(['key'], msg, 'key.partial');
      else {
        ok = false;
        ctx.error(['key'], msg, 'key.partial');
      }
    }
    return ok ? { cfg, input, keys: cfg.key === undefined ? (input.key ?? []) : given } : undefined;
  },
  writes: (cfg, conns) => topicId(conns, cfg.connection, cfg.topic),
  kafkaConnection: (cfg) => cfg.connection,
  create(p, ctx) {
    return new KafkaSink(p, ctx);
  },
};

/** Bytes per produce request: a partition's record batch must stay under the broker's message.max.bytes (1 MB by default). */
const MAX_REQUEST_BYTES = 512 * 1024;

class KafkaSink implements Sink {
  private producer?: kafkajs.Producer;
  private txn?: RunContext['kafkaTxn'];
  private encode;
  private key;
  private pending: kafkajs.Message[] = [];
  private pendingBytes = 0;
  private inflight: Promise<unknown> = Promise.resolve();
  private batchSize: number;
  private log;
  private topic: string;
  /** The topic's partitions, for choosing each message's partition as kafkajs would (murmur2 of the key, as Java's). */
  private partitions: kafkajs.PartitionMetadata[] = [];
  private partitionOf!: kafkajs.ICustomPartitioner extends () => infer F ? F : never;
  private compression!: kafkajs.CompressionTypes;
  private cfg: Config;
  private input: StreamInfo;

  constructor(
    p: Planned,
    private ctx: RunContext,
  ) {
    const { cfg, input } = p;
    this.cfg = cfg;
    this.input = input;
    this.encode = makeJsonEncoder(input.schema, { decimals: cfg.decimals });
    this.key = p.keys.length ? makeKeyEncoder(p.keys, input.schema) : null;
    this.batchSize = cfg.batchSize;
    this.topic = topicName(connection(ctx, cfg.connection), cfg.topic);
    this.log = ctx.log.child(`kafka:${this.topic}`);
  }

  async open() {
    const [{ default: kafkajs }, { kafkaClient, kafkaConn, kafkaAuthError, kafkaWhere }] = await Promise.all([
      import('kafkajs'),
      import('../../connections/kafka.js'),
    ]);
    this.partitionOf = kafkajs.Partitioners.DefaultPartitioner();
    this.compression = this.cfg.compression === 'gzip' ? kafkajs.CompressionTypes.GZIP : kafkajs.CompressionTypes.None;
    const kc = kafkaConn(this.ctx, this.cfg.connection);
    const kafka = kafkaClient(kc, this.log);
    const admin = kafka.admin();
    await withRetry(`connecting to ${kafkaWhere(kc)}`, this.log, this.ctx.signal, () => admin.connect()).catch((e) => {
      throw kafkaAuthError(e, kc) ?? e;
    });
    try {
      // Creating a topic races other flows creating it, and a topic just created is not known to
      // every broker at once: all of it is retried, at debug (it settles by itself).
      await withRetry(`setting up topic ${this.topic}`, this.log, this.ctx.signal, () => this.ensureTopic(admin), 10_000, 'debug');
    } finally {
      await admin.disconnect();
    }
    if (this.ctx.kafkaTxn?.connection === this.cfg.connection) {
      this.txn = this.ctx.kafkaTxn;
      return;
    }
    // Idempotence holds only if the producer never gives up on a batch: retry (with backoff) until the broker is back.
    const producer = (this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
    }));
    await withRetry('connecting producer', this.log, this.ctx.signal, () => producer.connect()).catch((e) => {
      throw kafkaAuthError(e, kc) ?? e;
    });
  }

  private async ensureTopic(admin: kafkajs.Admin) {
    if (this.cfg.createTopic) {
      const compact = this.cfg.compact ?? this.input.mode !== 'append';
      const exists = (await admin.listTopics()).includes(this.topic);
      const created =
        !exists &&
        (await admin.createTopics({
          waitForLeaders: true,
          topics: [
            {
              topic: this.topic,
              numPartitions: this.cfg.partitions,
              replicationFactor: this.cfg.replicationFactor ?? -1, // -1: the brokers' default.replication.factor
              configEntries: compact ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
            },
          ],
        }));
      if (created) this.log.info(`created topic ${this.topic} (${this.cfg.partitions} partition(s)${compact ? ', compacted' : ''})`);
    } else if (!(await admin.listTopics()).includes(this.topic))
      throw new Error(`topic ${this.topic} does not exist (createTopic is false)`);
    const meta = await admin.fetchTopicMetadata({ topics: [this.topic] });
    this.partitions = meta.topics[0].partitions;
  }

  async write(rows: import('../../core/types.js').Row[]) {
    const enc = this.encode,
      key = this.key;
    for (const r of rows) {
      const m = { key: key ? key(r) : null, value: enc(r) };
      const size = Buffer.byteLength(m.value) + (m.key?.length ?? 0) + 16;
      // Send what waits before a message that would take the request past the bound.
      if (this.pending.length && this.pendingBytes + size > MAX_REQUEST_BYTES) await this.send();
      this.pending.push(m);
      this.pendingBytes += size;
    }
    if (this.pending.length >= this.batchSize) await this.send();
  }

  private async send() {
    await this.inflight; // one request in flight; this wait is the backpressure
    if (!this.pending.length) return;
    const messages = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    // One send per partition: kafkajs retries a send only to brokers that have not answered
    // it yet, so a send spanning partitions whose leader moved to a broker that had already
    // answered for other partitions would drop that partition's messages without an error
    // (found by killing a broker of a three-node cluster). A send for one partition has one
    // leader, old or new, and is retried whole.
    const byPartition = new Map<number, kafkajs.Message[]>();
    const partitionMetadata = this.partitions;
    for (const m of messages) {
      const p = this.partitionOf({ topic: this.topic, partitionMetadata, message: m });
      let list = byPartition.get(p);
      if (!list) byPartition.set(p, (list = []));
      m.partition = p;
      list.push(m);
    }
    const compression = this.compression;
    this.inflight = Promise.all(
      [...byPartition.values()].map((msgs) => {
        const record: kafkajs.ProducerRecord = { topic: this.topic, acks: -1, compression, messages: msgs };
        return this.txn ? this.txn.send(record) : this.producer!.send(record);
      }),
    );
    this.inflight.catch(() => undefined); // surfaced by the next await
  }

  async preCommit() {
    await this.send();
    await this.inflight;
    return undefined;
  }

  async commit() {}

  async close() {
    await this.producer?.disconnect().catch(() => undefined);
  }
}
