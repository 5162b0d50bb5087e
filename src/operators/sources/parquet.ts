/**
 * @module `type: parquet` source: the rows of a Parquet dataset (a folder of
 * files, Hive-partitioned or not, or one file), e.g. the sales history.
 *
 * Rules:
 * - Any writer's files are read (salespipe's, pyarrow's, Spark's): each
 *   declared column is taken from the file, or from a `column=value`
 *   folder above it. Arrow types are converted exactly: integers of any
 *   width, decimals of any scale (rescaled to the declared one; a value
 *   with more decimals than it holds is a dead letter), floats, strings
 *   (dictionary-encoded too), booleans, timestamps of any unit (with a
 *   time zone: that instant; without: wall-clock time in the pipeline's
 *   timeZone) and dates (midnight in the pipeline's timeZone).
 * - Streamed: files in path order (a dataset partitioned by date is read
 *   in date order), each one row group at a time through a file handle,
 *   never a whole file or dataset in memory. Folders and files starting
 *   with `.` or `_` (staging, journals, _SUCCESS) are not part of it.
 * - `from`/`to` keep rows whose event time is in [from, to);
 *   `partitions` keeps folders whose value lies in a range (ISO dates and
 *   numbers compare as such), so a month of a year's history reads a month
 *   of files.
 * - The position (files read, and the row group and row reached in the
 *   current one) is in the checkpoint: a restart goes on from there.
 *   Published Parquet files do not change, so a file read stays read.
 * - `--drain` (and backfills) end at the last file present; a run without
 *   it looks for new files every `pollInterval`.
 * - A row that does not fit the schema (a null in a non-null column, a
 *   value out of range) is a dead letter with the row as read and
 *   `file@row`; a file whose columns cannot be converted fails the run,
 *   naming the file and the column.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import type { SourceDef, Source, SourceBatch, StreamInfo, RunContext, ConfigOf, DeadLetter } from '../operator.js';
import { schemaConfig, planSchema, makeDecoder, setSource, RawRowRef } from '../record-schema.js';
import { decimalFromWords, fieldOf, formatDecimal, type ColumnType } from '../../core/types.js';
import { unPartValue } from '../sinks/parquet/dataset.js';
import { parseDuration, parseTimestamp, formatTimestamp } from '../../core/time.js';
import { sleep } from '../../connections/retry.js';
import { locate, openStore, visible, type Location, type Store } from '../../storage/store.js';
import { checkLocation } from '../sinks/parquet/index.js';
import { LocalStore } from '../../storage/local.js';
import { hideMerged, readManifests, readRanges, mergedRows, type Manifest } from '../sinks/parquet/compact.js';

/** Rows in a set of ranges (they do not overlap). */
const covered = (ranges: [number, number][]) => ranges.reduce((n, [a, b]) => n + b - a, 0);

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'path', 'schema'],
  properties: {
    type: { const: 'parquet' },
    path: {
      type: 'string',
      minLength: 1,
      description:
        'Dataset folder, or one .parquet file (relative to the spec file); or s3://bucket/prefix or hdfs://namenode/path (with connection).',
    },
    connection: {
      type: 'string',
      description:
        'For s3:// and hdfs:// paths: the s3 or hdfs connection that reaches it (without one: s3:// through the AWS environment, webhdfs://host:port/path as HADOOP_USER_NAME).',
    },
    schema: schemaConfig,
    eventTime: { type: 'string', description: 'Timestamp column carrying event time.' },
    from: { type: 'string', description: 'Keep rows with event time at or after this timestamp (e.g. 2026-01-01).' },
    to: { type: 'string', description: 'Keep rows with event time before this timestamp.' },
    partitions: {
      type: 'object',
      description:
        'Partition folders to read, by column: { sale_date: { from: "2026-01-01", to: "2026-02-01" } } keeps sale_date=… folders in [from, to).',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: { from: { type: 'string' }, to: { type: 'string' } },
      },
    },
    batchSize: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000, description: 'Rows per batch.' },
    pollInterval: { type: 'string', default: '10s', description: 'Without --drain: wait between looks for new files.' },
  },
} as const;

