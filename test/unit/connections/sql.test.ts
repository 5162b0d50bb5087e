/** Opening databases: a SQLite file is created only by those that write it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openKnex } from '../../../src/connections/sql.js';
import { tmpDir } from '../../support/helpers.js';

test('a SQLite file that does not exist: readers get an error saying how to create it, and no file appears; writers create it', async () => {
  const dir = tmpDir();
  await assert.rejects(
    openKnex('sqlite:sub/none.db', dir),
    /SQLite database .*sub\/none\.db does not exist: create it with `salespipe generate --db sqlite:.*none\.db --create-tables`/,
  );
  assert.equal(fs.existsSync(path.join(dir, 'sub/none.db')), false);
  const { db } = await openKnex('sqlite:made.db', dir, 1, { create: true });
  try {
    await db.schema.createTable('t', (x) => x.integer('a'));
  } finally {
    await db.destroy();
  }
  assert.ok(fs.existsSync(path.join(dir, 'made.db')));
  const again = await openKnex('sqlite:made.db', dir, 1);
  try {
    assert.ok(await again.db.schema.hasTable('t'));
  } finally {
    await again.db.destroy();
  }
});
