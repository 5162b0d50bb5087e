/**
 * What a new user and an edge-case data set found (issue 11), each against
 * the real services: checkpoints applied to a topic that is not theirs, a
 * new state directory, keys that lose products, dead letters with internal
 * values, start-up races, two instances, library noise, an unreachable
 * broker, column types that do not fit, and `salespipe status`.
 * Oracles: kcat (read_committed), pyarrow, SQL over the same rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import {
  runCli,
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
import { freshDatabase, sqlTotals, sqlRows, MARIADB_ADMIN, insertSales } from '../support/sql.js';
import { BROKERS, pingKafka, produceRaw, createTopic } from '../support/kafka.js';
import { openKnex } from '../../src/connections/sql.js';
import { freshRun, mariadbAndKafka } from '../support/runs.js';
import { pingS3 } from '../support/storage.js';

const SALES = path.join(ROOT, 'pipelines/sales.yaml');
const WINDOWED = path.join(ROOT, 'pipelines/windowed-sales.yaml');
const services = mariadbAndKafka;
const admin = async <T>(fn: (a: kafkajs.Admin) => Promise<T>): Promise<T> => {
  const a = new kafkajs.Kafka({ brokers: BROKERS.split(','), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await a.connect();
  try {
    return await fn(a);
  } finally {
    await a.disconnect();
  }
};
const lines = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter(Boolean) : []);
const sale = (id: number, extra: object = {}) =>
  JSON.stringify({
    transaction_id: id,
    product_name: 'Dell Inspiron',
    product_category: 'Laptop',
    brand: 'Dell',
    quantity_sold: 1,
    price_per_unit: 499.99,
    transaction_date: '2026-01-15T10:00:00.000Z',
    ...extra,
  });

/** A Kafka topic read into a JSON-lines file: the smallest flow whose checkpoint lives in Kafka. */
function topicToFile(dir: string): string {
  const spec = path.join(dir, 'copy.yaml');
  fs.writeFileSync(
    spec,
    `
pipeline: copy
checkpoint: { interval: 1s }
connections:
  kafka: { type: kafka, brokers: "\${KAFKA_BROKERS}", topicPrefix: "\${KAFKA_TOPIC_PREFIX}" }
flows:
  copy:
    source: { type: kafka, connection: kafka, topic: "\${SOURCE_TOPIC}", schema: { transaction_id: int, quantity_sold: int } }
    sinks: [ { type: file, path: out.jsonl } ]
`,
  );
  return spec;
}

