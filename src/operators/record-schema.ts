/**
 * @module Declared record schemas and the decoder that enforces them.
 *
 * Rules: a source declares its columns and types in the spec (`schema:`), so
 * validation needs no connection. Decoding a payload checks every declared
 * column: a missing non-nullable column, a wrong type, a value out of range
 * or a string over `maxStringLength` yields a reason, and the record goes to
 * the dead-letter output; extra columns are ignored.
 */
import { ColumnType, Row, Schema, parseType, toScaled, describe, formatDecimal } from '../core/types.js';
import { parseTimestamp } from '../core/time.js';
import { makeJsonEncoder } from './json-row.js';
import type { PlanContext, DeadLetter } from './operator.js';

export const schemaConfig = {
  type: 'object',
  description: 'Declared record schema: column name -> type (int, float, decimal(p,s), string, bool, timestamp; suffix ? for nullable).',
  minProperties: 1,
  additionalProperties: { type: 'string', description: 'Column type, e.g. int, string?, decimal(12,2), timestamp.' },
} as const;

export function planSchema(decl: { readonly [k: string]: string }, ctx: PlanContext, path: (string | number)[]): Schema {
  const schema: Schema = [];
  for (const [name, text] of Object.entries(decl ?? {})) {
    const t = parseType(String(text));
    if (typeof t === 'string') ctx.error([...path, name], t, 'type.unknown');
    else schema.push({ name, type: t });
  }
  return schema;
}

export const MAX_STRING = 4096;

type FieldDecoder = (v: unknown) => unknown; // returns value, or a Fail
class Fail {
  constructor(readonly msg: string) {}
}

function fieldDecoder(t: ColumnType, zone: string, maxLen: number, numericText: boolean, big = false): FieldDecoder {
  switch (t.kind) {
    case 'int':
      return (v) => {
        if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
        if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)) return Number(v);
        if (numericText && typeof v === 'string' && /^-?\d{1,15}$/.test(v)) return Number(v);
        return new Fail(
          typeof v === 'number'
            ? Number.isInteger(v)
              ? `${BigInt(v)} is outside the exact integer range (at most ±${Number.MAX_SAFE_INTEGER})`
              : `${v} is not an integer`
            : `expected int, got ${describe(v)}`,
        );
      };
    case 'float':
      return (v) => {
        if (typeof v === 'number' && Number.isFinite(v)) return v;
        if (numericText && typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
        return new Fail(`expected float, got ${describe(v)}`);
      };
    case 'decimal': {
      const scale = t.scale ?? 0;
      const limit = 10 ** (t.precision ?? 18);
      return (v) => {
        const r = big ? toScaled(v, scale, true) : toScaled(v, scale);
        if (typeof r === 'string') return new Fail(r);
        if (typeof r === 'bigint') return r;
        if (Math.abs(r) >= limit && (t.precision ?? 18) < 16)
          return new Fail(`${v} exceeds decimal(${t.precision},${scale}) (at most ±${formatDecimal(BigInt(limit) - 1n, scale)})`);
        return r;
      };
    }
    case 'string':
      return (v) => {
        if (typeof v !== 'string') return new Fail(`expected string, got ${describe(v)}`);
        if (v.length > maxLen) return new Fail(`string of ${v.length} characters exceeds the limit of ${maxLen}`);
        if (v.includes('\u0000')) return new Fail('string contains a NUL character');
        return v;
      };
    case 'json':
      return (v) => (v === undefined ? new Fail('expected a JSON value') : JSON.stringify(v));
    case 'bool':
      return (v) =>
        typeof v === 'boolean' ? v : numericText && (v === 0 || v === 1) ? v === 1 : new Fail(`expected bool, got ${describe(v)}`);
    case 'timestamp':
      return (v) => {
        const r = parseTimestamp(v, zone);
        return typeof r === 'string' ? new Fail(r) : r;
      };
  }
}

export interface DecodeOptions {
  timeZone: string;
  /** Database drivers return BIGINT and DECIMAL as text: accept numeric text for numbers. JSON payloads must not. */
  numericText?: boolean;
  /** Decode in place: the parsed object becomes the row (for parsed JSON nobody else holds). */
  inPlace?: boolean;
  maxStringLength?: number;
  /** Decimal text past 2^53 becomes a BigInt (`salespipe test` expectations of totals). */
  bigDecimals?: boolean;
}