type Config = ConfigOf<typeof config>;

interface Planned {
  cfg: Config;
  out: StreamInfo;
  from?: number;
  to?: number;
  pollMs: number;
}

/** The source's part of a checkpoint. */
interface Position {
  /** Files read to their end (relative to the dataset). */
  done: string[];
  /** The file being read, its next row group and the rows of it already handed over. */
  file?: string;
  rowGroup?: number;
  row?: number;
  /** The rows of `file` handed over (from its start), so a merge of it (compaction) can go on from there. */
  at?: number;
  /** A file merged by a compaction while it was being read, and the rows of it read: skipped in the merged file. */
  partial?: { key: string; row: number };
}

export const parquetSource: SourceDef<typeof config, Planned> = {
  type: 'parquet',
  doc: 'Reads the rows of a Parquet dataset (any writer, Hive partitions), streamed a row group at a time; rows that do not fit the declared schema go to the dead-letter output.',
  config,
  records: 'json',
  plan(cfg, ctx) {
    const schema = planSchema(cfg.schema, ctx, ['schema']);
    let ok = checkLocation(cfg, ctx);
    if (cfg.eventTime) {
      const et = fieldOf(schema, cfg.eventTime);
      if (!et || et.type.kind !== 'timestamp') {
        ok = false;
        ctx.error(
          ['eventTime'],
          et
            ? `event-time column "${cfg.eventTime}" must be a timestamp`
            : `event-time column "${cfg.eventTime}" is not declared in schema`,
          et ? 'type.mismatch' : 'column.unknown',
        );
      }
    }
    const bound = (k: 'from' | 'to') => {
      if (cfg[k] === undefined) return undefined;
      if (!cfg.eventTime) {
        ok = false;
        ctx.error([k], `${k} needs eventTime: it is a range of event time`, 'option.requires');
        return undefined;
      }
      const t = parseTimestamp(cfg[k], ctx.timeZone);
      if (typeof t === 'string') {
        ok = false;
        ctx.error([k], `${k}: ${t}`, 'value.timestamp');
        return undefined;
      }
      return t;
    };
    const from = bound('from'),
      to = bound('to');
    if (from !== undefined && to !== undefined && to <= from) {
      ok = false;
      ctx.error(['to'], `to (${cfg.to}) must be after from (${cfg.from})`, 'value.range');
    }
    const pollMs = parseDuration(cfg.pollInterval);
    if (pollMs === undefined) {
      ok = false;
      ctx.error(['pollInterval'], `invalid duration "${cfg.pollInterval}" (e.g. 5s, 1m)`, 'value.duration');
    }
    const out: StreamInfo = { schema, mode: 'append', eventTime: cfg.eventTime };
    return { out, planned: ok ? { cfg, out, from, to, pollMs: pollMs! } : (undefined as never) };
  },
  async status(p, position, ctx) {
    const pos = position as Position | undefined;
    const loc = sourceLocation(p, ctx.specDir);
    const done = new Set(pos?.done ?? []);
    let files: string[] = [],
      error: string | undefined;
    if (loc.kind === 'local') {
      files = datasetFiles(loc.dir, p.cfg.partitions);
      if (!fs.existsSync(loc.dir)) error = `${loc.dir} does not exist`;
    } else {
      const store = await openStore(loc, { ...ctx, signal: AbortSignal.timeout(30_000) });
      try {
        files = selectFiles(
          (await store.list()).map((e) => e.key),
          p.cfg.partitions,
        );
      } catch (e) {
        error = (e as Error).message;
      } finally {
        await store.close();
      }
    }
    const root = loc.kind === 'local' ? loc.dir : p.cfg.path;
    return {
      detail: { type: 'parquet', path: root, files: files.length, read: done.size, current: pos?.file ?? null },
      text: `source dataset ${root}: ${done.size} of ${files.length} file(s) read${pos?.file ? `, reading ${pos.file}` : ''}`,
      lag: null,
      ...(error ? { error } : {}),
    };
  },
  create(p, ctx) {
    return new ParquetSource(p, ctx);
  },
};

