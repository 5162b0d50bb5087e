/** The sql sink on embedded SQLite (MariaDB and PostgreSQL: test/integration/operators/sinks/sql.test.ts). */
import { test } from 'node:test';
import path from 'node:path';
import { runContext } from '../../../support/run-ctx.js';
import { tmpDir } from '../../../support/helpers.js';
import { sqlSinkRoundTrip, sqlSinkSubject } from '../../../support/sql-sink.js';

test('creates the table, upserts the latest row per key in one transaction, and a replayed epoch changes nothing', async () => {
  const dir = tmpDir();
  await sqlSinkRoundTrip(runContext({ specDir: dir, connections: { db: { type: 'sql', url: 'sqlite:test.db' } } }));
});

sqlSinkSubject('sqlite', async () => `sqlite:${path.join(tmpDir(), 'contract.db')}`);
