import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { LocalStore } from '../../../src/storage/local.js';
import { tmpDir } from '../../support/helpers.js';

test('a staged file is hidden until published; a second publish changes nothing; unpublished ones are listed and discarded', async () => {
  const dir = path.join(tmpDir(), 'ds');
  const st = new LocalStore(dir);
  await st.init();
  const a = await st.stage('p=1/a.parquet', Buffer.from('one'), '7');
  const b = await st.stage('b.parquet', Buffer.from('two'), '7');
  assert.deepEqual(fs.readdirSync(path.join(dir, 'p=1')), ['.a.parquet.7.staged']);
  assert.deepEqual((await st.staged()).map((s) => [s.key, s.tag]).sort(), [
    ['b.parquet', '7'],
    ['p=1/a.parquet', '7'],
  ]);
  await st.publish(a);
  await st.publish(a);
  assert.equal(fs.readFileSync(path.join(dir, 'p=1', 'a.parquet'), 'utf8'), 'one');
  assert.deepEqual(
    (await st.staged()).map((s) => s.key),
    ['b.parquet'],
  );
  await st.discard(b);
  assert.deepEqual(
    (await st.list()).map((e) => e.key),
    ['p=1/a.parquet'],
  );
  // A publish replaces the file of the same name whole.
  await st.publish(await st.stage('p=1/a.parquet', Buffer.from('three'), '8'));
  assert.equal(Buffer.from(await st.read('p=1/a.parquet')).toString(), 'three');
  await st.put('_m/x.json', Buffer.from('{}'));
  assert.deepEqual(
    (await st.list('_m')).map((e) => e.key),
    ['_m/x.json'],
  );
  await st.renameDir('p=1', '.old/p=1');
  assert.deepEqual((await st.list()).map((e) => e.key).sort(), ['.old/p=1/a.parquet', '_m/x.json']);
  await st.removeDir('.old');
  assert.deepEqual(await st.list('.old'), []);
});