/** Files of a local dataset in path order (relative paths), partition folders outside `partitions` left out; [''] for one file. */
export function datasetFiles(root: string, partitions?: Partitions): string[] {
  if (!fs.existsSync(root)) return [];
  if (fs.statSync(root).isFile()) return [''];
  const keys: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (/^[._]/.test(e.name)) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(dir, e.name), r);
      else keys.push(r);
    }
  };
  walk(root, '');
  return selectFiles(keys, partitions);
}

type Partitions = Record<string, { from?: string; to?: string }>;

/** The dataset's files among `keys` (any store's), in path order, partition folders outside `partitions` left out. */
export function selectFiles(keys: string[], partitions?: Partitions): string[] {
  const inRange = (seg: string) => {
    const eq = seg.indexOf('=');
    if (eq <= 0 || !partitions) return true;
    const range = partitions[seg.slice(0, eq)];
    if (!range) return true;
    const v = unPartValue(seg.slice(eq + 1));
    return !(
      v === null ||
      (range.from !== undefined && compareValues(v, range.from) < 0) ||
      (range.to !== undefined && compareValues(v, range.to) >= 0)
    );
  };
  const picked = keys
    .filter((k) => k.endsWith('.parquet') && visible(k))
    .map((k) => k.split('/'))
    .filter((segs) => segs.slice(0, -1).every(inRange));
  picked.sort((a, b) => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (a[i] === b[i]) continue;
      // A folder's files come before its subfolders only as the names sort; files and folders compare by name.
      return compareNames(a[i], b[i]);
    }
    return a.length - b.length;
  });
  return picked.map((segs) => segs.join('/'));
}

