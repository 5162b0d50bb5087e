/**
 * @module A Hive-partitioned dataset's names: partition folders and their
 * values.
 *
 * Rules: partition columns live in directory names (`brand=Dell/`), values
 * escaped as Hive does (`%2F`), nulls as `__HIVE_DEFAULT_PARTITION__`;
 * names starting with `.` or `_` (staging, journals, writers' markers) are
 * not part of the dataset, as Hive, DuckDB and pyarrow agree.
 */
import type { Row } from '../../../core/types.js';
import { dateIn } from '../../../core/time.js';

const NULL_PART = '__HIVE_DEFAULT_PARTITION__';

/** A row's partition directory, e.g. `product_category=Laptop` (relative to the dataset). */
export function partitionDir(parts: string[], kinds: Map<string, string>, r: Row, zone: string): string {
  return parts.map((c) => `${c}=${partValue(r[c], kinds.get(c)!, zone)}`).join('/');
}

function partValue(v: Row[string], kind: string, zone: string): string {
  if (v === null || v === undefined) return NULL_PART;
  const s = kind === 'timestamp' ? dateIn(v as number, zone) : String(v);
  return s.replace(/[\\/=:*?"<>|%\u0000-\u001f]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'));
}

export function unPartValue(s: string): string | null {
  return s === NULL_PART ? null : s.replace(/%([0-9A-F]{2})/g, (_m, h) => String.fromCharCode(parseInt(h, 16)));
}

/** Partition values from the folders of a key (`brand=Dell/x.parquet` -> { brand: 'Dell' }). */
export function partValuesOf(key: string): Record<string, string | null> {
  const parts: Record<string, string | null> = {};
  for (const seg of key.split('/').slice(0, -1)) {
    const i = seg.indexOf('=');
    if (i > 0) parts[seg.slice(0, i)] = unPartValue(seg.slice(i + 1));
  }
  return parts;
}
