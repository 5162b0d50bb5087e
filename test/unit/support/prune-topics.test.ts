import assert from 'node:assert/strict';
import test from 'node:test';
import { staleTestTopics, testTopicTime } from '../../support/prune-topics.js';
import { uniq } from '../../support/helpers.js';

test('a topic named with uniq() carries its creation time; other names carry none', () => {
  const before = Date.now();
  const u = uniq();
  for (const name of [
    `${u}.product_sales`,
    `contract-${u}`,
    `contract-src-${u}`,
    `wm-${u}`,
    `salespipe.contract-${u}.checkpoints`,
    `${u}.example.sales`,
  ]) {
    const t = testTopicTime(name);
    assert.ok(t !== null && t >= before - 1 && t <= Date.now(), name);
  }
  for (const name of [
    'sales',
    'product_sales',
    'aggregated_product_sales',
    '__consumer_offsets',
    'shot21113.sales',
    'retail.sales_2026',
    'tenant42.sales',
    'test.sales',
  ]) {
    assert.equal(testTopicTime(name), null, name);
  }
});

test('only test topics more than an hour old are stale', () => {
  const now = Date.UTC(2026, 11, 2, 12);
  const at = (ms: number) => `t${ms.toString(36)}k3`;
  const old = `${at(now - 2 * 3600_000)}.product_sales`;
  const fresh = `${at(now - 60_000)}.product_sales`;
  const future = `${at(now + 3600_000)}.product_sales`;
  assert.deepEqual(staleTestTopics([old, fresh, future, 'sales', '__consumer_offsets'], now), [old]);
});
