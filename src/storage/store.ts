/**
 * @module Where a dataset lives: a local folder, an S3 prefix or an HDFS
 * folder, behind one small interface that the Parquet sink, source,
 * backfill and compaction share.
 *
 * Rules:
 * - Keys are relative to the dataset's root, `/`-separated
 *   (`sale_date=2026-01-01/part-….parquet`). Names starting with `.` or
 *   `_` (staging, journals, writers' markers) are not part of the dataset,
 *   as Hive, DuckDB and pyarrow agree; `list` returns them too.
 * - `stage` puts an object where readers cannot see it and `publish` makes
 *   it visible whole, once, idempotently: a second publish of the same
 *   staged object (a recovery repeating a commit) changes nothing. How:
 *   - local disk and HDFS: a hidden file beside the final one, renamed onto
 *     it (atomic, replacing: POSIX rename, WebHDFS RENAME with OVERWRITE);
 *   - S3: a multipart upload of the final key, its one part uploaded, then
 *     completed; an upload that is already completed is recognised by the
 *     stage tag in the object's metadata.
 *   A staged object's ticket (`Staged`) is JSON and goes into checkpoints.
 * - `put` writes an object whole and visibly (markers, journals, the
 *   compacted files' manifests); `atomicDirRename` tells whether a whole
 *   folder can be swapped by rename (local, HDFS) or not (S3).
 * - Calls that fail for a reason that goes away (a 5xx, throttling, a
 *   refused or dropped connection, a timeout) are retried with backoff, one
 *   line per attempt, for as long as it takes; a wrong key or secret fails
 *   at once with a message naming the connection (never the secret).
 */
import path from 'node:path';
import type { Logger } from '../core/log.js';
import type { Connections } from '../connections/config.js';

export interface Entry {
  key: string;
  size: number;
  /** Last modified, ms since the epoch. */
  mtime: number;
}

/** A staged object: enough to publish it or throw it away, after a crash too. */
export interface Staged {
  /** The key it is published as. */
  key: string;
  /** Local/HDFS: the hidden key it waits under; S3: the multipart upload id. */
  id: string;
  /** S3: the uploaded part's ETag. */
  etag?: string;
  /** Unique per staged object (S3: stored in its metadata). */
  tag: string;
}

export interface Store {
  /** The dataset's location for messages, e.g. `s3://bucket/prefix (connection "archive")`; never a credential. */
  readonly where: string;
  /** Folders can be swapped whole by rename (local disk, HDFS); not on S3. */
  readonly atomicDirRename: boolean;
  /** Local disk: the dataset's folder (readers open files in place). */
  readonly localDir?: string;
  /** Makes the dataset's root exist (local, HDFS) or checks that it can be reached (S3: the bucket, the credentials). */
  init(): Promise<void>;
  /** Every object under `prefix` (a folder key, '' for all), any depth, hidden names included, in no particular order. */
  list(prefix?: string): Promise<Entry[]>;
  exists(key: string): Promise<boolean>;
  read(key: string): Promise<Uint8Array>;
  /** Copies an object to a local file, streamed. */
  download(key: string, file: string): Promise<void>;
  /** Writes an object whole and visibly, replacing any. */
  put(key: string, bytes: Uint8Array): Promise<void>;
  /** Deletes an object; a missing one is not an error. */
  remove(key: string): Promise<void>;
  /** Deletes a folder and everything under it. */
  removeDir(prefix: string): Promise<void>;
  /** Renames a folder (atomicDirRename stores only); the target's parent is created. */
  renameDir(from: string, to: string): Promise<void>;
  stage(key: string, bytes: Uint8Array, tag: string): Promise<Staged>;
  publish(s: Staged): Promise<void>;
  /** Staged objects under `prefix` not published (nor discarded) yet. */
  staged(prefix?: string): Promise<Staged[]>;
  discard(s: Staged): Promise<void>;
  close(): Promise<void>;
}

export interface StoreContext {
  connections: Connections;
  connectionLabels?: Record<string, string>;
  specDir: string;
  log: Logger;
  signal: AbortSignal;
}

export type Location =
  | { kind: 'local'; dir: string }
  | { kind: 's3'; bucket: string; prefix: string; connection?: string }
  | { kind: 'hdfs'; path: string; connection?: string; address?: string };