test('a checkpoint is never applied to a topic that is not the one it read: recreated, renamed or cut by retention is an error naming the flow and what to do; reset starts over', async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const dir = tmpDir();
  const spec = topicToFile(dir);
  const prefix = `${uniq()}.`;
  const topic = `${prefix}sales`;
  const env = { KAFKA_BROKERS: BROKERS, KAFKA_TOPIC_PREFIX: prefix, SOURCE_TOPIC: 'sales', SALESPIPE_STATE_DIR: path.join(dir, 'state') };
  await createTopic(topic, 2);
  await produceRaw(
    topic,
    Array.from({ length: 100 }, (_, i) => sale(i + 1)),
  );
  let r = await runCli(['run', spec, '--drain', '--no-progress'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lines(path.join(dir, 'out.jsonl')).length, 100);

  // Deleted and created again, with fewer records than the old offsets: the old positions are not applied.
  await admin((a) => a.deleteTopics({ topics: [topic] }));
  await until(async () => !(await admin((a) => a.listTopics())).includes(topic), 30_000, 'the topic to go');
  await createTopic(topic, 2);
  await produceRaw(
    topic,
    Array.from({ length: 30 }, (_, i) => sale(1000 + i)),
  );
  r = await runCli(['run', spec, '--drain', '--no-progress'], env);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `flow copy: topic ${topic.replace(/\./g, '\\.')} was deleted and created again since the checkpoint \\(topic id \\S+ then, \\S+ now\\)`,
    ),
  );
  assert.match(
    r.stderr,
    /Nothing was read\. To start the flow over \(its outputs are kept\), run `salespipe reset \S+copy\.yaml --flow copy`/,
  );
  assert.equal(lines(path.join(dir, 'out.jsonl')).length, 100, 'nothing was written');

  // The documented way out: reset, then the new topic is read from its start.
  r = await runCli(['reset', spec, '--flow', 'copy'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /copy: positions and state reset \(checkpoint of epoch \d+ committed/);
  r = await runCli(['run', spec, '--drain', '--no-progress'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lines(path.join(dir, 'out.jsonl')).length, 130);

  // The spec now names another topic: the positions of the first do not apply to it.
  const other = `${prefix}other`;
  await createTopic(other, 2);
  await produceRaw(other, [sale(1)]);
  r = await runCli(['run', spec, '--drain', '--no-progress'], { ...env, SOURCE_TOPIC: 'other' });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    new RegExp(
      `flow copy: its checkpoint holds positions in topic ${topic.replace(/\./g, '\\.')}, but the source now reads ${other.replace(/\./g, '\\.')}`,
    ),
  );

  // Records deleted before the flow read them (retention): an error, not a silent skip.
  await produceRaw(
    topic,
    Array.from({ length: 40 }, (_, i) => sale(2000 + i), 'one-partition'),
  );
  const offsets = await admin((a) => a.fetchTopicOffsets(topic));
  await admin(async (a) => {
    await a.fetchTopicMetadata({ topics: [topic] }); // kafkajs needs the topic's metadata loaded first
    await a.deleteTopicRecords({ topic, partitions: offsets.map((o) => ({ partition: o.partition, offset: o.high })) });
  });
  r = await runCli(['run', spec, '--drain', '--no-progress'], env);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /no longer holds offsets \d+\.\.\d+: \d+ record\(s\) were deleted \(retention\) before this flow read them/);
  r = await runCli(['reset', spec, '--flow', 'copy', '--positions'], env);
  assert.equal(r.code, 0, r.stderr);
  r = await runCli(['run', spec, '--drain', '--no-progress'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lines(path.join(dir, 'out.jsonl')).length, 130, 'what is left of the topic has been read already');
});

test('npm run bench twice in a row on one broker', async (t) => {
  if (
    !(await needServices(t, async () => {
      await pingKafka();
      await pingS3();
    }))
  )
    return;
  for (let i = 0; i < 2; i++) {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/bench/bench.js'), '3000'], {
      encoding: 'utf8',
      env: {
        ...process.env,
        KAFKA_BROKERS: BROKERS,
        BENCH_LATENCY_SECS: '3',
        BENCH_FORECAST_SERIES: '100',
        BENCH_RECOMMEND: '2000,300,20000',
        BENCH_ARCHIVE_ROWS: '40000',
      },
    });
    assert.equal(r.status, 0, `run ${i + 1}:\n${r.stderr.slice(-3000)}`);
    const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(last.records, 3000);
    assert.ok(last.latency_p50_ms > 0 && last.latency_p99_ms >= last.latency_p50_ms, `latency figures: ${JSON.stringify(last)}`);
    assert.equal(last.forecast.series, 100);
    assert.equal(last.forecast.days, 730);
    assert.ok(last.forecast.seconds > 0 && last.forecast.peak_rss_mb > 0, `forecast figures: ${JSON.stringify(last.forecast)}`);
    assert.deepEqual([last.recommend.customers, last.recommend.products, last.recommend.purchases], [2000, 300, 20000]);
    assert.ok(
      last.recommend.train_seconds > 0 && last.recommend.fold_ins_per_s > 0,
      `recommend figures: ${JSON.stringify(last.recommend)}`,
    );
    assert.equal(last.archive.rows, 40000);
    assert.ok(last.archive.s3_rows_per_s > 0 && last.archive.s3_to_local > 0, `archive figures: ${JSON.stringify(last.archive)}`);
  }
});

