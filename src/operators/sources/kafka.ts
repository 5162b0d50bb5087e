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
 * - kafkajs runs on a fetch thread (kafka-fetcher.ts) that hands over packed
 *   batches; decoding and everything after it run here, in parallel with the
 *   next fetch. Backpressure: at most MAX_QUEUED batches wait here, and the
 *   fetch thread stops fetching until the runtime takes one.
 * - Drain mode reads up to the end offsets seen once upstream flows are done.
 * - A task of a flow (RunContext.task) reads its one partition, in a group
 *   of its own (`<group>.<partition>`); its position holds that partition.
 */
import { isUtf8 } from 'node:buffer';
import { Worker } from 'node:worker_threads';
import type kafkajs from 'kafkajs';
import type { FetcherInit, FromFetcher, ToFetcher } from './kafka-fetcher.js';
import type { SourceDef, Source, SourceBatch, StreamInfo, RunContext, DeadLetter, ConfigOf } from '../operator.js';
import { connectionField } from '../operator.js';
import { schemaConfig, planSchema, makeDecoder, setSource, SourceRef } from '../record-schema.js';
import { checkConnection, connection, topicId, topicName } from '../../connections/config.js';
import type { KafkaConn } from '../../connections/kafka.js';
import { withRetry } from '../../connections/retry.js';
import { fieldOf } from '../../core/types.js';
import { parseDuration } from '../../core/time.js';

type Offsets = Record<string, string>; // partition -> next offset to read

/** The source's part of a checkpoint. */
interface Position {
  /** What the offsets refer to: the topic's name on the cluster and its id (Kafka 2.8+). */
  topic?: string;
  topicId?: string | null;
  offsets: Offsets;
  /** Largest event time seen per partition. */
  eventTimes?: Record<string, number>;
}

/** A checkpoint whose positions do not fit the topic read now: the flow must not guess. */
export class PositionMismatch extends Error {}

/**
 * Why the saved position cannot be applied to the topic as it is now
 * (renamed in the spec, deleted and created again, records deleted by
 * retention before they were read, or an offset past the end), or
 * undefined when it can.
 */
export function positionProblem(
  saved: Position | undefined,
  topic: string,
  id: string | null,
  offsets: { partition: number; low: string; high: string }[],
): string | undefined {
  if (!saved?.offsets) return undefined;
  if (saved.topic !== undefined && saved.topic !== topic)
    return `its checkpoint holds positions in topic ${saved.topic}, but the source now reads ${topic}: they do not apply to it`;
  if (saved.topicId && id && saved.topicId !== id)
    return `topic ${topic} was deleted and created again since the checkpoint (topic id ${saved.topicId} then, ${id} now): the saved positions belong to the old topic`;
  const now = new Map(offsets.map((o) => [String(o.partition), o]));
  for (const [p, off] of Object.entries(saved.offsets)) {
    const o = now.get(p);
    if (!o)
      return `the checkpoint has a position in partition ${p} of ${topic}, which has ${offsets.length} partition(s) now: the topic was recreated`;
    if (BigInt(off) < BigInt(o.low))
      return `partition ${p} of ${topic} no longer holds offsets ${off}..${BigInt(o.low) - 1n}: ${BigInt(o.low) - BigInt(off)} record(s) were deleted (retention) before this flow read them`;
    if (BigInt(off) > BigInt(o.high))
      return `the saved offset ${off} of partition ${p} is past the end of ${topic} (${o.high}): the topic was recreated or truncated`;
  }
  return undefined;
}

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'connection', 'topic', 'schema'],
  properties: {
    type: { const: 'kafka' },
    connection: connectionField('kafka'),
    topic: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$', description: 'Topic to consume.' },
    group: { type: 'string', description: "Consumer group id (default salespipe.<pipeline>.<flow>, after the connection's topicPrefix)." },
    startFrom: { enum: ['earliest', 'latest'], default: 'earliest', description: 'Where a first run (no checkpoint) starts.' },
    eventTime: { type: 'string', description: 'Timestamp column carrying event time.' },
    key: {
      type: 'array',
      items: { type: 'string' },
      minItems: 1,
      uniqueItems: true,
      description:
        "For a topic of latest values per key (e.g. another flow's aggregate): its key columns; the stream is then an update stream.",
    },
    schema: schemaConfig,
    maxMessageBytes: { type: 'integer', minimum: 1, default: 1048576, description: 'Larger messages are dead-lettered.' },
    maxStringLength: { type: 'integer', minimum: 1, default: 4096, description: 'Longer string fields are dead-lettered.' },
    idleTimeout: {
      type: 'string',
      default: '30s',
      description:
        'A partition with nothing to read for this long stops holding back event time (the watermark follows the other partitions); a record it gets later may then be late. "0s" never lets a partition idle.',
    },
  },
} as const;

