import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadSpec } from '../../../src/spec/load.js';
import { planSpec, type Plan } from '../../../src/plan/plan.js';
import { outputsOf, toRec } from '../../../src/dashboard/feeds.js';
import type { Logger } from '../../../src/core/log.js';
import { ROOT } from '../../support/helpers.js';
import { colType } from '../../support/types.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };
const plan = (f: string, env: NodeJS.ProcessEnv = {}): Plan => {
  const p = planSpec(loadSpec(path.join(ROOT, 'pipelines', f), { KAFKA_TOPIC_PREFIX: 'dev.', SALES_OUTPUT_DIR: '/data/out', ...env }));
  assert.ok(p, f);
  return p;
};

test('the shipped pipelines: their topics (with the prefix), one source per dataset, Kafka before a Parquet copy', () => {
  const { kafka, parquet } = outputsOf(
    [plan('sales.yaml'), plan('windowed-sales.yaml'), plan('inventory.yaml'), plan('customer-segments.yaml')],
    quiet,
  );
  assert.equal(kafka.length, 1, 'one cluster');
  assert.deepEqual([...kafka[0].topics].sort(), [
    ['dev.aggregated_product_sales', 'aggregated_product_sales'],
    ['dev.customer_segment_sales', 'customer_segment_sales'],
    ['dev.inventory_levels', 'inventory_levels'],
    ['dev.low_stock_alerts', 'low_stock_alerts'],
    // Not written by these specs: looked for, shown once their topics exist.
    ['dev.product_recommendations', 'product_recommendations'],
    ['dev.product_sales', 'product_sales'],
    ['dev.sales_predictions', 'sales_predictions'],
    ['dev.windowed_product_sales', 'windowed_product_sales'],
  ]);
  assert.deepEqual(parquet, [], 'every Parquet output has its topic, and the sales topic stands for sales_history');
});

test('one spec: the datasets it does not write are looked for on its cluster; a Parquet copy of one it writes is not read', () => {
  const { kafka, parquet } = outputsOf([plan('sales.yaml')], quiet);
  assert.deepEqual([...kafka[0].topics.values()].sort(), [
    'aggregated_product_sales',
    'customer_segment_sales',
    'inventory_levels',
    'low_stock_alerts',
    'product_recommendations',
    'product_sales',
    'sales_predictions',
    'windowed_product_sales',
  ]);
  assert.deepEqual(parquet, []);
});

test('the demo: its Parquet datasets, named by folder', () => {
  const { kafka, parquet } = outputsOf([plan('demo.yaml', { SALESPIPE_DEMO_DIR: '/tmp/d' })], quiet);
  assert.deepEqual(kafka, []);
  assert.deepEqual(
    parquet.map((w) => [w.dataset, w.dir]),
    [
      ['aggregated_product_sales', '/tmp/d/output/aggregated_product_sales'],
      ['sales_history', '/tmp/d/output/sales_history'],
    ],
  );
});

test('datasets on S3 are named by their last folder and read through the store', () => {
  const { parquet } = outputsOf([plan('demo.yaml', { SALESPIPE_DEMO_DIR: 's3://archive/d' })], quiet);
  assert.deepEqual(
    parquet.map((w) => [w.dataset, w.dir, w.loc]),
    [
      [
        'aggregated_product_sales',
        's3://archive/d/output/aggregated_product_sales',
        { kind: 's3', bucket: 'archive', prefix: 'd/output/aggregated_product_sales', connection: undefined },
      ],
      [
        'sales_history',
        's3://archive/d/output/sales_history',
        { kind: 's3', bucket: 'archive', prefix: 'd/output/sales_history', connection: undefined },
      ],
    ],
  );
});

test('Parquet rows reach the model as exact text: decimals with their scale, timestamps in ISO, big integers whole', () => {
  const schema = [
    { name: 'r', type: colType('decimal(18,2)') },
    { name: 't', type: colType('timestamp') },
    { name: 'q', type: colType('int') },
    { name: 'n', type: colType('string?') },
  ];
  assert.deepEqual(toRec({ r: 9007199254740993n, t: Date.UTC(2026, 0, 15, 10), q: 3, n: null }, schema), {
    r: '90071992547409.93',
    t: '2026-01-15T10:00:00.000Z',
    q: '3',
    n: null,
  });
});