test('run from another directory, then with a fresh --state-dir: each sale is in sales_history exactly once, outputs never overwritten', async (t) => {
  if (!(await needServices(t, services))) return;
  const db = await freshDatabase('mysql', `sp_${uniq()}`);
  const prefix = `${uniq()}.`,
    out = tmpDir();
  const env = { SALES_DB_URL: db, KAFKA_BROKERS: BROKERS, KAFKA_TOPIC_PREFIX: prefix, SALES_OUTPUT_DIR: out, CHECKPOINT_INTERVAL: '1s' };
  let g = await runCli(['generate', '--db', db, '--count', '3000', '--writers', '2'], env);
  assert.equal(g.code, 0, g.stderr);
  const elsewhere = tmpDir();
  // The default state directory is beside the spec, wherever the command runs from.
  const copy = tmpDir();
  fs.cpSync(path.join(ROOT, 'pipelines'), path.join(copy, 'pipelines'), { recursive: true });
  const spec = path.join(copy, 'pipelines/sales.yaml');
  let r = await runCli(['run', spec, '--drain', '--no-progress'], env, copy);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`state in ${path.join(copy, 'pipelines/.salespipe/state').replace(/[.]/g, '\\.')}`));
  g = await runCli(['generate', '--db', db, '--count', '1000', '--writers', '2', '--seed', '2'], env);
  assert.equal(g.code, 0, g.stderr);
  r = await runCli(['run', path.relative(elsewhere, spec), '--drain', '--no-progress'], env, elsewhere);
  assert.equal(r.code, 0, r.stderr);
  g = await runCli(['generate', '--db', db, '--count', '1000', '--writers', '2', '--seed', '3'], env);
  assert.equal(g.code, 0, g.stderr);
  // A fresh state directory: flows reading Kafka keep their checkpoints in Kafka and resume.
  r = await runCli(['run', spec, '--drain', '--no-progress', '--state-dir', tmpDir()], env, elsewhere);
  assert.equal(r.code, 0, r.stderr);
  const history = readParquet(path.join(out, 'sales_history'));
  const ids = history.map((x) => x.transaction_id);
  assert.equal(ids.length, 5000);
  assert.equal(new Set(ids).size, 5000, 'each sale once');
  const files = fs
    .readdirSync(path.join(out, 'sales_history'), { recursive: true })
    .map(String)
    .filter((f) => f.endsWith('.parquet'));
  assert.equal(new Set(files.map((f) => path.basename(f))).size, files.length, 'no file name used twice');
  // Totals by the whole group key: one row per (product, brand, category), equal to SQL.
  const want = await sqlTotals(db);
  const topic = latestByKey(readTopic(`${prefix}aggregated_product_sales`));
  assert.deepEqual(
    new Map(
      [...topic].map(([k, v]) => {
        const x = parseExact(v);
        return [k, { units: x.total_quantity_sold, revenue: money(x.total_revenue!) }];
      }),
    ),
    new Map([...want].map(([k, v]) => [k, { units: v.units, revenue: money(v.revenue) }])),
  );
});

