/**
 * The broken-spec corpus: mutations of the shipped pipelines, each of which
 * must make `salespipe validate` exit 2 with a `file:line:col: message`
 * at the broken place (and the expected code), never a stack trace.
 *
 * Two parts: an unknown key inserted into every block mapping of every
 * shipped spec (generated), and hand-written breakages of every other kind
 * (YAML syntax, unset variables, wrong types, unknown columns, type
 * mismatches, modes, windows, joins, cycles, references, durations).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseDocument, LineCounter, isMap, isSeq, isPair, isScalar, YAMLMap, Node as YNode } from 'yaml';
import { cli } from '../../../src/cli.js';
import { ROOT, tmpDir } from '../../support/helpers.js';

const SHIPPED = ['sales.yaml', 'windowed-sales.yaml', 'inventory.yaml', 'customer-segments.yaml', 'demo.yaml'];
const dir = tmpDir();
let n = 0;

interface Found {
  line: number;
  col: number;
  code: string;
  severity: string;
  message: string;
}

async function validate(text: string): Promise<{ code: number; problems: Found[]; raw: string }> {
  const f = path.join(dir, `broken-${++n}.yaml`);
  fs.writeFileSync(f, text);
  let stdout = '',
    stderr = '';
  const code = await cli(['validate', '--format', 'json', f], {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    env: { BENCH_TOPIC: 't', BENCH_GROUP: 'g', BENCH_DIR: '/tmp' },
  });
  assert.doesNotMatch(stderr + stdout, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
  let problems: Found[] = [];
  try {
    problems = JSON.parse(stdout);
  } catch {
    /* asserted by the caller */
  }
  return { code, problems, raw: stdout + stderr };
}

/** Every block mapping of a spec where a key of our own makes no sense: [line, indent]. */
function mappings(text: string): { line: number; indent: number; where: string }[] {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc });
  const out: { line: number; indent: number; where: string }[] = [];
  const visit = (node: unknown, where: string[]) => {
    if (isMap(node)) {
      const m = node as YAMLMap;
      const first = m.items[0];
      const free = ['derive', 'tests'].includes(where[where.length - 1]) || where.includes('tests');
      if (first && isScalar(first.key) && !m.flow && !free) {
        // The new key goes right after the first entry (valid in a list item too), at its indentation.
        const pos = lc.linePos((first.key as YNode).range![0]);
        const end = (first.value as YNode | null)?.range?.[1] ?? (first.key as YNode).range![1];
        const last = lc.linePos(Math.max(end - 1, (first.key as YNode).range![0])).line;
        out.push({ line: last + 1, indent: pos.col - 1, where: where.join('.') || '(top)' });
      }
      for (const p of m.items) if (isPair(p) && isScalar(p.key)) visit(p.value, [...where, String((p.key as { value: unknown }).value)]);
    } else if (isSeq(node)) (node as { items: unknown[] }).items.forEach((x, i) => visit(x, [...where, String(i)]));
  };
  visit(doc.contents, []);
  return out;
}

test('corpus: an unknown key in any mapping of any shipped spec is reported on its line', async () => {
  let cases = 0;
  for (const name of SHIPPED) {
    const text = fs.readFileSync(path.join(ROOT, 'pipelines', name), 'utf8');
    for (const m of mappings(text)) {
      const lines = text.split('\n');
      lines.splice(m.line - 1, 0, `${' '.repeat(m.indent)}zz_not_a_key: 1`);
      const r = await validate(lines.join('\n'));
      assert.equal(r.code, 2, `${name} at ${m.where}: exit ${r.code}\n${r.raw}`);
      assert.ok(
        r.problems.some((p) => p.line === m.line && p.severity === 'error'),
        `${name} at ${m.where} (line ${m.line}): no error on that line\n${r.raw}`,
      );
      cases++;
    }
  }
  assert.ok(cases >= 80, `only ${cases} generated cases`);
});

const sales = fs.readFileSync(path.join(ROOT, 'pipelines/sales.yaml'), 'utf8');
const inventory = fs.readFileSync(path.join(ROOT, 'pipelines/inventory.yaml'), 'utf8');
const windowed = fs.readFileSync(path.join(ROOT, 'pipelines/windowed-sales.yaml'), 'utf8');
const segments = fs.readFileSync(path.join(ROOT, 'pipelines/customer-segments.yaml'), 'utf8');
/** sales.yaml with a second Kafka cluster defined. */
const salesTwoClusters = sales.replace(/\n\nflows:/, '\n  other_kafka:\n    type: kafka\n    brokers: 127.0.0.1:9192\n\nflows:');

/** The 1-based line of the first occurrence of `s` in `text` (after the change). */
const lineOf = (text: string, s: string) => text.slice(0, text.indexOf(s)).split('\n').length;

