/**
 * Faults of the servers under a running `salespipe run pipelines/sales.yaml`:
 * MariaDB stopped for 30 s, the Kafka broker stopped and restarted. The run
 * must wait, say so, resume, and end with outputs equal to SQL over the
 * committed sales (each published once). The services are stopped and
 * started with the project's own script.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
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
  service,
} from '../support/helpers.js';
import { freshDatabase, pingDatabase, sqlTotals, MARIADB_ADMIN } from '../support/sql.js';
import { BROKERS, pingKafka } from '../support/kafka.js';
import kafkajs from 'kafkajs';
import { openKnex } from '../../src/connections/sql.js';

const SPEC = path.join(ROOT, 'pipelines/sales.yaml');

function totalsOf(prefix: string, out?: string) {
  const topic = new Map(
    [...latestByKey(readTopic(`${prefix}aggregated_product_sales`)).values()].map((v) => {
      const r = parseExact(v);
      return [`${r.product_name}|${r.brand}|${r.product_category}`, { units: r.total_quantity_sold!, revenue: money(r.total_revenue!) }];
    }),
  );
  const parquet =
    out === undefined
      ? undefined
      : new Map(
          readParquet(path.join(out, 'aggregated_product_sales')).map((r) => [
            `${r.product_name}|${r.brand}|${r.product_category}`,
            { units: String(r.total_quantity_sold), revenue: money(String(r.total_revenue)) },
          ]),
        );
  return { topic, parquet };
}

async function expectExact(db: string, prefix: string, out: string) {
  const want = new Map([...(await sqlTotals(db))].map(([k, v]) => [k, { units: v.units, revenue: money(v.revenue) }]));
  const { topic, parquet } = totalsOf(prefix, out);
  assert.deepEqual(topic, want, 'topic totals differ from SQL');
  assert.deepEqual(parquet, want, 'Parquet totals differ from SQL');
  const { db: k } = await openKnex(db, ROOT, 1);
  const [{ n }] = await k('product_sales').count({ n: '*' });
  await k.destroy();
  const keys = readTopic(`${prefix}product_sales`).map((m) => m.key);
  assert.equal(new Set(keys).size, Number(n), 'every committed sale published');
  assert.equal(keys.length, Number(n), 'no sale published twice');
}

/** A fresh database, topic prefix, output and state directories, and the environment naming them. */
async function freshRun() {
  const db = await freshDatabase('mysql', `sp_${uniq()}`);
  const prefix = `${uniq()}.`,
    out = tmpDir(),
    state = tmpDir();
  const e = {
    SALES_DB_URL: db,
    KAFKA_BROKERS: BROKERS,
    KAFKA_TOPIC_PREFIX: prefix,
    SALES_OUTPUT_DIR: out,
    SALESPIPE_STATE_DIR: state,
    CHECKPOINT_INTERVAL: '1s',
  };
  return { db, prefix, out, state, e };
}

/** Waits for a stopped run to exit 0, then drains the pipeline. */
async function endedThenDrained(run: ReturnType<typeof startCli>, e: NodeJS.ProcessEnv, spec = SPEC) {
  const r = await finished(run);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const drain = await runCli(['run', spec, '--drain', '--no-progress'], e);
  assert.equal(drain.code, 0, drain.stderr);
}

const topicSize = (t: string) => {
  try {
    return readTopic(t).length;
  } catch {
    return 0;
  }
};

test('MariaDB stopped for 30 s mid-run: the source waits with log lines, resumes, and the results are exact', async (t) => {
  if (
    !(await needServices(t, async () => {
      await pingDatabase(MARIADB_ADMIN);
      await pingKafka();
    }))
  )
    return;
  const { db, prefix, out, e } = await freshRun();
  let g = await runCli(['generate', '--db', db, '--count', '5000', '--writers', '4'], e);
  assert.equal(g.code, 0, g.stderr);
  const run = startCli(['run', SPEC, '--no-progress'], e);
  try {
    await until(() => topicSize(`${prefix}product_sales`) >= 5000, 60_000, 'the first sales to be published');
    service('stop', 'mariadb');
    await new Promise((r) => setTimeout(r, 30_000));
    assert.equal(run.exitCode, null, `the run survived the outage:\n${run.out.stderr.slice(-2000)}`);
    service('start', 'mariadb');
    g = await runCli(['generate', '--db', db, '--count', '5000', '--writers', '4', '--seed', '2'], e);
    assert.equal(g.code, 0, g.stderr);
    await until(() => topicSize(`${prefix}product_sales`) >= 10_000, 90_000, 'the sales after the outage to be published');
  } finally {
    service('start', 'mariadb');
    run.kill('SIGTERM');
  }
  const r = await finished(run);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  assert.match(r.stderr, /polling product_sales failed \(.*\); retrying in \d+ ms/);
  assert.match(r.stderr, /polling product_sales: works again after \d+ failed attempt\(s\) over \d+\.\d s/);
  const drain = await runCli(['run', SPEC, '--drain', '--no-progress'], e);
  assert.equal(drain.code, 0, drain.stderr);
  await expectExact(db, prefix, out);
});

