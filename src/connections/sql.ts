/**
 * @module Relational databases through knex: MySQL/MariaDB, PostgreSQL, SQLite.
 */
import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { Knex } from 'knex';
import { redact, createLogger, logLevelFromEnv } from '../core/log.js';
import { dialectOf, Dialect } from './config.js';

export type { Dialect };

let pgTypesSet = false;

/**
 * knex's own log lines (a failed connection attempt with its stack, on
 * stdout) go to stderr at debug: the caller's retry line says what failed.
 */
const knexQuiet = createLogger(undefined, logLevelFromEnv(), '').child('knex');
const knexLog = {
  warn: (m: unknown) => knexQuiet.debug(String(m)),
  error: (m: unknown) => knexQuiet.debug(String(m)),
  deprecate: (m: unknown) => knexQuiet.debug(String(m)),
  debug: (m: unknown) => knexQuiet.debug(typeof m === 'string' ? m : JSON.stringify(m)),
};

/**
 * Opens a knex instance for a connection URL. Timestamps come back as text
 * so that zone-less values are read in the pipeline's zone, not the host's.
 * A SQLite file that does not exist is created only with `create` (a sink,
 * `generate`): a source reading it would otherwise leave an empty database
 * behind, which later looks like one that was set up.
 */
export async function openKnex(
  url: string,
  specDir: string,
  pool = 4,
  opts: { create?: boolean } = {},
): Promise<{ db: Knex; dialect: Dialect }> {
  const dialect = dialectOf(url);
  if (dialect === 'mysql') {
    const u = new URL(url.replace(/^mariadb:/i, 'mysql:'));
    const db = knexFactory({
      client: 'mysql2',
      connection: {
        host: u.hostname,
        port: Number(u.port || 3306),
        user: decodeURIComponent(u.username),
        password: decodeURIComponent(u.password),
        database: u.pathname.slice(1),
        dateStrings: true,
        supportBigNumbers: true,
        bigNumberStrings: true,
        timezone: 'Z',
      },
      pool: { min: 0, max: pool },
      log: knexLog,
    });
    return { db, dialect };
  }
  if (dialect === 'postgres') {
    if (!pgTypesSet) {
      const pg = (await import('pg')).default;
      pg.types.setTypeParser(1114, (v: string) => v); // timestamp without time zone: keep text
      pgTypesSet = true;
    }
    return { db: knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: pool }, log: knexLog }), dialect };
  }
  if (dialect === 'sqlite') {
    const file = path.resolve(specDir, url.replace(/^sqlite:(\/\/)?/i, ''));
    if (!opts.create && file !== ':memory:' && !fs.existsSync(file)) {
      throw new Error(
        `SQLite database ${file} does not exist: create it with \`salespipe generate --db sqlite:${file} --create-tables\` or sql/sqlite.sql (a relative sqlite: path is relative to the spec file)`,
      );
    }
    return { db: knexFactory({ client: 'better-sqlite3', connection: { filename: file }, useNullAsDefault: true, log: knexLog }), dialect };
  }
  throw new Error(`unsupported database URL ${redact(url)} (expected mysql://, mariadb://, postgres:// or sqlite:)`);
}
