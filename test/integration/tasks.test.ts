/**
 * Flows as tasks, one per partition of their topic (runtime/tasks.ts),
 * against a real broker: a stateless Kafka-to-Parquet flow on two worker
 * threads archives each record once (read back by pyarrow); each task has
 * its own checkpoint, group and files; `status` shows them as one; a flow's
 * checkpoint from when it ran as one task is taken over partition by
 * partition; a flow that ran as tasks and now runs as one is refused until
 * reset.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { finished, needServices, readParquet, runCli, startCli, tmpDir, uniq, until } from '../support/helpers.js';
import { BROKERS, createTopic, pingKafka } from '../support/kafka.js';
import { KafkaCheckpointStore } from '../../src/runtime/kafka-checkpoint.js';
import { kafkaConn } from '../../src/connections/kafka.js';
import { createLogger } from '../../src/core/log.js';

const PARTITIONS = 3;

/** Records from..from+n-1 of `topic`, record i in partition i mod 3 (so at offset floor(i / 3) there). */
const produce = (topic: string, from: number, n: number) => produceTo(topic, from, n, PARTITIONS);

/** Records from..from+n-1 of `topic`, record i in partition i mod `partitions`. */
async function produceTo(topic: string, from: number, n: number, partitions: number): Promise<void> {
  const k = new kafkajs.Kafka({ brokers: BROKERS.split(','), clientId: 'salespipe-test', logLevel: kafkajs.logLevel.NOTHING });
  const p = k.producer();
  await p.connect();
  try {
    for (let start = from; start < from + n; start += 500) {
      const messages = [];
      for (let i = start; i < Math.min(from + n, start + 500); i++)
        messages.push({
          partition: i % partitions,
          key: String(i),
          value: JSON.stringify({ id: i, quantity: 1 + (i % 5), at: '2026-03-01 10:00:00' }),
        });
      await p.send({ topic, acks: -1, messages });
    }
  } finally {
    await p.disconnect();
  }
}

/** A pipeline of one flow, `archive`: the topic's records, checked and derived, into a Parquet dataset. */
function spec(dir: string, pipeline: string, topic: string, aggregate = false): string {
  const file = path.join(dir, `${aggregate ? 'one' : 'tasks'}.yaml`);
  fs.writeFileSync(
    file,
    `pipeline: ${pipeline}
connections:
  kafka: { type: kafka, brokers: "${BROKERS}" }
flows:
  archive:
    source:
      type: kafka
      connection: kafka
      topic: ${topic}
      schema: { id: int, quantity: int, at: timestamp }
    steps:
      - assert: { check: quantity > 0, message: quantity must be positive }
      - derive: { twice: quantity * 2 }
${aggregate ? '      - aggregate: { groupBy: [id], compute: { n: count(id) }, mode: update }\n' : ''}    sinks:
      - { type: parquet, path: ${path.join(dir, aggregate ? 'counts' : 'archive')} }
`,
  );
  return file;
}

const ids = (dir: string) => readParquet(dir).map((r) => Number(r.id));

/** Rows in a dataset so far (0 before it has a file). */
const count = (dir: string) => (fs.existsSync(dir) && fs.readdirSync(dir).some((n) => n.endsWith('.parquet')) ? ids(dir).length : 0);

function assertOnce(got: number[], want: number[], what: string) {
  assert.equal(got.length, want.length, `${what}: ${got.length} rows, ${want.length} expected`);
  assert.deepEqual(
    [...got].sort((a, b) => a - b),
    [...want].sort((a, b) => a - b),
    `${what}: each record once`,
  );
}

