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
 */
import type { Plan } from '../plan/plan.js';
import { FlowRunner, FlowStats } from './flow.js';
import type { Logger } from './log.js';
import { Progress } from './progress.js';

export interface RunOptions {
  stateDir: string;
  drain: boolean;
  log: Logger;
  signal?: AbortSignal;
  progress?: boolean;
}

export async function runPlan(plan: Plan, opts: RunOptions): Promise<FlowStats[]> {
  const stop = new AbortController();
  opts.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  const done = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  for (const f of plan.flows) {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    done.set(f.name, { promise, resolve });
  }
  const runners = plan.flows.map(
    (f) => new FlowRunner(plan, f, {
      stateDir: opts.stateDir,
      drain: opts.drain,
      signal: stop.signal,
      log: opts.log,
      upstreamDone: Promise.all(f.upstream.map((u) => done.get(u)!.promise)).then(() => undefined),
    }),
  );
  const progress = new Progress(runners.map((r) => r.stats), opts.log, opts.progress ?? true);
  progress.start();
  let failure: unknown;
  try {
    await Promise.all(
      runners.map((r, i) =>
        r.run().then(
          () => done.get(plan.flows[i].name)!.resolve(),
          (e) => {
            failure ??= e;
            opts.log.error(`flow ${plan.flows[i].name} failed: ${(e as Error).message}`);
            stop.abort();
            done.get(plan.flows[i].name)!.resolve();
          },
        ),
      ),
    );
  } finally {
    progress.stop();
  }
  if (failure) throw failure;
  return runners.map((r) => r.stats);
}
