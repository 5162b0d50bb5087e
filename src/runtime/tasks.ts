/**
 * @module Flows as tasks: one per partition of the Kafka topic they read.
 *
 * Rules:
 * - A flow whose steps keep nothing from one record to the next and whose
 *   outputs take several writers (plan.ts, FlowPlan.tasks) runs as one task
 *   per partition of its topic: `<flow>.<partition>`. Each task is a
 *   FlowRunner of its own: its own checkpoint (key
 *   `<pipeline>/<flow>.<partition>`), its own transactional producer
 *   (transactional.id `<topicPrefix>salespipe.<pipeline>.<flow>.<partition>`,
 *   which fences a zombie of that task alone), its own consumer group
 *   (`salespipe.<pipeline>.<flow>.<partition>`), its own output files and
 *   markers (output-owner.ts) and its own default dead-letter file.
 * - A flow's tasks are shared by the members that run it: with `--workers N`,
 *   one member per worker thread; member i of n runs the tasks of the
 *   partitions p with p mod n = i. The partitions are those the topic has
 *   when the member starts (it waits for the topic as a source does); a
 *   run that is not a drain checks the topic every PARTITION_CHECK_MS and
 *   starts the tasks of partitions added to it, which read them from their
 *   start (task-checkpoints.ts, newTaskCheckpoint).
 * - A task's first run takes over its partition from the flow's checkpoint
 *   of when it ran as one task (task-checkpoints.ts): its position in that
 *   partition, the epoch number; task 0 also takes the staged outputs to
 *   finish and the counts since the start. The flow's checkpoint stays as it
 *   was: a task that has not committed yet still finds it. The opposite way
 *   (a flow that ran as tasks and now runs as one, after a change of its
 *   steps) is refused: its tasks' staged outputs would be lost.
 * - Tasks that start together read the checkpoint topic once for all of
 *   them (kafka-checkpoint.ts, SharedReads): it holds every flow's
 *   checkpoints and state, and is read to its end.
 * - A member's figures are the sum of its tasks' (combineStats); a task that
 *   fails stops the member's other tasks and fails the member.
 */
import type { FlowPlan, Plan } from '../plan/plan.js';
import { FlowRunner, flowContext, newStats, type FlowOptions, type FlowStats } from './flow.js';
import type { FlowRun } from './workers.js';
import { connection, topicName } from '../connections/config.js';
import { kafkaClient, kafkaConn, kafkaWhere, waitForTopic } from '../connections/kafka.js';
import { sleep, withRetry } from '../connections/retry.js';
import { SharedReads } from './kafka-checkpoint.js';

/** The figures of a flow from its tasks' (or members'): counts summed, the watermark the least, times the latest. */
export function combineStats(flow: string, parts: FlowStats[], into?: FlowStats): FlowStats {
  const out: FlowStats = into ?? newStats(flow);
  const sum = (f: (s: FlowStats) => number | undefined) =>
    parts.some((s) => f(s) !== undefined) ? parts.reduce((n, s) => n + (f(s) ?? 0), 0) : undefined;
  const max = (f: (s: FlowStats) => number | undefined) => {
    const v = parts.map(f).filter((x): x is number => x !== undefined);
    return v.length ? Math.max(...v) : undefined;
  };
  out.recordsIn = sum((s) => s.recordsIn) ?? 0;
  out.recordsOut = sum((s) => s.recordsOut) ?? 0;
  out.deadLetters = sum((s) => s.deadLetters) ?? 0;
  out.late = sum((s) => s.late) ?? 0;
  out.epochs = sum((s) => s.epochs) ?? 0;
  out.lag = sum((s) => s.lag);
  out.checkpointBytes = sum((s) => s.checkpointBytes);
  out.checkpointBytesTotal = sum((s) => s.checkpointBytesTotal);
  out.lastCommitAt = max((s) => s.lastCommitAt);
  // Ready (metrics' /readyz) once every task has opened.
  out.openedAt = parts.length && parts.every((s) => s.openedAt !== undefined) ? max((s) => s.openedAt) : undefined;
  out.finishedAt = parts.length && parts.every((s) => s.finishedAt !== undefined) ? max((s) => s.finishedAt) : undefined;
  if (parts.length) out.startedAt = Math.min(...parts.map((s) => s.startedAt));
  const counters: Record<string, number> = {};
  for (const s of parts) for (const [k, v] of Object.entries(s.counters)) counters[k] = (counters[k] ?? 0) + v;
  out.counters = counters;
  // Every task holds event time back: the flow is as far as its slowest task.
  const wms = parts.map((s) => s.watermark);
  out.watermark = wms.length && wms.every((w) => w !== undefined) ? Math.min(...(wms as number[])) : undefined;
  out.watermarkKind = parts.find((s) => s.watermarkKind)?.watermarkKind;
  const to = [...new Set(parts.map((s) => s.deadLettersTo).filter((d): d is string => !!d))];
  out.deadLettersTo = to.length > 1 ? `${to[0]} (and ${to.length - 1} more, one per task)` : (to[0] ?? out.deadLettersTo);
  return out;
}

/** How often a flow that runs as tasks checks its topic for partitions added to it (not in a drain). */
const PARTITION_CHECK_MS = 10_000;

/**
 * One member of a flow that runs as tasks: the tasks of the partitions it
 * owns (p mod members = index), each a FlowRunner, run together.
 */