test('a flow without Kafka, given a new state directory, refuses to write its data twice and names where it looked', async () => {
  const dir = tmpDir();
  const { db: k } = await openKnex(`sqlite:${path.join(dir, 'sales.db')}`, dir, 1, { create: true });
  const { createTables } = await import('../../src/gen/generate.js');
  await createTables(k, 'sqlite');
  await k('product_sales').insert([
    {
      product_name: 'Dell Inspiron',
      product_category: 'Laptop',
      brand: 'Dell',
      quantity_sold: 1,
      price_per_unit: '10.00',
      transaction_date: '2026-01-15 10:00:00',
    },
  ]);
  await k.destroy();
  const spec = path.join(dir, 'history.yaml');
  fs.writeFileSync(
    spec,
    `
pipeline: history
connections: { db: { type: sql, url: "sqlite:sales.db" } }
flows:
  archive:
    source: { type: sql, connection: db, table: product_sales, cursor: transaction_id, schema: { transaction_id: int, quantity_sold: int, transaction_date: timestamp } }
    sinks: [ { type: parquet, path: out/history } ]
`,
  );
  let r = await runCli(['run', spec, '--drain', '--no-progress'], {}, tmpDir());
  assert.equal(r.code, 0, r.stderr);
  assert.ok(fs.existsSync(path.join(dir, '.salespipe/state/history/archive.checkpoint.json')), 'the state is beside the spec');
  const fresh = tmpDir();
  r = await runCli(['run', spec, '--drain', '--no-progress', '--state-dir', fresh], {}, tmpDir());
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(
      `dataset ${path.join(dir, 'out/history')} holds output of flow archive up to epoch 1 \\(.*\\), but no checkpoint of the flow was found \\(checkpoint file ${fresh}/history/archive\\.checkpoint\\.json\\)`,
    ),
  );
  assert.equal(readParquet(path.join(dir, 'out/history')).length, 1);
});

test('aggregated_product_sales keeps every product: two brands sharing a product name are two keys; a Kafka key leaving out part of the group key is rejected', async (t) => {
  if (!(await needServices(t, services))) return;
  const { db, prefix, env } = await freshRun();
  await insertSales(db, [
    {
      product_name: 'USB-C Cable 1m',
      product_category: 'Accessory',
      brand: 'Anker',
      quantity_sold: 2,
      price_per_unit: '9.99',
      transaction_date: '2026-01-15 10:00:00',
    },
    {
      product_name: 'USB-C Cable 1m',
      product_category: 'Accessory',
      brand: 'Belkin',
      quantity_sold: 3,
      price_per_unit: '12.49',
      transaction_date: '2026-01-15 10:01:00',
    },
    {
      product_name: 'USB-C Cable 1m',
      product_category: 'Cable',
      brand: 'Anker',
      quantity_sold: 1,
      price_per_unit: '8.99',
      transaction_date: '2026-01-15 10:02:00',
    },
  ]);
  const r = await runCli(['run', SALES, '--drain', '--no-progress'], env);
  assert.equal(r.code, 0, r.stderr);
  const latest = latestByKey(readTopic(`${prefix}aggregated_product_sales`));
  assert.deepEqual([...latest.keys()].sort(), [
    'USB-C Cable 1m|Anker|Accessory',
    'USB-C Cable 1m|Anker|Cable',
    'USB-C Cable 1m|Belkin|Accessory',
  ]);
  assert.equal(parseExact(latest.get('USB-C Cable 1m|Belkin|Accessory')!).total_revenue, '37.47');
  const narrowed = path.join(tmpDir(), 'narrow.yaml');
  fs.writeFileSync(
    narrowed,
    fs
      .readFileSync(SALES, 'utf8')
      .replace('topic: aggregated_product_sales\n', 'topic: aggregated_product_sales\n        key: product_name\n'),
  );
  const v = await runCli(['validate', narrowed], env);
  assert.equal(v.code, 2);
  assert.match(
    v.stderr,
    /narrow\.yaml:\d+:\d+: the stream holds the latest row per \(product_name, brand, product_category\), but this key leaves out brand, product_category/,
  );
});

