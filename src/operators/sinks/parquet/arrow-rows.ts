/**
 * @module Rows <-> Arrow tables <-> Parquet bytes.
 *
 * Rules: one typed buffer per column (no per-value vectorFromArray):
 * int -> Int64, float -> Float64, decimal(p,s) -> Decimal128(p,s) (exact),
 * timestamp -> Timestamp(ms, UTC), string -> dictionary-encoded Utf8,
 * bool -> Bool. Parquet goes through parquet-wasm via Arrow IPC.
 */
import * as arrow from 'apache-arrow';
import { writeParquet, readParquet, Table as WasmTable, WriterPropertiesBuilder, Compression } from 'parquet-wasm';
import { decimalFromWords, type Row, type Schema, type Value } from '../../../core/types.js';

function validity(rows: Row[], name: string): { bitmap: Uint8Array | undefined; nulls: number } {
  let nulls = 0;
  const bitmap = new Uint8Array((rows.length + 7) >> 3);
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i][name];
    if (v === null || v === undefined) nulls++;
    else bitmap[i >> 3] |= 1 << (i & 7);
  }
  return { bitmap: nulls ? bitmap : undefined, nulls };
}

const U128 = (1n << 128n) - 1n;

function column(rows: Row[], name: string, t: Schema[number]['type']): arrow.Vector {
  const n = rows.length;
  const { bitmap, nulls } = validity(rows, name);
  switch (t.kind) {
    case 'int': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const v = rows[i][name];
        if (v !== null && v !== undefined) a[i] = BigInt(v as number);
      }
      return arrow.makeVector(arrow.makeData({ type: new arrow.Int64(), length: n, data: a, nullBitmap: bitmap, nullCount: nulls }));
    }
    case 'float': {
      const a = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = rows[i][name];
        if (v !== null && v !== undefined) a[i] = v as number;
      }
      return arrow.makeVector(arrow.makeData({ type: new arrow.Float64(), length: n, data: a, nullBitmap: bitmap, nullCount: nulls }));
    }
    case 'timestamp': {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) {
        const v = rows[i][name];
        if (v !== null && v !== undefined) a[i] = BigInt(v as number);
      }
      return arrow.makeVector(
        arrow.makeData({ type: new arrow.TimestampMillisecond('UTC'), length: n, data: a, nullBitmap: bitmap, nullCount: nulls }),
      );
    }
    case 'decimal': {
      const words = new Uint32Array(n * 4);
      for (let i = 0; i < n; i++) {
        const v = rows[i][name];
        if (v === null || v === undefined) continue;
        if (typeof v === 'number' && v >= 0 && v < 2 ** 32 * 2 ** 21) {
          words[i * 4] = v % 2 ** 32;
          words[i * 4 + 1] = Math.floor(v / 2 ** 32);
          continue;
        }
        let x = BigInt(v as number | bigint) & U128;
        for (let w = 0; w < 4; w++) {
          words[i * 4 + w] = Number(x & 0xffffffffn);
          x >>= 32n;
        }
      }
      const type = new arrow.Decimal(t.scale ?? 0, Math.max(t.precision ?? 18, 18), 128);
      return arrow.makeVector(arrow.makeData({ type, length: n, data: words, nullBitmap: bitmap, nullCount: nulls }));
    }
    case 'bool': {
      const b = arrow.makeBuilder({ type: new arrow.Bool(), nullValues: [null, undefined] });
      for (const r of rows) b.append(r[name] as boolean | null);
      return b.finish().toVector();
    }
    case 'json': {
      const b = arrow.makeBuilder({ type: new arrow.Utf8(), nullValues: [null, undefined] });
      for (const r of rows) b.append(r[name] as string | null);
      return b.finish().toVector();
    }
    case 'string': {
      const b = arrow.makeBuilder({ type: new arrow.Dictionary(new arrow.Utf8(), new arrow.Int32()), nullValues: [null, undefined] });
      for (const r of rows) b.append(r[name] as string | null);
      return b.finish().toVector();
    }
  }
}

export function rowsToArrow(schema: Schema, rows: Row[]): arrow.Table {
  const cols: Record<string, arrow.Vector> = {};
  for (const f of schema) cols[f.name] = column(rows, f.name, f.type);
  return new arrow.Table(cols);
}

export function toParquet(schema: Schema, rows: Row[], compression: 'zstd' | 'snappy' | 'none' = 'zstd'): Uint8Array {
  const table = rowsToArrow(schema, rows);
  const c = compression === 'zstd' ? Compression.ZSTD : compression === 'snappy' ? Compression.SNAPPY : Compression.UNCOMPRESSED;
  const props = new WriterPropertiesBuilder()
    .setCompression(c)
    .setMaxRowGroupSize(256 * 1024)
    .build();
  return writeParquet(WasmTable.fromIPCStream(arrow.tableToIPC(table, 'stream')), props);
}

/** Reads a Parquet file back into rows of `schema` (columns it lacks are null). */
export function fromParquet(bytes: Uint8Array, schema: Schema): Row[] {
  const table = arrow.tableFromIPC(readParquet(bytes).intoIPCStream());
  const rows: Row[] = Array.from({ length: table.numRows }, () => ({}));
  for (const f of schema) {
    const col = table.getChild(f.name);
    for (let i = 0; i < rows.length; i++) rows[i][f.name] = col ? fromArrow(col.get(i), f.type.kind) : null;
  }
  return rows;
}

function fromArrow(v: unknown, kind: string): Value {
  if (v === null || v === undefined) return null;
  if (kind === 'decimal') {
    const x = decimalFromWords(v as Uint32Array);
    return x >= BigInt(Number.MIN_SAFE_INTEGER) && x <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(x) : x;
  }
  if (typeof v === 'bigint') return Number(v);
  return v as Value;
}