type Config = ConfigOf<typeof config>;

interface Planned {
  cfg: Config;
  out: StreamInfo;
  idleMs: number;
}

export const kafkaSource: SourceDef<typeof config, Planned> = {
  type: 'kafka',
  doc: 'Consumes JSON records from a Kafka topic in a consumer group; records that do not fit the declared schema go to the dead-letter output.',
  config,
  records: 'json',
  plan(cfg, ctx) {
    checkConnection(ctx, ['connection'], cfg.connection, 'kafka');
    const schema = planSchema(cfg.schema, ctx, ['schema']);
    let ok = true;
    if (cfg.eventTime) {
      const et = fieldOf(schema, cfg.eventTime);
      if (!et) {
        ok = false;
        ctx.error(['eventTime'], `event-time column "${cfg.eventTime}" is not declared in schema`, 'column.unknown');
      } else if (et.type.kind !== 'timestamp') {
        ok = false;
        ctx.error(['eventTime'], `event-time column "${cfg.eventTime}" must be a timestamp`, 'type.mismatch');
      }
    }
    for (const [i, k] of (cfg.key ?? []).entries()) {
      if (!fieldOf(schema, k)) {
        ok = false;
        ctx.error(['key', i], `key column "${k}" is not declared in schema`, 'column.unknown');
      }
    }
    const idleMs = parseDuration(cfg.idleTimeout);
    if (idleMs === undefined) {
      ok = false;
      ctx.error(['idleTimeout'], `invalid duration "${cfg.idleTimeout}" (e.g. 10s, 1m; 0s: never idle)`, 'value.duration');
    }
    const out: StreamInfo = cfg.key
      ? { schema, mode: 'update', key: [...cfg.key], eventTime: cfg.eventTime }
      : { schema, mode: 'append', eventTime: cfg.eventTime };
    return { out, planned: ok ? { cfg, out, idleMs: idleMs! } : (undefined as never) };
  },
  reads: (cfg, conns) => topicId(conns, cfg.connection, cfg.topic),
  kafkaConnection: (cfg) => cfg.connection,
  async status(p, position, ctx) {
    const { kafkaClient, kafkaConn, kafkaWhere } = await import('../../connections/kafka.js');
    const conn = kafkaConn(ctx, p.cfg.connection);
    const topic = topicName(connection(ctx, p.cfg.connection), p.cfg.topic);
    const pos = position as Position | undefined;
    const detail = { type: 'kafka', topic, topicId: pos?.topicId, offsets: pos?.offsets ?? {}, end: null as Record<string, string> | null };
    const text = () =>
      `source topic ${topic}: positions ${
        Object.entries(detail.offsets)
          .map(([q, o]) => `${q}:${o}`)
          .join(' ') || 'none'
      }; end ${
        detail.end
          ? Object.entries(detail.end)
              .map(([q, o]) => `${q}:${o}`)
              .join(' ')
          : '?'
      }`;
    const admin = kafkaClient(conn, ctx.log).admin();
    try {
      await withRetry(`connecting to ${kafkaWhere(conn)}`, ctx.log, ctx.signal, () => admin.connect());
      if (!(await admin.listTopics()).includes(topic)) return { detail, text: text(), lag: null, error: `topic ${topic} does not exist` };
      const offs = await admin.fetchTopicOffsets(topic);
      detail.end = Object.fromEntries(offs.map((o) => [String(o.partition), o.high]));
      const lag = offs.reduce(
        (n, o) =>
          n + Math.max(0, Number(o.high) - Number(pos?.offsets?.[String(o.partition)] ?? (p.cfg.startFrom === 'latest' ? o.high : o.low))),
        0,
      );
      return { detail, text: text(), lag };
    } catch (e) {
      return { detail, text: text(), lag: null, error: (e as Error).message };
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  },
  create(p, ctx) {
    return new KafkaSource(p.cfg, p.out, p.idleMs, ctx);
  },
};

const MAX_QUEUED = 3;

/** A message's text and place, for a step that dead-letters its row (record-schema.ts). */
class MessageRef implements SourceRef {
  readonly encoding = 'utf8' as const;
  constructor(
    readonly payload: string,
    private topic: string,
    private b: { partition: string; offsets: ArrayBuffer },
    private i: number,
  ) {}
  get origin(): string {
    return `${this.topic}/${this.b.partition}@${new Float64Array(this.b.offsets)[this.i]}`;
  }
}

/**
 * JSON.parse has rounded a number too large for a double before the schema
 * sees it: the reason then quotes the digits as the message wrote them.
 */
function exactReason(reason: string, text: string): string {
  const m =
    /^field "([^"]+)": (-?[\d.e+]+) (is outside the exact integer range|is too large for an exact decimal|exceeds decimal\(\d+,\d+\))(.*)$/.exec(
      reason,
    );
  if (!m) return reason;
  const literal = new RegExp(`"${m[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"\\s*:\\s*(-?\\d[\\d.eE+-]*)`).exec(text)?.[1];
  return literal && literal !== m[2] ? `field "${m[1]}": ${literal} ${m[3]}${m[4]}` : reason;
}

