/**
 * @module Running a plan's flows on worker threads (`salespipe run --workers N`).
 *
 * Rules:
 * - With more than one worker the flows are spread over the threads,
 *   heaviest first onto the least loaded one (a flow reading Kafka weighs
 *   more than one polling a table: its records arrive in bulk), at most one
 *   thread per flow; a flow that runs as one task per partition (tasks.ts)
 *   goes to every thread, each running its share of the tasks. With one
 *   worker everything runs on the main thread.
 * - A worker loads the same spec with the same environment and plans it
 *   again (a plan holds functions and cannot cross threads), then runs its
 *   flows exactly as the main thread would: the same checkpoints,
 *   transactions and outputs.
 * - The main thread keeps everything that is per process: the pipeline's
 *   guard, signals, progress, metrics and the summary. A worker sends its
 *   log lines (the main thread's logger writes and redacts them), console
 *   output, each flow's figures (every 250 ms and at the end), each
 *   committed epoch and what it is retrying; the main thread sends the
 *   stop and each flow's end (a flow's upstream may run on another thread).
 * - A worker that dies (an uncaught error) fails its flows; the run then
 *   stops the others, as for any failed flow.
 */
import { Worker } from 'node:worker_threads';
import type { FlowPlan, Plan } from '../plan/plan.js';
import { newStats, type FlowStats, type EpochReport } from './flow.js';
import type { Logger, Level } from '../core/log.js';
import type { Output } from '../core/io.js';
import { waiting } from '../connections/retry.js';
import { combineStats } from './tasks.js';

/** What a worker is started with (plain data). */
export interface WorkerInit {
  file: string;
  /** The spec as the main thread read it. */
  text: string;
  env: Record<string, string | undefined>;
  /** The flows this worker runs. */
  flows: string[];
  /** Which member of a flow that runs as tasks this worker is (tasks.ts): index of, of every worker. */
  member: { index: number; of: number };
  stateDir: string;
  drain: boolean;
  outputIsTTY: boolean;
}

export type FromWorker =
  | { type: 'log'; scope: string; level: Level; message: string }
  | { type: 'output'; text: string }
  | { type: 'stats'; stats: FlowStats[] }
  | { type: 'epoch'; report: EpochReport }
  | { type: 'waiting'; entries: [string, string][] }
  | { type: 'end'; flow: string; stats: FlowStats; error?: string }
  /** The worker could not start its flows (its plan of the same text differs: a file the spec refers to changed). */
  | { type: 'fatal'; message: string };

export type ToWorker = { type: 'stop' } | { type: 'flowDone'; flow: string };

/** What runFlows runs per flow: a FlowRunner, a flow's tasks (tasks.ts), or the stand-in for a flow on workers. */
export interface FlowRun {
  readonly stats: FlowStats;
  run(): Promise<FlowStats>;
}

/** How much work a flow is, to spread flows over workers. */
const weight = (f: FlowPlan) => (f.source.type === 'kafka' ? 2 : 1);

/** How many threads a plan can keep busy: a flow that runs as tasks (tasks.ts) can use them all. */
export function usefulWorkers(flows: FlowPlan[], workers: number): number {
  return Math.max(1, flows.some((f) => f.tasks.perPartition) ? workers : Math.min(workers, flows.length));
}

/**
 * Flows per worker. A flow that runs as tasks goes to every worker (each
 * runs its share of the tasks: tasks.ts); the others go heaviest first,
 * each onto the least loaded worker (ties: the first). The least loaded
 * worker is member 0 of the flows that run as tasks, so it gets the most
 * tasks when they do not divide evenly.
 */
export function spread(flows: FlowPlan[], workers: number): { flows: string[]; member: number }[] {
  const n = usefulWorkers(flows, workers);
  const out: { load: number; flows: string[] }[] = Array.from({ length: n }, () => ({ load: 0, flows: [] }));
  const order = flows
    .map((f, i) => ({ f, i }))
    .filter(({ f }) => !f.tasks.perPartition)
    .sort((a, b) => weight(b.f) - weight(a.f) || a.i - b.i);
  for (const { f } of order) {
    const w = out.reduce((best, x) => (x.load < best.load ? x : best), out[0]);
    w.flows.push(f.name);
    w.load += weight(f);
  }
  const rank = out
    .map((w, i) => ({ load: w.load, i }))
    .sort((a, b) => a.load - b.load || a.i - b.i)
    .map((x) => x.i);
  const tasked = flows.filter((f) => f.tasks.perPartition).map((f) => f.name);
  return out.map((w, i) => ({ flows: [...tasked, ...w.flows], member: rank.indexOf(i) }));
}

/** The flows of each worker (spread). */
export function spreadFlows(flows: FlowPlan[], workers: number): string[][] {
  return spread(flows, workers).map((w) => w.flows);
}

export interface PoolOptions {
  stateDir: string;
  drain: boolean;
  log: Logger;
  output: Output;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  onEpoch: (report: EpochReport) => void;
  /** Stops the run: a member of a flow on several workers failed (the others then end their epochs before the flow fails). */
  abort: () => void;
}

