/**
 * @module `type: parquet` sink: Hive-partitioned Parquet datasets on local disk.
 *
 * Rules:
 * - Files are written under a hidden staging name (`.<name>.staged`, which
 *   Parquet readers skip) in preCommit and renamed into place in commit,
 *   after the checkpoint that lists them is durable. Reopening finishes the
 *   renames the last checkpoint lists and deletes any other staged file, so
 *   a crash never leaves a partial or duplicate file visible.
 * - Append streams: each epoch writes one new file per touched partition,
 *   `part-<epoch>-<owner>-<run>.parquet` (owner: a tag of pipeline and
 *   flow; run: random per run), so no run ever overwrites a file another
 *   wrote; an epoch ends early once `rollRows` rows wait, and at the
 *   checkpoint interval otherwise (files roll by size or time).
 * - The dataset records per writing flow the last epoch it published
 *   (`_salespipe/`, output-owner.ts): a flow that opens without the
 *   checkpoint of that epoch refuses instead of writing its data twice.
 * - Keyed streams (update/complete, e.g. running totals): the dataset holds
 *   the latest row per key, never a history of updates. Each touched
 *   partition's single `data.parquet` is rewritten and atomically replaced.
 *   `partitionBy` must then be key columns, so a key never moves. A keyed
 *   dataset has one writing flow.
 * - Partition columns live in the directory names (`brand=Dell/`), not in
 *   the files, as Hive, DuckDB and pyarrow expect.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SinkDef, Sink, StreamInfo, RunContext } from './operator.js';
import { fieldOf, Row, Schema } from '../types.js';
import { toParquet, fromParquet } from './arrow-rows.js';
import { makeKeyEncoder } from './json-row.js';
import { dateIn } from '../time.js';
import { OutputMarkers, fsCall, ownerTag } from './output-owner.js';
import crypto from 'node:crypto';

interface Config {
  type: 'parquet';
  path: string;
  partitionBy?: string[];
  compression?: 'zstd' | 'snappy' | 'none';
  rollRows?: number;
}

interface Staged { staged: string; final: string }

const NULL_PART = '__HIVE_DEFAULT_PARTITION__';

export const parquetSink: SinkDef<Config> = {
  type: 'parquet',
  doc: 'Writes a Hive-partitioned Parquet dataset (zstd), atomically: appended files for append streams, the latest row per key for keyed streams.',
  config: {
    type: 'object',
    additionalProperties: false,
    required: ['type', 'path'],
    properties: {
      type: { const: 'parquet' },
      path: { type: 'string', minLength: 1, description: 'Dataset directory (relative to the spec file).' },
      partitionBy: { type: 'array', items: { type: 'string' }, uniqueItems: true, description: 'Columns forming Hive-style partition directories, e.g. [sale_date].' },
      compression: { enum: ['zstd', 'snappy', 'none'], description: 'Column compression (default zstd).' },
      rollRows: { type: 'integer', minimum: 1, description: 'Append streams: end the epoch and write files once this many rows wait (default 500000).' },
    },
  },
  plan(cfg, input, ctx) {
    for (const [i, c] of (cfg.partitionBy ?? []).entries()) {
      const f = fieldOf(input.schema, c);
      if (!f) ctx.error(['partitionBy', i], `unknown column "${c}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown');
      else if (f.type.kind === 'float') ctx.error(['partitionBy', i], `cannot partition by float column "${c}"`, 'type.mismatch');
      else if (input.mode !== 'append' && !input.key?.includes(c)) {
        ctx.error(['partitionBy', i], `a keyed (${input.mode}) stream can be partitioned only by its key columns (${input.key?.join(', ')}), so a row never moves between files`, 'mode.invalid');
      }
    }
    if (cfg.rollRows !== undefined && input.mode !== 'append') ctx.warn(['rollRows'], 'rollRows applies to append streams only', 'option.unused');
  },
  create(cfg, input, ctx) {
    return new ParquetSink(cfg, input, ctx);
  },
};

/** A row's partition directory, e.g. `product_category=Laptop` (relative to the dataset). */
export function partitionDir(parts: string[], kinds: Map<string, string>, r: Row, zone: string): string {
  return parts.map((c) => `${c}=${partValue(r[c], kinds.get(c)!, zone)}`).join('/');
}

