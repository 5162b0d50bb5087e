/**
 * @module `salespipe backfill FILE --from T1 --to T2`: recompute a past
 * range from the relational source and rewrite exactly the Parquet
 * partitions it covers, atomically; safe under cron.
 *
 * Rules:
 * - Flows whose source reads a range of event time (the sql source's
 *   readRange) read the rows in [from, to) (the source must declare
 *   `eventTime`); flows reading a topic
 *   that another flow of the spec writes get that flow's recomputed output,
 *   in memory (runtime/bounded.ts); flows reading a topic from elsewhere
 *   read `--history`, a Parquet dataset of its records (e.g. the sales
 *   history), in event-time order. Nothing is read from or committed to
 *   Kafka, and no checkpoint of `salespipe run` is touched. The range is
 *   bounded: every window in it is final; windows reaching outside it are
 *   left out (they would be partial).
 * - Sinks of append streams that can rewrite a range (the Parquet sink's
 *   backfill: whole partitions, one deterministic file each, journaled
 *   swaps; see sinks/parquet/backfill.ts) get the recomputed rows.
 *   Partitions outside the range are untouched; a partition holding rows
 *   outside the range is refused before anything is written.
 * - Keyed outputs (running totals, balances) are not recomputed from a
 *   range, which would count only the range: they are skipped with a line
 *   saying so. So are other sinks, except that `--to-kafka` re-emits the
 *   final outputs (append streams no flow of the spec reads) to Kafka.
 * - A sink that can rewrite first finishes (or discards) what an
 *   interrupted backfill left (its recover).
 * - A lock file in the state directory keeps two backfills of one pipeline
 *   apart; the second exits 1 with a message naming the first.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Plan, FlowPlan, SinkNode } from '../plan/plan.js';
import { runBounded } from '../runtime/bounded.js';
import { flowContext } from '../runtime/flow.js';
import type { Logger } from '../core/log.js';
import { makeJsonEncoder } from '../operators/json-row.js';
import { WINDOW_START, WINDOW_END } from '../operators/steps/aggregate/index.js';
import { readDataset } from '../operators/sinks/parquet/index.js';
import type { Row } from '../core/types.js';
import type { OutputContext } from '../operators/operator.js';
import { locate, openStore, schemeOf, type Location } from '../storage/store.js';
import { formatTimestamp } from '../core/time.js';

export interface BackfillOptions {
  from: number;
  to: number;
  /** A Parquet dataset of source records (e.g. out/sales_history) for flows that read a topic no flow of the spec writes. */
  history?: string;
  /** The spec's s3/hdfs connection of an s3:// or hdfs:// history (default: its only one of that kind). */
  historyConnection?: string;
  dryRun: boolean;
  toKafka: boolean;
  stateDir: string;
  log: Logger;
  /** Aborts a re-emit waiting for Kafka (--timeout, SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

export interface BackfillSummary {
  rowsRead: number;
  partitions: number;
  datasets: number;
  skipped: number;
  seconds: number;
}

/** A backfill that must not run: nothing was written. */
export class BackfillRefused extends Error {}

