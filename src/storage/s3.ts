/**
 * @module A dataset under an S3 prefix (store.ts), through
 * `@aws-sdk/client-s3`.
 *
 * Rules:
 * - A staged object is a multipart upload of its final key with its one
 *   part uploaded: nothing is visible until CompleteMultipartUpload, which
 *   makes the whole object visible at once (replacing an older one). The
 *   upload carries `x-amz-meta-salespipe-stage: <tag>`; a publish whose
 *   upload is gone (completed before a crash) checks that the object there
 *   carries that tag, so a repeated publish is recognised and a lost one is
 *   an error, never silence.
 * - Uploads not yet completed are listed (ListMultipartUploads, paged) so a
 *   restart aborts the ones its checkpoint does not name: no orphan parts
 *   are left to be billed.
 * - Listing is ListObjectsV2, paged (1,000 keys a page).
 * - Credentials: the connection's accessKeyId/secretAccessKey (the secret
 *   always from the environment), else the AWS SDK's default chain
 *   (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, instance roles).
 *   The endpoint: the connection's, else AWS_ENDPOINT_URL_S3 or
 *   AWS_ENDPOINT_URL, else AWS's; path-style addressing when the connection
 *   says so, and by default for an endpoint given as an IP or localhost.
 * - The SDK's own retries are off: every failed attempt is retried here,
 *   with a line saying so (retry.ts); a refused signature, an unknown key or
 *   a missing bucket is a StoreError at once.
 */
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { withRetry } from '../connections/retry.js';
import { Entry, Staged, StagedGone, Store, StoreContext, StoreError, joinKey } from './store.js';

export interface S3Connection {
  type: 's3';
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
}

const AUTH = new Set([
  'SignatureDoesNotMatch',
  'InvalidAccessKeyId',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
  'CredentialsProviderError',
]);

