/**
 * @module Opening a table as the spec declares it: connected (retrying while
 * the database is away), present with the declared columns, and with column
 * types the declared ones can read.
 *
 * Rules (checked when a source or lookup table opens, before any row is read):
 * - incompatible, an error: a declared type no value of the column can fit
 *   (a VARCHAR read as int, a number read as string, a number read as a
 *   timestamp): every row would be dead-lettered.
 * - lossy, a warning: values are converted with a loss the user should
 *   know of: a DOUBLE/FLOAT/REAL read as decimal is rounded to the declared
 *   scale; a DECIMAL with more digits than declared dead-letters the values
 *   that use them; a fractional type read as int dead-letters fractions.
 * - SQLite's column types are affinities, not types: only a declared
 *   numeric type against a TEXT column, or the reverse, is reported there,
 *   as a warning.
 */
import type { Knex } from 'knex';
import type { Schema, ColumnType } from '../core/types.js';
import { typeName } from '../core/types.js';
import type { Dialect } from '../connections/config.js';
import type { Logger } from '../core/log.js';
import { redact } from '../core/log.js';
import { withRetry } from '../connections/retry.js';

export interface ColumnProblem {
  column: string;
  severity: 'error' | 'warning';
  message: string;
}

type Family = 'int' | 'decimal' | 'float' | 'string' | 'bool' | 'timestamp' | 'date' | 'other';

function family(dbType: string, dialect: Dialect): { family: Family; precision?: number; scale?: number } {
  const t = dbType.toLowerCase();
  const m = /\((\d+)(?:\s*,\s*(\d+))?\)/.exec(t);
  const p = m ? Number(m[1]) : undefined,
    s = m?.[2] !== undefined ? Number(m[2]) : undefined;
  if (/^(tinyint\(1\)|bool|boolean|bit)/.test(t)) return { family: 'bool' };
  if (/^(tiny|small|medium|big)?int|^integer|serial/.test(t)) return { family: 'int' };
  if (/^(decimal|numeric|number)/.test(t)) return { family: 'decimal', precision: p, scale: s ?? (dialect === 'sqlite' ? undefined : 0) };
  if (/^(double|float|real)/.test(t)) return { family: 'float' };
  if (/char|text|clob|string|enum|set|uuid|json/.test(t)) return { family: 'string' };
  if (/^(timestamp|datetime)/.test(t)) return { family: 'timestamp' };
  if (/^date/.test(t)) return { family: 'date' };
  return { family: 'other' };
}

/** Problems of reading a column of `dbType` as `want`; none when it fits. */
export function columnProblem(column: string, dbType: string, want: ColumnType, dialect: Dialect): ColumnProblem | undefined {
  const f = family(dbType, dialect);
  const declared = typeName(want);
  const err = (message: string): ColumnProblem => ({
    column,
    severity: dialect === 'sqlite' ? 'warning' : 'error',
    message: `${column} is ${dbType} in the table, declared ${declared}: ${message}`,
  });
  const warn = (message: string): ColumnProblem => ({
    column,
    severity: 'warning',
    message: `${column} is ${dbType} in the table, declared ${declared}: ${message}`,
  });
  const numeric = f.family === 'int' || f.family === 'decimal' || f.family === 'float';
  if (f.family === 'other') return undefined;
  switch (want.kind) {
    case 'int':
      if (f.family === 'string') return err('text is not read as a number; declare string, or change the column');
      if (f.family === 'float' || (f.family === 'decimal' && (f.scale ?? 0) > 0))
        return warn('rows with a fractional value go to the dead-letter output; declare decimal or float to keep them');
      if (f.family === 'timestamp' || f.family === 'date' || f.family === 'bool')
        return f.family === 'bool' ? undefined : err('a time is not an int');
      return undefined;
    case 'decimal':
      // SQLite has no exact numeric type: decimals are kept as their text (sql/sqlite.sql), and read exactly.
      if (f.family === 'string')
        return dialect === 'sqlite' ? undefined : err('text is not read as a number; declare string, or change the column');
      if (f.family === 'float')
        return warn(
          `a binary floating-point value is rounded to ${want.scale ?? 0} decimal place(s) when read (e.g. 0.30000000000000004 becomes ${(0.3).toFixed(want.scale ?? 0)}); make the column DECIMAL, or declare float to keep the values as they are`,
        );
      if (f.family === 'decimal' && f.scale !== undefined && f.scale > (want.scale ?? 0))
        return warn(`values with more than ${want.scale ?? 0} decimal place(s) go to the dead-letter output`);
      if (
        f.family === 'decimal' &&
        f.precision !== undefined &&
        f.scale !== undefined &&
        f.precision - f.scale > (want.precision ?? 18) - (want.scale ?? 0)
      )
        return warn(`values above decimal(${want.precision},${want.scale})'s range go to the dead-letter output`);
      if (f.family === 'timestamp' || f.family === 'date') return err('a time is not a decimal');
      return undefined;
    case 'float':
      if (f.family === 'string') return err('text is not read as a number; declare string, or change the column');
      if (f.family === 'timestamp' || f.family === 'date') return err('a time is not a float');
      return undefined;
    case 'string':
      if (numeric || f.family === 'bool')
        return err(
          `the database returns ${f.family === 'bool' ? 'bools' : 'numbers'} for it, which are not text; declare ${f.family === 'float' ? 'float' : f.family === 'decimal' ? 'decimal' : f.family === 'bool' ? 'bool' : 'int'}`,
        );
      return undefined;
    case 'bool':
      if (f.family === 'string' || f.family === 'float' || f.family === 'decimal' || f.family === 'timestamp' || f.family === 'date')
        return err('only boolean (or tinyint(1)) columns read as bool');
      return undefined;
    case 'timestamp':
      if (numeric || f.family === 'bool') return err('a number is not read as a timestamp; declare int, or store a DATETIME/TIMESTAMP');
      return undefined;
  }
}

