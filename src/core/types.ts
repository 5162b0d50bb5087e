/**
 * @module Column types and record values.
 *
 * Rules:
 * - A record is a plain object from column name to value.
 * - `int` and `float` are JS numbers; `decimal(p,s)` is a scaled integer held
 *   in a JS number (value * 10^s, always a safe integer), so money adds up
 *   exactly; `timestamp` is epoch milliseconds; `string` and `bool` are native;
 *   `json` (made by steps, e.g. a list of recommendations; not declared in
 *   specs) is the JSON text of a nested value, embedded as JSON by the
 *   sinks that write JSON and stored as text by the others.
 * - `null` is allowed only where the type is nullable.
 */

export type Kind = 'int' | 'float' | 'decimal' | 'string' | 'bool' | 'timestamp' | 'json';

export interface ColumnType {
  kind: Kind;
  /** decimal only: digits after the point. */
  scale?: number;
  /** decimal only: total digits. */
  precision?: number;
  nullable: boolean;
}

export type Value = number | bigint | string | boolean | null;
export type Row = Record<string, Value>;

/** Ordered column list; the record schema flowing along one edge of the plan. */
export interface Field {
  name: string;
  type: ColumnType;
}
export type Schema = Field[];

const TYPE_RE =
  /^\s*(int|integer|bigint|float|double|decimal|numeric|string|text|bool|boolean|timestamp)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*(\?)?\s*$/i;

const ALIASES: Record<string, Kind> = {
  int: 'int',
  integer: 'int',
  bigint: 'int',
  float: 'float',
  double: 'float',
  decimal: 'decimal',
  numeric: 'decimal',
  string: 'string',
  text: 'string',
  bool: 'bool',
  boolean: 'bool',
  timestamp: 'timestamp',
};

/**
 * Parses a type as written in a spec: `int`, `string?`, `decimal(12,2)`.
 * @example parseType('decimal(12,2)') // { kind: 'decimal', precision: 12, scale: 2, nullable: false }
 */
export function parseType(text: string): ColumnType | string {
  const m = TYPE_RE.exec(text);
  if (!m) return `unknown type "${text}" (expected int, float, decimal(p,s), string, bool or timestamp, with ? for nullable)`;
  const kind = ALIASES[m[1].toLowerCase()];
  const nullable = m[4] === '?';
  if (kind === 'decimal') {
    const precision = m[2] ? Number(m[2]) : 18;
    const scale = m[3] ? Number(m[3]) : m[2] ? 0 : 2;
    if (scale > 9 || precision > 18 || scale > precision)
      return `decimal(${precision},${scale}) is out of range: precision <= 18 and scale <= 9 keep money exact`;
    return { kind, precision, scale, nullable };
  }
  if (m[2]) return `type ${kind} takes no (…) arguments`;
  return { kind, nullable };
}

export function typeName(t: ColumnType): string {
  const base = t.kind === 'decimal' ? `decimal(${t.precision ?? 18},${t.scale ?? 0})` : t.kind;
  return t.nullable ? base + '?' : base;
}

export const isNumeric = (t: ColumnType) => t.kind === 'int' || t.kind === 'float' || t.kind === 'decimal';

export function fieldOf(schema: Schema, name: string): Field | undefined {
  return schema.find((f) => f.name === name);
}

export const POW10 = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18];

/** An Arrow Decimal128 value (four little-endian 32-bit words, two's complement) as its unscaled BigInt. */
export function decimalFromWords(w: Uint32Array): bigint {
  let x = 0n;
  for (let i = 3; i >= 0; i--) x = (x << 32n) | BigInt(w[i]);
  return BigInt.asIntN(128, x);
}

/** Exact text of a scaled decimal: formatDecimal(10000050, 2) === '100000.50'. */
export function formatDecimal(v: number | bigint, scale: number): string {
  const neg = v < 0;
  let digits = (neg ? -BigInt(v) : BigInt(v)).toString();
  if (scale === 0) return (neg ? '-' : '') + digits;
  digits = digits.padStart(scale + 1, '0');
  return (neg ? '-' : '') + digits.slice(0, -scale) + '.' + digits.slice(-scale);
}

/**
 * Parses decimal text or a number into a scaled integer, or returns an error
 * message. Text is parsed digit by digit so no binary rounding enters. With
 * `big`, text past 2^53 becomes a BigInt (totals, as `salespipe test`
 * states them), else it is an error (a record's own value).
 */
export function toScaled(v: unknown, scale: number): number | string;
export function toScaled(v: unknown, scale: number, big: true): number | bigint | string;
export function toScaled(v: unknown, scale: number, big = false): number | bigint | string {
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return `not a finite number: ${v}`;
    const s = v * POW10[scale];
    const r = Math.round(s);
    // a double carries at most ~1 ulp of error per operation; more means real extra digits
    if (Math.abs(s - r) > 8 * Number.EPSILON * Math.max(1, Math.abs(s))) return `${v} has more than ${scale} decimal places`;
    if (!Number.isSafeInteger(r))
      return `${v} is too large for an exact decimal (at most ±${formatDecimal(BigInt(Number.MAX_SAFE_INTEGER), scale)})${big ? '; a number this large loses digits in JSON and YAML: write it as a string, e.g. "90071992547409.93"' : ''}`;
    return r;
  }
  if (typeof v === 'string') {
    const m = /^\s*([+-])?(\d+)(?:\.(\d*))?\s*$/.exec(v);
    if (!m) return `not a decimal number: ${JSON.stringify(v.slice(0, 40))}`;
    const frac = (m[3] ?? '').replace(/0+$/, '');
    if (frac.length > scale) return `${v} has more than ${scale} decimal places`;
    const digits = m[2] + frac.padEnd(scale, '0');
    const r = Number(digits) * (m[1] === '-' ? -1 : 1);
    if (!Number.isSafeInteger(r)) {
      if (big) return BigInt(digits) * (m[1] === '-' ? -1n : 1n);
      return `${v.trim()} is too large for an exact decimal (at most ±${formatDecimal(BigInt(Number.MAX_SAFE_INTEGER), scale)})`;
    }
    return r;
  }
  return `expected a decimal number, got ${describe(v)}`;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${typeof v === 'object' ? '' : String(v)}`.trim();
}