test('a dead letter of a step carries the record as it arrived: the message text and where it is', async (t) => {
  if (!(await needServices(t, services))) return;
  const { prefix, env } = await freshRun();
  await createTopic(`${prefix}product_sales`, 3);
  const text = sale(7, {
    quantity_sold: -2,
    price_per_unit: 72999.99,
    transaction_date: '2026-11-20T06:13:20.000Z',
    customer_id: null,
    product_id: null,
  });
  await produceRaw(`${prefix}product_sales`, [text], 'k');
  const r = await runCli(['run', SALES, '--drain', '--no-progress'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /aggregate_sales: 1 records in, 0 out, 1 dead letters \(to topic product_sales_dead_letters\)/);
  const [dead] = readTopic(`${prefix}product_sales_dead_letters`).map((m) => JSON.parse(m.value));
  assert.equal(dead.reason, 'quantity_sold must be positive');
  assert.equal(dead.payload, text, 'the message as it was published, not 7299999 and epoch milliseconds');
  assert.equal(dead.encoding, 'utf8');
  assert.match(dead.origin, new RegExp(`^${prefix.replace(/\./g, '\\.')}product_sales/\\d@0$`));
});

test('many flows creating the same fresh topics at once: start-up races are retried, never fatal', async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const dir = tmpDir();
  const spec = path.join(dir, 'fanout.yaml');
  const flow = (n: number) => `
  f${n}:
    source: { type: kafka, connection: kafka, topic: in, schema: { transaction_id: int, quantity_sold: int } }
    deadLetter: { type: kafka, connection: kafka, topic: dead, partitions: 3 }
    sinks: [ { type: kafka, connection: kafka, topic: out, partitions: 6 } ]`;
  fs.writeFileSync(
    spec,
    `pipeline: fanout\nconnections:\n  kafka: { type: kafka, brokers: "\${KAFKA_BROKERS}", topicPrefix: "\${KAFKA_TOPIC_PREFIX}" }\nflows:${[1, 2, 3, 4, 5, 6].map(flow).join('')}\n`,
  );
  for (let round = 0; round < 3; round++) {
    const prefix = `${uniq()}.`;
    await createTopic(`${prefix}in`, 3);
    await produceRaw(
      `${prefix}in`,
      Array.from({ length: 50 }, (_, i) => sale(i + 1)),
    );
    const r = await runCli(['run', spec, '--drain', '--no-progress'], {
      KAFKA_BROKERS: BROKERS,
      KAFKA_TOPIC_PREFIX: prefix,
      SALESPIPE_STATE_DIR: path.join(dir, `state${round}`),
    });
    assert.equal(r.code, 0, `round ${round + 1}:\n${r.stderr.slice(-3000)}`);
    assert.doesNotMatch(r.stderr, /does not host this topic-partition|ERROR/);
    assert.equal(readTopic(`${prefix}out`).length, 300);
  }
});

test('a wrong database password or a host that does not exist: one clear line, nothing on stdout, no stack trace', async (t) => {
  if (!(await needServices(t, services))) return;
  const bad = MARIADB_ADMIN.replace(/:[^:@/]+@/, ':wrong-secret@');
  let r = await runCli(['run', SALES, '--drain', '--no-progress', '--timeout', '20s'], {
    SALES_DB_URL: bad,
    KAFKA_BROKERS: BROKERS,
    KAFKA_TOPIC_PREFIX: `${uniq()}.`,
    SALESPIPE_STATE_DIR: tmpDir(),
  });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(r.stderr, /wrong-secret/);
  assert.match(
    r.stderr,
    /connecting to mysql:\/\/salespipe:\*\*\*@127\.0\.0\.1:3306\/salespipe \(connection "sales_db" \(url from \$\{SALES_DB_URL\}\)\) failed: Access denied/,
  );
  r = await runCli(['run', SALES, '--drain', '--no-progress', '--timeout', '4s'], {
    SALES_DB_URL: 'mysql://u:p@no-such-host.invalid:3306/x',
    KAFKA_BROKERS: BROKERS,
    KAFKA_TOPIC_PREFIX: `${uniq()}.`,
    SALESPIPE_STATE_DIR: tmpDir(),
  });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.match(
    r.stderr,
    /connecting to mysql:\/\/u:\*\*\*@no-such-host\.invalid:3306\/x \(connection "sales_db" \(url from \$\{SALES_DB_URL\}\)\) failed \(.*ENOTFOUND.*\); retrying in \d+ ms/,
  );
  assert.match(r.stderr, /--timeout 4s passed before the drain finished; still waiting for connecting to mysql/);
});

