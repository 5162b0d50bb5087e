/**
 * @module Event-time parsing and formatting.
 *
 * Rules: timestamps are epoch milliseconds. Text with a zone (`Z`, `+02:00`)
 * means what it says; text without one is read in the pipeline's configured
 * time zone (default UTC), the way a database `TIMESTAMP` column is.
 */

const NAIVE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?$/;
const ZONED = /(?:Z|[+-]\d{2}:?\d{2})$/i;

const offsetCache = new Map<string, Intl.DateTimeFormat>();

/** Offset of `zone` from UTC, in ms, at the instant `utcMs`. */
export function zoneOffset(zone: string, utcMs: number): number {
  if (zone === 'UTC') return 0;
  let fmt = offsetCache.get(zone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    offsetCache.set(zone, fmt);
  }
  const p: Record<string, string> = {};
  for (const part of fmt.formatToParts(new Date(utcMs))) p[part.type] = part.value;
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUtc - Math.floor(utcMs / 1000) * 1000;
}

export function isValidZone(zone: string): boolean {
  // UTC needs no zone data (loading it costs a start-up tens of ms).
  if (zone === 'UTC') return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const d = (s: string, i: number) => s.charCodeAt(i) - 48;

/** Date.UTC and Date.parse roll 2026-02-30 over to March 2; a timestamp like that is an error instead. */
function validFields(y: number, mo: number, day: number, h: number, mi: number, sec: number): boolean {
  if (mo < 1 || mo > 12 || day < 1 || h > 23 || mi > 59 || sec > 59) return false;
  const dim = mo === 2 ? (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(mo) ? 30 : 31;
  return day <= dim;
}
const FIELDS = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?/;
const DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22];

/** YYYY-MM-DDTHH:MM:SS.mmmZ without a regex; undefined when anything is off (the slow path decides). */
function isoMillisUtc(s: string): number | undefined {
  const y = d(s, 0) * 1000 + d(s, 1) * 100 + d(s, 2) * 10 + d(s, 3);
  const mo = d(s, 5) * 10 + d(s, 6),
    day = d(s, 8) * 10 + d(s, 9);
  const h = d(s, 11) * 10 + d(s, 12),
    mi = d(s, 14) * 10 + d(s, 15),
    sec = d(s, 17) * 10 + d(s, 18);
  const ms = d(s, 20) * 100 + d(s, 21) * 10 + d(s, 22);
  if (!validFields(y, mo, day, h, mi, sec)) return undefined;
  if (s[4] !== '-' || s[7] !== '-' || s[13] !== ':' || s[16] !== ':' || s[19] !== '.') return undefined;
  for (const i of DIGITS) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  return Date.UTC(y, mo - 1, day, h, mi, sec, ms);
}

/** Parses a timestamp (text or epoch ms number or Date) or returns an error message. */
export function parseTimestamp(v: unknown, zone = 'UTC'): number | string {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : `not a timestamp: ${v}`;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'invalid date' : v.getTime();
  if (typeof v !== 'string') return `expected a timestamp, got ${v === null ? 'null' : typeof v}`;
  // Fast path for what our own sinks write: 2026-01-15T10:00:00.000Z
  if (v.length === 24 && v.charCodeAt(23) === 90 /* Z */ && v.charCodeAt(10) === 84 /* T */) {
    const t = isoMillisUtc(v);
    if (t !== undefined) return t;
  }
  const m = NAIVE.exec(v);
  if (m) {
    if (!validFields(+m[1], +m[2], +m[3], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0)))
      return `not a valid date or time: ${JSON.stringify(v)}`;
    const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
    const local = Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), ms);
    if (Number.isNaN(local)) return `not a timestamp: ${JSON.stringify(v)}`;
    return localToUtc(local, zone);
  }
  if (ZONED.test(v)) {
    const f = FIELDS.exec(v);
    if (f && !validFields(+f[1], +f[2], +f[3], +(f[4] ?? 0), +(f[5] ?? 0), +(f[6] ?? 0)))
      return `not a valid date or time: ${JSON.stringify(v)}`;
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  return `not a timestamp: ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
}

/** Zone-less text of an instant in `zone`, as a TIMESTAMP column holds it: 2026-11-24 07:00:00.000. */
export const naiveTimestamp = (ms: number, zone: string) =>
  new Date(ms + zoneOffset(zone, ms)).toISOString().replace('T', ' ').replace('Z', '');

/** ISO-8601 in UTC, e.g. 2026-11-24T06:00:00.000Z. */
export const formatTimestamp = (ms: number) => new Date(ms).toISOString();

/** Calendar date (YYYY-MM-DD) of `ms` in `zone`. */
export function dateIn(ms: number, zone = 'UTC'): string {
  const local = ms + zoneOffset(zone, ms);
  // Rows come in runs of one day: the last day's text is kept (an archive derives a date per sale).
  const day = Math.floor(local / 86_400_000);
  if (day !== lastDay.day) {
    lastDay.day = day;
    lastDay.text = new Date(day * 86_400_000).toISOString().slice(0, 10);
  }
  return lastDay.text;
}
const lastDay = { day: NaN, text: '' };

/** Parses a duration such as `500ms`, `10s`, `15m`, `1h`, `1d` into ms. */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return text;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms']!;
}

/** The instant whose wall-clock time in `zone` is `local` (ms as if UTC). Two passes settle the offset across a DST change. */
export function localToUtc(local: number, zone: string): number {
  if (zone === 'UTC') return local;
  let t = local - zoneOffset(zone, local);
  t = local - zoneOffset(zone, t);
  return t;
}

/**
 * Event-time windows aligned to `zone`'s wall clock (hours and midnights):
 * tumbling when `slide` equals `size`, hopping when it is smaller.
 */
export class WindowAssigner {
  private offsets = new Map<number, number>();
  constructor(
    readonly size: number,
    readonly slide: number,
    readonly zone: string,
  ) {}

  /** Offset at `utc`, cached per quarter hour (zone transitions fall on those). */
  private offset(utc: number): number {
    if (this.zone === 'UTC') return 0;
    const q = Math.floor(utc / 900_000);
    let o = this.offsets.get(q);
    if (o === undefined) {
      if (this.offsets.size > 10_000) this.offsets.clear();
      o = zoneOffset(this.zone, utc);
      this.offsets.set(q, o);
    }
    return o;
  }

  /** Local wall-clock time at `utc` (as if the zone were UTC). */
  toLocal(utc: number): number {
    return utc + this.offset(utc);
  }

  /** The instant at which the zone's wall clock shows `local`. */
  toUtc(local: number): number {
    if (this.zone === 'UTC') return local;
    let t = local - this.offset(local);
    t = local - this.offset(t);
    return t;
  }

  /** Starts (UTC ms) of every window containing `t`, latest first. */
  starts(t: number, out: number[]): number[] {
    if (this.zone === 'UTC' && this.slide === this.size) {
      // Tumbling in UTC, the common case: one window, no zone arithmetic.
      out[0] = t - mod(t, this.size);
      out.length = 1;
      return out;
    }
    out.length = 0;
    const local = t + this.offset(t);
    let s = local - mod(local, this.slide);
    for (; s > local - this.size; s -= this.slide) out.push(this.toUtc(s));
    return out;
  }

  /** End (exclusive, UTC ms) of the window starting at `start`. */
  end(start: number): number {
    return this.toUtc(start + this.offset(start) + this.size);
  }
}

const mod = (a: number, b: number) => ((a % b) + b) % b;
