/**
 * @module Backfills of a Parquet dataset: the partitions holding recomputed
 * rows are replaced, each as a whole, atomically and idempotently.
 *
 * Rules:
 * - Each partition becomes one file, `part-0000000000.parquet`, written the
 *   same way every time: a second run leaves byte-identical files.
 * - A partition that holds rows outside the range (e.g. partitioned by
 *   category, not by date) is refused before anything is written:
 *   rewriting it would drop them.
 * - Where folders rename atomically (local disk, HDFS), new partitions are
 *   written under the hidden `.backfill-<run>/`; then a journal
 *   (`_backfill.json`) lists them, and each partition folder is swapped for
 *   its new one (two renames). A run killed before the journal leaves only
 *   the hidden folder (deleted by the next run); killed after it, the next
 *   run finishes the swaps first. Readers skip `.` and `_` names.
 * - On S3 (no renames) each partition's new file is staged as a multipart
 *   upload; then the journal lists the uploads and the objects each
 *   partition held, and the swap completes each upload (the new file
 *   appears whole) and deletes the old objects. Between the two a reader
 *   listing that partition sees its old and new rows (for the time of a
 *   few DELETEs); the end state is exact, and a run killed at any point is
 *   finished by the next one from the journal. Uploads of a run killed
 *   before its journal are aborted by the next run.
 */
import path from 'node:path';
import type { BackfillRequest, OutputContext } from '../../operator.js';
import type { Row, Schema } from '../../../core/types.js';
import { formatTimestamp } from '../../../core/time.js';
import { partitionDir } from './dataset.js';
import { locationOf, type Planned } from './index.js';
import { openStore, visible, type Staged, type Store } from '../../../storage/store.js';
import { hideMerged, readManifests, type Manifest } from './compact.js';

const FILE = 'part-0000000000.parquet';
const JOURNAL = '_backfill.json';

interface Journal {
  run: string;
  partitions: string[];
  /** S3: the staged new files, and the objects to delete once they are published. */
  uploads?: Staged[];
  remove?: string[];
}

/** A backfill that must not run: nothing was written. */
export class BackfillRefused extends Error {}

/** A partition's data files, as readers take them (compact.ts: merged inputs left out). */
const dataFiles = async (store: Store, part: string, manifests: Map<string, Manifest>) =>
  hideMerged(
    (await store.list(part)).filter((e) => visible(e.key) && e.key.endsWith('.parquet')).map((e) => e.key),
    manifests,
  );

