/**
 * @module `salespipe backfill FILE --from T1 --to T2`: recompute a past
 * range from the relational source and rewrite exactly the Parquet
 * partitions it covers, atomically; safe under cron.
 *
 * Rules:
 * - Flows with a `sql` source read the rows whose event time is in
 *   [from, to) (the source must declare `eventTime`); flows reading a topic
 *   that another flow of the spec writes get that flow's recomputed output,
 *   in memory (runtime/bounded.ts); flows reading a topic from elsewhere
 *   read `--history`, a Parquet dataset of its records (e.g. the sales
 *   history), in event-time order. Nothing is read from or committed to
 *   Kafka, and no checkpoint of `salespipe run` is touched. The range is
 *   bounded: every window in it is final; windows reaching outside it are
 *   left out (they would be partial).
 * - Parquet sinks of append streams (history, final windows): the rows are
 *   grouped by partition, and each partition holding recomputed rows is
 *   replaced as a whole by one file, `part-0000000000.parquet`, written the
 *   same way every time: a second run leaves byte-identical files.
 *   Partitions outside the range are untouched. A partition that holds
 *   rows outside the range (e.g. partitioned by category, not by date) is
 *   refused before anything is written: rewriting it would drop them.
 * - Keyed outputs (running totals, balances) are not recomputed from a
 *   range, which would count only the range: they are skipped with a line
 *   saying so. So are other sinks, except that `--to-kafka` re-emits the
 *   final outputs (append streams no flow of the spec reads) to Kafka.
 * - Atomicity: new partitions are written under the dataset's hidden
 *   `.backfill-<run>/` directory; then a journal (`_backfill.json`) lists
 *   them, and each partition directory is swapped for its new one (two
 *   renames). A run killed before the journal leaves only the hidden
 *   directory (deleted by the next run); killed after it, the next run
 *   finishes the swaps first. Readers skip `.` and `_` names.
 * - A lock file in the state directory keeps two backfills of one pipeline
 *   apart; the second exits 1 with a message naming the first.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Plan, FlowPlan, SinkNode } from './plan/plan.js';
import type { RunContext } from './operators/operator.js';
import { runBounded } from './runtime/bounded.js';
import type { Logger } from './runtime/log.js';
import { redact } from './runtime/log.js';
import { openKnex, connection } from './operators/connections.js';
import { partitionDir, walk, fsyncDir } from './operators/sink_parquet.js';
import { toParquet, fromParquet } from './operators/arrow-rows.js';
import { makeJsonEncoder } from './operators/json-row.js';
import { WINDOW_START, WINDOW_END } from './operators/step_aggregate.js';
import { Row, Schema } from './types.js';
import { formatTimestamp, naiveTimestamp } from './time.js';

export interface BackfillOptions {
  from: number;
  to: number;
  /** A Parquet dataset of source records (e.g. out/sales_history) for flows that read a topic no flow of the spec writes. */
  history?: string;
  dryRun: boolean;
  toKafka: boolean;
  stateDir: string;
  log: Logger;
  /** Aborts a re-emit waiting for Kafka (--timeout, SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

export interface BackfillSummary { rowsRead: number; partitions: number; datasets: number; skipped: number; seconds: number }

export class BackfillRefused extends Error {}

const FILE = 'part-0000000000.parquet';
const JOURNAL = '_backfill.json';

interface Journal { run: string; partitions: string[] }

export async function backfill(plan: Plan, opts: BackfillOptions): Promise<BackfillSummary> {
  const started = Date.now();
  const { log } = opts;
  const release = opts.dryRun ? () => undefined : lock(opts.stateDir, plan.pipeline, opts);
  try {
    const specDir = path.dirname(path.resolve(plan.file));
    const datasets = plan.flows.flatMap((f) => f.sinks.filter((s) => s.type === 'parquet').map((s) => path.resolve(specDir, String(s.cfg.path))));
    if (!opts.dryRun) for (const d of datasets) recover(d, log);

    const range = `[${formatTimestamp(opts.from)}, ${formatTimestamp(opts.to)})`;
    const records: Record<string, Record<string, unknown>[]> = {};
    let rowsRead = 0;
    for (const f of plan.flows) {
      if (f.source.type === 'sql') {
        records[f.name] = await readRange(plan, f, opts, specDir);
        rowsRead += records[f.name].length;
        log.info(`${f.name}: ${records[f.name].length} row(s) of ${f.source.cfg.table} with ${f.source.cfg.eventTime} in ${range}`);
      } else if (!f.upstream.length && opts.history) {
        records[f.name] = readHistory(opts.history, f, opts);
        rowsRead += records[f.name].length;
        log.info(`${f.name}: ${records[f.name].length} record(s) of ${opts.history} with ${f.source.out.eventTime} in ${range}`);
      } else if (!f.upstream.length) {
        log.info(`${f.name}: reads topic ${f.source.cfg.topic}, which no flow of this spec writes: nothing to recompute it from (give --history with a Parquet dataset of its records), skipped`);
      }
    }
    const outputs = await runBounded(plan, { records }, log, 5000);

    const readers = new Set(plan.flows.flatMap((f) => f.upstream));
    let partitions = 0, touched = 0, skipped = 0;
    for (const f of plan.flows) {
      const out = outputs.get(f.name)!;
      let rows = out.rows;
      if (out.stream.watermark && out.stream.schema.some((c) => c.name === WINDOW_END)) {
        const inside = rows.filter((r) => (r[WINDOW_START] as number) >= opts.from && (r[WINDOW_END] as number) <= opts.to);
        if (inside.length < rows.length) log.info(`${f.name}: ${rows.length - inside.length} window row(s) reaching outside ${range} left out (they would be partial)`);
        rows = inside;
      }
      for (const s of f.sinks) {
        const what = `${f.name} -> ${s.type} ${s.cfg.path ?? s.cfg.topic ?? s.cfg.table ?? ''}`.trim();
        if (s.input.mode !== 'append') {
          skipped++;
          log.info(`${what}: skipped: a keyed output (latest value per key) is not recomputed from a range, which would count only the range`);
        } else if (s.type === 'parquet') {
          const n = rewriteDataset(s, rows, specDir, plan.timeZone, opts, f);
          partitions += n;
          if (n) touched++;
        } else if (s.type === 'kafka' && opts.toKafka && !readers.has(f.name)) {
          if (opts.dryRun) log.info(`${what}: would re-emit ${rows.length} row(s)`);
          else await reemit(plan, f, s, rows, opts);
        } else {
          skipped++;
          log.info(`${what}: skipped${s.type === 'kafka' ? (readers.has(f.name) ? ' (other flows of the spec read this topic: re-publishing it would count twice)' : ' (use --to-kafka to re-emit)') : ''}`);
        }
      }
    }
    const summary = { rowsRead, partitions, datasets: touched, skipped, seconds: (Date.now() - started) / 1000 };
    log.info(`backfill ${plan.pipeline} ${range}${opts.dryRun ? ' (dry run: nothing written)' : ''}: ${rowsRead} row(s) read, ${partitions} partition(s) ${opts.dryRun ? 'would be ' : ''}rewritten in ${touched} dataset(s), ${skipped} output(s) skipped, ${summary.seconds.toFixed(1)} s`);
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
      fs.writeSync(fd, JSON.stringify({ pid: process.pid, since: new Date().toISOString(), from: formatTimestamp(opts.from), to: formatTimestamp(opts.to) }));
      fs.closeSync(fd);
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      let held: { pid?: number; since?: string } = {};
      try { held = JSON.parse(fs.readFileSync(file, 'utf8')); } catch { /* being written: treat as held */ held = { pid: -1 }; }
      if (held.pid === -1 || (held.pid && alive(held.pid))) {
        throw new BackfillRefused(`another backfill of pipeline ${pipeline} is running${held.pid && held.pid > 0 ? ` (pid ${held.pid}, since ${held.since})` : ''}; not starting. Lock: ${file}`);
      }
      opts.log.warn(`taking over the lock of a backfill that is gone (pid ${held.pid}, since ${held.since})`);
      fs.rmSync(file, { force: true });
    }
  }
}

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

