/**
 * The kafka source's event time on a real broker, across partitions that
 * start empty: every partition holds it back until it has had nothing to
 * read for idleTimeout, so flows started together on a fresh topic do not
 * let the first partition read set event time for the others.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { needServices, uniq, ROOT, until } from '../../../support/helpers.js';
import { BROKERS, createTopic, pingKafka } from '../../../support/kafka.js';
import { source } from '../../../support/operators.js';
import { runContext } from '../../../support/run-ctx.js';
import { kafkaSource } from '../../../../src/operators/sources/kafka.js';
import type { Source } from '../../../../src/operators/operator.js';

const T0 = Date.UTC(2026, 0, 15, 10);
const at = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

async function produceTo(topic: string, partition: number, times: number[]) {
  const kafka = new kafkajs.Kafka({ brokers: BROKERS.split(','), clientId: 'salespipe-test', logLevel: kafkajs.logLevel.NOTHING });
  const p = kafka.producer();
  await p.connect();
  try {
    await p.send({
      topic,
      acks: -1,
      messages: times.map((t, i) => ({ partition, value: JSON.stringify({ id: i, transaction_date: at(t) }) })),
    });
  } finally {
    await p.disconnect();
  }
}

/** Polls until `n` rows have been handed over. */
async function take(src: Source, n: number) {
  let got = 0;
  await until(
    async () => {
      got += (await src.next())?.rows.length ?? 0;
      return got >= n;
    },
    20_000,
    `${n} rows`,
  );
}

function open(topic: string, idleTimeout: string) {
  const ctx = runContext({ drain: false, specDir: ROOT, connections: { kafka: { type: 'kafka', brokers: BROKERS } }, pipeline: topic });
  return source(
    kafkaSource,
    {
      type: 'kafka',
      connection: 'kafka',
      topic,
      eventTime: 'transaction_date',
      idleTimeout,
      schema: { id: 'int', transaction_date: 'timestamp' },
    },
    ctx,
  ).source;
}

test('kafka source: partitions empty at start hold event time back until they have been idle for idleTimeout', async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const topic = `wm-${uniq()}`;
  await createTopic(topic, 3);
  // 15 s: the steps before the last assertion take well under that even on a loaded machine.
  const src = open(topic, '15s');
  await src.open(undefined);
  try {
    // The first partition read is ten hours ahead of the others: it must not set event time alone.
    await produceTo(topic, 0, [T0 + 10 * 3_600_000]);
    await take(src, 1);
    assert.equal(src.eventTimeProgress!(), null, 'partitions 1 and 2 have not spoken yet');
    await produceTo(topic, 1, [T0, T0 + 60_000]);
    await take(src, 2);
    assert.equal(src.eventTimeProgress!(), null, 'partition 2 is still empty and not yet idle');
    await produceTo(topic, 1, [T0 + 120_000]);
    await take(src, 1);
    // Partition 2 holds until 15 s after it was found empty. Partition 1 keeps getting records
    // meanwhile (at the same event time), so it never counts as idle itself.
    let fed = Date.now();
    await until(
      async () => {
        if (Date.now() - fed > 3000) {
          await produceTo(topic, 1, [T0 + 120_000]);
          fed = Date.now();
        }
        await src.next();
        return src.eventTimeProgress!() !== null;
      },
      30_000,
      'partition 2 to count as idle',
    );
    // Then partition 2 no longer counts (nor, once idle too, partition 0, read first): partition 1's largest remains.
    assert.equal(src.eventTimeProgress!(), T0 + 120_000);
  } finally {
    await src.close();
  }
});

test('kafka source: with idleTimeout 0s an empty partition holds event time back for good', async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const topic = `wm-${uniq()}`;
  await createTopic(topic, 2);
  const src = open(topic, '0s');
  await src.open(undefined);
  try {
    await produceTo(topic, 0, [T0, T0 + 10_000]);
    await take(src, 2);
    const until_ = Date.now() + 2500;
    while (Date.now() < until_) {
      await src.next();
      assert.equal(src.eventTimeProgress!(), null, 'partition 1 never spoke');
    }
    await produceTo(topic, 1, [T0 + 5_000]);
    await take(src, 1);
    assert.equal(src.eventTimeProgress!(), T0 + 5_000, 'the smaller of the partitions’ largest event times');
  } finally {
    await src.close();
  }
});
