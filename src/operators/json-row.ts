/**
 * @module Rows to JSON text, exactly.
 *
 * Rules: real JSON, one object per row, columns in schema order. Decimals are
 * written as JSON numbers with their exact digits (100000.50, never
 * 100000.49999), timestamps as ISO-8601 UTC text, BigInt integers as numbers.
 */
import { Row, Schema, formatDecimal } from '../types.js';
import { formatTimestamp } from '../time.js';

export function makeJsonEncoder(schema: Schema): (row: Row) => string {
  const parts = schema.map((f, i) => {
    const prefix = (i === 0 ? '{' : ',') + JSON.stringify(f.name) + ':';
    const t = f.type;
    let enc: (v: NonNullable<Row[string]>) => string;
    if (t.kind === 'decimal') { const s = t.scale ?? 0; enc = (v) => formatDecimal(v as number | bigint, s); }
    else if (t.kind === 'timestamp') enc = (v) => '"' + formatTimestamp(v as number) + '"';
    else if (t.kind === 'string') enc = (v) => JSON.stringify(v);
    else if (t.kind === 'float') enc = (v) => (Number.isFinite(v as number) ? String(v) : 'null');
    else enc = (v) => String(v);
    return { name: f.name, prefix, enc };
  });
  return (row) => {
    let s = '';
    for (const p of parts) {
      const v = row[p.name];
      s += p.prefix + (v === null || v === undefined ? 'null' : p.enc(v));
    }
    return parts.length ? s + '}' : '{}';
  };
}

/** A key from one or more columns: the value itself, or the values joined by `|`. */
export function makeKeyEncoder(columns: string[]): (row: Row) => string {
  if (columns.length === 1) { const c = columns[0]; return (r) => (r[c] === null ? '' : String(r[c])); }
  return (r) => columns.map((c) => (r[c] === null ? '' : String(r[c]))).join('|');
}