// The version is pinned in package.json: the SDK's note that later releases need Node 22 asks nothing of the user.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export class S3Store implements Store {
  readonly atomicDirRename = false;
  readonly where: string;
  private client?: import('@aws-sdk/client-s3').S3Client;
  private sdk?: typeof import('@aws-sdk/client-s3');
  private bucket: string;
  private root: string;

  constructor(
    loc: { bucket: string; prefix: string },
    private conn: S3Connection,
    private label: string,
    private ctx: StoreContext,
  ) {
    this.bucket = loc.bucket;
    this.root = loc.prefix;
    this.where = `s3://${loc.bucket}/${loc.prefix} (${label})`;
  }

  private async s3() {
    if (this.client) return { c: this.client, sdk: this.sdk! };
    this.sdk = await import('@aws-sdk/client-s3');
    const c = this.conn;
    const endpoint = c.endpoint ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
    // A server addressed by IP or as localhost cannot take bucket.host names: path style.
    const local = endpoint !== undefined && /^https?:\/\/(localhost|\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\])(:\d+)?(\/|$)/i.test(endpoint);
    this.client = new this.sdk.S3Client({
      region: c.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      ...(endpoint ? { endpoint } : {}),
      forcePathStyle: c.pathStyle ?? local,
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 5000, requestTimeout: 60000 },
      ...(c.accessKeyId
        ? {
            credentials: {
              accessKeyId: c.accessKeyId,
              secretAccessKey: c.secretAccessKey ?? '',
              ...(c.sessionToken ? { sessionToken: c.sessionToken } : {}),
            },
          }
        : {}),
    });
    return { c: this.client, sdk: this.sdk };
  }

  private full(key: string) {
    return joinKey(this.root, key);
  }

  private rel(full: string) {
    return this.root ? full.slice(this.root.length + 1) : full;
  }

  /** One S3 call, retried while its failure is transient; refused credentials and a missing bucket fail at once. */
  private call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(`${this.where}: ${what}`, this.ctx.log, this.ctx.signal, async () => {
      try {
        return await fn();
      } catch (e) {
        throw this.explain(e);
      }
    });
  }

  private explain(e: unknown): unknown {
    const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    if (err?.name && AUTH.has(err.name))
      return new StoreError(
        `${this.label}: S3 refused the credentials (${err.name}${err.message ? `: ${err.message}` : ''}); check the connection's accessKeyId and secretAccessKey (or the AWS environment)`,
      );
    if (err?.name === 'NoSuchBucket') return new StoreError(`${this.label}: the bucket ${this.bucket} does not exist (${this.where})`);
    return e;
  }

  async init() {
    const { c, sdk } = await this.s3();
    await this.call('open', async () => {
      try {
        await c.send(new sdk.HeadBucketCommand({ Bucket: this.bucket }));
      } catch (e) {
        // HEAD answers carry no error code: 404 is a missing bucket, 403 refused credentials (or no right to the bucket).
        const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (status === 404) throw Object.assign(new Error('no such bucket'), { name: 'NoSuchBucket' });
        if (status === 403 || status === 401) {
          // A listing says which: a bad signature, an unknown key, or access denied.
          await c.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1 }));
        }
        throw e;
      }
    });
  }

  async list(prefix = ''): Promise<Entry[]> {
    const { c, sdk } = await this.s3();
    const out: Entry[] = [];
    const p = this.full(prefix);
    let token: string | undefined;
    do {
      const page = await this.call('list', () =>
        c.send(new sdk.ListObjectsV2Command({ Bucket: this.bucket, Prefix: p ? p + '/' : undefined, ContinuationToken: token })),
      );
      for (const o of page.Contents ?? [])
        if (o.Key && !o.Key.endsWith('/')) out.push({ key: this.rel(o.Key), size: o.Size ?? 0, mtime: o.LastModified?.getTime() ?? 0 });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async exists(key: string) {
    return (await this.head(key)) !== undefined;
  }

  private async head(key: string) {
    const { c, sdk } = await this.s3();
    return this.call(`head ${key}`, async () => {
      try {
        return await c.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
      } catch (e) {
        if ((e as { name?: string }).name === 'NotFound' || (e as { name?: string }).name === 'NoSuchKey') return undefined;
        throw e;
      }
    });
  }

  async read(key: string): Promise<Uint8Array> {
    const { c, sdk } = await this.s3();
    return this.call(`read ${key}`, async () => {
      const r = await c.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
      return r.Body!.transformToByteArray();
    });
  }

  async download(key: string, file: string) {
    const { c, sdk } = await this.s3();
    await this.call(`read ${key}`, async () => {
      const r = await c.send(new sdk.GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
      await pipeline(r.Body as Readable, fs.createWriteStream(file));
    });
  }

  async put(key: string, bytes: Uint8Array) {
    const { c, sdk } = await this.s3();
    await this.call(`write ${key}`, () => c.send(new sdk.PutObjectCommand({ Bucket: this.bucket, Key: this.full(key), Body: bytes })));
  }

  async remove(key: string) {
    const { c, sdk } = await this.s3();
    await this.call(`delete ${key}`, () => c.send(new sdk.DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(key) })));
  }

  async removeDir(prefix: string) {
    for (const e of await this.list(prefix)) await this.remove(e.key);
  }

  async renameDir(): Promise<void> {
    throw new Error(`${this.where}: S3 cannot rename a folder`);
  }

  async stage(key: string, bytes: Uint8Array, tag: string): Promise<Staged> {
    const { c, sdk } = await this.s3();
    const Key = this.full(key);
    const up = await this.call(`stage ${key}`, () =>
      c.send(new sdk.CreateMultipartUploadCommand({ Bucket: this.bucket, Key, Metadata: { 'salespipe-stage': tag } })),
    );
    const part = await this.call(`stage ${key}`, () =>
      c.send(new sdk.UploadPartCommand({ Bucket: this.bucket, Key, UploadId: up.UploadId, PartNumber: 1, Body: bytes })),
    );
    return { key, id: up.UploadId!, etag: part.ETag!, tag };
  }

  async publish(s: Staged) {
    const { c, sdk } = await this.s3();
    const Key = this.full(s.key);
    await this.call(`publish ${s.key}`, async () => {
      try {
        await c.send(
          new sdk.CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key,
            UploadId: s.id,
            MultipartUpload: { Parts: [{ PartNumber: 1, ETag: s.etag }] },
          }),
        );
      } catch (e) {
        if ((e as { name?: string }).name !== 'NoSuchUpload') throw e;
        // Completed before (a commit repeated after a crash): the object carries this upload's tag.
        const h = await c.send(new sdk.HeadObjectCommand({ Bucket: this.bucket, Key })).catch(() => undefined);
        if (h?.Metadata?.['salespipe-stage'] !== s.tag)
          throw new StagedGone(
            `${this.where}: the staged upload of ${s.key} (${s.tag}) is gone and the object there is not it: something aborted it (a lifecycle rule on incomplete uploads?)`,
          );
      }
    });
  }

  async staged(prefix = ''): Promise<Staged[]> {
    const { c, sdk } = await this.s3();
    const out: Staged[] = [];
    const p = this.full(prefix);
    let keyMarker: string | undefined, idMarker: string | undefined;
    for (;;) {
      const page = await this.call('list uploads', () =>
        c.send(
          new sdk.ListMultipartUploadsCommand({
            Bucket: this.bucket,
            Prefix: p ? p + '/' : undefined,
            KeyMarker: keyMarker,
            UploadIdMarker: idMarker,
          }),
        ),
      );
      for (const u of page.Uploads ?? []) if (u.Key && u.UploadId) out.push({ key: this.rel(u.Key), id: u.UploadId, tag: '' });
      if (!page.IsTruncated) break;
      keyMarker = page.NextKeyMarker;
      idMarker = page.NextUploadIdMarker;
    }
    return out;
  }

  async discard(s: Staged) {
    const { c, sdk } = await this.s3();
    await this.call(`abort ${s.key}`, async () => {
      try {
        await c.send(new sdk.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.full(s.key), UploadId: s.id }));
      } catch (e) {
        if ((e as { name?: string }).name !== 'NoSuchUpload') throw e;
      }
    });
  }

  async close() {
    this.client?.destroy();
  }
}
