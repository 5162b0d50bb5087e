/** The sql source on real MariaDB and PostgreSQL: the source contract, rows written by knex. */
import { needServices, uniq, ROOT } from '../../../support/helpers.js';
import { freshDatabase, pingDatabase, MARIADB_ADMIN, POSTGRES_ADMIN } from '../../../support/sql.js';
import { sourceContract, CONTRACT_SCHEMA, record } from '../../../support/source-contract.js';
import { sqlSource } from '../../../../src/operators/sources/sql.js';
import { openKnex } from '../../../../src/connections/sql.js';

for (const dialect of ['mysql', 'postgres'] as const) {
  const admin = dialect === 'mysql' ? MARIADB_ADMIN : POSTGRES_ADMIN;
  sourceContract({
    name: `sql on ${dialect === 'mysql' ? 'MariaDB' : 'PostgreSQL'}`,
    def: sqlSource,
    async fresh(t) {
      if (!(await needServices(t, () => pingDatabase(admin)))) return undefined;
      const url = await freshDatabase(dialect, `sp_${uniq()}`);
      const { db } = await openKnex(url, ROOT, 1);
      await db.schema.createTable('contract', (x) => {
        x.bigInteger('id').primary();
        x.string('name').notNullable();
        x.decimal('amount', 12, 2).notNullable();
      });
      return {
        cfg: {
          type: 'sql',
          connection: 'db',
          table: 'contract',
          cursor: 'id',
          batchSize: 4,
          pollInterval: '20ms',
          schema: CONTRACT_SCHEMA,
        },
        ctx: { connections: { db: { type: 'sql', url } } },
        append: async (ids) => {
          await db('contract').insert(ids.map(record));
        },
        dispose: () => db.destroy(),
      };
    },
  });
}
