/**
 * @module Running one flow: pull batches, push them through the steps into
 * the sinks, and cut epochs.
 *
 * Rules:
 * - Backpressure is structural: the next batch is pulled only after the
 *   sinks have taken the previous one (each sink's `write` is awaited).
 * - An epoch ends at the checkpoint interval, when a sink is full, and at
 *   the end of a drain or a graceful stop. Ending one: steps flush (rows
 *   they held back go through the rest of the flow) -> sinks preCommit ->
 *   checkpoint written (state + position + staged outputs) -> sinks commit
 *   -> source commit. The source's position therefore advances only once
 *   everything downstream has durably taken the rows.
 * - On start the last checkpoint is restored: operator state, sink state
 *   (finishing staged outputs) and the source's position. With a Kafka
 *   checkpoint, a step with keyed state keeps it as a changelog of entries
 *   in the checkpoint topic, written per epoch for what changed
 *   (restoreSteps, stepStates); otherwise its snapshot is in the checkpoint.
 * - Where the checkpoint lives: a flow with Kafka outputs commits it in the
 *   same Kafka transaction as those outputs (kafka-checkpoint.ts); a flow
 *   that only reads Kafka commits it alone in such a transaction, so no
 *   Kafka-reading flow depends on a local directory; flows without Kafka
 *   write a local file by atomic rename. If a transaction is lost (a failed
 *   commit, a timeout during a long broker outage) the flow restarts from
 *   the checkpoint Kafka holds, which says whether the epoch committed.
 * - Sinks open with the checkpoint's epoch: a local output that holds a
 *   later epoch of this flow refuses (output-owner.ts).
 * - The summary counts what committed: a failure rolls the counts back to
 *   the last committed epoch.
 * - A runner with `task` is one task of a flow that runs as one per
 *   partition (tasks.ts): its checkpoint key, transactional id, consumer
 *   group, output markers and default dead-letter file carry
 *   `<flow>.<partition>`; its first run takes over its partition from the
 *   flow's checkpoint. A runner without `task` refuses to start over a
 *   flow's tasks' checkpoints.
 */
import path from 'node:path';
import type { FlowPlan, Plan, SinkNode } from '../plan/plan.js';
import { DEAD_LETTER_STREAM } from '../plan/plan.js';
import type { DeadLetter, RunContext, Sink, Source, Step } from '../operators/operator.js';
import type { Row } from '../core/types.js';
import { SINKS } from '../operators/registry.js';
import { clearSource, sourceOf } from '../operators/record-schema.js';
import fs from 'node:fs';
import os from 'node:os';
import crypto from 'node:crypto';
import { Checkpoint, readCheckpoint, writeCheckpoint, Totals, ZERO_TOTALS, replacer, reviver } from './checkpoint.js';
import { KafkaCheckpointStore, TransactionLost, type SharedReads } from './kafka-checkpoint.js';
import { connection, topicName } from '../connections/config.js';
import { kafkaConn } from '../connections/kafka.js';
import { sleep } from '../connections/retry.js';
import { processStdout } from '../core/io.js';
import type { FlowFigures } from '../metrics/metrics.js';
import { newTaskCheckpoint, oneTaskAfterTasks, taskCheckpoint } from './task-checkpoints.js';

/** What the summary, the progress line, `status` and the metrics report of a flow. */
export interface FlowStats extends FlowFigures {
  startedAt: number;
  /** Step counters (join misses, ...), by step. */
  counters: Record<string, number>;
  /** When the last epoch committed (closing connections comes after). */
  finishedAt?: number;
  /** Where dead letters go, for the summary: `topic x`, `file y`. */
  deadLettersTo?: string;
  watermarkKind?: 'watermark' | 'event time';
}

/** A flow's figures before it has read anything. */
export function newStats(flow: string): FlowStats {
  return { flow, recordsIn: 0, recordsOut: 0, deadLetters: 0, late: 0, epochs: 0, counters: {}, startedAt: Date.now() };
}

