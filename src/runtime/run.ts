/**
 * @module Running a plan: every flow at once, connected through topics.
 *
 * Rules:
 * - All flows start together. In a drain, a flow's source takes its end
 *   position only after its upstream flows have finished, so one
 *   `run --drain` carries data through the whole chain.
 * - SIGINT/SIGTERM (or `signal`) stop the sources; each flow then ends its
 *   epoch (flush, checkpoint, commit) and closes. A second signal exits at once.
 * - If one flow fails, the others are stopped gracefully and the run fails.
 * - With `metrics`, /metrics, /healthz and /readyz are served from before
 *   the flows open until they have closed (metrics.ts).
 * - A run holds its pipeline's guard (guard.ts) from before the first flow
 *   opens until the last one has closed: a second instance is refused.
 * - With `workers` above 1 the flows run on worker threads (workers.ts);
 *   this thread then keeps the guard, progress, metrics and signals.
 * - A flow that can run as one task per partition of its topic does
 *   (tasks.ts), its tasks shared by the workers.
 */
import type { Plan } from '../plan/plan.js';
import { FlowRunner, FlowStats } from './flow.js';
import { startWorkers, usefulWorkers, type FlowRun } from './workers.js';
import { TaskedFlow } from './tasks.js';
import type { Logger } from '../core/log.js';
import type { Output } from '../operators/operator.js';
import { Progress } from './progress.js';
import { guardPipeline } from './guard.js';
import { processStdout } from '../core/io.js';

export interface RunOptions {
  stateDir: string;
  drain: boolean;
  log: Logger;
  signal?: AbortSignal;
  progress?: boolean;
  /** Where console sinks print (default: standard output). */
  output?: Output;
  /** Serve Prometheus metrics, /healthz and /readyz while the run lasts. */
  metrics?: { port: number; host: string };
  /** Worker threads to run the flows on (default 1: all on this thread); needs a plan made from a spec's text. */
  workers?: number;
  /** The environment the plan was made with (workers plan the spec again with it; default process.env). */
  env?: NodeJS.ProcessEnv;
}

export async function runPlan(plan: Plan, opts: RunOptions): Promise<FlowStats[]> {
  const stop = new AbortController();
  if (opts.signal?.aborted) stop.abort();
  opts.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  let guard;
  try {
    guard = await guardPipeline(plan, opts.stateDir, opts.log, stop.signal);
  } catch (e) {
    if (!stop.signal.aborted) throw e;
    opts.log.info('stopped before the run had started');
    return [];
  }
  try {
    return await runFlows(plan, opts, stop, (fn) => guard.lost(fn));
  } finally {
    await guard.release();
  }
}

async function runFlows(
  plan: Plan,
  opts: RunOptions,
  stop: AbortController,
  onLost: (fn: (why: string) => void) => void,
): Promise<FlowStats[]> {
  const done = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  for (const f of plan.flows) {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    done.set(f.name, { promise, resolve });
  }
  let metrics: import('../metrics/metrics.js').RunMetrics | undefined;
  const onEpoch = (e: import('./flow.js').EpochReport) => metrics?.epoch(e);
  const workers = usefulWorkers(plan.flows, opts.workers ?? 1);
  let flowDone = (_flow: string) => {};
  let runners: FlowRun[];
  if (workers > 1) {
    const pool = startWorkers(plan, workers, {
      stateDir: opts.stateDir,
      drain: opts.drain,
      log: opts.log,
      output: opts.output ?? processStdout(),
      env: opts.env ?? process.env,
      signal: stop.signal,
      onEpoch,
      abort: () => stop.abort(),
    });
    flowDone = pool.flowDone;
    runners = plan.flows.map((f) => pool.flows.get(f.name)!);
    opts.log.info(`${plan.flows.length} flows on ${workers} worker threads`);
  } else
    runners = plan.flows.map((f) => {
      const o = {
        stateDir: opts.stateDir,
        drain: opts.drain,
        signal: stop.signal,
        log: opts.log,
        output: opts.output,
        onEpoch,
        upstreamDone: Promise.all(f.upstream.map((u) => done.get(u)!.promise)).then(() => undefined),
      };
      return f.tasks.perPartition ? new TaskedFlow(plan, f, o) : new FlowRunner(plan, f, o);
    });
  for (const f of plan.flows) void done.get(f.name)!.promise.then(() => flowDone(f.name));
  let server: import('../metrics/metrics.js').MetricsServer | undefined;
  if (opts.metrics) {
    // Loaded only when asked for: prom-client costs start-up time.
    const m = await import('../metrics/metrics.js');
    metrics = new m.RunMetrics(plan.pipeline, () => runners.map((r) => r.stats));
    server = await m.serveMetrics(metrics, { ...opts.metrics, log: opts.log });
  }
  const progress = new Progress(
    runners.map((r) => r.stats),
    opts.log,
    opts.progress ?? true,
  );
  progress.start();
  let failure: unknown;
  onLost((why) => {
    failure ??= new Error(`${why}; stopping`);
    opts.log.error(`${why}; stopping this instance`);
    stop.abort();
  });
  try {
    await Promise.all(
      runners.map((r, i) =>
        r.run().then(
          () => done.get(plan.flows[i].name)!.resolve(),
          (e) => {
            failure ??= e;
            metrics?.flowFailed(plan.flows[i].name);
            opts.log.error(`flow ${plan.flows[i].name} failed: ${(e as Error).message}`);
            stop.abort();
            done.get(plan.flows[i].name)!.resolve();
          },
        ),
      ),
    );
  } finally {
    progress.stop();
    await server?.close();
  }
  if (failure) throw failure;
  return runners.map((r) => r.stats);
}