test('a stateless Kafka flow runs as one task per partition on two workers: each record archived once, per-task checkpoints, groups and files; status shows them as one', async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const pipeline = `tasks_${uniq()}`;
  const topic = `${pipeline}_in`;
  await createTopic(topic, PARTITIONS);
  await produce(topic, 0, 3000);
  const dir = tmpDir();
  const file = spec(dir, pipeline, topic);
  const state = path.join(dir, 'state');
  const run = (workers: number) => runCli(['run', file, '--drain', '--workers', String(workers), '--no-progress', '--state-dir', state]);

  const explain = await runCli(['explain', file]);
  assert.match(explain.stdout, new RegExp(`\\[tasks\\] one per partition of topic ${topic}`));

  const r = await run(2);
  assert.equal(r.code, 0, r.stderr);
  // Member 0 of 2 runs partitions 0 and 2, member 1 partition 1.
  assert.match(r.stderr, /\[archive\] runs task\(s\) archive\.0, archive\.2 \(3 partition\(s\) in all\)/);
  assert.match(r.stderr, /\[archive\] runs task\(s\) archive\.1 \(3 partition\(s\) in all\)/);
  assert.match(r.stderr, /archive: 3,000 records in, 3,000 out, 0 dead letters/);
  // The two tasks starting together on one thread read the checkpoint topic once.
  assert.match(r.stderr, /\[archive\] checkpoint topic _salespipe_checkpoints read once for 2 tasks \(archive\.0, archive\.2\) in \d+ ms/);
  assertOnce(ids(path.join(dir, 'archive')), [...Array(3000).keys()], 'first run');

  // Each task wrote its own files and marker; its default dead-letter file is its own.
  const markers = fs.readdirSync(path.join(dir, 'archive', '_salespipe')).filter((n) => n.endsWith('.json'));
  assert.deepEqual(
    markers.sort(),
    [0, 1, 2].map((p) => `${pipeline}.archive.${p}.json`),
  );
  const tags = new Set(
    fs
      .readdirSync(path.join(dir, 'archive'))
      .filter((n) => n.endsWith('.parquet'))
      .map((n) => /^part-\d+-([0-9a-f]{6})-/.exec(n)?.[1]),
  );
  assert.equal(tags.size, PARTITIONS, `one owner tag per task: ${[...tags].join(', ')}`);

  // Each task's consumer group reads its partition alone.
  const admin = new kafkajs.Kafka({ brokers: BROKERS.split(','), logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    for (let p = 0; p < PARTITIONS; p++) {
      const [offs] = await admin.fetchOffsets({ groupId: `salespipe.${pipeline}.archive.${p}`, topics: [topic] });
      const committed = offs.partitions.filter((x) => Number(x.offset) >= 0).map((x) => x.partition);
      assert.deepEqual(committed, [p], `group of task ${p}`);
    }
  } finally {
    await admin.disconnect();
  }

  const st = await runCli(['status', file, '--format', 'json', '--state-dir', state]);
  assert.equal(st.code, 0, st.stderr);
  const flow = JSON.parse(st.stdout).flows[0];
  assert.deepEqual(flow.tasks, [0, 1, 2]);
  assert.equal(flow.lag, 0);
  assert.equal(flow.totals.recordsIn, 3000);
  assert.deepEqual(Object.keys(flow.source.offsets).sort(), ['0', '1', '2']);

  // The tasks' checkpoints hold: a rerun reads nothing, on one thread as on two.
  const again = await run(1);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /archive: 0 records in/);
  await produce(topic, 3000, 600);
  const more = await run(2);
  assert.equal(more.code, 0, more.stderr);
  assert.match(more.stderr, /archive: 600 records in, 600 out/);
  assertOnce(ids(path.join(dir, 'archive')), [...Array(3600).keys()], 'after more records');

  // reset starts each task over: the next run reads every partition from its start again.
  const reset = await runCli(['reset', file, '--flow', 'archive', '--state-dir', state]);
  assert.equal(reset.code, 0, reset.stderr);
  for (let p = 0; p < PARTITIONS; p++) assert.match(reset.stderr, new RegExp(`archive\\.${p}: positions and state reset`));
  const over = await run(2);
  assert.equal(over.code, 0, over.stderr);
  assert.match(over.stderr, /archive: 3,600 records in, 3,600 out/);
});

test("a flow's checkpoint from when it ran as one task is taken over by its tasks, partition by partition; back to one task is refused until reset", async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const pipeline = `tasks_${uniq()}`;
  const topic = `${pipeline}_in`;
  await createTopic(topic, PARTITIONS);
  await produce(topic, 0, 1500);
  const dir = tmpDir();
  const file = spec(dir, pipeline, topic);
  const state = path.join(dir, 'state');

  // The checkpoint an earlier version committed for the flow as one task: epoch 7, 200 records read per partition.
  const log = createLogger(() => undefined);
  const store = new KafkaCheckpointStore({
    conn: kafkaConn({ connections: { kafka: { type: 'kafka', brokers: BROKERS } }, specDir: dir }, 'kafka'),
    topic: '_salespipe_checkpoints',
    transactionalId: `salespipe.${pipeline}.archive`,
    key: `${pipeline}/archive`,
    transactionTimeout: 60_000,
    log,
    signal: new AbortController().signal,
  });
  try {
    assert.equal(await store.open(), undefined);
    await store.commit({
      version: 1,
      epoch: 7,
      source: { topic, offsets: { 0: '200', 1: '200', 2: '200' }, eventTimes: {} },
      steps: [null, null],
      sinks: [[]],
      deadLetter: null,
      at: new Date().toISOString(),
      totals: { recordsIn: 600, recordsOut: 600, deadLetters: 0, late: 0 },
    });
  } finally {
    await store.close();
    await store.settle();
  }

  const r = await runCli(['run', file, '--drain', '--workers', '2', '--no-progress', '--state-dir', state]);
  assert.equal(r.code, 0, r.stderr);
  for (let p = 0; p < PARTITIONS; p++)
    assert.match(
      r.stderr,
      new RegExp(
        `\\[archive\\.${p}\\] first run as task archive\\.${p}: takes over partition ${p} from the checkpoint of flow archive \\(epoch 7\\)`,
      ),
    );
  // Records at offsets 200 and on: ids 600 and up.
  assertOnce(
    ids(path.join(dir, 'archive')),
    [...Array(900).keys()].map((i) => i + 600),
    'after the takeover',
  );
  const st = JSON.parse((await runCli(['status', file, '--format', 'json', '--state-dir', state])).stdout).flows[0];
  assert.equal(st.totals.recordsIn, 1500, 'the counts go on from the checkpoint taken over');
  assert.ok(st.checkpoint.epoch >= 8, `epochs go on: ${st.checkpoint.epoch}`);

  // The same flow with a step that keeps state runs as one task: it must not resume from the old checkpoint.
  const one = spec(dir, pipeline, topic, true);
  const refused = await runCli(['run', one, '--drain', '--no-progress', '--state-dir', state]);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(
    refused.stderr,
    /flow archive ran as 3 task\(s\), one per partition .* but now runs as one task \(step aggregate keeps state/,
  );
  assert.doesNotMatch(refused.stderr, /    at /, 'no stack trace');
  assert.equal(fs.existsSync(path.join(dir, 'counts')), false, 'nothing written');

  const reset = await runCli(['reset', one, '--flow', 'archive', '--state-dir', state]);
  assert.equal(reset.code, 0, reset.stderr);
  for (let p = 0; p < PARTITIONS; p++) assert.match(reset.stderr, new RegExp(`archive\\.${p}: checkpoint removed`));
  const after = await runCli(['run', one, '--drain', '--no-progress', '--state-dir', state]);
  assert.equal(after.code, 0, after.stderr);
  // Reset: the flow starts over from the topic's start (the reset checkpoint dropped its positions).
  assert.match(after.stderr, /archive: 1,500 records in, 1,500 out/);
});

