/** The sql sink on real MariaDB and PostgreSQL: create, upsert, replay, and the sink contract; read back with SQL. */
import { test } from 'node:test';
import { needServices, uniq, ROOT } from '../../../support/helpers.js';
import { freshDatabase, pingDatabase, MARIADB_ADMIN, POSTGRES_ADMIN } from '../../../support/sql.js';
import { sqlSinkRoundTrip, sqlSinkSubject } from '../../../support/sql-sink.js';
import { runContext } from '../../../support/run-ctx.js';

for (const dialect of ['mysql', 'postgres'] as const) {
  const admin = dialect === 'mysql' ? MARIADB_ADMIN : POSTGRES_ADMIN;
  test(`sql sink on ${dialect === 'mysql' ? 'MariaDB' : 'PostgreSQL'}: the latest row per key, exact decimals and timestamps, a replay changes nothing`, async (t) => {
    if (!(await needServices(t, () => pingDatabase(admin)))) return;
    const url = await freshDatabase(dialect, `sp_${uniq()}`);
    await sqlSinkRoundTrip(runContext({ specDir: ROOT, connections: { db: { type: 'sql', url } } }));
  });
  sqlSinkSubject(dialect, async (t) =>
    (await needServices(t, () => pingDatabase(admin))) ? freshDatabase(dialect, `sp_${uniq()}`) : undefined,
  );
}
