import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { locate, schemeOf, visible } from '../../../src/storage/store.js';
import { isTransient } from '../../../src/connections/retry.js';
import { StoreError } from '../../../src/storage/store.js';

test('locate: local paths relative to the spec, s3:// buckets and prefixes, hdfs:// with a connection, webhdfs:// with its address', () => {
  assert.deepEqual(locate('../out/x', undefined, '/a/b'), { kind: 'local', dir: '/a/out/x' });
  assert.deepEqual(locate('s3://my-bucket/archive/sales/', 'archive', '/a'), {
    kind: 's3',
    bucket: 'my-bucket',
    prefix: 'archive/sales',
    connection: 'archive',
  });
  assert.deepEqual(locate('s3://my-bucket', undefined, '/a'), { kind: 's3', bucket: 'my-bucket', prefix: '', connection: undefined });
  assert.deepEqual(locate('hdfs://nn:8020/data/sales', 'hadoop', '/a'), { kind: 'hdfs', path: '/data/sales', connection: 'hadoop' });
  assert.deepEqual(locate('webhdfs://nn:9870/data/sales', undefined, '/a'), {
    kind: 'hdfs',
    path: '/data/sales',
    connection: undefined,
    address: 'http://nn:9870',
  });
  assert.match(locate('hdfs://nn:8020/data', undefined, '/a') as string, /needs connection/);
  assert.match(locate('out', 'archive', '/a') as string, /"out" is a local path/);
  assert.match(locate('s3://Bad_Bucket/x', 'archive', '/a') as string, /not a valid S3 bucket name/);
  assert.match(locate('hdfs://nn/', 'hadoop', '/a') as string, /a folder below the root/);
  assert.equal(schemeOf('S3A://b/x'), 's3');
  assert.equal(schemeOf(path.join('/tmp', 's3:', 'x')), 'local');
});

test('visible: a key with a segment starting with . or _ is not part of the dataset', () => {
  assert.ok(visible('sale_date=2026-01-01/part-1.parquet'));
  assert.ok(!visible('sale_date=2026-01-01/.part-1.parquet.3.staged'));
  assert.ok(!visible('_salespipe/sales.archive.json'));
  assert.ok(!visible('.backfill-x/new/sale_date=2026-01-01/part-0000000000.parquet'));
});

test('store errors: 5xx, throttling and timeouts are retried; refused credentials, 403 and 404 are not', () => {
  const s3 = (name: string, status?: number) => Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  assert.ok(isTransient(s3('InternalError', 500)));
  assert.ok(isTransient(s3('ServiceUnavailable', 503)));
  assert.ok(isTransient(s3('SlowDown', 503)));
  assert.ok(isTransient(s3('TooManyRequests', 429)));
  assert.ok(isTransient(s3('TimeoutError')));
  assert.ok(isTransient(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9000'), { code: 'ECONNREFUSED', $metadata: {} })));
  assert.ok(!isTransient(s3('AccessDenied', 403)));
  assert.ok(!isTransient(s3('NoSuchKey', 404)));
  assert.ok(!isTransient(new StoreError('connection "archive": S3 refused the credentials')));
  assert.ok(isTransient(Object.assign(new Error('list: WebHDFS answered 503'), { status: 503 })));
  assert.ok(!isTransient(Object.assign(new Error('list: WebHDFS answered 403 AccessControlException'), { status: 403 })));
});
