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
 * - New partitions are written under the hidden `.backfill-<run>/`; then a
 *   journal (`_backfill.json`) lists them, and each partition directory is
 *   swapped for its new one (two renames; a directory rename is atomic on a
 *   local filesystem). A run killed before the journal leaves only the
 *   hidden directory (deleted by the next run); killed after it, the next
 *   run finishes the swaps first. Readers skip `.` and `_` names.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BackfillRequest } from '../../operator.js';
import type { Logger } from '../../../core/log.js';
import type { Row, Schema } from '../../../core/types.js';
import { formatTimestamp } from '../../../core/time.js';
import { partitionDir, walk } from './dataset.js';
import { fsyncDir } from '../../output-owner.js';
import type { Planned } from './index.js';

const FILE = 'part-0000000000.parquet';
const JOURNAL = '_backfill.json';

interface Journal {
  run: string;
  partitions: string[];
}

/** A backfill that must not run: nothing was written. */
export class BackfillRefused extends Error {}

export async function rewriteRange(p: Planned, req: BackfillRequest): Promise<number> {
  const { toParquet, fromParquet } = await import('./arrow-rows.js');
  const { cfg, input } = p;
  const dir = path.resolve(req.specDir, cfg.path);
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
  // Refuse before writing anything if a partition holds rows outside the range.
  const et = input.eventTime;
  const shown = path.relative(process.cwd(), dir);
  const rel = (x: string) => path.join(shown.startsWith('..') ? dir : shown || '.', x || '.');
  for (const part of byPart.keys()) {
    const existing = [...walk(path.join(dir, part))].filter((x) => x.endsWith('.parquet'));
    let old = 0;
    for (const file of existing) {
      const got = fromParquet(fs.readFileSync(file), fileSchema);
      old += got.length;
      if (et && fileSchema.some((c) => c.name === et)) {
        const out = got.find((r) => (r[et] as number) < req.range.from || (r[et] as number) >= req.range.to);
        if (out)
          throw new BackfillRefused(
            `${rel(part)} holds a row with ${et} ${formatTimestamp(out[et] as number)}, outside the range: rewriting the partition would drop it (partition by a date of the event time, or widen the range)`,
          );
      }
    }
    req.log.info(
      `${req.flow}: ${req.dryRun ? 'would rewrite' : 'rewriting'} ${rel(part)} (${old} row(s) in ${existing.length} file(s) -> ${byPart.get(part)!.length} row(s))`,
    );
  }
  if (req.dryRun) return byPart.size;

  const run = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  const stage = path.join(dir, `.backfill-${run}`);
  for (const [part, rows] of byPart) {
    const target = path.join(stage, 'new', part);
    fs.mkdirSync(target, { recursive: true });
    const fd = fs.openSync(path.join(target, FILE), 'w');
    try {
      fs.writeSync(fd, toParquet(fileSchema, rows, cfg.compression));
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
  for (const part of j.partitions) {
    const fresh = path.join(stage, 'new', part);
    if (!fs.existsSync(fresh)) continue; // already swapped
    const live = path.join(dir, part);
    if (fs.existsSync(live)) {
      const old = path.join(stage, 'old', part);
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
export function recoverBackfill(p: Planned, specDir: string, log: Logger): void {
  const dir = path.resolve(specDir, p.cfg.path);
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
