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

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'path'],
  properties: {
    type: { const: 'parquet' },
    path: { type: 'string', minLength: 1, description: 'Dataset directory (relative to the spec file).' },
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
    let ok = true;
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
  async recover(p, specDir, log) {
    (await import('./backfill.js')).recoverBackfill(p, specDir, log);
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

/**
 * Rows of a Parquet dataset (any writer's: Hive partitions, the partition columns from the directory names), read with `schema`;
 * `keep` may leave out files by their partition values.
 */
export async function readDataset(dir: string, schema: Schema, keep?: (parts: Record<string, string | null>) => boolean): Promise<Row[]> {
  const [{ fromParquet }, { walk, unPartValue }, fs, path] = await Promise.all([
    import('./arrow-rows.js'),
    import('./dataset.js'),
    import('node:fs'),
    import('node:path'),
  ]);
  const out: Row[] = [];
  for (const file of [...walk(dir)].filter((x) => x.endsWith('.parquet')).sort()) {
    const parts: Record<string, string | null> = {};
    for (const seg of path.relative(dir, path.dirname(file)).split(path.sep).filter(Boolean)) {
      const i = seg.indexOf('=');
      if (i > 0) parts[seg.slice(0, i)] = unPartValue(seg.slice(i + 1));
    }
    if (keep && !keep(parts)) continue;
    const inFile = schema.filter((c) => !(c.name in parts));
    for (const r of fromParquet(fs.readFileSync(file), inFile)) out.push(Object.assign(r, partitionValues(parts, schema)));
  }
  return out;
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
