/**
 * @module Kafka clients (kafkajs) for the spec's connections: TLS, SASL,
 * log lines through our logger, refused logins told apart.
 */
import fs from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import type { Logger } from '../core/log.js';
import { redact } from '../core/log.js';
import { connection, Connections } from './config.js';
import { parseDuration } from '../core/time.js';
import { sleep, withRetry } from './retry.js';

/** kafkajs's own default is 30 s; a killed flow's partitions then wait that long. */
export const DEFAULT_SESSION_TIMEOUT_MS = 10_000;

const { Kafka, logLevel } = kafkajs;

/** TLS and SASL settings of a Kafka connection, files read (plain data: it crosses to the fetch thread). */
export interface KafkaSecurity {
  ssl?: boolean | { ca?: string[]; cert?: string; key?: string; rejectUnauthorized?: boolean };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

export interface KafkaConn {
  brokers: string;
  clientId?: string;
  /** Consumer-group session timeout (ms) of the groups salespipe joins on this connection. */
  sessionTimeoutMs: number;
  security?: KafkaSecurity;
  /** Names the connection and where its brokers came from, for messages: `connection "kafka" (brokers from \${KAFKA_BROKERS})`. */
  label?: string;
}

/** A Kafka connection of the spec, ready for kafkaClient. */
export function kafkaConn(
  ctx: { connections: Connections; specDir: string; connectionLabels?: Record<string, string> },
  name: string,
): KafkaConn {
  const c = connection(ctx, name);
  const read = (f: string | undefined) => (f === undefined ? undefined : fs.readFileSync(path.resolve(ctx.specDir, f), 'utf8'));
  const security: KafkaSecurity = {};
  if (c.tls === true) security.ssl = true;
  else if (c.tls && typeof c.tls === 'object') {
    const ca = read(c.tls.ca);
    security.ssl = {
      ...(ca ? { ca: [ca] } : {}),
      cert: read(c.tls.cert),
      key: read(c.tls.key),
      rejectUnauthorized: c.tls.rejectUnauthorized ?? true,
    };
  }
  if (c.sasl) security.sasl = { mechanism: c.sasl.mechanism, username: c.sasl.username, password: c.sasl.password };
  return {
    brokers: c.brokers!,
    clientId: c.clientId,
    sessionTimeoutMs: (c.sessionTimeout === undefined ? undefined : parseDuration(c.sessionTimeout)) ?? DEFAULT_SESSION_TIMEOUT_MS,
    security,
    label: ctx.connectionLabels?.[name] ?? `connection "${name}"`,
  };
}

/** What a retry line calls connecting to a Kafka cluster: where, and which setting says so. */
export const kafkaWhere = (conn: KafkaConn) => `Kafka at ${conn.brokers}${conn.label ? ` (${conn.label})` : ''}`;

/** What failed, said without the secret: a refused login is not retried. */
export function kafkaAuthError(e: unknown, conn: KafkaConn): Error | undefined {
  const err = e as Error;
  if (err?.name !== 'KafkaJSSASLAuthenticationError' && !/SASL .*authentication failed/i.test(err?.message ?? '')) return undefined;
  const s = conn.security?.sasl;
  return new Error(
    `Kafka at ${conn.brokers} refused the login of user "${s?.username}" (${s?.mechanism?.toUpperCase()}): wrong username or password? (${redact(err.message)})`,
  );
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
    brokers: conn.brokers
      .split(',')
      .map((b) => b.trim())
      .filter(Boolean),
    // Copies: kafkajs adds functions to the objects it is given, and `conn` must stay plain data
    // (it is sent to the fetch thread).
    ...(conn.security?.ssl ? { ssl: typeof conn.security.ssl === 'object' ? { ...conn.security.ssl } : true } : {}),
    ...(conn.security?.sasl ? { sasl: { ...conn.security.sasl } as kafkajs.SASLOptions } : {}),
    logLevel: logLevel.WARN,
    // Few retries inside kafkajs (about 2 s): our own retries (withRetry) then take over, with a
    // line per attempt naming the connection, for as long as it takes. Producers set their own.
    retry: { retries: 3, initialRetryTime: 300, maxRetryTime: 2_000 },
    logCreator:
      () =>
      ({ level, log: entry }) => {
        const msg = `kafka${conn.label ? ` (${conn.label})` : ''}: ${entry.message}${entry.error ? ` (${entry.error})` : ''}`;
        // Chatter kafkajs handles itself: the coordinator loading at start-up, a second line
        // repeating a connection error, a socket closed while we shut down, a group rebalancing;
        // a fenced producer (the flow says so itself, once).
        if (
          level > logLevel.ERROR ||
          /coordinator is (loading|not available)|not the correct coordinator|Topic creation errors|SaslAuthenticate|SASL \w+ authentication failed|Failed to connect to seed broker|write after end|old epoch|concurrent operation on the same transaction|group is rebalancing|rejoin is needed|does not host this topic-partition|no leader for this topic-partition|There is no leader/i.test(
            msg,
          )
        )
          return log.debug(msg);
        const key = msg.replace(/\d+/g, '#');
        const now = Date.now();
        const s = shown.get(key);
        if (s && now - s.at < REPEAT_QUIET_MS) {
          s.repeats++;
          return log.debug(msg);
        }
        shown.set(key, { at: now, repeats: 0 });
        log.warn(s?.repeats ? `${msg} (and ${s.repeats} time(s) more in the last ${Math.round((now - s.at) / 1000)} s)` : msg);
      },
  });
}

/**
 * Waits for `topic` to exist (an upstream flow or a producer creates it),
 * saying so once; false if the run stops first, or if a drain finds none
 * once its upstream flows are done.
 */
export async function waitForTopic(
  admin: kafkajs.Admin,
  topic: string,
  where: string,
  log: Logger,
  run: { signal: AbortSignal; drain: boolean; upstreamDone: Promise<void> },
): Promise<boolean> {
  let logged = false;
  for (;;) {
    if ((await withRetry(`listing the topics of ${where}`, log, run.signal, () => admin.listTopics())).includes(topic)) return true;
    if (run.drain) {
      await run.upstreamDone;
      if ((await admin.listTopics()).includes(topic)) continue;
      return false;
    }
    if (run.signal.aborted) return false;
    if (!logged) log.info(`waiting for topic ${topic} to be created`);
    logged = true;
    await sleep(2000, run.signal);
  }
}
