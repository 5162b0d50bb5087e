/**
 * @module Compaction of an append Parquet dataset: the small per-epoch files
 * of a partition merged into one, on any store, while a pipeline appends.
 *
 * Rules:
 * - Only files salespipe wrote are merged (`part-<epoch>-<owner>-<run>`,
 *   backfills' `part-0000000000`, earlier merges' `part-c-…`), read and
 *   written with the sink's schema; files older than `--older-than` (by
 *   their modification time) so that a writer's files of the last epochs
 *   stay as they are; at least two per partition. A writer never changes a
 *   published file, so merging needs no lock against it.
 * - A merge is journaled: the merged file is staged (hidden, or an
 *   uncompleted upload), then a manifest `_compacted/<merged key>.json`
 *   lists its inputs with their row counts, in the merged file's row order;
 *   then the merged file is published and the inputs deleted. A run killed
 *   anywhere is finished by the next (manifest: publish again, idempotent,
 *   delete what is left) or leaves only a staged file, discarded.
 * - Readers see each row once at every moment: salespipe's readers (the
 *   Parquet source, backfill's history, readDataset) hide the inputs of
 *   every manifest whose merged file they listed, and a streaming source
 *   that read some inputs before the merge reads only the other rows of the
 *   merged file (the manifest's row ranges). Manifests stay (small) so a
 *   source restarting from an old checkpoint still knows what it read.
 *   Readers that list the folder alone (pyarrow, DuckDB) can see a merged
 *   partition's rows twice for the moment between the merged file's
 *   publication and its inputs' deletion (a few file deletes): compact
 *   partitions no such reader is reading, e.g. closed days from cron.
 * - Idempotent: a second run with nothing new to merge changes nothing. One
 *   compaction of a dataset at a time (cron: `flock`).
 */
import crypto from 'node:crypto';
import path from 'node:path';
import type { Row, Schema } from '../../../core/types.js';
import type { Store, Staged, Entry } from '../../../storage/store.js';
import { visible } from '../../../storage/store.js';
import type { Logger } from '../../../core/log.js';

export const MANIFESTS = '_compacted';

export interface Manifest {
  /** The merged file. */
  key: string;
  /** Its inputs, in its row order, with their row counts. */
  inputs: { key: string; rows: number }[];
  staged: Staged;
  at: string;
}

/**
 * Every manifest of the dataset, by merged key. A manifest is written once
 * and never changed: with `known` (manifest file -> manifest, kept by a
 * reader that lists again and again) only new ones are read.
 */
export async function readManifests(store: Store, entries?: Entry[], known?: Map<string, Manifest>): Promise<Map<string, Manifest>> {
  const out = new Map<string, Manifest>();
  const list = entries?.filter((e) => e.key.startsWith(`${MANIFESTS}/`)) ?? (await store.list(MANIFESTS));
  for (const e of list) {
    if (!e.key.endsWith('.json') || path.posix.basename(e.key).startsWith('.')) continue;
    const had = known?.get(e.key);
    if (had) {
      out.set(had.key, had);
      continue;
    }
    try {
      const m = JSON.parse(Buffer.from(await store.read(e.key)).toString('utf8')) as Manifest;
      known?.set(e.key, m);
      out.set(m.key, m);
    } catch (err) {
      if (!/ENOENT|NoSuchKey|404|not ?found/i.test(String((err as Error).message ?? err))) throw err;
    }
  }
  return out;
}

/** The dataset's data files as a reader should take them: the inputs of every merge whose merged file is listed are left out. */
export function hideMerged(keys: string[], manifests: Map<string, Manifest>): string[] {
  if (!manifests.size) return keys;
  const listed = new Set(keys);
  const hidden = new Set<string>();
  for (const m of manifests.values()) if (listed.has(m.key)) for (const i of m.inputs) hidden.add(i.key);
  return keys.filter((k) => !hidden.has(k));
}

/**
 * The row ranges of `key` a reader has already read, given the files it read
 * whole (`done`) and the file it was partway through (`partial`): through the
 * manifests, a merged file holds its inputs' rows in order.
 */
export function readRanges(
  key: string,
  done: Set<string>,
  manifests: Map<string, Manifest>,
  partial?: { key: string; row: number },
): [number, number][] {
  const m = manifests.get(key);
  if (!m) return [];
  const out: [number, number][] = [];
  let at = 0;
  for (const i of m.inputs) {
    if (done.has(i.key)) out.push([at, at + i.rows]);
    else if (partial?.key === i.key) out.push([at, at + partial.row]);
    else for (const [a, b] of readRanges(i.key, done, manifests, partial)) out.push([at + a, at + b]);
    at += i.rows;
  }
  return out.filter(([a, b]) => b > a);
}

