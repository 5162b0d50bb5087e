/**
 * A topic written by a transactional producer (as Kafka Streams, Flink or
 * salespipe itself write): the Kafka source reads committed records only,
 * never an aborted one, and a drain ends although transaction markers sit
 * after the last record. Oracle: what the test's own producer committed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { runCli, tmpDir, uniq, needServices } from '../support/helpers.js';
import { BROKERS, pingKafka, createTopic } from '../support/kafka.js';

// A topic prefix of its own: the flow's checkpoint (in the prefixed checkpoint topic) is this run's only.
const spec = (prefix: string, topic: string) => `pipeline: txn
connections:
  kafka: { type: kafka, brokers: "${BROKERS}", topicPrefix: "${prefix}" }
flows:
  copy:
    source:
      type: kafka
      connection: kafka
      topic: ${topic.slice(prefix.length)}
      schema: { id: int, batch: string }
    sinks:
      - { type: file, path: out.jsonl }
`;

test(
  'transactional input: committed records only, and a drain ends despite the markers after the last record',
  { timeout: 180_000 },
  async (t) => {
    if (!(await needServices(t, pingKafka))) return;
    const prefix = `${uniq()}.`;
    const topic = `${prefix}txn_input`;
    await createTopic(topic, 3);
    const kafka = new kafkajs.Kafka({ brokers: BROKERS.split(','), clientId: 'salespipe-test', logLevel: kafkajs.logLevel.NOTHING });
    const producer = kafka.producer({ transactionalId: `${topic}.producer`, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    let id = 0;
    const committed: number[] = [];
    for (const [name, commit] of [
      ['a', true],
      ['b', false],
      ['c', true],
      ['d', false],
      ['e', true],
    ] as const) {
      const txn = await producer.transaction();
      const ids = Array.from({ length: 100 }, () => ++id);
      await txn.send({ topic, messages: ids.map((i) => ({ key: String(i), value: JSON.stringify({ id: i, batch: name }) })) });
      if (commit) {
        await txn.commit();
        committed.push(...ids);
      } else await txn.abort();
    }
    await producer.disconnect();
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'txn.yaml'), spec(prefix, topic));
    const r = await runCli(['run', path.join(dir, 'txn.yaml'), '--drain', '--no-progress'], {
      SALESPIPE_STATE_DIR: path.join(dir, 'state'),
    });
    assert.equal(r.code, 0, r.stderr);
    const got = fs
      .readFileSync(path.join(dir, 'out.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      got.map((x) => x.id).sort((a, b) => a - b),
      committed,
    );
    assert.ok(
      got.every((x) => ['a', 'c', 'e'].includes(x.batch)),
      'no record of an aborted transaction',
    );
    // A second drain finds nothing new and still ends.
    const again = await runCli(['run', path.join(dir, 'txn.yaml'), '--drain', '--no-progress'], {
      SALESPIPE_STATE_DIR: path.join(dir, 'state'),
    });
    assert.equal(again.code, 0, again.stderr);
    assert.equal(fs.readFileSync(path.join(dir, 'out.jsonl'), 'utf8').trim().split('\n').length, committed.length);
  },
);
