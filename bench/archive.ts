/**
 * `npm run bench:archive [-- ROWS]`: the sales archive (archive_sales'
 * Parquet sink, partitioned by day, an epoch every 20,000 rows) written to
 * S3 (the s3proxy of `npm run services:up`, on loopback) and to a local
 * folder, the same rows (default 1,000,000 sales over 30 days): rows/s for
 * each, their ratio, and the ratio to the same S3 client putting the same
 * files as plain objects (encoded the same way; no staging, no publish).
 * Run alone (`node dist/bench/archive.js ROWS`) it prints one JSON line.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { parquetSink } from '../src/operators/sinks/parquet/index.js';
import { toParquet } from '../src/operators/sinks/parquet/arrow-rows.js';
import { createLogger } from '../src/core/log.js';
import { rng, randomSale } from '../src/gen/generate.js';
import type { RunContext } from '../src/operators/operator.js';
import type { Row, Schema } from '../src/core/types.js';
import { HISTORY_SCHEMA } from '../src/gen/history.js';

export interface ArchiveBench {
  rows: number;
  epochs: number;
  local_rows_per_s: number;
  s3_rows_per_s: number;
  /** S3 through the sink (staged uploads, completed after each checkpoint) / the same rows to local disk. */
  s3_to_local: number;
  /** The same files encoded and PUT as plain objects with the same client (no staging, no checkpoint protocol): the store's raw speed. */
  s3_raw_put_rows_per_s: number;
  s3_to_raw: number;
}

const EPOCH = 20_000;
const S3 = {
  type: 's3',
  endpoint: 'http://127.0.0.1:9000',
  pathStyle: true,
  accessKeyId: 'salespipe',
  secretAccessKey: 'salespipe-secret',
};

/** The archive flow's dataset (gen/history.ts's columns), with the day it is partitioned by. */
const schema: Schema = [...HISTORY_SCHEMA, { name: 'sale_date', type: { kind: 'string', nullable: false } }];

function sales(n: number): Row[] {
  const r = rng(7);
  const t0 = Date.UTC(2026, 0, 1);
  return Array.from({ length: n }, (_, i) => {
    const s = randomSale(r, t0 + Math.floor((i / n) * 30 * 86_400_000));
    const price = Math.round(Number(s.price_per_unit) * 100);
    return {
      transaction_id: i + 1,
      product_name: s.product_name,
      product_category: s.product_category,
      brand: s.brand,
      quantity_sold: s.quantity_sold,
      price_per_unit: price,
      transaction_date: Date.parse(String(s.transaction_date).replace(' ', 'T') + 'Z'),
      customer_id: s.customer_id,
      product_id: s.product_id,
      revenue: price * s.quantity_sold,
      sale_date: String(s.transaction_date).slice(0, 10),
    } as Row;
  });
}

async function viaSink(rows: Row[], p: string, connections: RunContext['connections']): Promise<number> {
  const ctx: RunContext = {
    pipeline: 'bench',
    flow: 'archive',
    stateDir: os.tmpdir(),
    specDir: os.tmpdir(),
    timeZone: 'UTC',
    drain: true,
    log: createLogger(() => undefined),
    signal: new AbortController().signal,
    connections,
    upstreamDone: Promise.resolve(),
    output: { write: () => undefined, isTTY: false },
  };
  const cfg = {
    type: 'parquet' as const,
    path: p,
    connection: p.startsWith('s3:') ? 'archive' : undefined,
    partitionBy: ['sale_date'],
    compression: 'zstd' as const,
    rollRows: 500000,
  };
  const planned = parquetSink.plan(cfg as never, { mode: 'append', schema }, { connections, error() {}, warn() {} } as never)!;
  const sink = parquetSink.create(planned, ctx);
  const t0 = process.hrtime.bigint();
  await sink.open(undefined, 0);
  let epoch = 0;
  for (let i = 0; i < rows.length; i += EPOCH) {
    await sink.write(rows.slice(i, i + EPOCH));
    const state = await sink.preCommit(++epoch);
    await sink.commit(epoch, state);
  }
  await sink.close();
  return rows.length / (Number(process.hrtime.bigint() - t0) / 1e9);
}

/** The S3 client the bench measures with, on the test server. */
async function s3Client() {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const sdk = await import('@aws-sdk/client-s3');
  const c = new sdk.S3Client({
    endpoint: S3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3.accessKeyId, secretAccessKey: S3.secretAccessKey },
  });
  return { sdk, c };
}

async function rawPuts(rows: Row[], bucket: string): Promise<number> {
  const { sdk, c } = await s3Client();
  const fileSchema = schema.filter((f) => f.name !== 'sale_date');
  // The same files the sink writes (one per day per epoch), encoded and put one by one as plain objects.
  const t0 = process.hrtime.bigint();
  let k = 0;
  for (let i = 0; i < rows.length; i += EPOCH) {
    const byDay = new Map<unknown, Row[]>();
    for (const r of rows.slice(i, i + EPOCH)) (byDay.get(r.sale_date) ?? byDay.set(r.sale_date, []).get(r.sale_date)!).push(r);
    for (const day of byDay.values())
      await c.send(new sdk.PutObjectCommand({ Bucket: bucket, Key: `raw/f${k++}.parquet`, Body: toParquet(fileSchema, day) }));
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  c.destroy();
  return rows.length / secs;
}

export async function runArchiveBench(n: number): Promise<ArchiveBench> {
  const rows = sales(n);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salespipe-bench-archive-'));
  const bucket = `bench-${Date.now().toString(36)}`;
  const { sdk, c } = await s3Client();
  await c.send(new sdk.CreateBucketCommand({ Bucket: bucket }));
  try {
    const local = await viaSink(rows, path.join(dir, 'sales_history'), {});
    const s3 = await viaSink(rows, `s3://${bucket}/sales_history`, { archive: S3 });
    const raw = await rawPuts(rows, bucket);
    return {
      rows: n,
      epochs: Math.ceil(n / EPOCH),
      local_rows_per_s: Math.round(local),
      s3_rows_per_s: Math.round(s3),
      s3_to_local: Number((s3 / local).toFixed(3)),
      s3_raw_put_rows_per_s: Math.round(raw),
      s3_to_raw: Number((s3 / raw).toFixed(3)),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    // The bench's objects are left to s3proxy's folder of the bucket: delete them.
    let token: string | undefined;
    do {
      const page = await c.send(new sdk.ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      for (const o of page.Contents ?? []) await c.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    await c.send(new sdk.DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
    c.destroy();
  }
}

/** The bench in a process of its own (its memory apart from the caller's). */
export function archiveBench(rows: number): ArchiveBench {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), String(rows)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`archive bench failed (is S3 up? npm run services:up): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(JSON.stringify(await runArchiveBench(Number(process.argv[2] ?? 1_000_000))));
}
