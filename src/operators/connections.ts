/**
 * @module Connections shared by sources and sinks: relational (knex) and Kafka (kafkajs).
 *
 * Rules: a connection is named once under the spec's `connections:` and
 * referenced by name; URLs carry credentials only through `${VAR}`
 * interpolation, and are never logged unredacted.
 */
import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { Knex } from 'knex';
import kafkajs from 'kafkajs';
import type { JsonSchema, PlanContext, RunContext } from './operator.js';
import type { Logger } from '../runtime/log.js';
import { redact, createLogger, logLevelFromEnv } from '../runtime/log.js';

export const connectionsConfig: JsonSchema = {
  type: 'object',
  description: 'Named connections, referenced by sources and sinks through `connection:`.',
  additionalProperties: {
    type: 'object',
    required: ['type'],
    properties: { type: { enum: ['sql', 'kafka'], description: 'sql (MySQL/MariaDB, PostgreSQL, SQLite) or kafka.' } },
    allOf: [
      {
        if: { properties: { type: { const: 'sql' } } },
        then: {
          properties: {
            type: true,
            url: { type: 'string', description: 'mysql://user:pass@host:3306/db, postgres://user:pass@host:5432/db, or sqlite:path/to/file.db (relative to the spec file).' },
            pool: { type: 'integer', minimum: 1, description: 'Maximum pooled connections (default 4).' },
          },
          required: ['url'],
          additionalProperties: false,
        },
      },
      {
        if: { properties: { type: { const: 'kafka' } } },
        then: {
          properties: {
            type: true,
            brokers: { type: 'string', description: 'Comma-separated host:port list, e.g. 127.0.0.1:9092.' },
            clientId: { type: 'string', description: 'Client id reported to the brokers (default salespipe).' },
            topicPrefix: { type: 'string', pattern: '^[A-Za-z0-9._-]*$', description: 'Prepended to every topic and consumer group on this connection, e.g. to keep environments apart on one cluster (default none).' },
            tls: {
              description: 'TLS to the brokers: true (system CAs), or the files to use (paths relative to the spec).',
              oneOf: [
                { type: 'boolean' },
                {
                  type: 'object',
                  additionalProperties: false,
                  properties: {
                    ca: { type: 'string', description: 'PEM file of the CA that signed the brokers\' certificates.' },
                    cert: { type: 'string', description: 'PEM client certificate (mutual TLS).' },
                    key: { type: 'string', description: 'PEM client key (mutual TLS).' },
                    rejectUnauthorized: { type: 'boolean', description: 'Verify the brokers\' certificates (default true).' },
                  },
                },
              ],
            },
            sasl: {
              type: 'object',
              additionalProperties: false,
              required: ['mechanism', 'username', 'password'],
              description: 'SASL authentication; the password must come from the environment (${VAR}).',
              properties: {
                mechanism: { enum: ['plain', 'scram-sha-256', 'scram-sha-512'], description: 'plain, scram-sha-256 or scram-sha-512.' },
                username: { type: 'string' },
                password: { type: 'string', description: 'Always ${VAR}: a password written in the spec is an error.' },
              },
            },
          },
          required: ['brokers'],
          additionalProperties: false,
        },
      },
    ],
  },
};

/** Checks that `name` is a connection of `type`; reports at `path` otherwise. */
export function checkConnection(ctx: PlanContext, path: (string | number)[], name: string, type: 'sql' | 'kafka'): void {
  const c = ctx.connections[name];
  if (!c) {
    const known = Object.keys(ctx.connections);
    ctx.error(path, `unknown connection "${name}"${known.length ? `; defined: ${known.join(', ')}` : ' (no connections are defined)'}`, 'ref.connection');
  } else if (c.type !== type) ctx.error(path, `connection "${name}" is a ${c.type} connection, expected ${type}`, 'ref.connection');
}

export type Dialect = 'mysql' | 'postgres' | 'sqlite';