test('the Kafka broker stopped and restarted mid-run: producers and consumers wait, resume, and the results are exact', async (t) => {
  if (
    !(await needServices(t, async () => {
      await pingDatabase(MARIADB_ADMIN);
      await pingKafka();
    }))
  )
    return;
  const { db, prefix, out, e } = await freshRun();
  const gen = startCli(['generate', '--db', db, '--count', '20000', '--writers', '4', '--rate', '700'], e);
  const run = startCli(['run', SPEC, '--no-progress'], e);
  try {
    await until(() => topicSize(`${prefix}product_sales`) >= 3000, 60_000, 'the first sales to be published');
    service('stop', 'kafka');
    await new Promise((r) => setTimeout(r, 10_000));
    assert.equal(run.exitCode, null, `the run survived the broker's absence:\n${run.out.stderr.slice(-2000)}`);
  } finally {
    service('start', 'kafka');
  }
  const g = await finished(gen);
  assert.equal(g.code, 0, g.stderr);
  await new Promise((r) => setTimeout(r, 5000));
  run.kill('SIGTERM');
  await endedThenDrained(run, e);
  await expectExact(db, prefix, out);
});

test("fenced mid-run (another producer took the flow's transactional.id): the flow restarts from its last committed checkpoint, results exact", async (t) => {
  if (
    !(await needServices(t, async () => {
      await pingDatabase(MARIADB_ADMIN);
      await pingKafka();
    }))
  )
    return;
  const { db, prefix, out, e } = await freshRun();
  const gen = startCli(['generate', '--db', db, '--count', '15000', '--writers', '4', '--rate', '1500'], e);
  const run = startCli(['run', SPEC, '--no-progress'], e);
  try {
    await until(() => topicSize(`${prefix}aggregated_product_sales`) > 0, 60_000, 'the first totals');
    // What a successor of a zombie does first: register the same transactional.id, which
    // bumps the producer epoch and aborts the flow's open transaction.
    // Retried for up to a minute: while the flow's last transaction is being completed the broker answers
    // CONCURRENT_TRANSACTIONS, for longer than kafkajs's default retries on a loaded machine.
    const kafka = new kafkajs.Kafka({
      brokers: BROKERS.split(','),
      logLevel: kafkajs.logLevel.NOTHING,
      retry: { retries: 15, initialRetryTime: 300, maxRetryTime: 5000 },
    });
    for (const flow of ['publish_sales', 'aggregate_sales']) {
      const p = kafka.producer({ transactionalId: `${prefix}salespipe.sales.${flow}`, idempotent: true, maxInFlightRequests: 1 });
      await p.connect();
      const txn = await p.transaction();
      await txn.abort();
      await p.disconnect();
    }
    await until(
      () => (run.out.stderr.match(/restarting the flow from its last committed checkpoint/g) ?? []).length >= 2,
      60_000,
      'both flows to restart',
    );
    assert.match(run.out.stderr, /the producer was fenced/);
  } finally {
    const g = await finished(gen);
    assert.equal(g.code, 0, g.stderr);
    run.kill('SIGTERM');
  }
  await endedThenDrained(run, e);
  await expectExact(db, prefix, out);
});

test('a second instance of a running pipeline is refused within seconds, naming the first; the first runs on; one killed with SIGKILL is replaced at once', async (t) => {
  if (
    !(await needServices(t, async () => {
      await pingDatabase(MARIADB_ADMIN);
      await pingKafka();
    }))
  )
    return;
  const { db, prefix, out, e } = await freshRun();
  const gen = startCli(['generate', '--db', db, '--count', '20000', '--writers', '4', '--rate', '1000'], e);
  const first = startCli(['run', SPEC, '--no-progress'], e);
  let third;
  try {
    await until(() => topicSize(`${prefix}aggregated_product_sales`) > 0, 60_000, 'the first totals');
    const started = Date.now();
    const second = await runCli(['run', SPEC, '--no-progress'], e);
    const took = Date.now() - started;
    assert.equal(second.code, 1, second.stderr);
    assert.match(
      second.stderr,
      new RegExp(
        `pipeline sales is already running \\(pid ${first.pid} on \\S+ since [^)]+\\); one instance of a pipeline runs at a time: not starting this one`,
      ),
    );
    assert.ok(took < 30_000, `refused after ${took} ms`);
    assert.doesNotMatch(second.stderr, /resuming from checkpoint|epoch/, 'the second instance opened no flow');
    assert.equal(first.exitCode, null, `the first instance runs on:\n${first.out.stderr.slice(-2000)}`);
    // The first dies without a word: its successor on this machine removes its lease and takes over at once.
    first.kill('SIGKILL');
    await finished(first);
    third = startCli(['run', SPEC, '--no-progress'], e);
    await until(() => /resuming from checkpoint/.test(third!.out.stderr), 30_000, 'the successor to resume');
    assert.match(
      third.out.stderr,
      new RegExp(
        `removed member \\S+ from group ${prefix.replace(/\./g, '\\.')}salespipe-lease\\.sales: its process \\(pid ${first.pid} on `,
      ),
    );
  } finally {
    const g = await finished(gen);
    assert.equal(g.code, 0, g.stderr);
    first.kill('SIGKILL');
    third?.kill('SIGTERM');
  }
  await endedThenDrained(third!, e);
  await expectExact(db, prefix, out);
});