/** [name, base, from, to, code, the text on the line the problem must point at] */
const CASES: [string, string, string | RegExp, string, string, string][] = [
  // YAML syntax
  [
    'unclosed flow sequence',
    sales,
    'groupBy: [product_name, brand, product_category]',
    'groupBy: [product_name, brand, product_category',
    'yaml.',
    '          compute:\n            total_quantity_sold',
  ],
  ['tab indentation', sales, '    description: Each new row', '\tdescription: Each new row', 'yaml.', '\tdescription'],
  ['duplicate key', sales, '      table: product_sales', '      table: product_sales\n      table: again', 'yaml.', 'table: again'],
  [
    'unterminated quote',
    sales,
    'check: quantity_sold > 0, message: quantity_sold must be positive }',
    'check: "quantity_sold > 0, message: x }',
    'yaml.',
    'check: "quantity_sold',
  ],
  ['bad alias', sales, 'schema: *sale', 'schema: *nosuch', 'yaml.', 'schema: *nosuch'],
  [
    'unquoted ${VAR} in a flow mapping',
    windowed,
    '            lateness: ${WINDOW_LATENESS:-10m}',
    '            x: { lateness: ${WINDOW_LATENESS:-10m} }',
    'yaml.',
    'x: { lateness',
  ],
  // variables
  [
    'unset variable',
    sales,
    '${SALES_DB_URL:-mysql://salespipe:salespipe@127.0.0.1:3306/salespipe}',
    '${SALES_DB_URL_NOT_SET}',
    'env.unset',
    'url: ${SALES_DB_URL_NOT_SET}',
  ],
  [
    'unset variable in a topic',
    sales,
    'topic: aggregated_product_sales',
    'topic: ${NO_SUCH_TOPIC_VAR}',
    'env.unset',
    'topic: ${NO_SUCH_TOPIC_VAR}',
  ],
  ['unclosed variable', sales, 'topic: aggregated_product_sales', 'topic: ${OOPS', 'env.', 'topic: ${OOPS'],
  // wrong types and values
  ['pipeline name not a string', sales, 'pipeline: sales', 'pipeline: [sales]', 'schema.', 'pipeline: [sales]'],
  ['partitions not a number', sales, 'partitions: 3', 'partitions: three', 'schema.', 'partitions: three'],
  ['batchSize zero', sales, 'batchSize: 5000', 'batchSize: 0', 'schema.', 'batchSize: 0'],
  [
    'unknown source type',
    sales,
    '      type: sql\n      connection: sales_db\n      table: product_sales',
    '      type: mysql\n      connection: sales_db\n      table: product_sales',
    'schema.',
    'type: mysql',
  ],
  ['unknown sink type', sales, '      - type: parquet', '      - type: parket', 'schema.', 'type: parket'],
  ['unknown step', sales, '      - derive:', '      - derivee:', 'schema.', 'derivee:'],
  [
    'steps not a list',
    sales,
    /    steps:\n      - assert: \{ check: quantity_sold > 0, message: quantity_sold must be positive \}\n      - derive:/,
    '    steps: derive\n    x_steps:\n      - derive:',
    'schema.',
    'steps: derive',
  ],
  [
    'unknown column type',
    sales,
    '        quantity_sold: int\n',
    '        quantity_sold: integr\n',
    'type.unknown',
    'quantity_sold: integr',
  ],
  [
    'decimal too wide',
    sales,
    'price_per_unit: decimal(12,2)',
    'price_per_unit: decimal(30,2)',
    'type.unknown',
    'price_per_unit: decimal(30,2)',
  ],
  ['unknown time zone', sales, 'timeZone: UTC', 'timeZone: Mars/Olympus', 'value.zone', 'timeZone: Mars/Olympus'],
  ['bad checkpoint interval', sales, 'interval: ${CHECKPOINT_INTERVAL:-auto}', 'interval: soon', 'value.duration', 'interval: soon'],
  [
    'session timeout under a second',
    sales,
    '    brokers: ${KAFKA_BROKERS:-127.0.0.1:9092}\n',
    '    brokers: ${KAFKA_BROKERS:-127.0.0.1:9092}\n    sessionTimeout: 500ms\n',
    'value.duration',
    'sessionTimeout: 500ms',
  ],
  ['bad poll interval', sales, 'pollInterval: 1s', 'pollInterval: 1 sec', 'value.duration', 'pollInterval: 1 sec'],
  ['negative window size', windowed, '            size: 1h', '            size: -1h', 'value.duration', 'size: -1h'],
  ['slide longer than size', windowed, '            size: 1h', '            size: 1h\n            slide: 2h', 'value.window', 'slide: 2h'],
  ['bad table refresh', inventory, 'refresh: ${INVENTORY_REFRESH:-5s}', 'refresh: often', 'value.duration', 'refresh: often'],
  ['unknown join type', segments, 'type: ${SEGMENT_JOIN:-left}', 'type: outer', 'schema.', 'type: outer'],
  ['bad topic name', sales, 'topic: product_sales_dead_letters', 'topic: "dead letters!"', 'schema.', 'topic: "dead letters!"'],
  [
    'Kafka outputs of one flow on two clusters',
    salesTwoClusters,
    '      connection: kafka\n      topic: product_sales_dead_letters',
    '      connection: other_kafka\n      topic: product_sales_dead_letters',
    'checkpoint.connections',
    'connection: other_kafka',
  ],
  // references
  ['unknown connection', sales, '      connection: sales_db', '      connection: sales_dbb', 'ref.connection', 'connection: sales_dbb'],
  [
    'connection of the wrong kind',
    sales,
    '      type: sql\n      connection: sales_db',
    '      type: sql\n      connection: kafka',
    'ref.connection',
    'connection: kafka',
  ],
  [
    'unknown connection in a join table',
    segments,
    '            connection: sales_db',
    '            connection: nodb',
    'ref.connection',
    'connection: nodb',
  ],
  // columns
  ['unknown cursor column', sales, 'cursor: transaction_id ', 'cursor: txn_id ', 'column.unknown', 'cursor: txn_id'],
  [
    'unknown event-time column',
    sales,
    '      eventTime: transaction_date\n      pollInterval',
    '      eventTime: sold_at\n      pollInterval',
    'column.unknown',
    'eventTime: sold_at',
  ],
  [
    'unknown group-by column',
    sales,
    'groupBy: [product_name, brand, product_category]',
    'groupBy: [product_name, brand, category]',
    'column.unknown',
    'groupBy: [product_name, brand, category]',
  ],
  [
    'unknown column in an aggregate',
    sales,
    'total_quantity_sold: sum(quantity_sold)',
    'total_quantity_sold: sum(quantity)',
    'column.unknown',
    'total_quantity_sold: sum(quantity)',
  ],
  ['unknown column in an assert', sales, 'check: price_per_unit >= 0', 'check: price >= 0', 'column.unknown', 'check: price >= 0'],
  [
    'unknown column in a derive',
    sales,
    'sale_date: date(transaction_date)',
    'sale_date: date(transaction_day)',
    'column.unknown',
    'sale_date: date(transaction_day)',
  ],
  [
    'unknown Kafka key column',
    sales,
    'topic: aggregated_product_sales\n',
    'topic: aggregated_product_sales\n        key: product\n',
    'column.unknown',
    'key: product',
  ],
  [
    "a Kafka key that leaves out part of a keyed stream's key",
    sales,
    'topic: aggregated_product_sales\n',
    'topic: aggregated_product_sales\n        key: product_name\n',
    'key.partial',
    'key: product_name',
  ],
  ['unknown partition column', sales, 'partitionBy: [product_category]', 'partitionBy: [category]', 'column.', 'partitionBy: [category]'],
  [
    'unknown join column',
    segments,
    'on: { customer_id: customer_id }',
    'on: { customer: customer_id }',
    'column.unknown',
    'on: { customer: customer_id }',
  ],
  [
    'join column not in the table',
    segments,
    'columns: [customer_segment, region]',
    'columns: [customer_segment, country]',
    'column.unknown',
    'columns: [customer_segment, country]',
  ],
  ['balance opening not in the table', inventory, 'opening: stock_level', 'opening: stock', 'column.unknown', 'opening: stock'],
  ['threshold on an unknown column', inventory, 'value: projected_stock', 'value: projected', 'column.unknown', 'value: projected'],
  [
    'window on an unknown column',
    windowed,
    '            size: 1d',
    '            size: 1d\n            on: sold_at',
    'column.unknown',
    'on: sold_at',
  ],
  [
    'late column from a previous step',
    sales,
    'sale_date: date(transaction_date)',
    'sale_date: date(transaction_date)\n          twice: sale_date + 1',
    'type.mismatch',
    'twice: sale_date + 1',
  ],
  // type mismatches
  [
    'sum of a string',
    sales,
    'total_quantity_sold: sum(quantity_sold)',
    'total_quantity_sold: sum(product_name)',
    'type.mismatch',
    'total_quantity_sold: sum(product_name)',
  ],
  [
    'string compared with a number',
    sales,
    'check: quantity_sold > 0, message: quantity_sold must be positive }\n      - assert',
    'check: product_name > 0, message: quantity_sold must be positive }\n      - assert',
    'type.mismatch',
    'check: product_name > 0',
  ],
  [
    'assert that is not a condition',
    sales,
    'check: price_per_unit >= 0',
    'check: price_per_unit + 1',
    'type.mismatch',
    'check: price_per_unit + 1',
  ],
  ['cursor not an int', sales, 'cursor: transaction_id ', 'cursor: product_name ', 'type.mismatch', 'cursor: product_name'],
  [
    'event time not a timestamp',
    sales,
    '      eventTime: transaction_date\n      pollInterval',
    '      eventTime: product_name\n      pollInterval',
    'type.mismatch',
    'eventTime: product_name',
  ],
  [
    'join keys of different types',
    segments,
    'on: { customer_id: customer_id }',
    'on: { product_name: customer_id }',
    'type.mismatch',
    'on: { product_name: customer_id }',
  ],
  ['threshold on a string', inventory, 'value: projected_stock', 'value: product_name', 'type.mismatch', 'value: product_name'],
  [
    'balance movement not a number',
    inventory,
    'subtract: quantity_sold',
    'subtract: product_name',
    'type.mismatch',
    'subtract: product_name',
  ],
  [
    'expression syntax',
    sales,
    'revenue: quantity_sold * price_per_unit',
    'revenue: quantity_sold * * price_per_unit',
    'expr.syntax',
    'revenue: quantity_sold * * price_per_unit',
  ],
  [
    'not an aggregate call',
    sales,
    'total_revenue: sum(quantity_sold * price_per_unit)',
    'total_revenue: quantity_sold * price_per_unit',
    'expr.aggregate',
    'total_revenue: quantity_sold * price_per_unit',
  ],
  [
    'nullable upsert key',
    inventory,
    '        table: inventory_levels\n        create: true',
    '        table: inventory_levels\n        key: [reorder_threshold]\n        create: true',
    'type.nullable',
    'key: [reorder_threshold]',
  ],
  // modes
  [
    'append on a running aggregate',
    sales,
    '          mode: update\n    sinks:\n      - type: kafka\n        connection: kafka\n        topic: aggregated',
    '          mode: append\n    sinks:\n      - type: kafka\n        connection: kafka\n        topic: aggregated',
    'mode.invalid',
    'mode: append',
  ],
  [
    'window without event time',
    windowed,
    '      eventTime: transaction_date\n      schema:',
    '      schema:',
    'window.eventTime',
    '          window:',
  ],
  [
    'aggregate of an update stream',
    inventory,
    '      - threshold:',
    '      - aggregate: { groupBy: [brand], compute: { n: count(*) } }\n      - threshold:',
    'mode.invalid',
    '- aggregate: { groupBy: [brand]',
  ],
  [
    'partition of a keyed stream by a non-key column',
    sales,
    'partitionBy: [product_category]',
    'partitionBy: [total_revenue]',
    'mode.invalid',
    'partitionBy: [total_revenue]',
  ],
  [
    'threshold without a key',
    sales,
    '      - derive:\n          revenue',
    '      - threshold: { value: quantity_sold, below: 1 }\n      - derive:\n          revenue',
    'value.key',
    '- threshold: { value: quantity_sold, below: 1 }',
  ],
  // graph
  [
    'cycle between flows',
    sales,
    '        topic: aggregated_product_sales',
    '        topic: product_sales',
    'graph.cycle',
    '    source:\n      type: kafka',
  ],
  [
    'a test naming an unknown flow',
    sales,
    '      aggregate_sales:\n        - { product_name: Dell Inspiron, brand: Dell',
    '      aggregate_sale:\n        - { product_name: Dell Inspiron, brand: Dell',
    'test.flow',
    'aggregate_sale:',
  ],
  [
    'a test with an unknown key',
    sales,
    '    expect:\n      aggregate_sales:\n        - { product_name: Dell Inspiron, brand: Dell',
    '    expected:\n      aggregate_sales:\n        - { product_name: Dell Inspiron, brand: Dell',
    'schema.',
    'expected:',
  ],
];

for (const [name, base, from, to, code, at] of CASES) {
  test(`corpus: ${name}`, async () => {
    const text =
      typeof from === 'string'
        ? (assert.ok(base.includes(from), `the base spec has ${JSON.stringify(from)}`), base.replace(from, to))
        : base.replace(from, to);
    assert.notEqual(text, base);
    const r = await validate(text);
    assert.equal(r.code, 2, r.raw);
    const line = lineOf(text, at);
    const hit = r.problems.find((p) => p.code.startsWith(code) && p.severity === 'error');
    assert.ok(hit, `no ${code} problem:\n${r.raw}`);
    assert.ok(
      r.problems.some((p) => p.code.startsWith(code) && p.line === line),
      `${code} not on line ${line} (${at}):\n${r.raw}`,
    );
  });
}