/** Rows in a merged file (its manifest's inputs). */
export const mergedRows = (m: Manifest) => m.inputs.reduce((n, i) => n + i.rows, 0);

const MINE = /^part-(\d{10}(-[0-9a-f]{6}-[0-9a-f]{6})?|c-[0-9a-f]{16})\.parquet$/;

export interface CompactOptions {
  store: Store;
  /** Columns in the files (the partition columns live in the folder names). */
  fileSchema: Schema;
  compression: 'zstd' | 'snappy' | 'none';
  /** Files modified before this instant (ms) are merged. */
  before: number;
  dryRun: boolean;
  log: Logger;
  read(bytes: Uint8Array, schema: Schema): Row[];
  write(schema: Schema, rows: Row[], compression: 'zstd' | 'snappy' | 'none'): Uint8Array;
}

export interface CompactSummary {
  partitions: number;
  filesBefore: number;
  filesAfter: number;
  rows: number;
}

/** Finishes what an interrupted compaction left: journaled merges completed, unjournaled staged merges discarded. */
export async function finishCompactions(store: Store, log: Logger): Promise<number> {
  const entries = await store.list();
  const manifests = await readManifests(store, entries);
  const present = new Set(entries.map((e) => e.key));
  let finished = 0;
  for (const m of manifests.values()) {
    const left = m.inputs.filter((i) => present.has(i.key));
    // Done: its inputs are gone (the merged file is there, or merged in turn since).
    if (!left.length) continue;
    log.warn(`${store.where}: finishing an interrupted compaction of ${path.posix.dirname(m.key)} (${left.length} input file(s) left)`);
    await store.publish(m.staged);
    for (const i of left) await store.remove(i.key);
    finished++;
  }
  const journaled = new Set([...manifests.values()].map((m) => m.staged.id));
  for (const s of await store.staged()) {
    if (/(^|\/)part-c-[0-9a-f]{16}\.parquet$/.test(s.key) && !journaled.has(s.id)) {
      log.warn(`${store.where}: discarding the staged merge of an interrupted compaction (${s.key})`);
      await store.discard(s);
    }
  }
  return finished;
}

export async function compact(o: CompactOptions): Promise<CompactSummary> {
  const { store, log } = o;
  if (!o.dryRun) await finishCompactions(store, log);
  const entries = await store.list();
  const manifests = await readManifests(store, entries);
  const data = entries.filter((e) => visible(e.key) && e.key.endsWith('.parquet'));
  const live = new Set(
    hideMerged(
      data.map((e) => e.key),
      manifests,
    ),
  );
  const byPart = new Map<string, Entry[]>();
  for (const e of data) {
    if (!live.has(e.key)) continue;
    const dir = path.posix.dirname(e.key);
    if (!byPart.has(dir)) byPart.set(dir, []);
    byPart.get(dir)!.push(e);
  }
  const summary: CompactSummary = { partitions: 0, filesBefore: data.length, filesAfter: data.length, rows: 0 };
  for (const [dir, files] of [...byPart].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const inputs = files
      .filter((e) => MINE.test(path.posix.basename(e.key)) && e.mtime < o.before)
      .map((e) => e.key)
      .sort();
    if (inputs.length < 2) continue;
    const part = dir === '.' ? '' : dir;
    const key = `${part ? part + '/' : ''}part-c-${crypto.createHash('sha256').update(inputs.join('\n')).digest('hex').slice(0, 16)}.parquet`;
    if (o.dryRun) {
      log.info(`would merge ${inputs.length} file(s) of ${part || '.'} into ${path.posix.basename(key)}`);
      summary.partitions++;
      summary.filesAfter -= inputs.length - 1;
      continue;
    }
    const rows: Row[] = [];
    const counts: { key: string; rows: number }[] = [];
    for (const k of inputs) {
      const got = o.read(await store.read(k), o.fileSchema);
      counts.push({ key: k, rows: got.length });
      for (const r of got) rows.push(r);
    }
    const staged = await store.stage(key, o.write(o.fileSchema, rows, o.compression), `compact-${path.posix.basename(key).slice(7, 23)}`);
    const m: Manifest = { key, inputs: counts, staged, at: new Date().toISOString() };
    await store.put(`${MANIFESTS}/${key}.json`, Buffer.from(JSON.stringify(m)));
    await store.publish(staged);
    for (const k of inputs) await store.remove(k);
    log.info(`${part || '.'}: ${inputs.length} file(s), ${rows.length} row(s) merged into ${path.posix.basename(key)}`);
    summary.partitions++;
    summary.filesAfter -= inputs.length - 1;
    summary.rows += rows.length;
  }
  return summary;
}