export function dialectOf(url: string): Dialect | undefined {
  if (/^(mysql|mariadb):\/\//i.test(url)) return 'mysql';
  if (/^postgres(ql)?:\/\//i.test(url)) return 'postgres';
  if (/^sqlite:/i.test(url) || /\.(db|sqlite3?)$/i.test(url)) return 'sqlite';
  return undefined;
}

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
 */
export async function openKnex(url: string, specDir: string, pool = 4): Promise<{ db: Knex; dialect: Dialect }> {
  const dialect = dialectOf(url);
  if (dialect === 'mysql') {
    const u = new URL(url.replace(/^mariadb:/i, 'mysql:'));
    const db = knexFactory({
      client: 'mysql2',
      connection: {
        host: u.hostname, port: Number(u.port || 3306), user: decodeURIComponent(u.username),
        password: decodeURIComponent(u.password), database: u.pathname.slice(1), dateStrings: true,
        supportBigNumbers: true, bigNumberStrings: true, timezone: 'Z',
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
    return { db: knexFactory({ client: 'better-sqlite3', connection: { filename: file }, useNullAsDefault: true, log: knexLog }), dialect };
  }
  throw new Error(`unsupported database URL ${redact(url)} (expected mysql://, mariadb://, postgres:// or sqlite:)`);
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST', 'ER_CON_COUNT_ERROR', 'ER_SERVER_SHUTDOWN', 'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT',
  '57P01', '57P02', '57P03', '53300', '40001', '40P01', 'SQLITE_BUSY',
]);

/**
 * Whether an error may go away by itself (a server restarting, a connection
 * dropped, a deadlock); a missing table or a syntax error will not.
 */
export function isTransient(e: unknown): boolean {
  const err = e as { code?: string; errno?: string; message?: string; name?: string; cause?: unknown; retriable?: boolean } | null;
  if (!err) return false;
  if (err.name === 'KafkaJSSASLAuthenticationError' || /authentication failed|access denied|password authentication/i.test(err.message ?? '')) return false;
  if (err.code && TRANSIENT_CODES.has(err.code)) return true;
  // Kafka says so itself: a leader moving, a topic just created and not yet known to every
  // broker (UNKNOWN_TOPIC_OR_PARTITION), a coordinator loading; also when kafkajs gave up
  // its own retries of such an error.
  if (err.name === 'KafkaJSProtocolError' && err.retriable === true) return true;
  if (err.name === 'KafkaJSNumberOfRetriesExceeded' && err.cause && err.cause !== e) return isTransient(err.cause);
  return /connect|connection|timeout|terminated|not available|leader|coordinator|broker|does not host this topic-partition|metadata/i.test(err.message ?? '');
}

/**
 * Retries `fn` while its error is transient (a server restarting or
 * unreachable, a dropped connection, a deadlock), with exponential backoff
 * up to `maxDelay`, for as long as it takes: a streaming job outlives a
 * database or broker outage. Stops when `signal` aborts (SIGINT/SIGTERM,
 * `--timeout`). Each failed attempt is one log line (at `level`: `debug`
 * for races that settle by themselves, such as a topic just created); the
 * recovery is another.
 */
export async function withRetry<T>(what: string, log: Logger, signal: AbortSignal, fn: () => Promise<T>, maxDelay = 10_000, level: 'warn' | 'debug' = 'warn'): Promise<T> {
  let delay = 250;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await fn();
      if (attempt > 1) log[level === 'warn' ? 'info' : 'debug'](`${what}: works again after ${attempt - 1} failed attempt(s) over ${((Date.now() - started) / 1000).toFixed(1)} s`);
      waiting.delete(what);
      return r;
    } catch (e) {
      if (signal.aborted || !isTransient(e)) { waiting.delete(what); throw e; }
      const reason = redact((e as Error).message);
      waiting.set(what, reason);
      log[level](`${what} failed (${reason}); retrying in ${delay} ms`);
      await sleep(delay, signal);
      if (signal.aborted) { waiting.delete(what); throw e; }
      delay = Math.min(delay * 2, maxDelay);
    }
  }
}

/** What is being retried right now, and why (for `--timeout`'s message). */
export const waiting = new Map<string, string>();

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener('abort', done); resolve(); }
    signal?.addEventListener('abort', done, { once: true });
  });
}

const { Kafka, logLevel } = kafkajs;