type RawBatch = Extract<FromFetcher, { type: 'batch' }>;
type Queued = Extract<FromFetcher, { type: 'batch' | 'skip' }>;

class KafkaSource implements Source {
  private kafka!: kafkajs.Kafka;
  private fetcher: Worker | null = null;
  private next_: Offsets = {};
  private end: Offsets | null = null;
  private high: Record<string, string> = {};
  /** Largest event time seen per partition (part of the position). */
  private maxEt: Record<string, number> = {};
  /** Since when each partition has had nothing to read (absent: it has). */
  private caughtUpSince: Record<string, number> = {};
  private queue: Queued[] = [];
  private wake: (() => void) | null = null;
  private failed: Error | null = null;
  private closed: Promise<void> = Promise.resolve();
  private decode;
  private maxBytes: number;
  private group: string;
  private log;
  private endKnown: Promise<void> = Promise.resolve();
  private topic: string;
  private topicId: string | null = null;
  /** The cluster, as messages name it. */
  private where = '';
  private absent = false;
  private ready = false;

  constructor(
    private cfg: Config,
    out: StreamInfo,
    private idleMs: number,
    private ctx: RunContext,
  ) {
    this.decode = makeDecoder(out.schema, { timeZone: ctx.timeZone, maxStringLength: cfg.maxStringLength, inPlace: true });
    this.maxBytes = cfg.maxMessageBytes;
    const conn = connection(ctx, cfg.connection);
    this.topic = topicName(conn, cfg.topic);
    // A task reads its partition in a group of its own: tasks starting and stopping never rebalance each other.
    const group = cfg.group ?? `salespipe.${ctx.pipeline}.${ctx.flow}`;
    this.group = `${conn.topicPrefix ?? ''}${group}${ctx.task === undefined ? '' : `.${ctx.task}`}`;
    this.log = ctx.log.child(`kafka:${this.topic}`);
  }

