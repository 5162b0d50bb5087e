/**
 * The kafka source across a broker's absence: its consumer crashes (after a
 * broker restart kafkajs may also give one up for good: no group
 * coordinator found). The source starts a new consumer and goes on from its
 * own positions: every record once, none lost, the source never failed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needServices, uniq, ROOT, until, service } from '../../../support/helpers.js';
import { BROKERS, createTopic, pingKafka, produceRaw } from '../../../support/kafka.js';
import { source } from '../../../support/operators.js';
import { runContext } from '../../../support/run-ctx.js';
import { createLogger } from '../../../../src/core/log.js';
import { kafkaSource } from '../../../../src/operators/sources/kafka.js';
import type { Source } from '../../../../src/operators/operator.js';

const produce = (topic: string, from: number, n: number) =>
  produceRaw(
    topic,
    Array.from({ length: n }, (_, i) => JSON.stringify({ id: from + i })),
    (i) => `k${from + i}`,
  );

/** Polls the source, adding the ids handed over to `ids`, until it holds `n`. */
async function take(src: Source, ids: number[], n: number, what: string) {
  await until(
    async () => {
      for (const r of (await src.next())?.rows ?? []) ids.push(r.id as number);
      return ids.length >= n;
    },
    60_000,
    what,
  );
}

test("kafka source: a consumer that crashed during a broker's absence is replaced; every record is read once", async (t) => {
  if (!(await needServices(t, pingKafka))) return;
  const topic = `restart-${uniq()}`;
  await createTopic(topic, 3);
  const lines: string[] = [];
  const ctx = runContext({
    drain: false,
    specDir: ROOT,
    pipeline: topic,
    connections: { kafka: { type: 'kafka', brokers: BROKERS } },
    log: createLogger((l) => lines.push(l), 'info'),
  });
  const src = source(kafkaSource, { type: 'kafka', connection: 'kafka', topic, schema: { id: 'int' } }, ctx).source;
  await src.open(undefined);
  const ids: number[] = [];
  let down = false;
  try {
    await produce(topic, 0, 300);
    await take(src, ids, 300, 'the first 300 records');
    service('stop', 'kafka');
    down = true;
    // Polled while the broker is away: the source must not fail (next() would throw).
    await until(
      async () => {
        await src.next();
        return lines.some((l) => /Kafka consumer stopped \(.*\); starting a new one/.test(l));
      },
      90_000,
      'the source to replace its crashed consumer',
    );
    service('start', 'kafka');
    down = false;
    await produce(topic, 300, 300);
    await take(src, ids, 600, 'the records produced after the restart');
    // A little longer: nothing read twice arrives late.
    for (const end = Date.now() + 3000; Date.now() < end;) for (const r of (await src.next())?.rows ?? []) ids.push(r.id as number);
    assert.deepEqual(
      [...ids].sort((a, b) => a - b),
      Array.from({ length: 600 }, (_, i) => i),
    );
    assert.ok(
      lines.some((l) => /Kafka consumer started again/.test(l)),
      lines.join('\n'),
    );
  } finally {
    if (down) service('start', 'kafka');
    await src.close();
  }
});