/** The plan's flows on `workers` threads; `flowDone` tells every worker that a flow ended. */
export function startWorkers(
  plan: Plan,
  workers: number,
  opts: PoolOptions,
): { flows: Map<string, FlowRun>; flowDone: (flow: string) => void } {
  const text = plan.text;
  if (text === undefined) throw new Error('a plan runs on workers only when it comes from a spec text');
  const groups = spread(plan.flows, workers);
  const members = new Map<string, RemoteFlow[]>();
  const threads: Worker[] = [];
  const loggers = new Map<string, Logger>();
  const scoped = (scope: string) => {
    let l = loggers.get(scope);
    if (!l) loggers.set(scope, (l = scope ? opts.log.child(scope) : opts.log));
    return l;
  };
  const retrying = new Map<Worker, string[]>();
  for (const [i, { flows, member }] of groups.entries()) {
    const init: WorkerInit = {
      file: plan.file,
      text,
      env: { ...opts.env },
      flows,
      member: { index: member, of: groups.length },
      stateDir: opts.stateDir,
      drain: opts.drain,
      outputIsTTY: opts.output.isTTY,
    };
    const w = new Worker(new URL('./flow-worker.js', import.meta.url), { workerData: init, name: `salespipe worker ${i + 1}` });
    threads.push(w);
    const here = new Map<string, RemoteFlow>();
    const mine = flows.map((f) => {
      const t = new RemoteFlow(f);
      here.set(f, t);
      members.set(f, [...(members.get(f) ?? []), t]);
      return t;
    });
    const failAll = (message: string) => {
      for (const t of mine) t.end(undefined, message);
    };
    w.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'log':
          scoped(m.scope)[m.level](m.message);
          break;
        case 'output':
          opts.output.write(m.text);
          break;
        case 'stats':
          for (const s of m.stats) here.get(s.flow)?.update(s);
          break;
        case 'epoch':
          opts.onEpoch(m.report);
          break;
        case 'waiting': {
          for (const k of retrying.get(w) ?? []) waiting.delete(k);
          for (const [k, v] of m.entries) waiting.set(k, v);
          retrying.set(
            w,
            m.entries.map(([k]) => k),
          );
          break;
        }
        case 'end':
          here.get(m.flow)?.end(m.stats, m.error);
          if (mine.every((t) => t.ended)) void w.terminate();
          break;
        case 'fatal':
          failAll(m.message);
          void w.terminate();
          break;
      }
    });
    w.on('error', (e) => {
      failAll(`worker ${i + 1} failed: ${e.message}`);
    });
    w.on('exit', (code) => {
      for (const k of retrying.get(w) ?? []) waiting.delete(k);
      failAll(`worker ${i + 1} exited (code ${code}) before its flows had ended`);
    });
  }
  const send = (m: ToWorker) => {
    for (const w of threads) w.postMessage(m);
  };
  if (opts.signal.aborted) send({ type: 'stop' });
  else opts.signal.addEventListener('abort', () => send({ type: 'stop' }), { once: true });
  const byFlow = new Map<string, FlowRun>(
    [...members].map(([f, list]) => [f, list.length === 1 ? list[0] : new Members(f, list, opts.abort)]),
  );
  return { flows: byFlow, flowDone: (flow) => send({ type: 'flowDone', flow }) };
}

/** A flow that runs as tasks on several workers: its members' figures summed (kept current while it runs), its end theirs. */
class Members implements FlowRun {
  private figures: FlowStats;
  constructor(
    flow: string,
    private parts: FlowRun[],
    private abort: () => void,
  ) {
    this.figures = combineStats(flow, []);
  }

  get stats(): FlowStats {
    return combineStats(
      this.figures.flow,
      this.parts.map((p) => p.stats),
      this.figures,
    );
  }

  async run(): Promise<FlowStats> {
    let failure: unknown;
    const timer = setInterval(() => this.stats, 250);
    try {
      await Promise.all(
        this.parts.map((p) =>
          p.run().catch((e) => {
            failure ??= e;
            this.abort();
          }),
        ),
      );
    } finally {
      clearInterval(timer);
    }
    if (failure) throw failure;
    return this.stats;
  }
}

/** A flow (or a flow's share of its tasks) running on a worker: its figures as last reported, and its end. */
class RemoteFlow implements FlowRun {
  readonly stats: FlowStats;
  ended = false;
  private resolve!: (s: FlowStats) => void;
  private reject!: (e: Error) => void;
  private done = new Promise<FlowStats>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });

  constructor(flow: string) {
    this.stats = newStats(flow);
  }

  update(s: FlowStats) {
    if (!this.ended) Object.assign(this.stats, s);
  }

  end(stats: FlowStats | undefined, error?: string) {
    if (this.ended) return;
    if (stats) Object.assign(this.stats, stats);
    this.ended = true;
    if (error === undefined) this.resolve(this.stats);
    else this.reject(new Error(error));
  }

  run(): Promise<FlowStats> {
    return this.done;
  }
}