/** TLS and SASL settings of a Kafka connection, files read (plain data: it crosses to the fetch thread). */
export interface KafkaSecurity {
  ssl?: boolean | { ca?: string[]; cert?: string; key?: string; rejectUnauthorized?: boolean };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

export interface KafkaConn {
  brokers: string;
  clientId?: string;
  security?: KafkaSecurity;
  /** Names the connection and where its brokers came from, for messages: `connection "kafka" (brokers from \${KAFKA_BROKERS})`. */
  label?: string;
}

/** A Kafka connection of the spec, ready for kafkaClient. */
export function kafkaConn(ctx: Pick<RunContext, 'connections' | 'specDir' | 'connectionLabels'>, name: string): KafkaConn {
  const c = connection(ctx, name);
  const read = (f: string | undefined) => (f === undefined ? undefined : fs.readFileSync(path.resolve(ctx.specDir, f), 'utf8'));
  const security: KafkaSecurity = {};
  if (c.tls === true) security.ssl = true;
  else if (c.tls && typeof c.tls === 'object') {
    const ca = read(c.tls.ca);
    security.ssl = { ...(ca ? { ca: [ca] } : {}), cert: read(c.tls.cert), key: read(c.tls.key), rejectUnauthorized: c.tls.rejectUnauthorized ?? true };
  }
  if (c.sasl) security.sasl = { mechanism: c.sasl.mechanism, username: c.sasl.username, password: c.sasl.password };
  return { brokers: c.brokers!, clientId: c.clientId, security, label: ctx.connectionLabels?.[name] ?? `connection "${name}"` };
}

/** What a retry line calls connecting to a Kafka cluster: where, and which setting says so. */
export const kafkaWhere = (conn: KafkaConn) => `Kafka at ${conn.brokers}${conn.label ? ` (${conn.label})` : ''}`;

/** The same for a database: its URL (password masked) and the setting. */
export function sqlWhere(ctx: Pick<RunContext, 'connections' | 'connectionLabels'>, name: string): string {
  return `${redact(connection(ctx, name).url ?? '')} (${ctx.connectionLabels?.[name] ?? `connection "${name}"`})`;
}

/** What failed, said without the secret: a refused login is not retried. */
export function kafkaAuthError(e: unknown, conn: KafkaConn): Error | undefined {
  const err = e as Error;
  if (err?.name !== 'KafkaJSSASLAuthenticationError' && !/SASL .*authentication failed/i.test(err?.message ?? '')) return undefined;
  const s = conn.security?.sasl;
  return new Error(`Kafka at ${conn.brokers} refused the login of user "${s?.username}" (${s?.mechanism?.toUpperCase()}): wrong username or password? (${redact(err.message)})`);
}

/** How long a repeated kafkajs error stays at debug after it was shown once. */
const REPEAT_QUIET_MS = 30_000;
/** kafkajs errors shown lately, whichever client (a retry often makes a new one). */
const shown = new Map<string, { at: number; repeats: number }>();

/**
 * A kafkajs client whose log lines go through our logger (redacted, one
 * line each). An error kafkajs repeats (every retry of a dead broker) is
 * shown once, then at most every 30 s with a count; our own retry lines
 * say what is waited for.
 */
export function kafkaClient(conn: KafkaConn, log: Logger): kafkajs.Kafka {
  process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1';
  return new Kafka({
    clientId: conn.clientId ?? 'salespipe',
    brokers: conn.brokers.split(',').map((b) => b.trim()).filter(Boolean),
    // Copies: kafkajs adds functions to the objects it is given, and `conn` must stay plain data
    // (it is sent to the fetch thread).
    ...(conn.security?.ssl ? { ssl: typeof conn.security.ssl === 'object' ? { ...conn.security.ssl } : true } : {}),
    ...(conn.security?.sasl ? { sasl: { ...conn.security.sasl } as kafkajs.SASLOptions } : {}),
    logLevel: logLevel.WARN,
    // Few retries inside kafkajs (about 2 s): our own retries (withRetry) then take over, with a
    // line per attempt naming the connection, for as long as it takes. Producers set their own.
    retry: { retries: 3, initialRetryTime: 300, maxRetryTime: 2_000 },
    logCreator: () => ({ level, log: entry }) => {
      const msg = `kafka${conn.label ? ` (${conn.label})` : ''}: ${entry.message}${entry.error ? ` (${entry.error})` : ''}`;
      // Chatter kafkajs handles itself: the coordinator loading at start-up, a second line
      // repeating a connection error, a socket closed while we shut down, a group rebalancing;
      // a fenced producer (the flow says so itself, once).
      if (level > logLevel.ERROR || /coordinator is (loading|not available)|not the correct coordinator|Topic creation errors|SaslAuthenticate|SASL \w+ authentication failed|Failed to connect to seed broker|write after end|old epoch|concurrent operation on the same transaction|group is rebalancing|rejoin is needed|does not host this topic-partition|no leader for this topic-partition|There is no leader/i.test(msg)) return log.debug(msg);
      const key = msg.replace(/\d+/g, '#');
      const now = Date.now();
      const s = shown.get(key);
      if (s && now - s.at < REPEAT_QUIET_MS) { s.repeats++; return log.debug(msg); }
      shown.set(key, { at: now, repeats: 0 });
      log.warn(s?.repeats ? `${msg} (and ${s.repeats} time(s) more in the last ${Math.round((now - s.at) / 1000)} s)` : msg);
    },
  });
}

export interface ConnectionConfig {
  type: string; url?: string; brokers?: string; clientId?: string; topicPrefix?: string; pool?: number;
  tls?: boolean | { ca?: string; cert?: string; key?: string; rejectUnauthorized?: boolean };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

export function connection(ctx: Pick<RunContext, 'connections'>, name: string): ConnectionConfig {
  const c = ctx.connections[name];
  if (!c) throw new Error(`unknown connection ${name}`);
  return c as ConnectionConfig;
}

/** The topic's name on the cluster (with the connection's prefix). */
export const topicName = (conn: ConnectionConfig, topic: string) => `${conn.topicPrefix ?? ''}${topic}`;

/** Identifies a topic across connections, for ordering connected flows. */
export function topicId(connections: Record<string, { type: string }>, name: string, topic: string): string[] {
  const c = connections[name] as ConnectionConfig | undefined;
  return c ? [`${c.brokers}|${topicName(c, topic)}`] : [];
}
