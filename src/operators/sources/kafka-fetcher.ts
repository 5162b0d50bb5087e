/**
 * @module The Kafka source's fetch thread (a worker_thread).
 *
 * Rules:
 * - It owns the kafkajs consumer: group membership, fetching, seeking to the
 *   positions it was started with, and committing the offsets the main
 *   thread sends after each checkpoint. Decoding stays on the main thread.
 * - Each batch crosses over as three transferred buffers (values packed end
 *   to end, their end positions, their offsets): no per-message copying or
 *   cloning between threads.
 * - At most `maxQueued` batches are in flight; the main thread returns a
 *   credit for each batch it takes, so a slow pipeline slows the fetching.
 */
import { parentPort, workerData } from 'node:worker_threads';
import kafkajs from 'kafkajs';
import { kafkaClient, KafkaConn } from '../../connections/kafka.js';
import { roundRobinAssigner } from '../../kafka/members.js';
import type { Logger } from '../../core/log.js';

export interface FetcherInit {
  conn: KafkaConn;
  topic: string;
  group: string;
  /** Next offset to read, per partition. */
  positions: Record<string, string>;
  maxQueued: number;
  /** The partitions to read (a task's); absent: all of them. */
  only?: number[];
}

export type FromFetcher =
  | { type: 'batch'; partition: string; next: string; high: string; data: ArrayBuffer; ends: ArrayBuffer; offsets: ArrayBuffer }
  /** Offsets with no record to hand over (transaction markers, aborted records): the position moves past them. */
  | { type: 'skip'; partition: string; next: string; high: string }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string }
  | { type: 'error'; message: string }
  | { type: 'ready' }
  | { type: 'closed' };

export type ToFetcher = { type: 'taken' } | { type: 'commit'; offsets: Record<string, string> } | { type: 'stop' };