test('a running flow takes on the partitions added to its topic: their tasks start and read them from their start, each record once', async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const pipeline = `tasks_${uniq()}`;
  const topic = `${pipeline}_in`;
  await createTopic(topic, 2);
  await produceTo(topic, 0, 400, 2);
  const dir = tmpDir();
  const file = spec(dir, pipeline, topic);
  const state = path.join(dir, 'state');
  // startFrom latest: a partition added while the flow runs is read from its start all the same.
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('      topic: ', '      startFrom: latest\n      topic: '));
  const child = startCli(['run', file, '--workers', '2', '--no-progress', '--metrics-port', '0', '--state-dir', state]);
  try {
    let base = '';
    await until(
      () => !!(base = /metrics at (http:\S+)\/metrics/.exec(child.out!.stderr)?.[1] ?? '') || child.exitCode !== null,
      60_000,
      'the metrics endpoint',
    );
    // Ready: every task has opened its source, at the end of its partition (startFrom latest).
    await until(async () => (await fetch(`${base}/readyz`)).status === 200, 60_000, 'every task open');
    assert.match(child.out!.stderr, /runs task\(s\) archive\.0 /);
    assert.match(child.out!.stderr, /runs task\(s\) archive\.1 /);
    await produceTo(topic, 400, 200, 2);
    await until(() => count(path.join(dir, 'archive')) === 200, 60_000, '200 archived');
    const admin = new kafkajs.Kafka({ brokers: BROKERS.split(','), logLevel: kafkajs.logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
    } finally {
      await admin.disconnect();
    }
    // Written to the new partition before its task exists: read all the same.
    await produceTo(topic, 600, 300, 3);
    await until(() => /partition\(s\) 2 added to the topic: starting task\(s\) archive\.2/.test(child.out!.stderr), 60_000, 'the new task');
    await until(() => count(path.join(dir, 'archive')) === 500, 60_000, '500 archived');
  } finally {
    child.kill('SIGTERM');
  }
  const r = await finished(child);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /\[archive\.2\] partition 2 is new since the flow's other tasks started: task archive\.2 reads it from its start/);
  assertOnce(
    ids(path.join(dir, 'archive')),
    [...Array(500).keys()].map((i) => i + 400),
    'records produced after the start',
  );
});

test("a flow that runs as tasks, stopped while its topic's cluster cannot be reached, ends cleanly: exit 0, nothing failed", async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const dir = tmpDir();
  const file = path.join(dir, 'down.yaml');
  // The checkpoint (and the pipeline's lease) on the test broker; the topic on a cluster nothing
  // listens for (port 9, discard): every connection to it is refused, and retried.
  fs.writeFileSync(
    file,
    `pipeline: tasks_${uniq()}
connections:
  up: { type: kafka, brokers: "${BROKERS}" }
  down: { type: kafka, brokers: "127.0.0.1:9" }
flows:
  archive:
    source: { type: kafka, connection: down, topic: t, schema: { id: int } }
    steps: [ { filter: "id > 0" } ]
    sinks: [ { type: kafka, connection: up, topic: tasks_down_out } ]
`,
  );
  const explain = await runCli(['explain', file]);
  assert.match(explain.stdout, /\[tasks\] one per partition/);
  const child = startCli(['run', file, '--workers', '2', '--no-progress', '--state-dir', path.join(dir, 'state')]);
  await until(
    () => /\[archive\] connecting to Kafka at 127\.0\.0\.1:9 .* retrying in/.test(child.out!.stderr),
    60_000,
    'a retried connection',
  );
  child.kill('SIGTERM');
  const r = await finished(child);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /\[archive\] stopped before the flow had opened its connections/);
  assert.doesNotMatch(r.stderr, /failed:/);
});
