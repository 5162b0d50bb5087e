/** @module `salespipe generate`: realistic sales inserted into a database. */
import type { IO } from '../core/io.js';
import type { Logger } from '../core/log.js';
import { generate } from '../gen/generate.js';
import { parseDuration, parseTimestamp } from '../core/time.js';
import { UsageError } from './common.js';

export interface GenerateFlags {
  db: string;
  count: number;
  rate: number;
  writers: number;
  batch: number;
  seed: number;
  from?: string;
  to?: string;
  ordered?: boolean;
  rollback: number;
  createTables?: boolean;
  workedExample?: boolean;
  referenceData?: number | true;
  restockEvery?: string;
  history?: string;
  parquet?: string;
}

const DAY = 86_400_000;

export default async function generateCommand(o: GenerateFlags, io: IO, log: Logger): Promise<number> {
  if (o.history !== undefined) {
    const span = parseDuration(o.history);
    if (span === undefined || span < DAY || span % DAY !== 0)
      throw new UsageError(`--history: a whole number of days, e.g. 730d (got "${o.history}")`);
    const h = { seed: o.seed, days: span / DAY, end: Math.floor(Date.now() / DAY) * DAY };
    const { writeHistoryParquet, insertHistory } = await import('../gen/history.js');
    if (o.parquet !== undefined) await writeHistoryParquet(o.parquet, h, log);
    else await insertHistory(o.db, { ...h, batch: Math.max(o.batch, 500), createTables: o.createTables }, log, io.signal);
    return 0;
  }
  if (o.parquet !== undefined) throw new UsageError('--parquet goes with --history');
  const restockEvery = o.restockEvery === undefined ? undefined : parseDuration(o.restockEvery);
  if (restockEvery === undefined && o.restockEvery !== undefined)
    throw new UsageError(`--restock-every: invalid duration "${o.restockEvery}"`);
  const from = o.from !== undefined ? parseTimestamp(o.from) : undefined;
  const to = o.to !== undefined ? parseTimestamp(o.to) : undefined;
  if (typeof from === 'string' || typeof to === 'string') throw new UsageError(`--from/--to: ${from ?? to}`);
  if ((from === undefined) !== (to === undefined)) throw new UsageError('--from and --to go together');
  if (o.ordered && from === undefined) throw new UsageError('--ordered needs --from and --to');
  await generate(
    {
      url: o.db,
      count: o.count,
      rate: o.rate,
      writers: o.writers,
      batch: o.batch,
      seed: o.seed,
      from,
      to,
      ordered: o.ordered,
      rollback: o.rollback,
      createTables: o.createTables,
      workedExample: o.workedExample,
      referenceData: o.referenceData === true ? 500 : o.referenceData,
      restockEvery,
    },
    log,
    io.signal,
  );
  return 0;
}