async function readRange(plan: Plan, f: FlowPlan, opts: BackfillOptions, specDir: string): Promise<Record<string, unknown>[]> {
  const cfg = f.source.cfg as { connection: string; table: string; cursor: string; eventTime?: string };
  if (!cfg.eventTime) throw new BackfillRefused(`flow ${f.name}: a backfill reads a range of event time, so its sql source needs eventTime`);
  const url = connection({ connections: plan.connections } as RunContext, cfg.connection).url!;
  const { db } = await openKnex(url, specDir, 1);
  try {
    return await db(cfg.table).select(f.source.out.schema.map((c) => c.name))
      .where(cfg.eventTime, '>=', naiveTimestamp(opts.from, plan.timeZone)).andWhere(cfg.eventTime, '<', naiveTimestamp(opts.to, plan.timeZone))
      .orderBy(cfg.cursor);
  } catch (e) {
    throw new Error(`reading ${cfg.table} at ${redact(url)}: ${(e as Error).message}`);
  } finally {
    await db.destroy();
  }
}

/** Records of a Parquet history in the range, as JSON objects (what the flow's Kafka source would have read). */
function readHistory(dir: string, f: FlowPlan, opts: BackfillOptions): Record<string, unknown>[] {
  const et = f.source.out.eventTime;
  if (!et) throw new BackfillRefused(`flow ${f.name}: a backfill reads a range of event time, so its source needs eventTime`);
  if (!fs.existsSync(dir)) throw new BackfillRefused(`--history ${dir}: no such dataset`);
  const schema = f.source.out.schema;
  const encode = makeJsonEncoder(schema);
  const out: Record<string, unknown>[] = [];
  for (const file of [...walk(dir)].filter((x) => x.endsWith('.parquet')).sort()) {
    for (const r of fromParquet(fs.readFileSync(file), schema)) {
      const t = r[et] as number | null;
      if (t !== null && t >= opts.from && t < opts.to) out.push(JSON.parse(encode(r)));
    }
  }
  // The order a replay of the topic would have: by event time, ties by the first column (an id).
  const first = schema[0].name;
  return out.sort((a, b) => Date.parse(a[et] as string) - Date.parse(b[et] as string) || (a[first] as number) - (b[first] as number));
}