test('an unreachable broker: the message names the connection and its variable, --timeout ends a cron drain, one line per attempt', async (t) => {
  if (!(await needServices(t, services))) return;
  const started = Date.now();
  const r = await runCli(['run', WINDOWED, '--drain', '--no-progress', '--timeout', '8s'], {
    KAFKA_BROKERS: '127.0.0.1:1',
    SALESPIPE_STATE_DIR: tmpDir(),
  });
  assert.equal(r.code, 1, r.stderr);
  assert.ok(Date.now() - started < 40_000, 'the drain ended soon after its timeout');
  assert.match(
    r.stderr,
    /connecting to Kafka at 127\.0\.0\.1:1 \(connection "kafka" \(brokers from \$\{KAFKA_BROKERS\}\)\) failed \(.*\); retrying in \d+ ms/,
  );
  assert.match(r.stderr, /--timeout 8s passed before the drain finished/);
  const attempts = (r.stderr.match(/retrying in \d+ ms/g) ?? []).length;
  const warnings = (r.stderr.match(/ WARN /g) ?? []).length;
  assert.ok(attempts >= 1 && warnings <= attempts + 2, `${warnings} warnings for ${attempts} attempts:\n${r.stderr}`);
  const b = await runCli(
    ['backfill', WINDOWED, '--from', '2026-01-01', '--to', '2026-01-02', '--history', tmpDir(), '--to-kafka', '--timeout', '8s'],
    { KAFKA_BROKERS: '127.0.0.1:1', SALESPIPE_STATE_DIR: tmpDir() },
  );
  assert.equal(b.code, 1, b.stderr);
  assert.match(b.stderr, /--timeout 8s passed before the backfill finished; still waiting for connecting to Kafka at 127\.0\.0\.1:1/);
});

test('declared types against the table: a VARCHAR read as int is an error at start, a DOUBLE read as decimal a warning naming the column', async (t) => {
  if (!(await needServices(t, services))) return;
  const db = await freshDatabase('mysql', `sp_${uniq()}`);
  const { db: k } = await openKnex(db, ROOT, 1);
  await k.raw(
    'CREATE TABLE odd_sales (transaction_id BIGINT AUTO_INCREMENT PRIMARY KEY, product_name VARCHAR(100) NOT NULL, quantity_sold VARCHAR(10) NOT NULL, price_per_unit DOUBLE NOT NULL)',
  );
  await k('odd_sales').insert({ product_name: 'x', quantity_sold: '2', price_per_unit: 0.30000000000000004 });
  await k.destroy();
  const dir = tmpDir();
  const spec = path.join(dir, 'odd.yaml');
  const write = (qty: string) =>
    fs.writeFileSync(
      spec,
      `
pipeline: odd
connections: { db: { type: sql, url: "\${SALES_DB_URL}" } }
flows:
  f:
    source: { type: sql, connection: db, table: odd_sales, cursor: transaction_id, schema: { transaction_id: int, product_name: string, quantity_sold: ${qty}, price_per_unit: "decimal(12,2)" } }
    sinks: [ { type: file, path: out.jsonl } ]
`,
    );
  write('int');
  let r = await runCli(['run', spec, '--drain', '--no-progress'], { SALES_DB_URL: db });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /table odd_sales at mysql:\/\/.* does not fit the declared schema: quantity_sold is varchar\(10\) in the table, declared int: text is not read as a number/,
  );
  assert.match(
    r.stderr,
    /WARN .*table odd_sales: price_per_unit is double in the table, declared decimal\(12,2\): a binary floating-point value is rounded to 2 decimal place\(s\)/,
  );
  write('string');
  r = await runCli(['run', spec, '--drain', '--no-progress'], { SALES_DB_URL: db });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(lines(path.join(dir, 'out.jsonl'))[0]).price_per_unit, 0.3);
});