  async open(position: unknown) {
    const [{ kafkaClient, kafkaConn, kafkaAuthError, kafkaWhere, waitForTopic }, { topicIds }, { evictGone }] = await Promise.all([
      import('../../connections/kafka.js'),
      import('../../kafka/topic-ids.js'),
      import('../../kafka/members.js'),
    ]);
    const kc = kafkaConn(this.ctx, this.cfg.connection);
    this.where = kafkaWhere(kc);
    this.kafka = kafkaClient(kc, this.log);
    const admin = this.kafka.admin();
    await withRetry(`connecting to ${kafkaWhere(kc)}`, this.log, this.ctx.signal, () => admin.connect()).catch((e) => {
      throw kafkaAuthError(e, kc) ?? e;
    });
    try {
      if (!(await waitForTopic(admin, this.topic, this.where, this.log, this.ctx))) {
        this.absent = true;
        this.log.info(`topic ${this.topic} does not exist and nothing upstream created it: nothing to drain`);
        return;
      }
      // A new topic's partitions may still be electing leaders: these are retried.
      const [offs, ids] = await withRetry(
        `reading the offsets of ${this.topic}`,
        this.log,
        this.ctx.signal,
        () => Promise.all([admin.fetchTopicOffsets(this.topic), topicIds(this.kafka, [this.topic])]),
        10_000,
        'debug',
      );
      this.topicId = ids.get(this.topic) ?? null;
      const saved = position as Position | undefined;
      const problem = positionProblem(saved, this.topic, this.topicId, offs);
      if (problem) {
        const file = this.ctx.specFile ?? 'FILE';
        throw new PositionMismatch(
          `flow ${this.ctx.flow}: ${problem}. Nothing was read. To start the flow over (its outputs are kept), run \`salespipe reset ${file} --flow ${this.ctx.flow}\`; to keep its state and read ${this.cfg.topic} from ${this.cfg.startFrom === 'latest' ? 'its end' : 'the start'}, add --positions`,
        );
      }
      if (saved?.offsets && saved.topicId === undefined)
        this.log.debug(`the checkpoint predates topic ids; from now on it records ${this.topic}'s`);
      Object.assign(this.maxEt, saved?.eventTimes);
      const task = this.ctx.task;
      if (task !== undefined && !offs.some((o) => o.partition === task))
        throw new PositionMismatch(
          `flow ${this.ctx.flow}: task ${task} reads partition ${task} of ${this.topic}, which has ${offs.length} partition(s) now: the topic was recreated with fewer`,
        );
      for (const o of offs) {
        if (task !== undefined && o.partition !== task) continue;
        const p = String(o.partition);
        const at = saved?.offsets?.[p];
        if (saved?.offsets && at === undefined)
          this.log.info(`partition ${p} of ${this.topic} is new since the checkpoint: read from its start`);
        this.next_[p] = at ?? (saved?.offsets || this.cfg.startFrom !== 'latest' ? o.low : o.high);
        this.high[p] = o.high;
        this.noteCaughtUp(p);
      }
      // Members of processes that were killed would hold their partitions until their session expires.
      await evictGone(this.kafka, admin, this.group, this.log);
    } finally {
      await admin.disconnect();
    }
    if (this.ctx.drain) this.endKnown = this.ctx.upstreamDone.then(() => this.snapshotEnd());
    await this.startFetcher(kc);
  }

  /** Fetching runs on its own thread, so kafkajs's decoding overlaps ours (fetcher.ts). */
  private startFetcher(conn: KafkaConn): Promise<void> {
    const init: FetcherInit = {
      conn,
      topic: this.topic,
      group: this.group,
      positions: { ...this.next_ },
      maxQueued: MAX_QUEUED,
      ...(this.ctx.task === undefined ? {} : { only: [this.ctx.task] }),
    };
    const w = new Worker(new URL('./kafka-fetcher.js', import.meta.url), { workerData: init });
    this.fetcher = w;
    let closed!: () => void;
    this.closed = new Promise<void>((r) => (closed = r));
    return new Promise<void>((ready, fail) => {
      w.on('message', (m: FromFetcher) => {
        switch (m.type) {
          case 'batch':
          case 'skip':
            this.queue.push(m);
            this.wake?.();
            break;
          case 'log':
            this.log[m.level](m.message);
            break;
          case 'ready':
            this.ready = true;
            ready();
            break;
          case 'closed':
            closed();
            break;
          case 'error':
            this.failed = new Error(m.message);
            fail(this.failed);
            this.wake?.();
            break;
        }
      });
      w.on('error', (e) => {
        this.failed = e;
        fail(e);
        this.wake?.();
        closed();
      });
      w.on('exit', () => closed());
    });
  }