/** Partition values compare as numbers when both are numbers, else as text (ISO dates sort as text). */
function compareValues(a: string, b: string): number {
  const x = Number(a),
    y = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Folder names in path order: `n=9` before `n=10` when both values are numbers. */
function compareNames(a: string, b: string): number {
  const ea = a.indexOf('='),
    eb = b.indexOf('=');
  if (ea > 0 && eb > 0 && a.slice(0, ea) === b.slice(0, eb)) return compareValues(a.slice(ea + 1), b.slice(eb + 1));
  return a < b ? -1 : a > b ? 1 : 0;
}

function sourceLocation(p: Planned, specDir: string): Location {
  const loc = locate(p.cfg.path, p.cfg.connection, specDir);
  if (typeof loc === 'string') throw new Error(`parquet source ${p.cfg.path}: ${loc}`);
  return loc;
}

/**
 * A Blob over a range of an open file descriptor, which parquet-wasm reads
 * a row group at a time. Unlike fs.openAsBlob (which reads by path, and whose
 * reads of a deleted file abort inside the WebAssembly module), the rows stay
 * readable after the file is deleted.
 */
class FdBlob extends Blob {
  constructor(
    private fd: number,
    private start: number,
    private end: number,
  ) {
    super([]);
  }

  override get size(): number {
    return this.end - this.start;
  }

  override slice(a = 0, b = this.size): Blob {
    return new FdBlob(this.fd, this.start + Math.max(0, a), this.start + Math.min(this.size, b));
  }

  override async arrayBuffer(): Promise<ArrayBuffer> {
    const buf = Buffer.alloc(this.size);
    let at = 0;
    while (at < buf.length) {
      const n = fs.readSync(this.fd, buf, at, buf.length - at, this.start + at);
      if (n === 0) break;
      at += n;
    }
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
  }
}

type Convert = (v: unknown) => unknown;

/**
 * How to turn a column of the file into what the schema's decoder takes:
 * decimals as exact text, timestamps as instants (ms) or wall-clock text,
 * 64-bit integers as BigInt (the decoder keeps them exact or refuses).
 * Returns a reason when the Arrow type cannot become the declared one.
 */
function converter(arrowType: any, declared: ColumnType, Type: any): Convert | string {
  const id = arrowType.typeId;
  const name = String(arrowType);
  const kind = declared.kind;
  if (id === Type.Dictionary) return converter(arrowType.dictionary, declared, Type);
  const numeric = id === Type.Int || id === Type.Float || id === Type.Decimal;
  const text = id === Type.Utf8 || id === Type.LargeUtf8;
  switch (kind) {
    case 'string':
      if (text) return (v) => v;
      if (id === Type.Date) return (v) => formatTimestamp(v as number).slice(0, 10);
      return `a ${name} column cannot be read as string`;
    case 'bool':
      if (id === Type.Bool) return (v) => v;
      return `a ${name} column cannot be read as bool`;
    case 'int':
    case 'float':
    case 'decimal':
      if (id === Type.Decimal) {
        const scale = arrowType.scale as number;
        return (v) => formatDecimal(decimalFromWords(v as Uint32Array), scale);
      }
      // A 64-bit integer comes as a BigInt: the int decoder keeps it exact or refuses it; decimals take it as text.
      if (id === Type.Int) return kind === 'int' ? (v) => v : (v) => String(v);
      if (id === Type.Float) return kind === 'float' ? (v) => v : (v) => (Number.isFinite(v as number) ? String(v) : v);
      if (text && kind !== 'int') return (v) => v;
      return `a ${name} column cannot be read as ${kind}`;
    case 'timestamp':
      if (id === Type.Timestamp) {
        // Arrow JS hands over milliseconds (a fraction for µs and ns).
        if (arrowType.timezone) return (v) => Math.floor(v as number);
        return (v) =>
          formatTimestamp(Math.floor(v as number))
            .replace('T', ' ')
            .replace('Z', '');
      }
      if (id === Type.Date) return (v) => formatTimestamp(v as number).slice(0, 10);
      if (text) return (v) => v;
      if (numeric) return `a ${name} column cannot be read as timestamp (numbers have no unit)`;
      return `a ${name} column cannot be read as timestamp`;
  }
  return `a ${name} column cannot be read as ${kind}`;
}

class ParquetSource implements Source {
  private root: string;
  private loc: Location;
  /** s3/hdfs: the store; each file is copied to a local temporary file while it is read. */
  private store?: Store;
  private spool?: string;
  /** The descriptor the current file is read through. */
  private fd?: number;
  private files: string[] = [];
  private done = new Set<string>();
  /** The file being read: its handle, where each row group starts, the next row group and the rows of it handed over. */
  private current?: { rel: string; file: any; starts: number[]; group: number; row: number; skip: [number, number][] };
  /** Compaction manifests (compact.ts): which merged file holds which files' rows. */
  private manifests = new Map<string, Manifest>();
  /** The manifests read so far, by file (they never change): each poll reads only new ones. */
  private manifestFiles = new Map<string, Manifest>();
  /** A file the checkpoint was partway through that a compaction has merged since: how far it was read. */
  private partial?: { key: string; row: number };
  /** The loaded rows of the current row group, from its row `base` on, and how many of them are handed over. */
  private pending: { rows: unknown[][]; base: number; taken: number } | null = null;
  private names: string[];
  private decode;
  private lib?: { arrow: typeof import('apache-arrow'); ParquetFile: any };
  private log;

  constructor(
    private p: Planned,
    private ctx: RunContext,
  ) {
    this.loc = sourceLocation(p, ctx.specDir);
    this.root = this.loc.kind === 'local' ? this.loc.dir : p.cfg.path.replace(/\/+$/, '');
    this.names = p.out.schema.map((f) => f.name);
    this.decode = makeDecoder(p.out.schema, { timeZone: ctx.timeZone, numericText: true, maxStringLength: 1 << 20 });
    this.log = ctx.log.child(`parquet:${p.cfg.path}`);
  }

  async open(position: unknown) {
    const [arrow, pw] = await Promise.all([import('apache-arrow'), import('parquet-wasm')]);
    this.lib = { arrow, ParquetFile: (pw as any).ParquetFile };
    if (this.loc.kind === 'local') {
      if (!fs.existsSync(this.root)) throw new Error(`parquet source: ${this.root} does not exist`);
      if (fs.statSync(this.root).isDirectory()) this.store = new LocalStore(this.root);
    } else this.store = await openStore(this.loc, this.ctx);
    const pos = position as Position | undefined;
    this.done = new Set(pos?.done ?? []);
    this.partial = pos?.partial;
    this.files = await this.listFiles();
    if (pos?.file !== undefined && !this.done.has(pos.file)) {
      const merged = [...this.manifests.values()].some((m) => m.inputs.some((i) => i.key === pos.file));
      if (this.files.includes(pos.file)) await this.openFile(pos.file, pos.rowGroup ?? 0, pos.row ?? 0);
      else if (merged && pos.at !== undefined) this.partial = { key: pos.file, row: pos.at };
      else throw new Error(`parquet source: the checkpoint was reading ${this.at(pos.file)}, which is no longer in the dataset`);
    }
    const before = this.files.filter((f) => this.done.has(f)).length;
    this.log.info(`${this.files.length} file(s) in ${this.root}${before ? `, ${before} read before` : ''}`);
  }

  /** A file of the dataset as messages and dead letters name it. */
  private at(rel: string): string {
    if (!rel) return this.root;
    return this.store ? `${this.root}/${rel}` : path.join(this.root, rel);
  }

  private async listFiles(): Promise<string[]> {
    if (!this.store) return datasetFiles(this.root, this.p.cfg.partitions);
    const entries = await this.store.list();
    this.manifests = await readManifests(this.store, entries, this.manifestFiles);
    const files = selectFiles(
      hideMerged(
        entries.map((e) => e.key),
        this.manifests,
      ),
      this.p.cfg.partitions,
    );
    // A merged file whose rows were all read (as its inputs, before the merge) is read.
    for (const f of files) {
      const m = this.manifests.get(f);
      if (m && !this.done.has(f) && covered(readRanges(f, this.done, this.manifests, this.partial)) >= mergedRows(m)) this.done.add(f);
    }
    return files;
  }

  /** Opens a file of the dataset; false if it is gone (merged by a compaction since it was listed). */
  private async openFile(rel: string, group: number, row: number): Promise<boolean> {
    let full = rel ? path.join(this.root, rel) : this.root;
    if (this.store && this.loc.kind !== 'local') {
      this.unspool();
      this.spool = full = path.join(os.tmpdir(), `salespipe-${process.pid}-${crypto.randomBytes(4).toString('hex')}.parquet`);
      try {
        await this.store.download(rel, full);
      } catch (e) {
        if (!(await this.store.exists(rel))) return false;
        throw e;
      }
    }
    // Read through a descriptor: a compaction may delete the file while it is read, and its rows stay readable.
    let fd: number;
    try {
      fd = fs.openSync(full, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && rel) return false;
      throw e;
    }
    this.closeFd();
    this.fd = fd;
    const file = await this.lib!.ParquetFile.fromFile(new FdBlob(fd, 0, fs.fstatSync(fd).size));
    const md = file.metadata();
    const starts = [0];
    for (let i = 0; i < md.numRowGroups(); i++) starts.push(starts[i] + md.rowGroup(i).numRows());
    const skip = this.manifests.has(rel) ? readRanges(rel, this.done, this.manifests, this.partial) : [];
    this.current = { rel, file, starts, group, row, skip };
    return true;
  }

  /** Partition values from the folders above a file. */
  private partsOf(rel: string): Record<string, string | null> {
    const parts: Record<string, string | null> = {};
    for (const seg of rel.split('/').slice(0, -1)) {
      const i = seg.indexOf('=');
      if (i > 0) parts[seg.slice(0, i)] = unPartValue(seg.slice(i + 1));
    }
    return parts;
  }

  /** Reads the current file's row group into `pending` (from the row reached on), converted column by column. */
  private async readGroup(): Promise<void> {
    const c = this.current!;
    const { arrow } = this.lib!;
    const wasm = await c.file.read({ rowGroups: [c.group] });
    const table = arrow.tableFromIPC(wasm.intoIPCStream());
    const parts = this.partsOf(c.rel);
    const where = this.at(c.rel);
    const cols: ((i: number) => unknown)[] = [];
    for (const f of this.p.out.schema) {
      const col = table.getChild(f.name);
      if (col) {
        const conv = converter(table.schema.fields.find((x) => x.name === f.name)!.type, f.type, arrow.Type);
        if (typeof conv === 'string') throw new Error(`parquet source: ${where}: column ${f.name}: ${conv}`);
        cols.push((i) => {
          const v = col.get(i);
          return v === null || v === undefined ? null : conv(v);
        });
      } else if (f.name in parts) {
        const v = parts[f.name];
        cols.push(() => v);
      } else if (f.type.nullable) cols.push(() => null);
      else throw new Error(`parquet source: ${where} has no column ${f.name} (declared not null), in the file or as a partition folder`);
    }
    const rows: unknown[][] = [];
    for (let i = c.row; i < table.numRows; i++) rows.push(cols.map((get) => get(i)));
    this.pending = { rows, base: c.row, taken: 0 };
  }

  async next(): Promise<SourceBatch | null> {
    for (;;) {
      if (this.ctx.signal.aborted) return null;
      const c = this.current;
      if (this.pending && this.pending.taken < this.pending.rows.length) return this.take();
      if (c && this.pending) {
        // The row group is handed over: on to the next.
        this.pending = null;
        c.group++;
        c.row = 0;
      }
      if (c && c.group >= c.starts.length - 1) {
        this.done.add(c.rel);
        c.file.free?.();
        this.current = undefined;
        this.closeFd();
        this.unspool();
        continue;
      }
      if (c) {
        await this.readGroup();
        continue;
      }
      const nextFile = this.files.find((f) => !this.done.has(f));
      if (nextFile !== undefined) {
        if (!(await this.openFile(nextFile, 0, 0))) this.files = await this.listFiles();
        continue;
      }
      if (this.ctx.drain) return null;
      await sleep(this.p.pollMs, this.ctx.signal);
      this.files = await this.listFiles();
      return { rows: [], dead: [] };
    }
  }

  private take(): SourceBatch {
    const pend = this.pending!;
    const c = this.current!;
    const out: SourceBatch = { rows: [], dead: [] };
    const end = Math.min(pend.rows.length, pend.taken + this.p.cfg.batchSize);
    const et = this.p.cfg.eventTime;
    const { from, to } = this.p;
    const ranged = et !== undefined && (from !== undefined || to !== undefined);
    for (let i = pend.taken; i < end; i++) {
      const vals = pend.rows[i];
      const raw: Record<string, unknown> = {};
      for (let j = 0; j < this.names.length; j++) raw[this.names[j]] = vals[j];
      const g = c.starts[c.group] + pend.base + i;
      if (c.skip.length && c.skip.some(([a, b]) => g >= a && g < b)) continue; // read before, as a file this one merged
      const origin = `${this.at(c.rel)}@row ${g}`;
      const r = this.decode(raw);
      if (typeof r === 'string') {
        out.dead.push({ reason: r, payload: jsonText(raw), encoding: 'json', origin } satisfies DeadLetter);
        continue;
      }
      if (ranged) {
        const t = r[et!] as number | null;
        if (t === null || (from !== undefined && t < from) || (to !== undefined && t >= to)) continue;
      }
      setSource(r, new RawRowRef(raw, origin));
      out.rows.push(r);
    }
    pend.taken = end;
    c.row = pend.base + end;
    return out;
  }

  position(): Position {
    const c = this.current;
    return {
      done: [...this.done],
      ...(c ? { file: c.rel, rowGroup: c.group, row: c.row, at: c.starts[c.group] + c.row } : {}),
      ...(this.partial ? { partial: this.partial } : {}),
    };
  }

  async commit() {}

  private closeFd() {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private unspool() {
    if (this.spool) fs.rmSync(this.spool, { force: true });
    this.spool = undefined;
  }

  async close() {
    this.current?.file?.free?.();
    this.current = undefined;
    this.pending = null;
    this.closeFd();
    this.unspool();
    await this.store?.close();
  }
}

const jsonText = (raw: unknown) => JSON.stringify(raw, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));