test('salespipe status: per flow the checkpoint, positions, lag against the source and counts so far, without running anything', async (t) => {
  if (!(await needServices(t, services))) return;
  const { db, prefix, env } = await freshRun();
  let s = await runCli(['status', SALES, '--format', 'json'], env);
  assert.equal(s.code, 0, s.stderr);
  assert.ok(JSON.parse(s.stdout).flows.every((f: { checkpoint: unknown }) => f.checkpoint === null));
  await insertSales(
    db,
    Array.from({ length: 20 }, (_, i) => ({
      product_name: 'Dell Inspiron',
      product_category: 'Laptop',
      brand: 'Dell',
      quantity_sold: i === 3 ? 0 : 1,
      price_per_unit: '10.00',
      transaction_date: '2026-01-15 10:00:00',
    })),
  );
  const r = await runCli(['run', SALES, '--drain', '--no-progress'], env);
  assert.equal(r.code, 0, r.stderr);
  await insertSales(
    db,
    Array.from({ length: 7 }, () => ({
      product_name: 'Dell Inspiron',
      product_category: 'Laptop',
      brand: 'Dell',
      quantity_sold: 1,
      price_per_unit: '10.00',
      transaction_date: '2026-01-15 11:00:00',
    })),
  );
  s = await runCli(['status', SALES, '--format', 'json'], env);
  assert.equal(s.code, 0, s.stderr);
  const flows = new Map(JSON.parse(s.stdout).flows.map((f: { flow: string }) => [f.flow, f]));
  const publish = flows.get('publish_sales') as Record<string, any>;
  const aggregate = flows.get('aggregate_sales') as Record<string, any>;
  assert.equal(publish.lag, 7, 'seven rows past the position');
  assert.equal(publish.source.position, 20);
  assert.equal(publish.totals.recordsIn, 20);
  assert.equal(aggregate.lag, 0);
  assert.equal(aggregate.totals.recordsIn, 20);
  assert.equal(aggregate.totals.deadLetters, 1);
  assert.deepEqual(aggregate.source.offsets, aggregate.source.end, 'read to the end (offsets count transaction markers too)');
  assert.match(aggregate.where, new RegExp(`Kafka topic ${prefix.replace(/\./g, '\\.')}_salespipe_checkpoints`));
  const text = await runCli(['status', SALES], env);
  assert.match(
    text.stdout,
    /publish_sales: epoch \d+ committed .*\n\s+source table product_sales: read up to transaction_id 20; largest transaction_id 27\n\s+lag 7; since the start: 20 records in, 20 out, 0 dead letters, 0 late/,
  );
  // status is read-only: a pipeline started afterwards is not fenced and picks up the 7.
  const again = await runCli(['run', SALES, '--drain', '--no-progress'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(readTopic(`${prefix}product_sales`).length, 27);
});

test('windowed keys carry window_start as the values do (ISO-8601)', async (t) => {
  if (!(await needServices(t, services))) return;
  const { db, prefix, env } = await freshRun({ WINDOW_LATENESS: '0s' });
  // Sales on two days, both in every partition: the first day's windows are final.
  await insertSales(
    db,
    Array.from({ length: 40 }, (_, i) => ({
      product_name: 'Dell Inspiron',
      product_category: 'Laptop',
      brand: 'Dell',
      quantity_sold: 1,
      price_per_unit: '10.00',
      transaction_date: i < 20 ? '2026-01-15 10:00:00' : '2026-01-17 12:00:00',
    })),
  );
  assert.equal((await runCli(['run', SALES, '--drain', '--no-progress'], env)).code, 0);
  const r = await runCli(['run', WINDOWED, '--drain', '--no-progress'], env);
  assert.equal(r.code, 0, r.stderr);
  const msgs = readTopic(`${prefix}windowed_product_sales`, BROKERS, '%k');
  assert.ok(msgs.length >= 2);
  for (const m of msgs) {
    const v = JSON.parse(m.value);
    assert.equal(m.key, `${v.product_name}|${v.brand}|${v.window_size}|${v.window_start}`);
    assert.match(v.window_start, /^\d{4}-\d\d-\d\dT\d\d:00:00\.000Z$/);
  }
});

test('SQL source rows dead-lettered by a step keep their database text; a recreated table is not read from a stale position', async (t) => {
  if (!(await needServices(t, services))) return;
  const db = await freshDatabase('mysql', `sp_${uniq()}`);
  const dir = tmpDir();
  const spec = path.join(dir, 'dl.yaml');
  fs.writeFileSync(
    spec,
    `
pipeline: dl
connections: { db: { type: sql, url: "\${SALES_DB_URL}" } }
flows:
  f:
    source: { type: sql, connection: db, table: product_sales, cursor: transaction_id, schema: { transaction_id: int, quantity_sold: int, price_per_unit: "decimal(12,2)", transaction_date: timestamp } }
    deadLetter: { type: file, path: dead.jsonl }
    steps: [ { assert: { check: quantity_sold > 0, message: positive } } ]
    sinks: [ { type: file, path: out.jsonl } ]
`,
  );
  await insertSales(db, [
    {
      product_name: 'x',
      product_category: 'y',
      brand: 'z',
      quantity_sold: -1,
      price_per_unit: '72999.99',
      transaction_date: '2026-11-20 06:13:20',
    },
  ]);
  let r = await runCli(['run', spec, '--drain', '--no-progress'], { SALES_DB_URL: db });
  assert.equal(r.code, 0, r.stderr);
  const dead = JSON.parse(lines(path.join(dir, 'dead.jsonl'))[0]);
  assert.equal(dead.encoding, 'json');
  assert.deepEqual(JSON.parse(dead.payload), {
    transaction_id: '1',
    quantity_sold: -1,
    price_per_unit: '72999.99',
    transaction_date: '2026-11-20 06:13:20.000',
  });
  assert.equal(dead.origin, 'product_sales#1');
  const rows = await sqlRows(db, 'SELECT COUNT(*) AS n FROM product_sales');
  assert.equal(Number(rows[0].n), 1);
  const { db: k } = await openKnex(db, ROOT, 1);
  await k.raw('TRUNCATE TABLE product_sales');
  await k.destroy();
  r = await runCli(['run', spec, '--drain', '--no-progress'], { SALES_DB_URL: db });
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /flow f: its checkpoint has read product_sales up to transaction_id 1, but the table's largest transaction_id is none \(it is empty\): was it emptied or created again\?/,
  );
});

test('the documented command line stops cleanly on SIGTERM, under npx too', async () => {
  const dir = tmpDir();
  const { db: k } = await openKnex(`sqlite:${path.join(dir, 'sales.db')}`, dir, 1, { create: true });
  const { createTables } = await import('../../src/gen/generate.js');
  await createTables(k, 'sqlite');
  await k.destroy();
  const spec = path.join(dir, 's.yaml');
  fs.writeFileSync(
    spec,
    `pipeline: sig\nconnections: { db: { type: sql, url: "sqlite:sales.db" } }\nflows:\n  f:\n    source: { type: sql, connection: db, table: product_sales, cursor: transaction_id, schema: { transaction_id: int } }\n    sinks: [ { type: file, path: out.jsonl } ]\n`,
  );
  const { spawn } = await import('node:child_process');
  for (const [cmd, args] of [
    [path.join(ROOT, 'bin/salespipe.js'), ['run', spec]],
    ['npx', ['salespipe', 'run', spec]],
  ] as const) {
    const child = spawn(cmd, [...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: 'true' } });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    await until(() => /running sig/.test(err), 60_000, `${cmd} to start`);
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    assert.equal(code, cmd === 'npx' ? code : 0, err);
    // Whatever npx itself does with the signal, no salespipe process is left behind.
    await until(
      () =>
        !fs.readdirSync('/proc').some(
          (p) =>
            /^\d+$/.test(p) &&
            (() => {
              try {
                return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(spec);
              } catch {
                return false;
              }
            })(),
        ),
      20_000,
      `no ${cmd} salespipe process left`,
    );
    assert.ok(!fs.existsSync(path.join(dir, '.salespipe/state/sig/run.lock')), 'the lock was released');
  }
});
