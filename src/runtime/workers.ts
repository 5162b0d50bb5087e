/**
 * @module Running a plan's tasks on worker threads (`salespipe run --workers N`).
 *
 * Rules:
 * - A task is what one FlowRunner runs: today one per flow. With more than
 *   one worker and more than one task, the tasks are spread over
 *   min(workers, tasks) threads, heaviest first onto the least loaded one
 *   (a flow reading Kafka weighs more than one polling a table: its
 *   records arrive in bulk). With one worker, or one task, everything runs
 *   on the main thread as before.
 * - A worker loads the same spec with the same environment and plans it
 *   again (a plan holds functions and cannot cross threads), then runs its
 *   tasks with FlowRunner, unchanged: the same checkpoints, transactions
 *   and outputs as on the main thread.
 * - The main thread keeps everything that is per process: the pipeline's
 *   guard, signals, progress, metrics and the summary. A worker sends its
 *   log lines (the main thread's logger writes and redacts them), console
 *   output, each task's figures (every 250 ms and at the end), each
 *   committed epoch and what it is retrying; the main thread sends the
 *   stop and each task's end (a task's upstream may run on another thread).
 * - A worker that dies (an uncaught error) fails its tasks; the run then
 *   stops the others, as for any failed flow.
 */
import { Worker } from 'node:worker_threads';
import type { FlowPlan, Plan } from '../plan/plan.js';
import type { FlowStats, EpochReport } from './flow.js';
import type { Logger, Level } from '../core/log.js';
import type { Output } from '../core/io.js';
import { waiting } from '../connections/retry.js';

/** What a worker is started with (plain data). */
export interface WorkerInit {
  file: string;
  /** The spec as the main thread read it. */
  text: string;
  env: Record<string, string | undefined>;
  /** The flows this worker runs. */
  flows: string[];
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
  /** The worker could not start its tasks (its plan of the same text differs: a file the spec refers to changed). */
  | { type: 'fatal'; message: string };

export type ToWorker = { type: 'stop' } | { type: 'flowDone'; flow: string };

/** What runFlows runs: a FlowRunner, or its stand-in for a task on a worker. */
export interface Task {
  readonly stats: FlowStats;
  run(): Promise<FlowStats>;
}

/** How much work a flow is, to spread flows over workers. */
const weight = (f: FlowPlan) => (f.source.type === 'kafka' ? 2 : 1);

/** Flows per worker: heaviest first, each onto the least loaded worker (ties: the first). */
export function spreadFlows(flows: FlowPlan[], workers: number): string[][] {
  const n = Math.max(1, Math.min(workers, flows.length));
  const out: { load: number; flows: string[] }[] = Array.from({ length: n }, () => ({ load: 0, flows: [] }));
  const order = flows.map((f, i) => ({ f, i })).sort((a, b) => weight(b.f) - weight(a.f) || a.i - b.i);
  for (const { f } of order) {
    const w = out.reduce((best, x) => (x.load < best.load ? x : best), out[0]);
    w.flows.push(f.name);
    w.load += weight(f);
  }
  return out.map((w) => w.flows);
}

export interface PoolOptions {
  stateDir: string;
  drain: boolean;
  log: Logger;
  output: Output;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  onEpoch: (report: EpochReport) => void;
}

/** The plan's flows as tasks on `workers` threads; `flowDone` tells every worker that a flow ended. */
export function startWorkers(
  plan: Plan,
  workers: number,
  opts: PoolOptions,
): { tasks: Map<string, Task>; flowDone: (flow: string) => void } {
  const text = plan.text;
  if (text === undefined) throw new Error('a plan runs on workers only when it comes from a spec text');
  const groups = spreadFlows(plan.flows, workers);
  const tasks = new Map<string, RemoteTask>();
  const threads: Worker[] = [];
  const loggers = new Map<string, Logger>();
  const scoped = (scope: string) => {
    let l = loggers.get(scope);
    if (!l) loggers.set(scope, (l = scope ? opts.log.child(scope) : opts.log));
    return l;
  };
  const retrying = new Map<Worker, string[]>();
  for (const [i, flows] of groups.entries()) {
    const init: WorkerInit = {
      file: plan.file,
      text,
      env: { ...opts.env },
      flows,
      stateDir: opts.stateDir,
      drain: opts.drain,
      outputIsTTY: opts.output.isTTY,
    };
    const w = new Worker(new URL('./flow-worker.js', import.meta.url), { workerData: init, name: `salespipe worker ${i + 1}` });
    threads.push(w);
    const mine = flows.map((f) => {
      const t = new RemoteTask(f);
      tasks.set(f, t);
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
          for (const s of m.stats) tasks.get(s.flow)?.update(s);
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
          tasks.get(m.flow)?.end(m.stats, m.error);
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
  return { tasks, flowDone: (flow) => send({ type: 'flowDone', flow }) };
}

/** A task running on a worker: its figures as last reported, and its end. */
class RemoteTask implements Task {
  readonly stats: FlowStats;
  ended = false;
  private resolve!: (s: FlowStats) => void;
  private reject!: (e: Error) => void;
  private done = new Promise<FlowStats>((res, rej) => {
    this.resolve = res;
    this.reject = rej;
  });

  constructor(flow: string) {
    this.stats = { flow, recordsIn: 0, recordsOut: 0, deadLetters: 0, late: 0, epochs: 0, counters: {}, startedAt: Date.now() };
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
