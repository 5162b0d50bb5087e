/**
 * @module Waiting out servers that go away: which errors are transient, and
 * retries with backoff for as long as it takes (until stopped).
 */
import type { Logger } from '../core/log.js';
import { redact } from '../core/log.js';

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_LOCK_DEADLOCK',
  'ER_LOCK_WAIT_TIMEOUT',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '40001',
  '40P01',
  'SQLITE_BUSY',
]);

/**
 * Whether an error may go away by itself (a server restarting, a connection
 * dropped, a deadlock); a missing table or a syntax error will not.
 */
export function isTransient(e: unknown): boolean {
  const err = e as {
    code?: string;
    errno?: string;
    message?: string;
    name?: string;
    cause?: unknown;
    retriable?: boolean;
    transient?: boolean;
    status?: number;
    $metadata?: { httpStatusCode?: number };
  } | null;
  if (!err) return false;
  if (err.transient === false) return false;
  // An object store or WebHDFS answer: 5xx, throttling and timeouts pass; other answers (403, 404) will not.
  const status = err.$metadata?.httpStatusCode ?? err.status;
  if (status !== undefined && status > 0 && !err.code)
    return status >= 500 || status === 429 || status === 408 || /SlowDown|Throttl|RequestTimeout|TimeoutError/.test(err.name ?? '');
  if (err.name === 'TimeoutError') return true;
  if (
    err.name === 'KafkaJSSASLAuthenticationError' ||
    /authentication failed|access denied|password authentication/i.test(err.message ?? '')
  )
    return false;
  if (err.code && TRANSIENT_CODES.has(err.code)) return true;
  // Kafka says so itself: a leader moving, a topic just created and not yet known to every
  // broker (UNKNOWN_TOPIC_OR_PARTITION), a coordinator loading; also when kafkajs gave up
  // its own retries of such an error.
  if (err.name === 'KafkaJSProtocolError' && err.retriable === true) return true;
  if (err.name === 'KafkaJSNumberOfRetriesExceeded' && err.cause && err.cause !== e) return isTransient(err.cause);
  return /connect|connection|timeout|terminated|not available|leader|coordinator|broker|does not host this topic-partition|metadata/i.test(
    err.message ?? '',
  );
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
export async function withRetry<T>(
  what: string,
  log: Logger,
  signal: AbortSignal,
  fn: () => Promise<T>,
  maxDelay = 10_000,
  level: 'warn' | 'debug' = 'warn',
): Promise<T> {
  let delay = 250;
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await fn();
      if (attempt > 1)
        log[level === 'warn' ? 'info' : 'debug'](
          `${what}: works again after ${attempt - 1} failed attempt(s) over ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      waiting.delete(what);
      return r;
    } catch (e) {
      if (signal.aborted || !isTransient(e)) {
        waiting.delete(what);
        throw e;
      }
      const reason = redact((e as Error).message);
      waiting.set(what, reason);
      log[level](`${what} failed (${reason}); retrying in ${delay} ms`);
      await sleep(delay, signal);
      if (signal.aborted) {
        waiting.delete(what);
        throw e;
      }
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
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
