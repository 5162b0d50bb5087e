/** @module `salespipe backfill FILE --from --to`: recompute a past range and rewrite exactly its partitions. */
import path from 'node:path';
import type { IO } from '../core/io.js';
import type { Logger } from '../core/log.js';
import { backfill } from '../backfill/backfill.js';
import { parseTimestamp } from '../core/time.js';
import { waiting } from '../connections/retry.js';
import { schemeOf } from '../storage/store.js';
import { durationArg, planOrPrint, oneSpec, stateDir, UsageError } from './common.js';

export interface BackfillFlags {
  from: string;
  to: string;
  dryRun?: boolean;
  toKafka?: boolean;
  history?: string;
  historyConnection?: string;
  stateDir?: string;
  timeout?: string;
}

export default async function backfillCommand(file: string, o: BackfillFlags, io: IO, log: Logger): Promise<number> {
  const spec = oneSpec(file);
  const timeout = durationArg(o.timeout, '--timeout');
  const plan = planOrPrint(spec, io);
  if (!plan) return 2;
  const from = parseTimestamp(o.from, plan.timeZone),
    to = parseTimestamp(o.to, plan.timeZone);
  if (typeof from === 'string') throw new UsageError(`--from: ${from}`);
  if (typeof to === 'string') throw new UsageError(`--to: ${to}`);
  if (from >= to) throw new UsageError('--from must be before --to');
  const stop = new AbortController();
  io.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  const work = backfill(plan, {
    from,
    to,
    dryRun: !!o.dryRun,
    toKafka: !!o.toKafka,
    history: o.history && (schemeOf(o.history) === 'local' ? path.resolve(o.history) : o.history),
    historyConnection: o.historyConnection,
    stateDir: stateDir(o.stateDir, spec, io.env),
    log,
    signal: stop.signal,
  });
  if (timeout === undefined) {
    await work;
    return 0;
  }
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'timeout'>((r) => {
    timer = setTimeout(() => r('timeout'), timeout);
  });
  try {
    if ((await Promise.race([work, expired])) !== 'timeout') return 0;
  } finally {
    clearTimeout(timer);
  }
  const what = [...waiting].map(([w, why]) => `${w}: ${why}`);
  log.error(
    `--timeout ${o.timeout} passed before the backfill finished${what.length ? `; still waiting for ${what.join('; ')}` : ''}; stopping (a swap already journaled is finished by the next run)`,
  );
  stop.abort();
  work.catch(() => undefined);
  return 1;
}