function partValue(v: Row[string], kind: string, zone: string): string {
  if (v === null || v === undefined) return NULL_PART;
  const s = kind === 'timestamp' ? dateIn(v as number, zone) : String(v);
  return s.replace(/[\\/=:*?"<>|%\u0000-\u001f]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
}

function unPartValue(s: string): string | null {
  return s === NULL_PART ? null : s.replace(/%([0-9A-F]{2})/g, (_m, h) => String.fromCharCode(parseInt(h, 16)));
}

class ParquetSink implements Sink {
  private dir: string;
  private parts: string[];
  private fileSchema: Schema;
  private keyed: boolean;
  private buffer = new Map<string, Row[]>(); // partition dir -> rows (append)
  private table = new Map<string, Row>(); // key -> latest row (keyed)
  private touched = new Set<string>();
  private waiting = 0;
  private rollRows: number;
  private key;
  private kinds: Map<string, string>;
  private markers: OutputMarkers;
  private tag: string;
  /** Random per run: file names never repeat across runs. */
  private run = crypto.randomBytes(3).toString('hex');
  private what: string;

  constructor(private cfg: Config, input: StreamInfo, private ctx: RunContext) {
    this.dir = path.resolve(ctx.specDir, cfg.path);
    this.parts = cfg.partitionBy ?? [];
    this.fileSchema = input.schema.filter((f) => !this.parts.includes(f.name));
    this.keyed = input.mode !== 'append';
    this.rollRows = cfg.rollRows ?? 500_000;
    this.key = makeKeyEncoder(input.key ?? []);
    this.kinds = new Map(input.schema.map((f) => [f.name, f.type.kind]));
    this.what = `parquet sink ${cfg.path}`;
    this.markers = new OutputMarkers(path.join(this.dir, '_salespipe'), { pipeline: ctx.pipeline, flow: ctx.flow }, `dataset ${this.dir}`);
    this.tag = ownerTag({ pipeline: ctx.pipeline, flow: ctx.flow });
  }

  private isMine(staged: string): boolean {
    return this.keyed || path.basename(staged).includes(`-${this.tag}-`);
  }

  private partDir(r: Row): string {
    return partitionDir(this.parts, this.kinds, r, this.ctx.timeZone);
  }

  async open(state: unknown, epoch: number) {
    fsCall(this.what, this.dir, () => fs.mkdirSync(this.dir, { recursive: true }));
    const published = (state as Staged[] | undefined) ?? [];
    for (const s of published) {
      // The checkpoint names these files: finish publishing them (idempotent).
      if (fs.existsSync(s.staged)) fsCall(this.what, s.final, () => fs.renameSync(s.staged, s.final));
    }
    if (published.length) this.markers.write(epoch);
    this.markers.check(epoch, this.ctx.checkpointWhere ?? 'the state directory', this.keyed);
    const files = [...walk(this.dir)];
    for (const f of files) {
      if (path.basename(f).startsWith('.') && f.endsWith('.staged') && this.isMine(f)) fs.rmSync(f, { force: true });
    }
    if (this.keyed) this.load(files.filter((f) => path.basename(f) === 'data.parquet'));
  }

  /** Keyed datasets are their own state: read the latest rows back. */
  private load(files: string[]) {
    for (const f of files) {
      const rel = path.relative(this.dir, path.dirname(f));
      const partVals: Record<string, string | null> = {};
      for (const seg of rel ? rel.split(path.sep) : []) {
        const i = seg.indexOf('=');
        partVals[seg.slice(0, i)] = unPartValue(seg.slice(i + 1));
      }
      for (const r of fromParquet(fs.readFileSync(f), this.fileSchema)) {
        for (const c of this.parts) {
          const v = partVals[c];
          const kind = this.kinds.get(c);
          r[c] = v === null || v === undefined ? null : kind === 'int' || kind === 'decimal' ? Number(v) : kind === 'bool' ? v === 'true' : v;
        }
        this.table.set(this.key(r), r);
      }
    }
    this.ctx.log.debug(`parquet ${this.cfg.path}: ${this.table.size} keyed row(s) loaded`);
  }

  async write(rows: Row[]) {
    for (const r of rows) {
      const d = this.partDir(r);
      if (this.keyed) {
        this.table.set(this.key(r), r);
        this.touched.add(d);
      } else {
        let b = this.buffer.get(d);
        if (!b) this.buffer.set(d, (b = []));
        b.push(r);
        this.waiting++;
      }
    }
  }

  full() {
    return this.waiting >= this.rollRows;
  }

  async preCommit(epoch: number): Promise<Staged[]> {
    const staged: Staged[] = [];
    const stage = (partDir: string, name: string, rows: Row[]) => {
      const dir = path.join(this.dir, partDir);
      const final = path.join(dir, name);
      const tmp = path.join(dir, `.${name}.${epoch}.staged`);
      fsCall(this.what, tmp, () => {
        fs.mkdirSync(dir, { recursive: true });
        const fd = fs.openSync(tmp, 'w');
        try {
          fs.writeSync(fd, toParquet(this.fileSchema, rows, this.cfg.compression));
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
      });
      staged.push({ staged: tmp, final });
    };
    if (this.keyed) {
      if (this.touched.size) {
        const byPart = new Map<string, Row[]>();
        for (const d of this.touched) byPart.set(d, []);
        for (const r of this.table.values()) byPart.get(this.partDir(r))?.push(r);
        for (const [d, rows] of byPart) stage(d, 'data.parquet', rows);
        this.touched.clear();
      }
    } else {
      for (const [d, rows] of this.buffer) stage(d, `part-${String(epoch).padStart(10, '0')}-${this.tag}-${this.run}.parquet`, rows);
      this.buffer.clear();
      this.waiting = 0;
    }
    return staged;
  }

  async commit(epoch: number, state: unknown) {
    const staged = state as Staged[];
    if (!staged.length) return;
    // The renames are durable once the directories holding them are.
    const dirs = new Set<string>();
    for (const s of staged) {
      fsCall(this.what, s.final, () => fs.renameSync(s.staged, s.final));
      for (let d = path.dirname(s.final); d.startsWith(this.dir) && !dirs.has(d); d = path.dirname(d)) dirs.add(d);
    }
    for (const d of dirs) fsyncDir(d);
    this.markers.write(epoch);
  }

  async close() {}
}

/** Files of a dataset, as readers see it: directories starting with . or _ (staging, journals) are not part of it. */
export function* walk(dir: string): Generator<string> {
  if (!fs.existsSync(dir)) return;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { if (!/^[._]/.test(e.name)) yield* walk(p); }
    else yield p;
  }
}

export function fsyncDir(dir: string) {
  try {
    const fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  } catch {
    // Not every filesystem allows fsync on a directory; the rename is still atomic.
  }
}