/** What an epoch cost, for metrics: from its first record to its commit, the commit alone, the checkpoint's size. */
export interface EpochReport {
  flow: string;
  epoch: number;
  durationMs: number;
  commitMs: number;
  checkpointBytes: number;
}

export interface FlowOptions {
  stateDir: string;
  drain: boolean;
  signal: AbortSignal;
  upstreamDone: Promise<void>;
  log: RunContext['log'];
  /** Where console sinks print (default: standard output). */
  output?: RunContext['output'];
  /** Told of every committed epoch (metrics). */
  onEpoch?: (report: EpochReport) => void;
  /** The partition of its Kafka topic this runner reads, as one task of a flow that runs as one per partition (tasks.ts). */
  task?: number;
  /** With `task`: the read of the checkpoint topic it shares with the tasks starting with it. */
  checkpointReads?: SharedReads;
  /**
   * A bounded run (`salespipe test`, backfills): no checkpoint is read or
   * written, the source and sinks may be replaced, and the end of the input
   * is the end of event time: every window becomes final.
   */
  bounded?: {
    source?: (flow: FlowPlan) => Source;
    /** `node` is undefined for the default dead-letter file. */
    sink?: (node: SinkNode | undefined, role: 'sink' | 'deadLetter' | 'late') => Sink;
    tables?: RunContext['tables'];
  };
}

/** Marks a step's checkpoint part as the meta of a changelog (its entries are in the checkpoint topic). */
const CHANGELOG = '$changelog';

/** Characters of a dead letter's payload kept (256 KiB). */
export const MAX_DEAD_PAYLOAD = 256 * 1024;

export function checkpointFile(stateDir: string, pipeline: string, flow: string): string {
  return path.join(stateDir, pipeline, `${flow}.checkpoint.json`);
}

export function defaultDeadLetterFile(stateDir: string, pipeline: string, flow: string): string {
  return path.join(stateDir, pipeline, `${flow}.deadletter.jsonl`);
}

/** What the operators of `flow` run with (also for status and backfills, which open operators outside a run). */
export function flowContext(
  plan: Plan,
  flow: FlowPlan,
  opts: { stateDir: string; drain?: boolean; log: RunContext['log']; signal?: AbortSignal; output?: RunContext['output'] },
): RunContext {
  return {
    pipeline: plan.pipeline,
    flow: flow.name,
    specFile: plan.file,
    stateDir: opts.stateDir,
    specDir: path.dirname(path.resolve(plan.file)),
    timeZone: plan.timeZone,
    drain: opts.drain ?? true,
    log: opts.log.child(flow.name),
    output: opts.output ?? processStdout(),
    signal: opts.signal ?? new AbortController().signal,
    connections: plan.connections,
    connectionLabels: plan.connectionLabels,
    upstreamDone: Promise.resolve(),
  };
}

export class FlowRunner {
  readonly stats: FlowStats;
  private source!: Source;
  private steps: Step[] = [];
  private sinks: Sink[] = [];
  private dlq!: Sink;
  private late?: Sink;
  private epoch = 1;
  private cpFile: string;
  /** The flow's name, or its task's (`<flow>.<partition>`): names its checkpoint, transaction and default dead-letter file. */
  private readonly name: string;
  private ctx: RunContext;
  private store?: KafkaCheckpointStore;
  /** This process's name in the checkpoints it writes to Kafka. */
  private readonly writer = `${os.hostname()}:${process.pid}:${crypto.randomBytes(4).toString('hex')}`;
  /** The last epoch this process committed, and the stats then (restored when a lost transaction restarts the flow). */
  private committed?: { epoch: number; stats: FlowStats };

  constructor(
    private plan: Plan,
    private flow: FlowPlan,
    private opts: FlowOptions,
  ) {
    this.name = opts.task === undefined ? flow.name : `${flow.name}.${opts.task}`;
    this.stats = {
      ...newStats(flow.name),
      deadLettersTo: outputName(flow.deadLetter) ?? `file ${defaultDeadLetterFile(opts.stateDir, plan.pipeline, this.name)}`,
    };
    this.cpFile = checkpointFile(opts.stateDir, plan.pipeline, flow.name);
    this.ctx = { ...flowContext(plan, flow, opts), upstreamDone: opts.upstreamDone, tables: opts.bounded?.tables };
    if (opts.task !== undefined) {
      this.ctx.task = opts.task;
      this.ctx.log = opts.log.child(this.name);
    }
  }