/** The scheme of a dataset path: local unless it starts with s3://, hdfs:// or webhdfs://. */
export function schemeOf(p: string): 'local' | 's3' | 'hdfs' {
  if (/^s3a?:\/\//i.test(p)) return 's3';
  if (/^(web)?hdfs:\/\//i.test(p)) return 'hdfs';
  return 'local';
}

/**
 * Where `p` (a sink's or source's `path`) is; `connection` names the
 * spec's s3/hdfs connection that reaches it. Without one, an s3:// path is
 * reached through the AWS environment (AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL, AWS_REGION, the default credential chain) and a
 * webhdfs://host:port/path through that address as HADOOP_USER_NAME; an
 * hdfs:// path needs a connection (its port is the NameNode's RPC port, not
 * WebHDFS's). A problem is returned as text.
 */
export function locate(p: string, connection: string | undefined, specDir: string): Location | string {
  const scheme = schemeOf(p);
  if (scheme === 'local') {
    if (connection !== undefined) return `connection is for s3:// and hdfs:// paths; "${p}" is a local path`;
    return { kind: 'local', dir: path.resolve(specDir, p) };
  }
  const u = /^[a-z0-9]+:\/\/([^/]*)(\/.*)?$/i.exec(p);
  if (!u) return `cannot read "${p}" as a location`;
  const rest = (u[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (scheme === 's3') {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(u[1])) return `"${u[1]}" is not a valid S3 bucket name`;
    return { kind: 's3', bucket: u[1], prefix: rest, connection };
  }
  if (!rest) return `"${p}": give a folder below the root`;
  const web = /^webhdfs:/i.test(p);
  if (connection === undefined && !(web && u[1]))
    return `an hdfs:// path needs connection: an hdfs connection with the NameNode's WebHDFS url (or write webhdfs://host:port/path)`;
  return { kind: 'hdfs', path: '/' + rest, connection, ...(web && u[1] ? { address: `http://${u[1]}` } : {}) };
}

/** Joins keys with `/`. */
export const joinKey = (...parts: string[]) => parts.filter(Boolean).join('/');

/** Whether a key is part of the dataset as readers see it (no segment starts with `.` or `_`). */
export const visible = (key: string) => !key.split('/').some((s) => /^[._]/.test(s));

/** Opens the store of a location (the client library loads here, not at plan time); `what` names the output in local errors. */
export async function openStore(loc: Location, ctx: StoreContext, what?: string): Promise<Store> {
  if (loc.kind === 'local') return new (await import('./local.js')).LocalStore(loc.dir, what);
  const label =
    loc.connection === undefined
      ? loc.kind === 's3'
        ? 'the AWS environment'
        : 'HADOOP_USER_NAME'
      : (ctx.connectionLabels?.[loc.connection] ?? `connection "${loc.connection}"`);
  const conn = loc.connection === undefined ? { type: loc.kind } : (ctx.connections[loc.connection] as Record<string, unknown> | undefined);
  if (!conn) throw new Error(`unknown connection ${loc.connection}`);
  if (loc.kind === 's3') return new (await import('./s3.js')).S3Store(loc, conn as never, label, ctx);
  return new (await import('./hdfs.js')).HdfsStore(loc, conn as never, label, ctx);
}

/** A store failure that no retry mends (wrong credentials, a missing bucket): the run stops with this message. */
export class StoreError extends Error {
  readonly transient = false;
}

/** A publish whose staged object is gone and whose final object is not it (the output was moved or deleted meanwhile). */
export class StagedGone extends StoreError {}

/** Where a file staged for `key` waits on stores that rename (local disk, HDFS): a hidden name beside it. */
export function stagedName(key: string, tag: string): string {
  const i = key.lastIndexOf('/');
  return `${key.slice(0, i + 1)}.${key.slice(i + 1)}.${tag}.staged`;
}

/** The staged files among a listing (stagedName's names), as tickets. */
export function stagedIn(entries: Entry[]): Staged[] {
  const out: Staged[] = [];
  for (const e of entries) {
    const m = /^(.*?)\.([^/]+)\.([^./]+)\.staged$/.exec(e.key);
    if (m && (m[1] === '' || m[1].endsWith('/'))) out.push({ key: m[1] + m[2], id: e.key, tag: m[3] });
  }
  return out;
}
