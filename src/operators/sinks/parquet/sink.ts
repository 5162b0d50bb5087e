/**
 * @module The Parquet sink's writer (loaded when the sink opens, with Arrow
 * and parquet-wasm). The rules are in index.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Sink, RunContext } from '../../operator.js';
import type { Row, Schema } from '../../../core/types.js';
import { toParquet, fromParquet } from './arrow-rows.js';
import { makeKeyEncoder } from '../../json-row.js';
import { OutputMarkers, fsCall, fsyncDir, ownerTag } from '../../output-owner.js';
import { partitionDir, unPartValue, walk } from './dataset.js';
import type { Planned } from './index.js';

interface Staged {
  staged: string;
  final: string;
}

export class ParquetSink implements Sink {
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
  private cfg: Planned['cfg'];

  constructor(
    p: Planned,
    private ctx: RunContext,
  ) {
    const { cfg, input } = p;
    this.cfg = cfg;
    this.dir = path.resolve(ctx.specDir, cfg.path);
    this.parts = [...(cfg.partitionBy ?? [])];
    this.fileSchema = input.schema.filter((f) => !this.parts.includes(f.name));
    this.keyed = input.mode !== 'append';
    this.rollRows = cfg.rollRows;
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
          r[c] =
            v === null || v === undefined ? null : kind === 'int' || kind === 'decimal' ? Number(v) : kind === 'bool' ? v === 'true' : v;
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
      // A second commit of the epoch finds its files in place already.
      if (fs.existsSync(s.staged) || !fs.existsSync(s.final)) fsCall(this.what, s.final, () => fs.renameSync(s.staged, s.final));
      for (let d = path.dirname(s.final); d.startsWith(this.dir) && !dirs.has(d); d = path.dirname(d)) dirs.add(d);
    }
    for (const d of dirs) fsyncDir(d);
    this.markers.write(epoch);
  }

  async close() {}
}
