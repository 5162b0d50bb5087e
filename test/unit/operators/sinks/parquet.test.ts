import { test } from 'node:test';
import { colType } from '../../../support/types.js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parquetSink } from '../../../../src/operators/sinks/parquet/index.js';
import type { StreamInfo } from '../../../../src/operators/operator.js';
import { runContext } from '../../../support/run-ctx.js';
import { ownerTag } from '../../../../src/operators/output-owner.js';
import { sink as makeSink, plan, planContext } from '../../../support/operators.js';
import { readParquet, tmpDir } from '../../../support/helpers.js';
import { sinkContract, APPEND, KEYED, type ContractRow } from '../../../support/sink-contract.js';

const t = colType;
const keyed: StreamInfo = {
  mode: 'update',
  key: ['product_name', 'product_category'],
  schema: [
    { name: 'product_name', type: t('string') },
    { name: 'product_category', type: t('string') },
    { name: 'units', type: t('int') },
    { name: 'revenue', type: { kind: 'decimal', precision: 38, scale: 2, nullable: false } },
  ],
};
const appendOnly: StreamInfo = {
  mode: 'append',
  schema: [
    { name: 'id', type: t('int') },
    { name: 'sold_at', type: t('timestamp') },
    { name: 'price', type: t('decimal(12,2)?') },
    { name: 'ok', type: t('bool') },
    { name: 'sale_date', type: t('string') },
  ],
};

/** The dataset's files, the run part of names masked (`part-<epoch>-<owner>-<run>`), the owners' markers apart. */
function files(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) =>
    fs
      .readdirSync(d, { withFileTypes: true })
      .forEach((e) =>
        e.isDirectory() ? e.name !== '_salespipe' && walk(path.join(d, e.name)) : out.push(path.relative(dir, path.join(d, e.name))),
      );
  walk(dir);
  return out.map((f) => f.replace(/-([0-9a-f]{6})-[0-9a-f]{6}\.parquet/, '-$1-RUN.parquet')).sort();
}

const tag = ownerTag({ pipeline: 'test', flow: 'f' });

test('keyed stream: the dataset holds the latest row per key, readable by pyarrow, exact decimals', async () => {
  const dir = tmpDir();
  const cfg = { type: 'parquet' as const, path: dir, partitionBy: ['product_category'] };
  const ctx = runContext({ specDir: dir });
  const sink = makeSink(parquetSink, cfg, keyed, ctx);
  await sink.open(undefined, 0);
  await sink.write([
    { product_name: 'Dell Inspiron', product_category: 'Laptop', units: 2, revenue: 10000000 },
    { product_name: 'Apple iPhone 12', product_category: 'Smartphone', units: 3, revenue: 24000000 },
  ]);
  let st = await sink.preCommit(1);
  await sink.commit(1, st);
  await sink.write([{ product_name: 'Dell Inspiron', product_category: 'Laptop', units: 5, revenue: 2n ** 70n }]);
  st = await sink.preCommit(2);
  await sink.commit(2, st);
  assert.deepEqual(files(dir), ['product_category=Laptop/data.parquet', 'product_category=Smartphone/data.parquet']);
  const rows = readParquet(dir).sort((a, b) => String(a.product_name).localeCompare(String(b.product_name)));
  assert.deepEqual(rows, [
    { product_name: 'Apple iPhone 12', units: 3, revenue: '240000.00', product_category: 'Smartphone' },
    { product_name: 'Dell Inspiron', units: 5, revenue: (2n ** 70n).toString().replace(/(\d\d)$/, '.$1'), product_category: 'Laptop' },
  ]);
  // A new sink over the same directory continues from what is there.
  const reopened = makeSink(parquetSink, cfg, keyed, ctx);
  await reopened.open(st, 2);
  await reopened.write([{ product_name: 'Lenovo ThinkPad', product_category: 'Laptop', units: 1, revenue: 6500000 }]);
  await reopened.commit(3, await reopened.preCommit(3));
  assert.equal(readParquet(dir).length, 3);
});

test('append stream: one file per partition per epoch; a crash before commit leaves nothing visible', async () => {
  const dir = tmpDir();
  const cfg = { type: 'parquet' as const, path: dir, partitionBy: ['sale_date'] };
  const ctx = runContext({ specDir: dir });
  const row = (id: number, day: string) => ({
    id,
    sold_at: Date.parse(`${day}T10:00:00Z`),
    price: id % 3 ? 1999 : null,
    ok: id % 2 === 0,
    sale_date: day,
  });
  const sink = makeSink(parquetSink, cfg, appendOnly, ctx);
  await sink.open(undefined, 0);
  await sink.write([row(1, '2026-01-15'), row(2, '2026-01-16'), row(3, '2026-01-15')]);
  const st1 = await sink.preCommit(1);
  await sink.commit(1, st1);
  // epoch 2 is staged, then the process dies before its checkpoint
  await sink.write([row(4, '2026-01-16')]);
  await sink.preCommit(2);
  assert.ok(files(dir).some((f) => f.endsWith('.staged')));
  assert.equal(readParquet(dir).length, 3, 'staged files are invisible to readers');
  // restart from the checkpoint of epoch 1: the staged file is discarded, epoch 2 replays
  const again = makeSink(parquetSink, cfg, appendOnly, ctx);
  await again.open(st1, 1);
  assert.ok(!files(dir).some((f) => f.endsWith('.staged')));
  await again.write([row(4, '2026-01-16')]);
  await again.commit(2, await again.preCommit(2));
  assert.deepEqual(files(dir), [
    `sale_date=2026-01-15/part-0000000001-${tag}-RUN.parquet`,
    `sale_date=2026-01-16/part-0000000001-${tag}-RUN.parquet`,
    `sale_date=2026-01-16/part-0000000002-${tag}-RUN.parquet`,
  ]);
  const rows = readParquet(dir).sort((a, b) => (a.id as number) - (b.id as number));
  assert.deepEqual(
    rows.map((r) => [r.id, r.price, r.ok, r.sale_date, r.sold_at]),
    [
      [1, '19.99', false, '2026-01-15', '2026-01-15T10:00:00+00:00'],
      [2, '19.99', true, '2026-01-16', '2026-01-16T10:00:00+00:00'],
      [3, null, false, '2026-01-15', '2026-01-15T10:00:00+00:00'],
      [4, '19.99', true, '2026-01-16', '2026-01-16T10:00:00+00:00'],
    ],
  );
});

