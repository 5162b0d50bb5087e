/**
 * @module Rows to JSON text, exactly.
 *
 * Rules: real JSON, one object per row, columns in schema order. Decimals are
 * written with their exact digits (100000.50, never 100000.49999): as JSON
 * numbers by default, or as strings (`decimals: 'string'`) for consumers
 * that would read a number into a double, which keeps about 15 significant
 * digits. Timestamps are ISO-8601 UTC text, BigInt integers numbers, a
 * `json` column its JSON as is (nested, not a string).
 * Keys are the key columns' text, timestamps and decimals written as in
 * values.
 */
import { Row, Schema, formatDecimal } from '../core/types.js';
import { formatTimestamp } from '../core/time.js';

export interface JsonOptions {
  /** How decimals are written: JSON numbers (default) or strings. */
  decimals?: 'number' | 'string';
}

export function makeJsonEncoder(schema: Schema, opts: JsonOptions = {}): (row: Row) => string {
  const quote = opts.decimals === 'string';
  const parts = schema.map((f, i) => {
    const prefix = (i === 0 ? '{' : ',') + JSON.stringify(f.name) + ':';
    const t = f.type;
    let enc: (v: NonNullable<Row[string]>) => string;
    if (t.kind === 'decimal') {
      const s = t.scale ?? 0;
      enc = quote ? (v) => '"' + formatDecimal(v as number | bigint, s) + '"' : (v) => formatDecimal(v as number | bigint, s);
    } else if (t.kind === 'timestamp') enc = (v) => '"' + formatTimestamp(v as number) + '"';
    else if (t.kind === 'string') enc = (v) => JSON.stringify(v);
    else if (t.kind === 'json') enc = (v) => v as string;
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

/**
 * A key from one or more columns: the value's text, or the values' joined
 * by `|`. With the schema, timestamps and decimals read as in values
 * (ISO-8601, exact digits); without it, as JS values (keys kept in memory).
 */
export function makeKeyEncoder(columns: string[], schema?: Schema): (row: Row) => string {
  const text = columns.map((c): ((v: NonNullable<Row[string]>) => string) => {
    const t = schema?.find((f) => f.name === c)?.type;
    if (t?.kind === 'timestamp') return (v) => formatTimestamp(v as number);
    if (t?.kind === 'decimal') {
      const s = t.scale ?? 0;
      return (v) => formatDecimal(v as number | bigint, s);
    }
    return String;
  });
  if (columns.length === 1) {
    const c = columns[0],
      f = text[0];
    return (r) => {
      const v = r[c];
      return v === null || v === undefined ? '' : f(v);
    };
  }
  return (r) =>
    columns
      .map((c, i) => {
        const v = r[c];
        return v === null || v === undefined ? '' : text[i](v);
      })
      .join('|');
}
