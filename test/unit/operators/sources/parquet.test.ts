/** The parquet source's view of a dataset folder: which files, in which order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { datasetFiles } from '../../../../src/operators/sources/parquet.js';
import { tmpDir } from '../../../support/helpers.js';

test('datasetFiles: path order (numbers as numbers), partition ranges, staging and marker files left out', () => {
  const root = tmpDir();
  const touch = (rel: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), '');
  };
  for (const f of [
    'sale_date=2026-01-02/b.parquet',
    'sale_date=2026-01-02/a.parquet',
    'sale_date=2026-01-01/x.parquet',
    'sale_date=2026-01-03/x.parquet',
    'sale_date=__HIVE_DEFAULT_PARTITION__/x.parquet',
    'n=10/x.parquet',
    'n=9/x.parquet',
    '_SUCCESS',
    '_salespipe/owner.json',
    '.staging/part.parquet',
    'sale_date=2026-01-02/.part.parquet.crc',
    'sale_date=2026-01-02/notes.txt',
  ])
    touch(f);
  assert.deepEqual(datasetFiles(root), [
    'n=9/x.parquet',
    'n=10/x.parquet',
    'sale_date=2026-01-01/x.parquet',
    'sale_date=2026-01-02/a.parquet',
    'sale_date=2026-01-02/b.parquet',
    'sale_date=2026-01-03/x.parquet',
    'sale_date=__HIVE_DEFAULT_PARTITION__/x.parquet',
  ]);
  assert.deepEqual(datasetFiles(root, { sale_date: { from: '2026-01-02', to: '2026-01-03' } }), [
    'n=9/x.parquet',
    'n=10/x.parquet',
    'sale_date=2026-01-02/a.parquet',
    'sale_date=2026-01-02/b.parquet',
  ]);
  assert.deepEqual(datasetFiles(root, { n: { from: '9', to: '10' } }).slice(0, 1), ['n=9/x.parquet'], 'numbers compare as numbers');
  assert.deepEqual(datasetFiles(path.join(root, 'n=9', 'x.parquet')), [''], 'one file');
  assert.deepEqual(datasetFiles(path.join(root, 'missing')), []);
});