  private async snapshotEnd() {
    const admin = this.kafka.admin();
    await withRetry('reading end offsets', this.log, this.ctx.signal, () => admin.connect());
    try {
      const offs = await withRetry(
        `reading the end offsets of ${this.topic}`,
        this.log,
        this.ctx.signal,
        () => admin.fetchTopicOffsets(this.topic),
        10_000,
        'debug',
      );
      const task = this.ctx.task;
      this.end = Object.fromEntries(
        offs.filter((o) => task === undefined || o.partition === task).map((o) => [String(o.partition), o.high]),
      );
      this.log.info(`drain: reading ${this.topic} up to offsets ${JSON.stringify(this.end)}`);
    } finally {
      await admin.disconnect();
    }
  }

  /** Decodes one packed batch from the fetch thread into rows and dead letters. */
  private decodeBatch(b: RawBatch): SourceBatch {
    const out: SourceBatch = { rows: [], dead: [] };
    const data = Buffer.from(b.data);
    const ends = new Uint32Array(b.ends);
    // One UTF-8 check for the whole batch. In valid UTF-8 a character boundary is any byte
    // that is not a continuation byte (10xxxxxx), so a message whose both ends sit on such
    // boundaries is valid by itself; any other message is checked on its own.
    const allUtf8 = isUtf8(data);
    const boundary = (p: number) => p >= data.length || (data[p] & 0xc0) !== 0x80;
    let start = 0;
    for (let i = 0; i < ends.length; i++) {
      const end = ends[i];
      const len = end - start;
      if (len === 0) out.dead.push({ reason: 'empty message', payload: '', encoding: 'utf8', origin: this.origin(b, i) });
      else if (len > this.maxBytes)
        out.dead.push({
          reason: `message of ${len} bytes exceeds maxMessageBytes ${this.maxBytes}`,
          payload: data.toString('base64', start, start + 1024),
          encoding: 'base64',
          origin: this.origin(b, i),
        });
      else if (!(allUtf8 && boundary(start) && boundary(end)) && !isUtf8(data.subarray(start, end)))
        out.dead.push({
          reason: 'payload is not valid UTF-8',
          payload: data.toString('base64', start, end),
          encoding: 'base64',
          origin: this.origin(b, i),
        });
      else this.decodeText(data.toString('utf8', start, end), b, i, out);
      start = end;
    }
    return out;
  }

  /** Where a message came from, built only for dead letters. */
  private origin(b: RawBatch, i: number): string {
    return `${this.topic}/${b.partition}@${new Float64Array(b.offsets)[i]}`;
  }

  private decodeText(text: string, b: RawBatch, i: number, out: SourceBatch) {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch (e) {
      return void out.dead.push({
        reason: `not JSON: ${(e as Error).message}`,
        payload: text,
        encoding: 'utf8',
        origin: this.origin(b, i),
      });
    }
    const r = this.decode(obj);
    if (typeof r === 'string')
      out.dead.push({ reason: exactReason(r, text), payload: text, encoding: 'utf8', origin: this.origin(b, i) } satisfies DeadLetter);
    else {
      setSource(r, new MessageRef(text, this.topic, b, i));
      out.rows.push(r);
    }
  }

  private drained(): boolean {
    if (!this.end) return false;
    return Object.entries(this.end).every(([p, end]) => BigInt(this.next_[p] ?? '0') >= BigInt(end));
  }

