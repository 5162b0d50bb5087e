/**
 * @module `salespipe run FILE`: every flow of a pipeline, until stopped, or
 * with --drain until the sources are drained (--timeout bounds a drain).
 */
import { ioStdout, type IO } from '../core/io.js';
import type { Logger } from '../core/log.js';
import { runPlan } from '../runtime/run.js';
import { waiting } from '../connections/retry.js';
import os from 'node:os';
import { durationArg, intArg, planOrPrint, oneSpec, portArg, stateDir, UsageError } from './common.js';

export interface RunFlags {
  drain?: boolean;
  stateDir?: string;
  progress: boolean;
  timeout?: string;
  metricsPort?: string;
  metricsHost?: string;
  workers?: string;
}

export default async function run(file: string, o: RunFlags, io: IO, log: Logger): Promise<number> {
  const spec = oneSpec(file);
  const timeout = durationArg(o.timeout, '--timeout');
  if (timeout !== undefined && !o.drain)
    throw new UsageError('--timeout bounds a drain: use it with --drain (a run without --drain stops on SIGINT/SIGTERM)');
  const metrics =
    o.metricsPort === undefined ? undefined : { port: portArg(o.metricsPort, '--metrics-port'), host: o.metricsHost ?? '127.0.0.1' };
  if (o.metricsHost !== undefined && !metrics) throw new UsageError('--metrics-host goes with --metrics-port');
  const workers = o.workers === undefined ? os.availableParallelism() : intArg(o.workers, '--workers');
  if (workers < 1) throw new UsageError('--workers must be at least 1');
  const plan = planOrPrint(spec, io);
  if (!plan) return 2;
  const dir = stateDir(o.stateDir, spec, io.env);
  log.info(`running ${plan.pipeline} (${plan.flows.map((f) => f.name).join(', ')})${o.drain ? ' until drained' : ''}; state in ${dir}`);
  const stop = new AbortController();
  if (io.signal?.aborted) stop.abort();
  io.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  let timedOut = false;
  const timer =
    timeout === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          const what = [...waiting].map(([w, why]) => `${w}: ${why}`);
          log.error(
            `--timeout ${o.timeout} passed before the drain finished${what.length ? `; still waiting for ${what.join('; ')}` : ''}; stopping`,
          );
          stop.abort();
        }, timeout);
  try {
    await runPlan(plan, {
      stateDir: dir,
      drain: !!o.drain,
      log,
      signal: stop.signal,
      progress: o.progress,
      output: ioStdout(io),
      metrics,
      workers,
      env: io.env,
    });
  } finally {
    clearTimeout(timer);
  }
  return timedOut ? 1 : 0;
}