export async function rewriteRange(p: Planned, req: BackfillRequest): Promise<number> {
  const { toParquet, fromParquet } = await import('./arrow-rows.js');
  const { cfg, input } = p;
  const parts = [...(cfg.partitionBy ?? [])];
  const kinds = new Map(input.schema.map((c) => [c.name, c.type.kind]));
  const fileSchema: Schema = input.schema.filter((c) => !parts.includes(c.name));
  const byPart = new Map<string, Row[]>();
  for (const r of req.rows) {
    const d = partitionDir(parts, kinds, r, req.timeZone);
    if (!byPart.has(d)) byPart.set(d, []);
    byPart.get(d)!.push(r);
  }
  if (!byPart.size) return 0;
  const loc = locationOf(p, req.specDir);
  const store = await openStore(loc, req);
  try {
    // Refuse before writing anything if a partition holds rows outside the range.
    const et = input.eventTime;
    const shown = loc.kind === 'local' ? path.relative(process.cwd(), loc.dir) : cfg.path.replace(/\/+$/, '');
    const rel = (x: string) =>
      loc.kind === 'local' ? path.join(shown.startsWith('..') ? loc.dir : shown || '.', x || '.') : `${shown}/${x}`;
    const old = new Map<string, string[]>();
    const manifests = await readManifests(store);
    for (const part of byPart.keys()) {
      const existing = await dataFiles(store, part, manifests);
      old.set(part, existing);
      let n = 0;
      for (const file of existing) {
        const got = fromParquet(await store.read(file), fileSchema);
        n += got.length;
        if (et && fileSchema.some((c) => c.name === et)) {
          const out = got.find((r) => (r[et] as number) < req.range.from || (r[et] as number) >= req.range.to);
          if (out)
            throw new BackfillRefused(
              `${rel(part)} holds a row with ${et} ${formatTimestamp(out[et] as number)}, outside the range: rewriting the partition would drop it (partition by a date of the event time, or widen the range)`,
            );
        }
      }
      req.log.info(
        `${req.flow}: ${req.dryRun ? 'would rewrite' : 'rewriting'} ${rel(part)} (${n} row(s) in ${existing.length} file(s) -> ${byPart.get(part)!.length} row(s))`,
      );
    }
    if (req.dryRun) return byPart.size;

    const run = `${Date.now().toString(36)}${process.pid.toString(36)}`;
    const j: Journal = { run, partitions: [...byPart.keys()] };
    if (store.atomicDirRename) {
      for (const [part, rows] of byPart)
        await store.put(`.backfill-${run}/new/${part}/${FILE}`, toParquet(fileSchema, rows, cfg.compression));
    } else {
      j.uploads = [];
      for (const [part, rows] of byPart)
        j.uploads.push(await store.stage(`${part}/${FILE}`, toParquet(fileSchema, rows, cfg.compression), `backfill-${run}`));
      j.remove = [...old.values()].flat().filter((k) => !k.endsWith(`/${FILE}`) && k !== FILE);
    }
    // From here on the next run finishes what this one started.
    await store.put(JOURNAL, Buffer.from(JSON.stringify(j)));
    await swap(store, j);
    return byPart.size;
  } finally {
    await store.close();
  }
}

/** Puts every journaled partition in place (idempotent), then removes the staging area and the journal. */
async function swap(store: Store, j: Journal) {
  if (j.uploads) {
    for (const u of j.uploads) await store.publish(u);
    for (const k of j.remove ?? []) await store.remove(k);
  } else {
    const stage = `.backfill-${j.run}`;
    for (const part of j.partitions) {
      const fresh = `${stage}/new/${part}`;
      if (!(await store.exists(`${fresh}/${FILE}`))) continue; // already swapped
      if ((await store.list(part)).length) await store.renameDir(part, `${stage}/old/${part}`);
      await store.renameDir(fresh, part);
    }
    await store.removeDir(stage);
  }
  await store.remove(JOURNAL);
}

/** Finishes a journaled backfill that was killed; drops the staging of one killed before its journal. */
export async function recoverBackfill(p: Planned, ctx: OutputContext): Promise<void> {
  const loc = locationOf(p, ctx.specDir);
  const store = await openStore(loc, ctx);
  try {
    const all = await store.list();
    if (!all.length) return;
    let journal: Journal | undefined;
    if (all.some((e) => e.key === JOURNAL)) {
      journal = JSON.parse(Buffer.from(await store.read(JOURNAL)).toString('utf8')) as Journal;
      ctx.log.warn(`${store.where}: finishing an interrupted backfill (${journal.partitions.length} partition(s))`);
      await swap(store, journal);
    }
    const stagings = new Set(all.map((e) => e.key.split('/')[0]).filter((k) => k.startsWith('.backfill-')));
    for (const d of stagings) {
      ctx.log.warn(`${store.where}: removing the staging of an interrupted backfill (${d})`);
      await store.removeDir(d);
    }
    if (!store.atomicDirRename) {
      for (const s of await store.staged()) {
        if (s.key.endsWith(FILE) && !journal?.uploads?.some((u) => u.id === s.id)) {
          ctx.log.warn(`${store.where}: aborting the upload of an interrupted backfill (${s.key})`);
          await store.discard(s);
        }
      }
    }
  } finally {
    await store.close();
  }
}