  async next(): Promise<SourceBatch | null> {
    if (this.absent) return null;
    for (;;) {
      if (this.failed) throw this.failed;
      const b = this.queue.shift();
      if (b?.type === 'skip') {
        // In order with the batches before it: the position moves only past what was handed over.
        this.high[b.partition] = b.high;
        if (BigInt(b.next) > BigInt(this.next_[b.partition] ?? 0)) this.next_[b.partition] = b.next;
        this.noteCaughtUp(b.partition);
        continue;
      }
      if (b) {
        this.fetcher!.postMessage({ type: 'taken' } satisfies ToFetcher);
        this.high[b.partition] = b.high;
        const batch = this.decodeBatch(b);
        this.next_[b.partition] = b.next; // the position now covers this batch
        delete this.caughtUpSince[b.partition]; // it had records: idle only from now on
        this.noteCaughtUp(b.partition);
        const et = this.cfg.eventTime;
        if (et) {
          let max = this.maxEt[b.partition] ?? -Infinity;
          for (const r of batch.rows) {
            const t = r[et] as number | null;
            if (t !== null && t > max) max = t;
          }
          if (max > -Infinity) this.maxEt[b.partition] = max;
        }
        return batch;
      }
      if (this.ctx.signal.aborted) return null;
      if (this.ctx.drain && this.end && this.drained()) return null;
      // Wait for a batch, but come back regularly so the runtime can checkpoint.
      await new Promise<void>((r) => {
        const t = setTimeout(() => {
          this.wake = null;
          r();
        }, 200);
        this.wake = () => {
          clearTimeout(t);
          this.wake = null;
          r();
        };
      });
      if (!this.queue.length) return { rows: [], dead: [] };
    }
  }

  position(): Position {
    return { topic: this.topic, topicId: this.topicId, offsets: { ...this.next_ }, eventTimes: { ...this.maxEt } };
  }

  /** Starts (or keeps) a partition's idle clock when it has nothing left to read, stops it when it has. */
  private noteCaughtUp(p: string) {
    if (BigInt(this.next_[p] ?? '0') >= BigInt(this.high[p] ?? '0')) this.caughtUpSince[p] ??= Date.now();
    else delete this.caughtUpSince[p];
  }

  /**
   * The smallest of the partitions' largest event times. Every partition
   * holds it back (one with no record seen yet: it is not known at all),
   * except one that has had nothing to read for idleTimeout, and, in a
   * drain, one read to its end without a record. So flows started together
   * on a fresh topic do not let the first partition read set event time
   * for the others.
   */
  eventTimeProgress(): number | null {
    if (!this.cfg.eventTime) return null;
    const now = Date.now();
    let min = Infinity;
    for (const [p, next] of Object.entries(this.next_)) {
      const t = this.maxEt[p];
      const since = this.caughtUpSince[p];
      if (this.idleMs > 0 && since !== undefined && now - since >= this.idleMs) continue;
      if (t === undefined) {
        if (this.end && BigInt(next) >= BigInt(this.end[p] ?? '0')) continue;
        return null;
      }
      if (t < min) min = t;
    }
    return min === Infinity ? null : min;
  }

  lag() {
    let lag = 0;
    for (const [p, h] of Object.entries(this.high)) lag += Math.max(0, Number(h) - Number(this.next_[p] ?? h));
    return lag;
  }

  async commit(position: unknown) {
    if (this.absent || !this.fetcher) return;
    this.fetcher.postMessage({ type: 'commit', offsets: (position as { offsets: Offsets }).offsets } satisfies ToFetcher);
  }

  async close() {
    await this.endKnown.catch(() => undefined);
    if (!this.fetcher) return;
    // Leave the group cleanly, then end the thread (also if it hangs). A fetcher that never
    // finished joining (stopped during start-up) has nothing to leave cleanly.
    this.fetcher.postMessage({ type: 'stop' } satisfies ToFetcher);
    if (this.ready) await Promise.race([this.closed, new Promise((r) => setTimeout(r, 10_000).unref())]);
    await this.fetcher.terminate();
    this.fetcher = null;
  }
}