/**
 * Builds a decoder from a parsed object to a typed Row; returns a reason
 * string for a record that does not fit.
 * @example makeDecoder(schema, { timeZone: 'UTC' })({ quantity_sold: 2, ... })
 */
export function makeDecoder(schema: Schema, opts: DecodeOptions): (obj: unknown) => Row | string {
  const names = schema.map((f) => f.name);
  const decs = schema.map((f) =>
    fieldDecoder(f.type, opts.timeZone, opts.maxStringLength ?? MAX_STRING, opts.numericText ?? false, opts.bigDecimals),
  );
  const nullable = schema.map((f) => f.type.nullable);
  const n = names.length;
  const inPlace = opts.inPlace ?? false;
  return (obj) => {
    if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return `expected a JSON object, got ${describe(obj)}`;
    // In place, columns outside the schema stay on the object, but every operator
    // reads by schema, so they never travel on.
    const src = obj as Record<string, unknown>;
    const row: Row = inPlace ? (src as Row) : {};
    for (let i = 0; i < n; i++) {
      const name = names[i];
      const v = src[name];
      if (v === undefined || v === null) {
        if (!nullable[i]) return v === undefined ? `missing required field "${name}"` : `field "${name}" is null but not nullable`;
        row[name] = null;
        continue;
      }
      const d = decs[i](v);
      if (d instanceof Fail) return `field "${name}": ${d.msg}`;
      row[name] = d as Row[string];
    }
    return row;
  };
}

/**
 * Where a row came from, kept on the row under the SOURCE symbol by the
 * source that read it, so that a step rejecting the row dead-letters the
 * record as it arrived (the message's text, the database row with its
 * decimals and timestamps as text), not salespipe's internal values
 * (scaled integers, epoch milliseconds). Symbol keys are copied by object
 * spread and ignored by JSON and Object.keys, so they travel with the row
 * through steps and never reach an output; the runtime drops them before
 * the sinks, so buffered rows do not hold their payloads.
 */
export const SOURCE = Symbol('salespipe.source');

export interface SourceRef {
  readonly payload: string;
  readonly encoding: DeadLetter['encoding'];
  /** Where the original is: `topic/partition@offset`, `table#id`. */
  readonly origin: string;
}

/** A row's source reference, if its source set one. */
export const sourceOf = (r: Row): SourceRef | undefined => (r as unknown as Record<symbol, SourceRef | undefined>)[SOURCE];

export function setSource(r: Row, ref: SourceRef): void {
  (r as unknown as Record<symbol, SourceRef>)[SOURCE] = ref;
}

/** Drops a row's source reference (the property stays, so the row keeps its shape). */
export function clearSource(r: Row): void {
  (r as unknown as Record<symbol, SourceRef | undefined>)[SOURCE] = undefined;
}

const plainJson = (raw: unknown) => JSON.stringify(raw, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));

/**
 * A dead letter for a row: the record as its source read it when the row
 * carries a source reference; otherwise (a row a step produced) the row as
 * JSON through `encode` (exact decimals, ISO timestamps), or as plain JSON
 * for a database row that never became a typed row.
 */
export function deadRow(r: unknown, reason: string, origin: string, encode?: (row: Row) => string): DeadLetter {
  const ref = r && typeof r === 'object' ? sourceOf(r as Row) : undefined;
  if (ref) return { reason, payload: ref.payload, encoding: ref.encoding, origin: ref.origin };
  return { reason, payload: encode ? encode(r as Row) : plainJson(r), encoding: 'json', origin };
}

/**
 * The dead letters of a step whose input has `schema`: `(row, reason)`.
 * A row without a source reference is written with the schema's encoder.
 */
export function deadLetters(schema: Schema, origin: string): (r: Row, reason: string) => DeadLetter {
  let encode: ((r: Row) => string) | undefined;
  return (r, reason) => deadRow(r, reason, origin, sourceOf(r) ? undefined : (encode ??= makeJsonEncoder(schema)));
}

/** A source reference for a database row: its JSON is built only if it is dead-lettered. */
export class RawRowRef implements SourceRef {
  readonly encoding = 'json' as const;
  constructor(
    private raw: Record<string, unknown>,
    readonly origin: string,
  ) {}
  get payload(): string {
    return plainJson(this.raw);
  }
}
