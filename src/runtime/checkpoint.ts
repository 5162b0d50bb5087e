/**
 * @module Checkpoints as JSON; local ones are one file per flow, replaced atomically
 * (flows writing to Kafka keep theirs in Kafka: kafka-checkpoint.ts).
 *
 * Rules: written to a temporary name, fsynced, renamed over the previous
 * checkpoint, directory fsynced; a reader sees the old or the new one,
 * never a mix. BigInt values (exact sums past 2^53) round-trip.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface Checkpoint {
  version: 1;
  epoch: number;
  source: unknown;
  steps: unknown[];
  sinks: unknown[];
  deadLetter: unknown;
  late?: unknown;
  at: string;
  /** Which process wrote it (checkpoints kept in Kafka: tells another instance's from ours). */
  writer?: string;
  /** Counts since the flow first ran (or was reset), for `salespipe status`. */
  totals?: Totals;
  /** Written by `salespipe reset`: positions (and, unless `positionsOnly`, operator state) dropped. */
  reset?: { at: string; positionsOnly: boolean };
}

export interface Totals {
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
  late: number;
}

export const ZERO_TOTALS: Totals = { recordsIn: 0, recordsOut: 0, deadLetters: 0, late: 0 };

export const replacer = (_k: string, v: unknown) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v);
export const reviver = (_k: string, v: unknown) =>
  v && typeof v === 'object' && '$bigint' in (v as object) ? BigInt((v as { $bigint: string }).$bigint) : v;

export function readCheckpoint(file: string): Checkpoint | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return parseCheckpoint(text, file);
}

export function parseCheckpoint(text: string, where = 'checkpoint'): Checkpoint {
  const cp = JSON.parse(text, reviver) as Checkpoint;
  if (cp.version !== 1) throw new Error(`${where} has unknown version ${cp.version}`);
  return cp;
}

export const serializeCheckpoint = (cp: Checkpoint): string => JSON.stringify(cp, replacer);

/** Writes `cp` to `file` atomically; returns its size in bytes. */
export function writeCheckpoint(file: string, cp: Checkpoint): number {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w');
  const bytes = Buffer.from(serializeCheckpoint(cp), 'utf8');
  try {
    fs.writeSync(fd, bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  try {
    const dfd = fs.openSync(path.dirname(file), 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // fsync of a directory is not supported everywhere; the rename itself is atomic.
  }
  return bytes.length;
}