  async run(): Promise<FlowStats> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.runOnce();
      } catch (e) {
        if (!(e instanceof TransactionLost)) {
          // The summary counts what committed, not what was read or written since.
          this.restoreCommittedStats();
          throw e;
        }
        if (this.ctx.signal.aborted) {
          // Asked to stop: the epoch in flight is simply not committed; the next run redoes it.
          this.ctx.log.warn(
            `${e.message}; stopping as asked: the epoch in flight is left to the next run, which resumes from the last checkpoint Kafka holds`,
          );
          this.restoreCommittedStats();
          return this.stats;
        }
        const delay = Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));
        this.ctx.log.warn(
          `${e.message}; restarting the flow from its last committed checkpoint in ${delay} ms${e.fenced ? ' (the producer was fenced: its transaction timed out, or another instance of this flow started)' : ''}`,
        );
        this.restoreCommittedStats();
        await sleep(delay, this.ctx.signal);
        if (this.ctx.signal.aborted) return this.stats;
      }
    }
  }

  /** Back to the counts of the last committed epoch (none: zero), keeping the start time. */
  private restoreCommittedStats() {
    const base: FlowStats = this.committed
      ? structuredClone(this.committed.stats)
      : { ...this.stats, recordsIn: 0, recordsOut: 0, deadLetters: 0, late: 0, epochs: 0, counters: {}, lag: undefined };
    Object.assign(this.stats, base);
  }

  /** Opens the Kafka checkpoint store (fencing earlier producers of this flow) and reads the last checkpoint. */
  private async openCheckpoint(): Promise<Checkpoint | undefined | 'aborted'> {
    const { flow, ctx, plan } = this;
    if (this.opts.bounded) return undefined;
    if (!flow.checkpointConnection) {
      ctx.checkpointWhere = `checkpoint file ${this.cpFile}`;
      return readCheckpoint(this.cpFile);
    }
    const conn = connection(ctx, flow.checkpointConnection);
    ctx.checkpointWhere = `Kafka topic ${topicName(conn, plan.checkpointTopic)}, ${plan.connectionLabels[flow.checkpointConnection] ?? flow.checkpointConnection}`;
    // Named like the flow's consumer group: the connection's prefix first; a task's with its partition.
    const name = `${conn.topicPrefix ?? ''}salespipe.${plan.pipeline}.${this.name}`;
    const flowKey = `${plan.pipeline}/${flow.name}`;
    this.store = new KafkaCheckpointStore({
      conn: kafkaConn(ctx, flow.checkpointConnection),
      topic: topicName(conn, plan.checkpointTopic),
      transactionalId: name,
      key: `${plan.pipeline}/${this.name}`,
      family: flowKey,
      reads: this.opts.checkpointReads,
      replicationFactor: plan.checkpointReplication,
      // Longer than an epoch with room for a slow sink; the broker aborts a transaction left open longer.
      transactionTimeout: Math.min(15 * 60_000, Math.max(60_000, 6 * flow.checkpointMs)),
      log: ctx.log.child('checkpoint'),
      signal: ctx.signal,
    });
    const opened = this.store.open();
    if ((await openedOrAborted(opened, ctx.signal)) === 'aborted') {
      opened.catch(() => undefined);
      return 'aborted';
    }
    let cp = await opened;
    if (cp && this.committed && cp.epoch > this.committed.epoch && cp.writer !== this.writer) {
      throw new Error(
        `another instance of flow ${flow.name} (${cp.writer}) committed epoch ${cp.epoch} after this one's ${this.committed.epoch}: one flow must not run twice at once; stopping this one`,
      );
    }
    const task = this.opts.task;
    if (task === undefined) {
      const tasks = [...this.store.family().keys()].filter((k) => k !== flowKey);
      if (tasks.length) throw new Error(oneTaskAfterTasks(flow, plan.file, tasks.length, ctx.checkpointWhere));
    }
    if (!cp) {
      // A flow that kept its checkpoint in a file before it had a Kafka output (or before this version);
      // a task's first start: the flow's checkpoint from when it ran as one task.
      const base = task === undefined ? undefined : this.store.family().get(flowKey);
      cp = base ?? readCheckpoint(this.cpFile);
      if (cp && task !== undefined) {
        ctx.log.info(
          `first run as task ${this.name}: takes over partition ${task} from the checkpoint of flow ${flow.name} (epoch ${cp.epoch}${base ? '' : `, ${this.cpFile}`})`,
        );
        cp = taskCheckpoint(cp, task);
      } else if (cp) ctx.log.info(`checkpoint taken over from ${this.cpFile}; from now on it is committed to Kafka`);
      const sibling = task === undefined || cp ? undefined : [...this.store.family().values()][0];
      if (sibling) {
        // Other tasks of the flow have checkpoints, this one none: its partition was added to the topic since.
        ctx.log.info(`partition ${task} is new since the flow's other tasks started: task ${this.name} reads it from its start`);
        cp = newTaskCheckpoint(sibling);
      }
    }
    return cp;
  }

  private async runOnce(): Promise<FlowStats> {
    const { flow, ctx } = this;
    const b = this.opts.bounded;
    this.ctx.kafkaTxn = undefined;
    let cp: Checkpoint | undefined;
    try {
      const got = await this.openCheckpoint();
      if (got === 'aborted') {
        await this.store?.close();
        ctx.log.info('stopped before the flow had opened its connections');
        return this.stats;
      }
      cp = got;
    } catch (e) {
      await this.store?.close();
      throw e;
    }
    if (this.store && flow.kafkaOutput) {
      const store = this.store;
      ctx.kafkaTxn = { connection: flow.kafkaOutput, send: (record) => store.send(record) };
    }
    this.epoch = cp ? cp.epoch + 1 : 1;
    if (cp)
      ctx.log.info(
        `resuming from checkpoint of epoch ${cp.epoch} (${cp.at})${cp.reset ? `, reset ${cp.reset.positionsOnly ? '(positions only) ' : ''}at ${cp.reset.at}` : ''}`,
      );
    this.totalsAtOpen = {
      base: { ...ZERO_TOTALS, ...cp?.totals },
      stats: {
        recordsIn: this.stats.recordsIn,
        recordsOut: this.stats.recordsOut,
        deadLetters: this.stats.deadLetters,
        late: this.stats.late,
      },
    };
    this.steps = flow.steps.map((s) => s.def.create(s.planned, ctx));
    this.restoreSteps(cp);
    const make = (node: SinkNode, role: 'sink' | 'deadLetter' | 'late') =>
      b?.sink ? b.sink(node, role) : node.def.create(node.planned, ctx);
    this.sinks = flow.sinks.map((s) => make(s, 'sink'));
    this.dlq = flow.deadLetter
      ? make(flow.deadLetter, 'deadLetter')
      : b?.sink
        ? b.sink(undefined, 'deadLetter')
        : SINKS.file.create(
            { path: defaultDeadLetterFile(this.opts.stateDir, this.plan.pipeline, this.name), input: DEAD_LETTER_STREAM },
            ctx,
          );
    if (flow.late) this.late = make(flow.late, 'late');
    this.source = b?.source ? b.source(flow) : flow.source.def.create(flow.source.planned, ctx);
    let ended = false;
    try {
      // Opened together: connecting and joining a consumer group overlap with the sinks' set-up.
      const at = cp?.epoch ?? 0;
      const opened = Promise.all([
        ...this.steps.map((s) => s.open?.()),
        ...this.sinks.map((s, i) => s.open(cp?.sinks[i], at)),
        this.dlq.open(cp?.deadLetter, at),
        ...(this.late ? [this.late.open(cp?.late, at)] : []),
        this.source.open(cp?.source),
      ]);
      if ((await openedOrAborted(opened, ctx.signal)) === 'aborted') {
        // Stopped while still connecting (e.g. a server is down): nothing was read, nothing to commit.
        opened.catch(() => undefined);
        ctx.log.info('stopped before the flow had opened its connections');
        return this.stats;
      }
      this.stats.openedAt = Date.now();
      await this.loop();
      ended = true;
    } finally {
      // Bounded: a client still retrying a dead server must not hold the shutdown forever.
      const closing = Promise.allSettled([
        this.source.close(),
        ...this.steps.map((s) => s.close?.()),
        ...this.sinks.map((s) => s.close()),
        this.dlq.close(),
        ...(this.late ? [this.late.close()] : []),
      ]).then(() => this.store?.close());
      await Promise.race([closing, new Promise((r) => setTimeout(r, 15_000).unref())]);
      if (ended && this.committed) await this.store?.settle();
    }
    return this.stats;
  }

  /**
   * Steps restored from the checkpoint: from their changelog entries when
   * the checkpoint says so, else from its snapshot. With a Kafka checkpoint
   * a step with keyed state logs every entry at the first commit after a
   * snapshot or a fresh start, and entries found that no longer belong to
   * the state (a reset, a changed spec) get tombstones then.
   */
  private restoreSteps(cp: Checkpoint | undefined) {
    const read = this.store?.takeEntries();
    this.logAll = this.steps.map(() => true);
    this.stale = new Set();
    const metas = this.steps.map((s, i) => {
      const saved = cp?.steps[i] as { [CHANGELOG]?: unknown } | null | undefined;
      if (saved && typeof saved === 'object' && CHANGELOG in saved) {
        if (this.store && s.loadState) {
          this.logAll[i] = false;
          return saved[CHANGELOG];
        }
        this.ctx.log.warn(`step ${this.flow.steps[i].key}: its checkpointed state is a changelog this step does not keep; it starts empty`);
      } else if (saved !== undefined && saved !== null) s.restore?.(saved);
      return undefined;
    });
    // The entries of steps restored from the changelog are their state; any other entry is stale.
    const byStep = new Map<number, Map<string, unknown>>();
    let bytes = 0;
    for (const [id, v] of read?.entries ?? []) {
      const slash = id.indexOf('/');
      const i = Number(id.slice(0, slash));
      if (this.logAll[i] !== false) {
        this.stale.add(id);
        continue;
      }
      let m = byStep.get(i);
      if (!m) byStep.set(i, (m = new Map()));
      m.set(id.slice(slash + 1), JSON.parse(v.toString('utf8'), reviver));
      bytes += v.length;
    }
    this.steps.forEach((s, i) => {
      if (!this.logAll[i]) s.loadState!(metas[i], byStep.get(i) ?? new Map());
    });
    const restored = [...byStep.values()].reduce((n, m) => n + m.size, 0);
    if (restored)
      this.ctx.log.info(
        `restored ${restored} state entries (${(bytes / 1048576).toFixed(1)} MB) from ${read!.topic} in ${read!.ms} ms (the checkpoint topic read to its end)`,
      );
    if (this.stale.size)
      this.ctx.log.info(
        `${this.stale.size} state entries in ${read!.topic} are not this flow's state (a reset, a changed spec): removed at the next commit`,
      );
  }

  /** Per step: whether its next commit logs every entry (after a snapshot or a fresh start). */
  private logAll: boolean[] = [];
  /** Entries in the checkpoint topic that are not (or no longer) the flow's state: tombstoned at the next commit. */
  private stale = new Set<string>();

  /** Each step's part of the checkpoint, and the changelog entries of the epoch. */
  private stepStates(): { steps: unknown[]; changes: [string, string | null][] } {
    const changes: [string, string | null][] = [];
    const steps = this.steps.map((s, i) => {
      if (!this.store || !s.stateChanges) return s.snapshot?.() ?? null;
      for (const [id, v] of s.stateChanges(this.logAll[i])) {
        const key = `${i}/${id}`;
        this.stale.delete(key);
        changes.push([key, v === null ? null : JSON.stringify(v, replacer)]);
      }
      return { [CHANGELOG]: s.stateMeta?.() ?? null };
    });
    for (const id of this.stale) changes.push([id, null]);
    return { steps, changes };
  }

  private async loop() {
    const useProgress = this.progressSteps();
    this.epochStartedAt = Date.now();
    let dirty = false;
    for (;;) {
      const batch = await this.source.next();
      if (batch === null) break;
      this.stats.recordsIn += batch.rows.length + batch.dead.length;
      this.stats.lag = this.source.lag?.();
      if (batch.rows.length || batch.dead.length) {
        dirty = true;
        await this.push(batch.rows, 0, batch.dead);
        const progress = this.source.eventTimeProgress?.();
        this.steps.forEach((s, i) => s.advance?.(useProgress[i] ? progress : undefined));
        this.noteWatermark(progress);
      }
      const now = Date.now();
      if (now - this.epochStartedAt >= this.flow.checkpointMs || this.sinks.some((s) => s.full?.())) {
        const cut = dirty || this.steps.some((s) => s.pending?.());
        if (cut) await this.endEpoch();
        dirty = false;
        // Epochs are cut every interval: the time a commit takes counts in the next epoch's
        // interval, so a record waits at most about one interval (plus a commit) to be visible.
        this.epochStartedAt = cut ? now : Date.now();
      }
    }
    // A bounded input has ended: so has event time, and every window is final.
    if (this.opts.bounded) this.steps.forEach((s) => s.advance?.(Infinity));
    else if (this.opts.drain && !this.opts.signal.aborted) this.steps.forEach((s) => s.inputEnded?.());
    if (dirty || this.opts.bounded || this.steps.some((s) => s.pending?.())) await this.endEpoch();
    this.stats.finishedAt = Date.now();
  }

  private noteWatermark(progress: number | null | undefined) {
    const wm = this.steps.map((s) => s.watermark?.()).find((w) => w !== undefined);
    if (wm !== undefined) {
      this.stats.watermark = wm;
      this.stats.watermarkKind = 'watermark';
    } else if (typeof progress === 'number') {
      this.stats.watermark = progress;
      this.stats.watermarkKind = 'event time';
    }
  }

  /** Steps whose input still carries the source's event time unchanged (no aggregate before them). */
  private progressSteps(): boolean[] {
    const et = this.flow.source.out.eventTime;
    let intact = !!this.source.eventTimeProgress;
    return this.flow.steps.map((s) => {
      const ok = intact && !!et && s.input.eventTime === et;
      if (s.out.mode !== 'append' || s.out.watermark) intact = false;
      return ok;
    });
  }

  /** Runs rows through steps[from..] into the sinks; dead letters go to the dead-letter (or late) sink. */
  private async push(rows: Row[], from: number, dead: DeadLetter[]) {
    for (let i = from; i < this.steps.length && rows.length; i++) rows = this.steps[i].process(rows, dead);
    // Sinks never dead-letter: rows they buffer must not keep their payloads alive.
    for (const r of rows) if (sourceOf(r)) clearSource(r);
    if (rows.length) {
      this.stats.recordsOut += rows.length;
      await Promise.all(this.sinks.map((s) => s.write(rows)));
    }
    if (dead.length) {
      for (const d of dead) {
        // The original stays in the source (`origin` says where); the copy is bounded so that
        // a dead letter always fits a Kafka message.
        if (d.payload.length > MAX_DEAD_PAYLOAD) {
          d.reason += ` (payload of ${d.payload.length} characters cut to ${MAX_DEAD_PAYLOAD}; the original is at ${d.origin})`;
          d.payload = d.payload.slice(0, MAX_DEAD_PAYLOAD);
        }
      }
      const at = Date.now();
      const stamp = ({ late: _late, ...d }: DeadLetter) => ({ ...d, pipeline: this.plan.pipeline, flow: this.flow.name, at });
      const late = this.late ? dead.filter((d) => d.late) : [];
      const rest = late.length ? dead.filter((d) => !d.late) : dead;
      this.stats.deadLetters += rest.length;
      for (const d of dead) if (d.late) this.stats.late++;
      if (late.length) await this.late!.write(late.map(stamp));
      if (rest.length) await this.dlq.write(rest.map(stamp));
      dead.length = 0;
    }
  }

  /** Counts of the flow since it first ran: the checkpoint's, plus this run's since it was read. */
  private totalsAtOpen = { base: ZERO_TOTALS, stats: ZERO_TOTALS };

  private totals(): Totals {
    const { base, stats } = this.totalsAtOpen;
    const k = ['recordsIn', 'recordsOut', 'deadLetters', 'late'] as const;
    return Object.fromEntries(k.map((n) => [n, base[n] + this.stats[n] - stats[n]])) as unknown as Totals;
  }

  private collectCounters() {
    this.flow.steps.forEach((node, i) => {
      for (const [k, v] of Object.entries(this.steps[i].counters?.() ?? {})) this.stats.counters[`${node.key} ${k}`] = v;
    });
  }

  /** When the epoch in progress began. */
  private epochStartedAt = Date.now();

  private async endEpoch() {
    const epoch = this.epoch;
    for (let i = 0; i < this.steps.length; i++) {
      const held = this.steps[i].flush?.();
      if (held?.length) await this.push(held, i + 1, []);
    }
    const sinkStates = await Promise.all(this.sinks.map((s) => s.preCommit(epoch)));
    const dlqState = await this.dlq.preCommit(epoch);
    const lateState = await this.late?.preCommit(epoch);
    const position = this.source.position();
    const commitStart = Date.now();
    const states = this.stepStates();
    const cp: Checkpoint = {
      version: 1,
      epoch,
      source: position,
      steps: states.steps,
      sinks: sinkStates,
      deadLetter: dlqState,
      late: lateState,
      at: new Date().toISOString(),
      totals: this.totals(),
    };
    let bytes = 0;
    if (this.store) {
      cp.writer = this.writer;
      bytes = await this.store.commit(cp, states.changes);
      this.logAll = this.logAll.map(() => false);
      this.stale.clear();
      if (!this.committed && this.opts.task === undefined) fs.rmSync(this.cpFile, { force: true }); // taken over (see openCheckpoint)
    } else if (!this.opts.bounded) bytes = writeCheckpoint(this.cpFile, cp);
    await Promise.all(this.sinks.map((s, i) => s.commit(epoch, sinkStates[i])));
    await this.dlq.commit(epoch, dlqState);
    await this.late?.commit(epoch, lateState);
    await this.source.commit(position);
    this.stats.epochs++;
    const now = Date.now();
    this.stats.lastCommitAt = now;
    this.stats.checkpointBytes = bytes;
    this.stats.checkpointBytesTotal = (this.stats.checkpointBytesTotal ?? 0) + bytes;
    this.collectCounters();
    this.committed = { epoch, stats: structuredClone(this.stats) };
    this.epoch++;
    this.ctx.log.debug(`epoch ${epoch} committed`);
    this.opts.onEpoch?.({
      flow: this.flow.name,
      epoch,
      durationMs: now - this.epochStartedAt,
      commitMs: now - commitStart,
      checkpointBytes: bytes,
    });
  }
}

/** How the summary names an output: `topic x`, `file y`. */
function outputName(node: SinkNode | undefined): string | undefined {
  if (!node) return undefined;
  const c = node.cfg as { topic?: string; path?: string; table?: string };
  return c.topic ? `topic ${c.topic}` : c.path ? `${node.type} ${c.path}` : c.table ? `table ${c.table}` : node.type;
}

/** Waits for `opened`, or for `signal` to abort first; the listener goes away either way (flows restart). */
function openedOrAborted(opened: Promise<unknown>, signal: AbortSignal): Promise<'open' | 'aborted'> {
  if (signal.aborted) return Promise.resolve('aborted');
  return new Promise((resolve, reject) => {
    const onAbort = () => resolve('aborted');
    signal.addEventListener('abort', onAbort, { once: true });
    opened.then(() => resolve('open'), reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
