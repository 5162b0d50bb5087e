/**
 * @module The Parquet sink's writer (loaded when the sink opens, with Arrow
 * and parquet-wasm). The rules are in index.ts.
 */
import path from 'node:path';
import crypto from 'node:crypto';
import { taskName, type Sink, type RunContext } from '../../operator.js';
import type { Row, Schema } from '../../../core/types.js';
import { toParquet, fromParquet } from './arrow-rows.js';
import { makeKeyEncoder } from '../../json-row.js';
import { ownerTag, StoreMarkers } from '../../output-owner.js';
import { partitionDir, partValuesOf } from './dataset.js';
import { openStore, visible, StagedGone, type Staged, type Store } from '../../../storage/store.js';
import { locationOf, type Planned } from './index.js';

/** What checkpoints before stores held: absolute paths on local disk. */
interface LegacyStaged {
  staged: string;
  final: string;
}

export class ParquetSink implements Sink {
  private store!: Store;
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
  private markers!: StoreMarkers;
  private tag: string;
  /** Random per run: file names never repeat across runs. */
  private run = crypto.randomBytes(3).toString('hex');
  private cfg: Planned['cfg'];

  constructor(
    private p: Planned,
    private ctx: RunContext,
  ) {
    const { cfg, input } = p;
    this.cfg = cfg;
    this.parts = [...(cfg.partitionBy ?? [])];
    this.fileSchema = input.schema.filter((f) => !this.parts.includes(f.name));
    this.keyed = input.mode !== 'append';
    this.rollRows = cfg.rollRows;
    this.key = makeKeyEncoder(input.key ?? []);
    this.kinds = new Map(input.schema.map((f) => [f.name, f.type.kind]));
    this.tag = ownerTag({ pipeline: ctx.pipeline, flow: taskName(ctx) });
  }

  private isMine(key: string): boolean {
    return this.keyed || path.posix.basename(key).includes(`-${this.tag}-`);
  }

  private partDir(r: Row): string {
    return partitionDir(this.parts, this.kinds, r, this.ctx.timeZone);
  }

  async open(state: unknown, epoch: number) {
    this.store = await openStore(locationOf(this.p, this.ctx.specDir), this.ctx, `parquet sink ${this.cfg.path}`);
    await this.store.init();
    this.markers = new StoreMarkers(this.store, { pipeline: this.ctx.pipeline, flow: taskName(this.ctx) }, `dataset ${this.store.where}`);
    const published = this.tickets(state);
    // The checkpoint names these files: finish publishing them (idempotent). One gone with its final name
    // (the output moved away meanwhile) cannot be published: said, not fatal, as the markers check below decides.
    for (const s of published) {
      try {
        await this.store.publish(s);
      } catch (e) {
        if (!(e instanceof StagedGone)) throw e;
        this.ctx.log.warn(`${(e as Error).message}: the checkpoint's epoch ${epoch} file is not in the dataset`);
      }
    }
    if (published.length) await this.markers.write(epoch);
    await this.markers.check(epoch, this.ctx.checkpointWhere ?? 'the state directory', this.keyed);
    // Staged files no checkpoint names (an epoch that never committed) are this writer's to throw away.
    const keep = new Set(published.map((s) => s.id));
    for (const s of await this.store.staged()) if (!keep.has(s.id) && this.isMine(s.key)) await this.store.discard(s);
    if (this.keyed) await this.load();
  }

  /** The checkpoint's staged files, from either format. */
  private tickets(state: unknown): Staged[] {
    const list = (state as (Staged | LegacyStaged)[] | undefined) ?? [];
    const dir = this.store.localDir ?? '';
    return list.map((s) =>
      'staged' in s
        ? {
            key: path.relative(dir, s.final).split(path.sep).join('/'),
            id: path.relative(dir, s.staged).split(path.sep).join('/'),
            tag: /\.([^.]+)\.staged$/.exec(s.staged)?.[1] ?? '',
          }
        : s,
    );
  }

  /** Keyed datasets are their own state: read the latest rows back. */
  private async load() {
    for (const e of await this.store.list()) {
      if (!visible(e.key) || path.posix.basename(e.key) !== 'data.parquet') continue;
      const partVals = partValuesOf(e.key);
      for (const r of fromParquet(await this.store.read(e.key), this.fileSchema)) {
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
    const stage = async (partDir: string, name: string, rows: Row[]) => {
      const key = partDir ? `${partDir}/${name}` : name;
      staged.push(await this.store.stage(key, toParquet(this.fileSchema, rows, this.cfg.compression), `${epoch}`));
    };
    if (this.keyed) {
      if (this.touched.size) {
        const byPart = new Map<string, Row[]>();
        for (const d of this.touched) byPart.set(d, []);
        for (const r of this.table.values()) byPart.get(this.partDir(r))?.push(r);
        for (const [d, rows] of byPart) await stage(d, 'data.parquet', rows);
        this.touched.clear();
      }
    } else {
      for (const [d, rows] of this.buffer) await stage(d, `part-${String(epoch).padStart(10, '0')}-${this.tag}-${this.run}.parquet`, rows);
      this.buffer.clear();
      this.waiting = 0;
    }
    return staged;
  }

  async commit(epoch: number, state: unknown) {
    const staged = state as Staged[];
    if (!staged.length) return;
    // Each publish is durable (local: the folders are fsynced) and idempotent: a second commit of the epoch changes nothing.
    for (const s of staged) await this.store.publish(s);
    await this.markers.write(epoch);
  }

  async close() {
    await this.store?.close();
  }
}
