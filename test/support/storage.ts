/**
 * The object store and HDFS of the tests (services/services.sh): S3 is
 * s3proxy on 127.0.0.1:9000, HDFS a MiniDFSCluster with WebHDFS on
 * 127.0.0.1:9870. Buckets and folders are made fresh per test.
 */
import http from 'node:http';
import { uniq } from './helpers.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const S3_ENDPOINT = 'http://127.0.0.1:9000';
export const S3_KEY = 'salespipe';
export const S3_SECRET = 'salespipe-secret';
export const WEBHDFS = 'http://127.0.0.1:9870';

/** The environment that reaches the test S3 server without a connection in the spec (the AWS variables). */
export const S3_ENV = {
  AWS_ENDPOINT_URL: S3_ENDPOINT,
  AWS_ACCESS_KEY_ID: S3_KEY,
  AWS_SECRET_ACCESS_KEY: S3_SECRET,
  AWS_REGION: 'us-east-1',
};

/** A spec's connections block for the test servers (the secret from S3_SECRET_ACCESS_KEY). */
export const STORE_CONNECTIONS = {
  archive: { type: 's3', endpoint: S3_ENDPOINT, pathStyle: true, accessKeyId: S3_KEY, secretAccessKey: S3_SECRET },
  hadoop: { type: 'hdfs', url: WEBHDFS, user: 'salespipe' },
};

async function s3() {
  const sdk = await import('@aws-sdk/client-s3');
  return {
    sdk,
    c: new sdk.S3Client({
      endpoint: S3_ENDPOINT,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: S3_KEY, secretAccessKey: S3_SECRET },
    }),
  };
}

export async function pingS3(): Promise<void> {
  const { c, sdk } = await s3();
  try {
    await c.send(new sdk.ListBucketsCommand({}));
  } finally {
    c.destroy();
  }
}

/** A new, empty bucket. */
export async function freshBucket(): Promise<string> {
  const { c, sdk } = await s3();
  const name = `b${uniq().toLowerCase()}`;
  try {
    await c.send(new sdk.CreateBucketCommand({ Bucket: name }));
  } finally {
    c.destroy();
  }
  return name;
}

/** Multipart uploads not completed under a bucket's prefix (orphans, after a final drain). */
export async function openUploads(bucket: string, prefix = ''): Promise<string[]> {
  const { c, sdk } = await s3();
  try {
    const r = await c.send(new sdk.ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix || undefined }));
    return (r.Uploads ?? []).map((u) => u.Key!);
  } finally {
    c.destroy();
  }
}

/** Every key under a prefix. */
export async function s3Keys(bucket: string, prefix = ''): Promise<string[]> {
  const { c, sdk } = await s3();
  const out: string[] = [];
  try {
    let token: string | undefined;
    do {
      const r = await c.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: prefix || undefined, ContinuationToken: token }));
      for (const o of r.Contents ?? []) out.push(o.Key!);
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
  } finally {
    c.destroy();
  }
  return out;
}

function webhdfs(method: string, p: string, op: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(`/webhdfs/v1${p}?op=${op}&user.name=salespipe`, WEBHDFS);
    const req = http.request(u, { method }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export async function pingHdfs(): Promise<void> {
  const r = await webhdfs('GET', '/', 'GETFILESTATUS');
  if (r.status !== 200) throw new Error(`WebHDFS answered ${r.status}`);
}

/** A new HDFS folder path (not created). */
export const freshHdfsPath = () => `/t/${uniq()}`;

/** Names of the files under an HDFS folder, recursively (relative, hidden ones too). */
export async function hdfsFiles(p: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string, rel: string) => {
    const r = await webhdfs('GET', dir, 'LISTSTATUS');
    if (r.status === 404) return;
    for (const f of JSON.parse(r.body).FileStatuses.FileStatus) {
      const name = rel ? `${rel}/${f.pathSuffix}` : f.pathSuffix;
      if (f.type === 'DIRECTORY') await walk(`${dir}/${f.pathSuffix}`, name);
      else out.push(name);
    }
  };
  await walk(p, '');
  return out;
}
