/** @module `salespipe generate`: realistic sales inserted into a database. */
import type { IO } from '../core/io.js';
import type { Logger } from '../core/log.js';
import { generate } from '../gen/generate.js';
import { parseDuration, parseTimestamp } from '../core/time.js';
import { UsageError } from './common.js';
import { HISTORY_CUSTOMERS, insertHistory, writeHistoryParquet } from '../gen/history.js';

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
  products?: number;
}

const DAY = 86_400_000;

/** A run of generate that inserts no sales (tables and reference data only). */
const referenceOnly = (o: GenerateFlags) => ({
  url: o.db,
  count: 0,
  rate: 0,
  writers: 1,
  batch: 1,
  seed: o.seed,
  createTables: o.createTables,
});

export default async function generateCommand(o: GenerateFlags, io: IO, log: Logger): Promise<number> {
  if (o.history !== undefined) {
    const span = parseDuration(o.history);
    if (span === undefined || span < DAY || span % DAY !== 0)
      throw new UsageError(`--history: a whole number of days, e.g. 730d (got "${o.history}")`);
    // Buyers are customers 1..n; --reference-data also writes their customer_data rows.
    const people = o.referenceData === true ? HISTORY_CUSTOMERS : o.referenceData;
    if (o.products !== undefined && o.products < 70) throw new UsageError(`--products: at least the catalog's 70 (got ${o.products})`);
    const h = { seed: o.seed, days: span / DAY, end: Math.floor(Date.now() / DAY) * DAY, customers: people, products: o.products };
    // The buyers' customer_data rows (region, segment), for the recommendations' regional popularity.
    if (people) await generate({ ...referenceOnly(o), referenceData: people }, log, io.signal);
    if (o.parquet !== undefined) await writeHistoryParquet(o.parquet, h, log, io.signal);
    else await insertHistory(o.db, { ...h, batch: Math.max(o.batch, 500), createTables: o.createTables && !people }, log, io.signal);
    return 0;
  }
  if (o.parquet !== undefined) throw new UsageError('--parquet goes with --history');
  if (o.products !== undefined) throw new UsageError('--products goes with --history');
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
