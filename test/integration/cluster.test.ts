/**
 * Replication: a three-broker Kafka cluster (every topic replicated 3 times,
 * min.insync.replicas 2), started by the project's services script. One
 * broker, the leader of the published sales' first partition, is killed
 * with SIGKILL while `pipelines/sales.yaml` runs under load and stays dead
 * to the end: nothing is lost, nothing doubled, totals equal SQL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  runCli,
  startCli,
  finished,
  tmpDir,
  uniq,
  readTopic,
  latestByKey,
  parseExact,
  readParquet,
  needServices,
  until,
  ROOT,
  money,
} from '../support/helpers.js';
import { freshDatabase, pingDatabase, sqlTotals, sqlRows, MARIADB_ADMIN } from '../support/sql.js';

const CLUSTER = '127.0.0.1:19092,127.0.0.1:19192,127.0.0.1:19292';
const SPEC = path.join(ROOT, 'pipelines/sales.yaml');

function cluster(...args: string[]) {
  const r = spawnSync('bash', [path.join(ROOT, 'services/services.sh'), 'cluster', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`services.sh cluster ${args.join(' ')}: ${r.stdout}${r.stderr}`);
}

/** Topic metadata as kcat sees it: per partition, its leader and replicas. */
function metadata(topic: string): { partition: number; leader: number; replicas: { id: number }[]; isrs: { id: number }[] }[] {
  const r = spawnSync('kcat', ['-b', CLUSTER, '-L', '-J', '-t', topic], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kcat -L ${topic}: ${r.stderr}`);
  return JSON.parse(r.stdout).topics[0].partitions;
}

const topicSize = (t: string) => {
  try {
    return readTopic(t, CLUSTER).length;
  } catch {
    return 0;
  }
};

test(
  'three-broker cluster (replication 3, min.insync.replicas 2): a broker killed mid-run loses nothing, doubles nothing; totals equal SQL',
  { timeout: 15 * 60_000 },
  async (t) => {
    // A fresh cluster each time: no topics or state left by an earlier run.
    if (
      !(await needServices(t, async () => {
        await pingDatabase(MARIADB_ADMIN);
        cluster('reset');
        cluster('up');
      }))
    )
      return;
    let killed: number | undefined;
    try {
      const db = await freshDatabase('mysql', `sp_${uniq()}`);
      const prefix = `${uniq()}.`,
        out = tmpDir(),
        state = tmpDir();
      const e = {
        SALES_DB_URL: db,
        KAFKA_BROKERS: CLUSTER,
        KAFKA_TOPIC_PREFIX: prefix,
        SALES_OUTPUT_DIR: out,
        SALESPIPE_STATE_DIR: state,
        CHECKPOINT_INTERVAL: '1s',
        SALESPIPE_LOG_LEVEL: 'debug',
      };
      const gen = startCli(['generate', '--db', db, '--count', '30000', '--writers', '4', '--rate', '1500'], e);
      const run = startCli(['run', SPEC, '--no-progress'], e);
      try {
        await until(
          () => topicSize(`${prefix}aggregated_product_sales`) > 0 && topicSize(`${prefix}product_sales`) >= 4000,
          120_000,
          'the first sales to be published and aggregated',
        ).catch((e: Error) => {
          // What the run was doing meanwhile explains a failure.
          throw new Error(`${e.message}; the run's log ends:\n${run.out.stderr.slice(-4000)}`);
        });
        for (const topic of ['product_sales', 'aggregated_product_sales', '_salespipe_checkpoints']) {
          for (const p of metadata(`${prefix}${topic}`))
            assert.equal(p.replicas.length, 3, `${topic} is replicated 3 times (the brokers' default)`);
        }
        killed = metadata(`${prefix}product_sales`).find((p) => p.partition === 0)!.leader;
        cluster('kill', String(killed));
        await new Promise((r) => setTimeout(r, 15_000));
        assert.equal(run.exitCode, null, `the run survived the broker's death:\n${run.out.stderr.slice(-3000)}`);
        for (const p of metadata(`${prefix}product_sales`)) assert.notEqual(p.leader, killed, 'a surviving replica took over');
      } finally {
        const g = await finished(gen);
        assert.equal(g.code, 0, g.stderr);
        await new Promise((r) => setTimeout(r, 3000));
        run.kill('SIGTERM');
      }
      const r = await finished(run);
      const drain = await runCli(['run', SPEC, '--drain', '--no-progress'], e);
      // Debug logs of both runs, for a failure to be explained.
      const logs = path.join(state, 'runs.log');
      fs.writeFileSync(logs, `${r.stderr}\n--- drain ---\n${drain.stderr}`);
      assert.equal(r.code, 0, r.stderr.slice(-3000));
      assert.equal(drain.code, 0, drain.stderr.slice(-3000));
      t.diagnostic(`logs: ${logs}`);

      const [{ n }] = await sqlRows(db, 'SELECT COUNT(*) AS n FROM product_sales');
      const keys = readTopic(`${prefix}product_sales`, CLUSTER).map((m) => m.key);
      assert.equal(new Set(keys).size, Number(n), 'every committed sale published');
      assert.equal(keys.length, Number(n), 'no sale published twice');
      const want = new Map([...(await sqlTotals(db))].map(([k, v]) => [k, { units: v.units, revenue: money(v.revenue) }]));
      const topic = new Map(
        [...latestByKey(readTopic(`${prefix}aggregated_product_sales`, CLUSTER)).values()].map((v) => {
          const x = parseExact(v);
          return [
            `${x.product_name}|${x.brand}|${x.product_category}`,
            { units: x.total_quantity_sold!, revenue: money(x.total_revenue!) },
          ];
        }),
      );
      assert.deepEqual(topic, want, `topic totals differ from SQL (logs: ${logs})`);
      const parquet = new Map(
        readParquet(path.join(out, 'aggregated_product_sales')).map((x) => [
          `${x.product_name}|${x.brand}|${x.product_category}`,
          { units: String(x.total_quantity_sold), revenue: money(String(x.total_revenue)) },
        ]),
      );
      assert.deepEqual(parquet, want, 'Parquet totals differ from SQL');
    } finally {
      cluster('reset');
    }
  },
);