/** Each column's full type as the database declares it: `decimal(12,2)`, `tinyint(1)`, `character varying`. */
async function columnTypes(db: Knex, dialect: Dialect, table: string): Promise<Map<string, string>> {
  const [schemaName, name] = table.includes('.') ? table.split('.') : [undefined, table];
  const out = new Map<string, string>();
  if (dialect === 'mysql') {
    const [rows] = await db.raw(
      'SELECT COLUMN_NAME AS c, COLUMN_TYPE AS t FROM information_schema.columns WHERE table_schema = COALESCE(?, DATABASE()) AND table_name = ?',
      [schemaName ?? null, name],
    );
    for (const r of rows as { c: string; t: string | Buffer }[]) out.set(r.c.toLowerCase(), String(r.t));
  } else if (dialect === 'postgres') {
    const { rows } = await db.raw(
      'SELECT column_name AS c, data_type AS t, numeric_precision AS p, numeric_scale AS s FROM information_schema.columns WHERE table_schema = COALESCE(?, current_schema()) AND table_name = ?',
      [schemaName ?? null, name],
    );
    for (const r of rows as { c: string; t: string; p: number | null; s: number | null }[])
      out.set(r.c.toLowerCase(), r.t === 'numeric' && r.p !== null ? `numeric(${r.p},${r.s ?? 0})` : r.t);
  } else {
    const rows = await db.raw(`PRAGMA table_info(${JSON.stringify(name)})`);
    for (const r of rows as { name: string; type: string }[]) out.set(r.name.toLowerCase(), r.type || 'blob');
  }
  return out;
}

/** Compares the declared schema with the table's columns. */
export async function checkColumns(db: Knex, dialect: Dialect, table: string, schema: Schema): Promise<ColumnProblem[]> {
  const types = await columnTypes(db, dialect, table);
  const out: ColumnProblem[] = [];
  for (const f of schema) {
    const t = types.get(f.name.toLowerCase());
    if (t === undefined) continue; // a missing column fails the first query with the database's own message
    const p = columnProblem(f.name, t, f.type, dialect);
    if (p) out.push(p);
  }
  return out;
}

/** Logs the warnings; throws one error listing every incompatible column. */
export function reportColumns(problems: ColumnProblem[], table: string, where: string, log: { warn(m: string): void }): void {
  for (const p of problems.filter((x) => x.severity === 'warning')) log.warn(`table ${table}: ${p.message}`);
  const errors = problems.filter((x) => x.severity === 'error');
  if (errors.length)
    throw new Error(`table ${table} at ${where} does not fit the declared schema: ${errors.map((e) => e.message).join('; ')}`);
}

/**
 * Connects (retrying while the database is away), checks that the table
 * exists with the declared columns and that their types fit. Shared by the
 * SQL source and lookup tables.
 */
export async function openTable(
  db: Knex,
  dialect: Dialect,
  table: string,
  columns: string[],
  schema: Schema,
  where: string,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  try {
    await withRetry(`connecting to ${where}`, log, signal, () => db(table).select(columns).limit(0));
  } catch (e) {
    const msg = (e as Error).message;
    if (/doesn't exist|does not exist|no such table/i.test(msg)) {
      throw new Error(`table ${table} not found at ${where}: create it with sql/<database>.sql or \`salespipe generate --create-tables\``);
    }
    if (/unknown column|column .* does not exist|no such column/i.test(msg)) {
      throw new Error(`table ${table} at ${where} lacks a column the spec declares (${msg.replace(/^.* - /, '')})`);
    }
    if (signal.aborted) throw e;
    throw new Error(`connecting to ${where} failed: ${redact(msg)}`);
  }
  reportColumns(
    await withRetry(`reading the columns of ${table}`, log, signal, () => checkColumns(db, dialect, table, schema)),
    table,
    where,
    log,
  );
}