test('a keyed stream may be partitioned only by key columns', () => {
  const errors: string[] = [];
  plan(parquetSink, { type: 'parquet', path: 'x', partitionBy: ['units'] }, keyed, planContext({ error: (_p, m) => errors.push(m) }));
  assert.match(errors.join(), /only by its key columns/);
});

test('a run without the checkpoint of what a dataset holds refuses, naming where it looked; a run with it goes on; names never repeat', async () => {
  const dir = tmpDir();
  const cfg = { type: 'parquet' as const, path: dir, partitionBy: ['sale_date'] };
  const row = (id: number) => ({ id, sold_at: Date.parse('2026-01-15T10:00:00Z'), price: 100, ok: true, sale_date: '2026-01-15' });
  const ctx = runContext({ specDir: dir, checkpointWhere: 'checkpoint file /somewhere/else' });
  const first = makeSink(parquetSink, cfg, appendOnly, ctx);
  await first.open(undefined, 0);
  await first.write([row(1)]);
  const st = await first.preCommit(1);
  await first.commit(1, st);
  // Another state directory: no checkpoint, or an older one.
  for (const epoch of [0]) {
    const lost = makeSink(parquetSink, cfg, appendOnly, ctx);
    await assert.rejects(
      lost.open(undefined, epoch),
      /holds output of flow f up to epoch 1 .*no checkpoint of the flow was found \(checkpoint file \/somewhere\/else\)/,
    );
  }
  assert.equal(readParquet(dir).length, 1);
  // With its checkpoint: epoch 1 again (a replay) gets a new file name, and the old file stays.
  const resumed = makeSink(parquetSink, cfg, appendOnly, ctx);
  await resumed.open(st, 1);
  await resumed.write([row(2)]);
  await resumed.commit(2, await resumed.preCommit(2));
  const names = fs.readdirSync(path.join(dir, 'sale_date=2026-01-15'));
  assert.equal(new Set(names).size, 2);
  assert.equal(readParquet(dir).length, 2);
  // A second flow appending to the dataset has its own names and markers; a keyed writer may not share it.
  const other = makeSink(parquetSink, cfg, appendOnly, runContext({ specDir: dir, flow: 'other' }));
  await other.open(undefined, 0);
  await other.write([row(3)]);
  await other.commit(1, await other.preCommit(1));
  assert.equal(readParquet(dir).length, 3);
  const keyedCfg = { type: 'parquet' as const, path: dir };
  await assert.rejects(
    makeSink(
      parquetSink,
      keyedCfg,
      { ...keyed, schema: appendOnly.schema, key: ['id'] },
      runContext({ specDir: dir, flow: 'totals' }),
    ).open(undefined, 0),
    /is written by flow (f|other) of pipeline test as well/,
  );
});

test(
  'a read-only output names the sink, the path and the cause',
  { skip: process.getuid?.() === 0 ? false : 'needs root to mount a read-only filesystem' },
  async (t) => {
    const mnt = tmpDir();
    const { spawnSync } = await import('node:child_process');
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) {
      if (process.env.CI === 'true') assert.fail(`mount of a read-only tmpfs failed: ${m.stderr}`);
      return t.skip(`cannot mount: ${m.stderr.trim()}`);
    }
    try {
      const sink = makeSink(
        parquetSink,
        { type: 'parquet', path: path.join(mnt, 'out/sales_history'), partitionBy: ['sale_date'] },
        appendOnly,
        runContext({ specDir: mnt }),
      );
      await assert.rejects(sink.open(undefined, 0), (e: Error) => {
        assert.match(
          e.message,
          new RegExp(`parquet sink ${mnt}/out/sales_history: cannot write ${mnt}: the filesystem is mounted read-only \\(EROFS\\)`),
        );
        return true;
      });
    } finally {
      spawnSync('umount', [mnt]);
    }
  },
);

for (const input of [APPEND, KEYED]) {
  sinkContract({
    name: `parquet (${input.mode === 'append' ? 'append: part files' : 'keyed: one file of latest rows'})`,
    def: parquetSink,
    input,
    async fresh() {
      const dir = tmpDir();
      return {
        cfg: { type: 'parquet', path: 'dataset' },
        ctx: runContext({ specDir: dir }),
        visible: async () => readParquet(path.join(dir, 'dataset')) as unknown as ContractRow[],
      };
    },
  });
}