/** Rewrites the partitions of one dataset that hold recomputed rows; returns how many. */
function rewriteDataset(s: SinkNode, rows: Row[], specDir: string, zone: string, opts: BackfillOptions, f: FlowPlan): number {
  const dir = path.resolve(specDir, String(s.cfg.path));
  const parts: string[] = (s.cfg.partitionBy as string[] | undefined) ?? [];
  const kinds = new Map(s.input.schema.map((c) => [c.name, c.type.kind]));
  const fileSchema: Schema = s.input.schema.filter((c) => !parts.includes(c.name));
  const byPart = new Map<string, Row[]>();
  for (const r of rows) {
    const d = partitionDir(parts, kinds, r, zone);
    if (!byPart.has(d)) byPart.set(d, []);
    byPart.get(d)!.push(r);
  }
  if (!byPart.size) return 0;
  // Refuse before writing anything if a partition holds rows outside the range.
  const et = s.input.eventTime;
  const shown = path.relative(process.cwd(), dir);
  const rel = (p: string) => path.join(shown.startsWith('..') ? dir : shown || '.', p || '.');
  for (const p of byPart.keys()) {
    const existing = [...walk(path.join(dir, p))].filter((x) => x.endsWith('.parquet'));
    let old = 0;
    for (const file of existing) {
      const got = fromParquet(fs.readFileSync(file), fileSchema);
      old += got.length;
      if (et && fileSchema.some((c) => c.name === et)) {
        const out = got.find((r) => (r[et] as number) < opts.from || (r[et] as number) >= opts.to);
        if (out) throw new BackfillRefused(`${rel(p)} holds a row with ${et} ${formatTimestamp(out[et] as number)}, outside the range: rewriting the partition would drop it (partition by a date of the event time, or widen the range)`);
      }
    }
    opts.log.info(`${f.name}: ${opts.dryRun ? 'would rewrite' : 'rewriting'} ${rel(p)} (${old} row(s) in ${existing.length} file(s) -> ${byPart.get(p)!.length} row(s))`);
  }
  if (opts.dryRun) return byPart.size;

  const run = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  const stage = path.join(dir, `.backfill-${run}`);
  for (const [p, prow] of byPart) {
    const target = path.join(stage, 'new', p);
    fs.mkdirSync(target, { recursive: true });
    const fd = fs.openSync(path.join(target, FILE), 'w');
    try {
      fs.writeSync(fd, toParquet(fileSchema, prow, s.cfg.compression as 'zstd' | undefined));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  // From here on the next run finishes what this one started.
  writeJournal(dir, { run, partitions: [...byPart.keys()] });
  swap(dir, { run, partitions: [...byPart.keys()] });
  return byPart.size;
}

function writeJournal(dir: string, j: Journal) {
  const tmp = path.join(dir, `${JOURNAL}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(j));
  const fd = fs.openSync(tmp, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, path.join(dir, JOURNAL));
  fsyncDir(dir);
}

/** Puts every journaled partition in place (idempotent), then removes the staging area and the journal. */
function swap(dir: string, j: Journal) {
  const stage = path.join(dir, `.backfill-${j.run}`);
  for (const p of j.partitions) {
    const fresh = path.join(stage, 'new', p);
    if (!fs.existsSync(fresh)) continue; // already swapped
    const live = path.join(dir, p);
    if (fs.existsSync(live)) {
      const old = path.join(stage, 'old', p);
      fs.mkdirSync(path.dirname(old), { recursive: true });
      fs.renameSync(live, old);
    }
    fs.mkdirSync(path.dirname(live), { recursive: true });
    fs.renameSync(fresh, live);
    fsyncDir(path.dirname(live));
  }
  fs.rmSync(path.join(dir, JOURNAL), { force: true });
  fs.rmSync(stage, { recursive: true, force: true });
  fsyncDir(dir);
}

/** Finishes a journaled backfill that was killed; drops the staging of one killed before its journal. */
function recover(dir: string, log: Logger) {
  if (!fs.existsSync(dir)) return;
  const jf = path.join(dir, JOURNAL);
  if (fs.existsSync(jf)) {
    const j = JSON.parse(fs.readFileSync(jf, 'utf8')) as Journal;
    log.warn(`${dir}: finishing an interrupted backfill (${j.partitions.length} partition(s))`);
    swap(dir, j);
  }
  for (const e of fs.readdirSync(dir)) {
    if (e.startsWith('.backfill-')) {
      log.warn(`${dir}: removing the staging of an interrupted backfill (${e})`);
      fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    }
  }
}

/** `--to-kafka`: the recomputed final rows, through the flow's real Kafka sink. */
async function reemit(plan: Plan, f: FlowPlan, s: SinkNode, rows: Row[], opts: BackfillOptions) {
  const ctx: RunContext = {
    pipeline: plan.pipeline, flow: f.name, stateDir: opts.stateDir, specDir: path.dirname(path.resolve(plan.file)), timeZone: plan.timeZone,
    drain: true, log: opts.log.child(f.name), signal: opts.signal ?? new AbortController().signal, connections: plan.connections, connectionLabels: plan.connectionLabels, upstreamDone: Promise.resolve(),
  };
  const sink = s.def.create(s.cfg, s.input, ctx);
  await sink.open(undefined, 0);
  try {
    for (let i = 0; i < rows.length; i += 5000) await sink.write(rows.slice(i, i + 5000));
    await sink.commit(0, await sink.preCommit(0));
    opts.log.info(`${f.name} -> kafka ${s.cfg.topic}: ${rows.length} row(s) re-emitted`);
  } finally {
    await sink.close();
  }
}