export async function backfill(plan: Plan, opts: BackfillOptions): Promise<BackfillSummary> {
  const started = Date.now();
  const { log } = opts;
  const release = opts.dryRun ? () => undefined : lock(opts.stateDir, plan.pipeline, opts);
  try {
    const specDir = path.dirname(path.resolve(plan.file));
    const octx: OutputContext = {
      specDir,
      log,
      connections: plan.connections,
      connectionLabels: plan.connectionLabels,
      signal: opts.signal ?? new AbortController().signal,
    };
    if (!opts.dryRun) for (const f of plan.flows) for (const s of f.sinks) await s.def.recover?.(s.planned, octx);

    const range = `[${formatTimestamp(opts.from)}, ${formatTimestamp(opts.to)})`;
    const records: Record<string, Record<string, unknown>[]> = {};
    let rowsRead = 0;
    for (const f of plan.flows) {
      const src = f.source;
      if (src.def.readRange) {
        records[f.name] = await src.def.readRange(src.planned, { from: opts.from, to: opts.to }, flowContext(plan, f, opts));
        rowsRead += records[f.name].length;
        log.info(`${f.name}: ${records[f.name].length} row(s) of ${src.cfg.table ?? src.type} with ${src.out.eventTime} in ${range}`);
      } else if (!f.upstream.length && opts.history) {
        records[f.name] = await readHistory(plan, opts.history, f, opts, octx);
        rowsRead += records[f.name].length;
        log.info(`${f.name}: ${records[f.name].length} record(s) of ${opts.history} with ${src.out.eventTime} in ${range}`);
      } else if (!f.upstream.length) {
        log.info(
          `${f.name}: reads ${f.reads.map((t) => `topic ${t.slice(t.indexOf('|') + 1)}`).join(', ') || 'a source'}, which no flow of this spec writes: nothing to recompute it from (give --history with a Parquet dataset of its records), skipped`,
        );
      }
    }
    const outputs = await runBounded(plan, { records }, log, 5000);

    const readers = new Set(plan.flows.flatMap((f) => f.upstream));
    let partitions = 0,
      touched = 0,
      skipped = 0;
    for (const f of plan.flows) {
      const out = outputs.get(f.name)!;
      let rows = out.rows;
      if (out.stream.watermark && out.stream.schema.some((c) => c.name === WINDOW_END)) {
        const inside = rows.filter((r) => (r[WINDOW_START] as number) >= opts.from && (r[WINDOW_END] as number) <= opts.to);
        if (inside.length < rows.length)
          log.info(`${f.name}: ${rows.length - inside.length} window row(s) reaching outside ${range} left out (they would be partial)`);
        rows = inside;
      }
      for (const s of f.sinks) {
        const what = `${f.name} -> ${s.type} ${s.cfg.path ?? s.cfg.topic ?? s.cfg.table ?? ''}`.trim();
        if (s.input.mode !== 'append') {
          skipped++;
          log.info(
            `${what}: skipped: a keyed output (latest value per key) is not recomputed from a range, which would count only the range`,
          );
        } else if (s.def.backfill) {
          const n = await s.def.backfill(s.planned, {
            rows,
            range: { from: opts.from, to: opts.to },
            ...octx,
            timeZone: plan.timeZone,
            dryRun: opts.dryRun,
            flow: f.name,
          });
          partitions += n;
          if (n) touched++;
        } else if (s.def.reemits && opts.toKafka && !readers.has(f.name)) {
          if (opts.dryRun) log.info(`${what}: would re-emit ${rows.length} row(s)`);
          else await reemit(plan, f, s, rows, opts);
        } else {
          skipped++;
          log.info(
            `${what}: skipped${s.def.reemits ? (readers.has(f.name) ? ' (other flows of the spec read this topic: re-publishing it would count twice)' : ' (use --to-kafka to re-emit)') : ''}`,
          );
        }
      }
    }
    const summary = { rowsRead, partitions, datasets: touched, skipped, seconds: (Date.now() - started) / 1000 };
    log.info(
      `backfill ${plan.pipeline} ${range}${opts.dryRun ? ' (dry run: nothing written)' : ''}: ${rowsRead} row(s) read, ${partitions} partition(s) ${opts.dryRun ? 'would be ' : ''}rewritten in ${touched} dataset(s), ${skipped} output(s) skipped, ${summary.seconds.toFixed(1)} s`,
    );
    return summary;
  } finally {
    release();
  }
}

