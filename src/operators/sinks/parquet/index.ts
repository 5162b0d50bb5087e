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
 *   the files, as Hive, DuckDB and pyarrow expect (dataset.ts).
 * - Backfills replace whole partitions of append datasets (backfill.ts).
 * - The writer (sink.ts) and Arrow/parquet-wasm load when the sink opens.
 */
import type { SinkDef, StreamInfo, ConfigOf } from '../../operator.js';
import { fieldOf, Row, Schema } from '../../../core/types.js';
import { locate, schemeOf, visible, type Location, type Store } from '../../../storage/store.js';
import { checkConnection, type Connections } from '../../../connections/config.js';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'path'],
  properties: {
    type: { const: 'parquet' },
    path: {
      type: 'string',
      minLength: 1,
      description:
        'Dataset folder: a local path (relative to the spec file), s3://bucket/prefix or hdfs://namenode/path (with connection).',
    },
    connection: {
      type: 'string',
      description:
        'For s3:// and hdfs:// paths: the s3 or hdfs connection that reaches it (without one: s3:// through the AWS environment, webhdfs://host:port/path as HADOOP_USER_NAME).',
    },
    partitionBy: {
      type: 'array',
      items: { type: 'string' },
      uniqueItems: true,
      description: 'Columns forming Hive-style partition directories, e.g. [sale_date].',
    },
    compression: { enum: ['zstd', 'snappy', 'none'], default: 'zstd', description: 'Column compression.' },
    rollRows: {
      type: 'integer',
      minimum: 1,
      default: 500000,
      description: 'Append streams: end the epoch and write files once this many rows wait.',
    },
  },
} as const;

export interface Planned {
  cfg: ConfigOf<typeof config>;
  input: StreamInfo;
}

export const parquetSink: SinkDef<typeof config, Planned> = {
  type: 'parquet',
  doc: 'Writes a Hive-partitioned Parquet dataset (zstd), atomically: appended files for append streams, the latest row per key for keyed streams.',
  config,
  delivery: 'staged',
  // A file per partition per epoch: under checkpoint.interval auto, epochs of 5 s.
  autoIntervalMs: 5000,
  plan(cfg, input, ctx) {
    let ok = checkLocation(cfg, ctx);
    for (const [i, c] of (cfg.partitionBy ?? []).entries()) {
      const f = fieldOf(input.schema, c);
      if (!f) {
        ok = false;
        ctx.error(['partitionBy', i], `unknown column "${c}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown');
      } else if (f.type.kind === 'float') {
        ok = false;
        ctx.error(['partitionBy', i], `cannot partition by float column "${c}"`, 'type.mismatch');
      } else if (input.mode !== 'append' && !input.key?.includes(c)) {
        ok = false;
        ctx.error(
          ['partitionBy', i],
          `a keyed (${input.mode}) stream can be partitioned only by its key columns (${input.key?.join(', ')}), so a row never moves between files`,
          'mode.invalid',
        );
      }
    }
    if (cfg.rollRows !== config.properties.rollRows.default && input.mode !== 'append')
      ctx.warn(['rollRows'], 'rollRows applies to append streams only', 'option.unused');
    return ok ? { cfg, input } : undefined;
  },
  async backfill(p, req) {
    return (await import('./backfill.js')).rewriteRange(p, req);
  },
  async recover(p, req) {
    await (await import('./backfill.js')).recoverBackfill(p, req);
  },
  create(p, ctx) {
    // The writer, with Arrow and parquet-wasm, is loaded when the sink opens.
    let sink: import('./sink.js').ParquetSink | undefined;
    const ready = async () => (sink ??= new (await import('./sink.js')).ParquetSink(p, ctx));
    return {
      open: async (state, epoch) => (await ready()).open(state, epoch),
      write: (rows) => sink!.write(rows),
      full: () => sink?.full() ?? false,
      preCommit: (epoch) => sink!.preCommit(epoch),
      commit: (epoch, state) => sink!.commit(epoch, state),
      close: async () => sink?.close(),
    };
  },
};

/** Where the sink's dataset is (checked at plan time). */
export function locationOf(p: Planned, specDir: string): Location {
  const loc = locate(p.cfg.path, p.cfg.connection, specDir);
  if (typeof loc === 'string') throw new Error(`parquet sink ${p.cfg.path}: ${loc}`);
  return loc;
}

/** Plan-time checks of a dataset location: the scheme and its connection agree. */
export function checkLocation(
  cfg: { path: string; connection?: string },
  ctx: { connections: Connections; error(path: (string | number)[], message: string, code?: string): void },
): boolean {
  const loc = locate(cfg.path, cfg.connection, '.');
  if (typeof loc === 'string') {
    ctx.error([cfg.connection !== undefined && schemeOf(cfg.path) === 'local' ? 'connection' : 'path'], loc, 'value.location');
    return false;
  }
  if (loc.kind === 'local' || loc.connection === undefined) return true;
  let ok = true;
  checkConnection({ ...ctx, error: (p, m, c) => ((ok = false), ctx.error(p, m, c)) }, ['connection'], loc.connection, loc.kind);
  return ok;
}

/**
 * Rows of a Parquet dataset (any writer's: Hive partitions, the partition columns from the directory names), read with `schema`;
 * `keep` may leave out files by their partition values.
 */
export async function readDataset(
  store: Store | string,
  schema: Schema,
  keep?: (parts: Record<string, string | null>) => boolean,
  /** Rows to keep (the others are dropped file by file, never all held). */
  keepRow?: (r: Row) => boolean,
): Promise<Row[]> {
  const [{ fromParquet }, { partValuesOf }, { readManifests, hideMerged }] = await Promise.all([
    import('./arrow-rows.js'),
    import('./dataset.js'),
    import('./compact.js'),
  ]);
  const st = typeof store === 'string' ? new (await import('../../../storage/local.js')).LocalStore(store) : store;
  // A compaction may delete a listed file before it is read (its rows are in the merged file by then): list again.
  for (let attempt = 1; ; attempt++) {
    const entries = await st.list();
    const manifests = await readManifests(st, entries);
    const files = hideMerged(
      entries.filter((e) => visible(e.key) && e.key.endsWith('.parquet')).map((e) => e.key),
      manifests,
    );
    const out: Row[] = [];
    try {
      for (const file of files.sort()) {
        const parts = partValuesOf(file);
        if (keep && !keep(parts)) continue;
        const inFile = schema.filter((c) => !(c.name in parts));
        for (const r of fromParquet(await st.read(file), inFile)) {
          Object.assign(r, partitionValues(parts, schema));
          if (!keepRow || keepRow(r)) out.push(r);
        }
      }
      return out;
    } catch (e) {
      if (attempt >= 5 || !/ENOENT|NoSuchKey|FileNotFound|404/.test(`${(e as Error).name} ${(e as Error).message}`)) throw e;
    }
  }
}

function partitionValues(parts: Record<string, string | null>, schema: Schema): Row {
  const o: Row = {};
  for (const [k, v] of Object.entries(parts)) {
    const f = schema.find((c) => c.name === k);
    if (!f) continue;
    o[k] = v === null ? null : f.type.kind === 'int' || f.type.kind === 'decimal' ? Number(v) : f.type.kind === 'bool' ? v === 'true' : v;
  }
  return o;
}