export class TaskedFlow implements FlowRun {
  readonly stats: FlowStats;
  private runners: FlowRunner[] = [];

  constructor(
    private plan: Plan,
    private flow: FlowPlan,
    private opts: FlowOptions,
    private member = { index: 0, of: 1 },
  ) {
    this.stats = combineStats(flow.name, []);
  }

  /** Refreshes the figures from the tasks'. */
  private update() {
    if (this.runners.length)
      combineStats(
        this.flow.name,
        this.runners.map((r) => r.stats),
        this.stats,
      );
  }

  async run(): Promise<FlowStats> {
    const { flow, member } = this;
    const log = this.opts.log.child(flow.name);
    let partitions: number[] | undefined;
    try {
      partitions = await this.partitions();
    } catch (e) {
      // Stopped while still connecting (the broker down, say): nothing was read, nothing to commit.
      if (!this.opts.signal.aborted) throw e;
      log.info('stopped before the flow had opened its connections');
      return this.stats;
    }
    if (partitions === undefined) return this.stats;
    const mine = (ps: number[]) => ps.filter((p) => p % member.of === member.index);
    const names = (ps: number[]) => ps.map((p) => `${flow.name}.${p}`).join(', ');
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    if (this.opts.signal.aborted) stop.abort();
    else this.opts.signal.addEventListener('abort', onAbort, { once: true });
    let failure: unknown;
    const runs: Promise<void>[] = [];
    const start = (tasks: number[]) => {
      // Tasks starting together read the checkpoint topic once for all of them.
      const checkpointReads = tasks.length > 1 ? new SharedReads(tasks.length, log) : undefined;
      for (const task of tasks) {
        const r = new FlowRunner(this.plan, flow, { ...this.opts, signal: stop.signal, task, checkpointReads });
        this.runners.push(r);
        runs.push(
          r.run().then(
            () => undefined,
            (e) => {
              failure ??= e;
              stop.abort(); // the member's other tasks end their epochs
            },
          ),
        );
      }
    };
    const first = mine(partitions);
    log.info(
      first.length
        ? `runs task(s) ${names(first)} (${partitions.length} partition(s) in all)`
        : `no task to run here for now: ${partitions.length} partition(s) for ${member.of} member(s)`,
    );
    start(first);
    if (!first.length) this.stats.openedAt = Date.now(); // nothing to open: ready
    const timer = setInterval(() => this.update(), 250);
    try {
      // A drain reads the partitions there were at its start; a service also takes on those added since.
      if (!this.opts.drain)
        await this.watch(new Set(partitions), stop.signal, (added) => {
          const more = mine(added);
          log.info(`partition(s) ${added.join(', ')} added to the topic${more.length ? `: starting task(s) ${names(more)}` : ''}`);
          start(more);
        });
      for (let i = 0; i < runs.length; i++) await runs[i];
    } finally {
      clearInterval(timer);
      this.opts.signal.removeEventListener('abort', onAbort);
      this.update();
    }
    if (failure) throw failure;
    return this.stats;
  }

  /** The flow's topic, named as on the cluster, and an admin client of its connection. */
  private topic() {
    const { plan, flow, opts } = this;
    const ctx = flowContext(plan, flow, opts);
    const connName = flow.source.def.kafkaConnection!(flow.source.cfg);
    const conn = kafkaConn(ctx, connName);
    return { ctx, conn, topic: topicName(connection(ctx, connName), flow.source.cfg.topic), admin: kafkaClient(conn, ctx.log).admin() };
  }

  /** Until `signal` aborts, checks the topic's partitions every PARTITION_CHECK_MS and reports those added. */
  private async watch(known: Set<number>, signal: AbortSignal, added: (partitions: number[]) => void): Promise<void> {
    const { ctx, topic, admin } = this.topic();
    try {
      while (!signal.aborted) {
        await sleep(PARTITION_CHECK_MS, signal);
        if (signal.aborted) break;
        try {
          await admin.connect();
          const meta = await admin.fetchTopicMetadata({ topics: [topic] });
          const fresh = meta.topics[0].partitions.map((p) => p.partitionId).filter((p) => !known.has(p));
          fresh.sort((a, b) => a - b);
          for (const p of fresh) known.add(p);
          if (fresh.length) added(fresh);
        } catch (e) {
          ctx.log.debug(`could not check ${topic} for added partitions: ${(e as Error).message}`);
        }
      }
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /**
   * The partitions of the flow's topic, once it exists (an upstream flow
   * may create it); undefined if the run stops first or a drain finds no
   * topic (nothing to do).
   */
  private async partitions(): Promise<number[] | undefined> {
    const { opts } = this;
    const { ctx, conn, topic, admin } = this.topic();
    try {
      await withRetry(`connecting to ${kafkaWhere(conn)}`, ctx.log, opts.signal, () => admin.connect());
      if (!(await waitForTopic(admin, topic, kafkaWhere(conn), ctx.log, opts))) {
        if (opts.drain && !opts.signal.aborted)
          ctx.log.info(`topic ${topic} does not exist and nothing upstream created it: nothing to drain`);
        return undefined;
      }
      const meta = await withRetry(
        `reading the partitions of ${topic}`,
        ctx.log,
        opts.signal,
        () => admin.fetchTopicMetadata({ topics: [topic] }),
        10_000,
        'debug',
      );
      return meta.topics[0].partitions.map((p) => p.partitionId).sort((a, b) => a - b);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}