/** The lock: one file created exclusively; a lock whose process is gone is taken over. */
function lock(stateDir: string, pipeline: string, opts: BackfillOptions): () => void {
  const file = path.join(stateDir, pipeline, 'backfill.lock');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(
        fd,
        JSON.stringify({
          pid: process.pid,
          since: new Date().toISOString(),
          from: formatTimestamp(opts.from),
          to: formatTimestamp(opts.to),
        }),
      );
      fs.closeSync(fd);
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      let held: { pid?: number; since?: string } = {};
      try {
        held = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch {
        /* being written: treat as held */ held = { pid: -1 };
      }
      if (held.pid === -1 || (held.pid && alive(held.pid))) {
        throw new BackfillRefused(
          `another backfill of pipeline ${pipeline} is running${held.pid && held.pid > 0 ? ` (pid ${held.pid}, since ${held.since})` : ''}; not starting. Lock: ${file}`,
        );
      }
      opts.log.warn(`taking over the lock of a backfill that is gone (pid ${held.pid}, since ${held.since})`);
      fs.rmSync(file, { force: true });
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Records of a Parquet history in the range, as JSON objects (what the flow's Kafka source would have read). */
async function readHistory(
  plan: Plan,
  where: string,
  f: FlowPlan,
  opts: BackfillOptions,
  ctx: OutputContext,
): Promise<Record<string, unknown>[]> {
  const et = f.source.out.eventTime;
  if (!et) throw new BackfillRefused(`flow ${f.name}: a backfill reads a range of event time, so its source needs eventTime`);
  const loc = historyLocation(plan, where, opts.historyConnection);
  if (loc.kind === 'local' && !fs.existsSync(loc.dir)) throw new BackfillRefused(`--history ${where}: no such dataset`);
  const store = await openStore(loc, ctx);
  const schema = f.source.out.schema;
  const encode = makeJsonEncoder(schema);
  const out: Record<string, unknown>[] = [];
  let rows: Row[];
  try {
    rows = await readDataset(store, schema, undefined, (r) => {
      const t = r[et] as number | null;
      return t !== null && t >= opts.from && t < opts.to;
    });
  } finally {
    await store.close();
  }
  for (const r of rows) out.push(JSON.parse(encode(r)));
  // The order a replay of the topic would have: by event time, ties by the first column (an id).
  const first = schema[0].name;
  return out.sort((a, b) => Date.parse(a[et] as string) - Date.parse(b[et] as string) || (a[first] as number) - (b[first] as number));
}

/**
 * Where `--history` is: a local path (relative to the working directory), or
 * an s3:// / hdfs:// location reached through `--history-connection`, or the
 * spec's only connection of that kind, or (none) the environment (store.ts).
 */
export function historyLocation(plan: Plan, where: string, connection?: string): Location {
  const scheme = schemeOf(where);
  let conn = connection;
  if (scheme !== 'local' && conn === undefined) {
    const fit = Object.entries(plan.connections).filter(([, c]) => c.type === scheme);
    if (fit.length > 1)
      throw new BackfillRefused(
        `--history ${where}: the spec has ${fit.length} ${scheme} connections (${fit.map(([n]) => n).join(', ')}); name one with --history-connection`,
      );
    conn = fit[0]?.[0];
  }
  if (conn !== undefined && plan.connections[conn]?.type !== scheme)
    throw new BackfillRefused(
      `--history-connection ${conn}: ${plan.connections[conn] ? `a ${plan.connections[conn].type} connection, not ${scheme}` : 'no such connection in the spec'}`,
    );
  const loc = locate(where, scheme === 'local' ? undefined : conn, process.cwd());
  if (typeof loc === 'string') throw new BackfillRefused(`--history ${where}: ${loc}`);
  return loc;
}

/** `--to-kafka`: the recomputed final rows, through the flow's real Kafka sink. */
async function reemit(plan: Plan, f: FlowPlan, s: SinkNode, rows: Row[], opts: BackfillOptions) {
  const sink = s.def.create(s.planned, flowContext(plan, f, opts));
  await sink.open(undefined, 0);
  try {
    for (let i = 0; i < rows.length; i += 5000) await sink.write(rows.slice(i, i + 5000));
    await sink.commit(0, await sink.preCommit(0));
    opts.log.info(`${f.name} -> ${s.type} ${s.cfg.topic}: ${rows.length} row(s) re-emitted`);
  } finally {
    await sink.close();
  }
}
