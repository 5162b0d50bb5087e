/** Kafka connections of a spec as the clients get them: the session timeout of the groups salespipe joins. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kafkaConn, DEFAULT_SESSION_TIMEOUT_MS } from '../../../src/connections/kafka.js';

const ctx = (c: object) => ({ connections: { kafka: { type: 'kafka', brokers: '127.0.0.1:9092', ...c } }, specDir: process.cwd() });

test('kafkaConn: sessionTimeout as a duration, 10s when not given', () => {
  assert.equal(kafkaConn(ctx({}), 'kafka').sessionTimeoutMs, DEFAULT_SESSION_TIMEOUT_MS);
  assert.equal(DEFAULT_SESSION_TIMEOUT_MS, 10_000);
  assert.equal(kafkaConn(ctx({ sessionTimeout: '45s' }), 'kafka').sessionTimeoutMs, 45_000);
  assert.equal(kafkaConn(ctx({ sessionTimeout: '2m' }), 'kafka').sessionTimeoutMs, 120_000);
});