const port = parentPort!;
const init = workerData as FetcherInit;
const post = (m: FromFetcher, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

const log: Logger = {
  debug: (message) => post({ type: 'log', level: 'debug', message }),
  info: (message) => post({ type: 'log', level: 'info', message }),
  warn: (message) => post({ type: 'log', level: 'warn', message }),
  error: (message) => post({ type: 'log', level: 'error', message }),
  child: () => log,
};

let credits = init.maxQueued;
let stopping = false;
const waiting: (() => void)[] = [];
const fetched: Record<string, number> = Object.fromEntries(Object.entries(init.positions).map(([p, o]) => [p, Number(o)]));

const kafka = kafkaClient(init.conn, log);
/**
 * Builds a consumer of the group; the assigner carries this process's
 * identity, so that a successor can remove a killed member (members.ts).
 * kafkajs never restarts it: after any crash this thread starts a new one
 * (replace), the same way whether kafkajs deems the error retriable or not.
 */
const newConsumer = () =>
  kafka.consumer({
    groupId: init.group,
    maxBytesPerPartition: 2 << 20,
    maxBytes: 8 << 20,
    sessionTimeout: init.conn.sessionTimeoutMs,
    heartbeatInterval: Math.max(500, Math.min(3_000, Math.floor(init.conn.sessionTimeoutMs / 3))),
    maxWaitTimeInMs: 500,
    partitionAssigners: [roundRobinAssigner(init.only)],
    retry: { retries: 5, restartOnFailure: async () => false },
  });
/** The consumer fetching now: replaced by a new one after any crash (replace). */
let consumer = newConsumer();

port.on('message', (m: ToFetcher) => {
  if (m.type === 'taken') {
    credits++;
    waiting.shift()?.();
  } else if (m.type === 'commit') {
    consumer
      .commitOffsets(Object.entries(m.offsets).map(([p, offset]) => ({ topic: init.topic, partition: Number(p), offset })))
      .catch((e) => log.debug(`group offset commit skipped: ${e.message}`));
  } else if (m.type === 'stop') {
    stopping = true;
    for (const w of waiting.splice(0)) w();
    consumer
      .disconnect()
      .catch(() => undefined)
      .finally(() => post({ type: 'closed' }));
  }
});

/** The offset a fetch was issued at (kafkajs keeps it on the batch, outside its typings). */
const fetchedFrom = (batch: kafkajs.Batch) => Number((batch as unknown as { fetchedOffset: string }).fetchedOffset);

/** Moves a partition's position past offsets that hold no record for us. */
function skip(p: string, next: number, high: string, why: string) {
  if (next <= (fetched[p] ?? 0)) return;
  log.debug(`partition ${p}: position moves from ${fetched[p] ?? 0} to ${next} (${why})`);
  fetched[p] = next;
  post({ type: 'skip', partition: p, next: String(next), high });
}

async function onBatch({ batch, resolveOffset, heartbeat, isRunning, isStale }: kafkajs.EachBatchPayload) {
  const p = String(batch.partition);
  // Offsets stay far below 2^53, so plain numbers compare them exactly and cheaply.
  const expected = fetched[p] ?? 0;
  const msgs = batch.messages;
  let i = 0;
  while (i < msgs.length && Number(msgs[i].offset) < expected) i++; // already in the checkpointed state
  // The batch's last offset counts transaction markers and aborted records after the last record.
  const end = Number(batch.lastOffset()) + 1;
  if (i === msgs.length) {
    if (end > expected && msgs.length)
      skip(p, end, batch.highWatermark, `batch of ${msgs.length} message(s) up to ${end - 1}, all read already`);
    return;
  }
  if (Number(msgs[i].offset) > expected && fetchedFrom(batch) > expected) {
    // A fetch issued from beyond our position (group offsets ahead of the checkpoint, a
    // fetch that raced a seek, a consumer restarted by kafkajs): seek back. A gap in a
    // fetch issued at or before our position is transaction markers, aborted or compacted
    // records, and is skipped.
    log.debug(
      `partition ${p}: a fetch from offset ${fetchedFrom(batch)} returned offset ${msgs[i].offset}, expected ${expected}; seeking back`,
    );
    consumer.seek({ topic: batch.topic, partition: batch.partition, offset: String(expected) });
    return;
  }
  const n = msgs.length - i;
  let bytes = 0;
  for (let j = i; j < msgs.length; j++) bytes += msgs[j].value?.length ?? 0;
  const data = new Uint8Array(bytes);
  const ends = new Uint32Array(n);
  const offsets = new Float64Array(n);
  let pos = 0;
  for (let j = 0; j < n; j++) {
    const m = msgs[i + j];
    if (m.value) {
      data.set(m.value, pos);
      pos += m.value.length;
    }
    ends[j] = pos;
    offsets[j] = Number(m.offset);
  }
  const last = offsets[n - 1];
  const by = consumer;
  while (credits <= 0 && !stopping) await new Promise<void>((r) => waiting.push(r));
  // Stopping, or a batch of a consumer that crashed while it waited (its successor fetches from our
  // position), or one the partition's position moved past meanwhile.
  if (stopping || by !== consumer || fetched[p] !== expected) return;
  credits--;
  const next = Math.max(last + 1, end);
  fetched[p] = next;
  post(
    {
      type: 'batch',
      partition: p,
      next: String(next),
      high: batch.highWatermark,
      data: data.buffer,
      ends: ends.buffer,
      offsets: offsets.buffer,
    },
    [data.buffer, ends.buffer, offsets.buffer],
  );
  if (!isRunning() || isStale()) return;
  resolveOffset(String(last));
  await heartbeat();
}

/**
 * Starts `c` fetching from this thread's positions (the checkpoint's at
 * first). A seek before the consumer has joined its group throws and is
 * lost (run() returns before the join when the group coordinator is still
 * loading), so seeks are (re)issued after every group join, from where this
 * thread is; onBatch's check of offsets covers any fetch that raced them.
 */
async function start(c: kafkajs.Consumer): Promise<void> {
  await c.connect();
  await c.subscribe({ topic: init.topic, fromBeginning: true });
  // A crash (the broker gone, the group coordinator still loading on a fresh broker or not
  // found for a while after a restart) ends this consumer, not the source: a new one joins
  // the group and goes on from this thread's positions.
  c.on(c.events.CRASH, (e) => {
    if (c === consumer && !stopping) void replace(e.payload.error?.message ?? 'crashed');
  });
  const seekAll = () => {
    for (const p of Object.keys(init.positions)) {
      try {
        c.seek({ topic: init.topic, partition: Number(p), offset: String(fetched[p]) });
      } catch (e) {
        log.debug(`seek of partition ${p} deferred to the next group join: ${(e as Error).message}`);
      }
    }
  };
  c.on(c.events.GROUP_JOIN, () => seekAll());
  // A fetch that returned only transaction markers or aborted records never reaches onBatch;
  // kafkajs reports it here (batchSize 0), and the position must still move past it.
  c.on(c.events.END_BATCH_PROCESS, (e) => {
    if (c !== consumer) return;
    const { partition, batchSize, firstOffset, lastOffset, highWatermark } = e.payload as {
      partition: number;
      batchSize: number;
      firstOffset: string | null;
      lastOffset: string;
      highWatermark: string;
    };
    const p = String(partition);
    // Only a fetch that started at our position says what lies there: its first raw offset
    // (markers and aborted records count) is ours; a fetch that returned only offsets below
    // its start reports that start as lastOffset (a compacted range), which must be ours.
    const at = fetched[p] ?? 0;
    const fromHere = firstOffset === null ? Number(lastOffset) === at : Number(firstOffset) <= at;
    if (batchSize === 0 && fromHere) skip(p, Number(lastOffset) + 1, highWatermark, 'only transaction markers or aborted records');
  });
  await c.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch: onBatch });
  seekAll();
}

/** Longest wait between two attempts to start a consumer after a crash. */
const MAX_BACKOFF_MS = 10_000;

/**
 * The consumer crashed (kafkajs never restarts it): a new one joins the
 * group, again and again (waiting longer each time, up to MAX_BACKOFF_MS)
 * until one starts or the source stops. Nothing is lost or read twice: the new consumer seeks to this
 * thread's positions, and a batch the old one still held is dropped.
 */
async function replace(why: string): Promise<void> {
  // `consumer` changes before the first await, so a second crash report of the old one starts nothing.
  const old = consumer;
  let wait = 500;
  for (let attempt = 1; !stopping; attempt++) {
    log.warn(`Kafka consumer stopped (${why}); starting a new one${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
    const c = (consumer = newConsumer());
    for (const w of waiting.splice(0)) w(); // a batch the one before held is dropped
    if (attempt === 1) await old.disconnect().catch(() => undefined);
    try {
      await start(c);
      if (c === consumer) log.info('Kafka consumer started again');
      return;
    } catch (e) {
      if (c !== consumer) return; // it crashed while starting, and its own crash handler took over
      why = (e as Error).message;
      await c.disconnect().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(MAX_BACKOFF_MS, wait * 2);
  }
}

try {
  await start(consumer);
  post({ type: 'ready' });
} catch (e) {
  post({ type: 'error', message: `Kafka consumer failed to start: ${(e as Error).message}` });
}
