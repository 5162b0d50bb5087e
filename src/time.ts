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
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    offsetCache.set(zone, fmt);
  }
  const p: Record<string, string> = {};
  for (const part of fmt.formatToParts(new Date(utcMs))) p[part.type] = part.value;
  const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
  return asUtc - Math.floor(utcMs / 1000) * 1000;
}

export function isValidZone(zone: string): boolean {
  try { new Intl.DateTimeFormat('en-US', { timeZone: zone }); return true; } catch { return false; }
}

/** Parses a timestamp (text or epoch ms number or Date) or returns an error message. */
export function parseTimestamp(v: unknown, zone = 'UTC'): number | string {
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : `not a timestamp: ${v}`;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? 'invalid date' : v.getTime();
  if (typeof v !== 'string') return `expected a timestamp, got ${v === null ? 'null' : typeof v}`;
  // Fast path for what our own sinks write: 2026-01-15T10:00:00.000Z
  if (v.length === 24 && v.charCodeAt(23) === 90 /* Z */ && v.charCodeAt(10) === 84 /* T */) {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  const m = NAIVE.exec(v);
  if (m) {
    const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
    const local = Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0), ms);
    if (Number.isNaN(local)) return `not a timestamp: ${JSON.stringify(v)}`;
    if (zone === 'UTC') return local;
    // Two passes settle the offset across a DST change.
    let t = local - zoneOffset(zone, local);
    t = local - zoneOffset(zone, t);
    return t;
  }
  if (ZONED.test(v)) {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  return `not a timestamp: ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
}

/** ISO-8601 in UTC, e.g. 2026-11-24T06:00:00.000Z. */
export const formatTimestamp = (ms: number) => new Date(ms).toISOString();

/** Calendar date (YYYY-MM-DD) of `ms` in `zone`. */
export function dateIn(ms: number, zone = 'UTC'): string {
  return new Date(ms + zoneOffset(zone, ms)).toISOString().slice(0, 10);
}

/** Parses a duration such as `500ms`, `10s`, `15m`, `1h`, `1d` into ms. */
export function parseDuration(text: string | number): number | undefined {
  if (typeof text === 'number') return text;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms']!;
}
