/**
 * @module Plain log lines on stderr, with secrets redacted.
 *
 * Rules: one line per event, `time level [flow] message`; nothing a spec
 * marks as secret, and no password inside a URL, ever reaches the output.
 */

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LEVELS = Object.keys(ORDER) as Level[];

/** SALESPIPE_LOG_LEVEL, or info; the CLI rejects other values before anything runs. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): Level {
  const v = env.SALESPIPE_LOG_LEVEL?.toLowerCase();
  return v && v in ORDER ? (v as Level) : 'info';
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  child(scope: string): Logger;
}

const secrets = new Set<string>();

/** Lets a live spinner step aside while a log line is written (progress.ts). */
export const logHooks: { around: ((write: () => void) => void) | null } = { around: null };

/** Registers a value (e.g. from `${PASSWORD}`) that must never be printed. */
export function addSecret(v: string): void {
  if (v.length >= 3) secrets.add(v);
}

/** Masks URL credentials and registered secrets. */
export function redact(text: string): string {
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/[^/:@\s]*:)([^@\s/]+)@/gi, '$1***@');
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}

export function createLogger(
  write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  level: Level = logLevelFromEnv(),
  scope = '',
): Logger {
  const emit = (lv: Level, msg: string) => {
    if (ORDER[lv] < ORDER[level]) return;
    const line = redact(`${new Date().toISOString()} ${lv.toUpperCase().padEnd(5)} ${scope ? `[${scope}] ` : ''}${msg}`);
    if (logHooks.around) logHooks.around(() => write(line));
    else write(line);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    child: (s) => createLogger(write, level, scope ? `${scope}/${s}` : s),
  };
}
