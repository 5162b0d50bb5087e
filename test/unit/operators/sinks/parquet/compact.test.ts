/** Compaction on a local dataset: merges, manifests, recovery, and readers that see each row once across a merge. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  compact,
  hideMerged,
  readRanges,
  readManifests,
  finishCompactions,
  type Manifest,
} from '../../../../../src/operators/sinks/parquet/compact.js';
import { toParquet, fromParquet } from '../../../../../src/operators/sinks/parquet/arrow-rows.js';
import { readDataset } from '../../../../../src/operators/sinks/parquet/index.js';
import { parquetSource } from '../../../../../src/operators/sources/parquet.js';
import { LocalStore } from '../../../../../src/storage/local.js';
import { createLogger } from '../../../../../src/core/log.js';
import { source } from '../../../../support/operators.js';
import { runContext } from '../../../../support/run-ctx.js';
import { colType } from '../../../../support/types.js';
import { tmpDir } from '../../../../support/helpers.js';

const schema = [{ name: 'id', type: colType('int') }];
const log = createLogger(() => undefined);
const manifest = (key: string, inputs: [string, number][]): Manifest => ({
  key,
  inputs: inputs.map(([k, rows]) => ({ key: k, rows })),
  staged: { key, id: '', tag: '' },
  at: '',
});

test('hideMerged leaves out the inputs of listed merged files only; readRanges finds read rows through nested merges', () => {
  const ms = new Map([
    [
      'p/m1',
      manifest('p/m1', [
        ['p/a', 3],
        ['p/b', 2],
      ]),
    ],
    [
      'p/m2',
      manifest('p/m2', [
        ['p/m1', 5],
        ['p/c', 4],
      ]),
    ],
  ]);
  assert.deepEqual(hideMerged(['p/a', 'p/b', 'p/c'], ms), ['p/a', 'p/b', 'p/c'], 'merged files not listed yet: inputs stay');
  assert.deepEqual(hideMerged(['p/a', 'p/b', 'p/c', 'p/m1'], ms), ['p/c', 'p/m1']);
  assert.deepEqual(hideMerged(['p/m1', 'p/c', 'p/m2'], ms), ['p/m2']);
  assert.deepEqual(readRanges('p/m2', new Set(['p/b']), ms), [[3, 5]]);
  assert.deepEqual(readRanges('p/m2', new Set(['p/a', 'p/c']), ms, { key: 'p/b', row: 1 }), [
    [0, 3],
    [3, 4],
    [5, 9],
  ]);
  assert.deepEqual(readRanges('p/x', new Set(['p/a']), ms), []);
});

function seed(dir: string, files: number, per: number) {
  for (let f = 0; f < files; f++) {
    const rows = Array.from({ length: per }, (_, i) => ({ id: f * per + i }));
    const p = path.join(dir, 'd=1', `part-${String(f + 1).padStart(10, '0')}-aaaaaa-bbbbbb.parquet`);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, toParquet(schema, rows));
  }
}

const opts = (store: LocalStore) => ({
  store,
  fileSchema: schema,
  compression: 'zstd' as const,
  before: Date.now() + 1000,
  dryRun: false,
  log,
  read: fromParquet,
  write: toParquet,
});

test('compact merges a partition into one file, keeps foreign files, and a second run changes nothing', async () => {
  const dir = tmpDir();
  seed(dir, 4, 10);
  fs.writeFileSync(path.join(dir, 'd=1', 'from-pyarrow.parquet'), toParquet(schema, [{ id: 999 }]));
  const store = new LocalStore(dir);
  const r = await compact(opts(store));
  assert.deepEqual(r, { partitions: 1, filesBefore: 5, filesAfter: 2, rows: 40 });
  const files = fs.readdirSync(path.join(dir, 'd=1')).sort();
  assert.equal(files.length, 2);
  assert.ok(files.includes('from-pyarrow.parquet'), 'a file salespipe did not write is left alone');
  const ids = (await readDataset(dir, schema)).map((x) => x.id).sort((a, b) => (a as number) - (b as number));
  assert.deepEqual(ids, [...Array.from({ length: 40 }, (_, i) => i), 999]);
  assert.deepEqual(await compact(opts(store)), { partitions: 0, filesBefore: 2, filesAfter: 2, rows: 0 });
});

test('a compaction killed after its manifest is finished by the next; one killed before it leaves a staged file that is discarded', async () => {
  const dir = tmpDir();
  seed(dir, 3, 5);
  const store = new LocalStore(dir);
  // Killed after the manifest: stage and manifest as compact does, nothing published or deleted.
  const inputs = fs
    .readdirSync(path.join(dir, 'd=1'))
    .map((f) => `d=1/${f}`)
    .sort();
  const rows = inputs.flatMap((k) => fromParquet(fs.readFileSync(path.join(dir, k)), schema));
  const key = 'd=1/part-c-0123456789abcdef.parquet';
  const staged = await store.stage(key, toParquet(schema, rows), 'compact');
  await store.put(
    `_compacted/${key}.json`,
    Buffer.from(JSON.stringify({ key, inputs: inputs.map((k) => ({ key: k, rows: 5 })), staged, at: '' })),
  );
  assert.equal((await readDataset(dir, schema)).length, 15, 'readers see each row once before the merge is published');
  // Killed before a manifest: an unjournaled staged merge.
  await store.stage('d=1/part-c-fedcba9876543210.parquet', toParquet(schema, rows), 'compact');
  assert.equal(await finishCompactions(store, log), 1);
  assert.deepEqual(fs.readdirSync(path.join(dir, 'd=1')), ['part-c-0123456789abcdef.parquet']);
  assert.equal((await readDataset(dir, schema)).length, 15);
});

test('a streaming source that read some files before they were merged reads only the other rows of the merged file', async () => {
  const dir = tmpDir();
  seed(dir, 4, 10);
  const ctx = runContext({ specDir: dir, drain: true });
  const cfg = { type: 'parquet', path: '.', schema: { id: 'int' }, batchSize: 5 };
  let { source: src } = source(parquetSource, cfg, ctx);
  await src.open(undefined);
  const seen: number[] = [];
  // Three batches of 5: the first file whole, the second partway (row 5 of 10).
  for (let i = 0; i < 3; i++) for (const r of (await src.next())!.rows) seen.push(r.id as number);
  const pos = structuredClone(src.position()) as { done: string[]; at: number };
  assert.equal(pos.done.length, 1);
  assert.equal(pos.at, 5);
  await src.close();
  await compact(opts(new LocalStore(dir)));
  ({ source: src } = source(parquetSource, cfg, ctx));
  await src.open(pos);
  for (let b = await src.next(); b; b = await src.next()) for (const r of b.rows) seen.push(r.id as number);
  await src.close();
  assert.deepEqual(
    seen.sort((a, b) => a - b),
    Array.from({ length: 40 }, (_, i) => i),
    'each row once',
  );
});

test('a file merged and deleted while the source is between its row groups: the rest of its rows come from the merged file, once', async () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'd=1'));
  // Files of two row groups each (pyarrow), named as the sink names them.
  const r = spawnSync(
    'python3',
    [
      '-c',
      `import pyarrow as pa, pyarrow.parquet as pq, sys
for f in range(3):
    pq.write_table(pa.table({'id': pa.array(range(f * 10, f * 10 + 10), pa.int64())}), f'{sys.argv[1]}/d=1/part-{f + 1:010d}-aaaaaa-bbbbbb.parquet', row_group_size=5)`,
      dir,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const ctx = runContext({ specDir: dir, drain: true });
  const cfg = { type: 'parquet', path: '.', schema: { id: 'int' }, batchSize: 5 };
  let { source: src } = source(parquetSource, cfg, ctx);
  await src.open(undefined);
  const seen: number[] = [];
  // The first file, then the second file's first row group.
  for (let i = 0; i < 3; i++) for (const x of (await src.next())!.rows) seen.push(x.id as number);
  await compact(opts(new LocalStore(dir)));
  for (let b = await src.next(); b; b = await src.next()) for (const x of b.rows) seen.push(x.id as number);
  const pos = structuredClone(src.position());
  await src.close();
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    Array.from({ length: 30 }, (_, i) => i),
    'each row once',
  );
  // Restarted from its last position, it reads nothing again.
  ({ source: src } = source(parquetSource, cfg, ctx));
  await src.open(pos);
  assert.equal(await src.next(), null);
  await src.close();
});

test('readManifests with the manifests a reader has read before reads only new ones', async () => {
  const dir = tmpDir();
  const store = new LocalStore(dir);
  await store.put('_compacted/d=1/part-c-1.parquet.json', Buffer.from(JSON.stringify(manifest('d=1/part-c-1.parquet', [['d=1/a', 1]]))));
  const known = new Map<string, Manifest>();
  assert.deepEqual([...(await readManifests(store, undefined, known)).keys()], ['d=1/part-c-1.parquet']);
  // Not read again (a manifest never changes): unreadable text now would fail a read.
  fs.writeFileSync(path.join(dir, '_compacted/d=1/part-c-1.parquet.json'), 'not json');
  await store.put('_compacted/d=1/part-c-2.parquet.json', Buffer.from(JSON.stringify(manifest('d=1/part-c-2.parquet', [['d=1/b', 1]]))));
  assert.deepEqual([...(await readManifests(store, undefined, known)).keys()].sort(), ['d=1/part-c-1.parquet', 'd=1/part-c-2.parquet']);
  await assert.rejects(readManifests(store), /JSON/, 'without them, every manifest is read');
});
