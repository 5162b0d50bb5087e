import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli } from '../../../src/cli.js';
import { pipelineSchema } from '../../../src/spec/schema.js';
import { ROOT, tmpDir } from '../../support/helpers.js';

async function call(args: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '',
    stderr = '';
  const code = await cli(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env });
  return { code, stdout, stderr };
}

const BASE = `pipeline: t
connections:
  db: { type: sql, url: "sqlite:x.db" }
flows:
  main:
    source:
      type: sql
      connection: db
      table: product_sales
      cursor: transaction_id
      schema:
        transaction_id: int
        product_name: string
        quantity_sold: int
        price_per_unit: decimal(12,2)
    steps:
      - aggregate:
          groupBy: [product_name]
          compute:
            revenue: sum(quantity_sold * price_per_unit)
    sinks:
      - type: console
`;

function specFile(text: string): string {
  const f = path.join(tmpDir(), 'spec.yaml');
  fs.writeFileSync(f, text);
  return f;
}

/** Validates `text` and returns the `line:col: message` parts (without the source lines and carets under them). */
async function problems(text: string, env: NodeJS.ProcessEnv = {}) {
  const f = specFile(text);
  const r = await call(['validate', f], env);
  const lines = r.stderr
    .split('\n')
    .filter((l) => l.startsWith(`${f}:`))
    .map((l) => l.slice(f.length + 1));
  return { ...r, lines, file: f };
}

test('a valid spec validates with exit 0', async () => {
  const r = await problems(BASE);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.lines, []);
});

test('unknown keys are reported at the key, with a suggestion', async () => {
  const r = await problems(BASE.replace('groupBy:', 'grupBy:').replace('    sinks:', '    sinkz: []\n    sinks:'));
  assert.equal(r.code, 2);
  assert.ok(
    r.lines.some((l) => /^18:11: .*unknown key "grupBy" \(did you mean "groupBy"\?\)/.test(l)),
    r.lines.join('\n'),
  );
  assert.ok(
    r.lines.some((l) => /^21:5: .*unknown key "sinkz" \(did you mean "sinks"\?\)/.test(l)),
    r.lines.join('\n'),
  );
  assert.ok(!r.stderr.includes('    at '), 'no stack trace');
});

test('every problem is reported, sorted, with positions', async () => {
  const text = BASE.replace('sum(quantity_sold * price_per_unit)', 'sum(product_name)')
    .replace('groupBy: [product_name]', 'groupBy: [product]')
    .replace('connection: db', 'connection: nodb');
  const r = await problems(text);
  assert.equal(r.code, 2);
  assert.deepEqual(
    r.lines.map((l) => l.replace(/ \[.*\]$/, '')),
    [
      '3:3: warning: connection "db" is not used by any flow',
      '8:19: unknown connection "nodb"; defined: db',
      '18:21: unknown column "product"; available: transaction_id, product_name, quantity_sold, price_per_unit',
      '20:26: sum() needs a number, got string',
    ],
  );
});

test('expression errors point inside the expression', async () => {
  const r = await problems(BASE.replace('sum(quantity_sold * price_per_unit)', 'sum(quantity_sold * price)'));
  assert.equal(r.code, 2);
  assert.match(r.lines[0], /^20:42: unknown column "price"/);
});

test('unset variables are named; defaults and numbers interpolate', async () => {
  const r = await problems(BASE.replace('"sqlite:x.db"', '"${NO_SUCH_VAR}"'));
  assert.equal(r.code, 2);
  assert.match(r.lines[0], /^3:26: environment variable NO_SUCH_VAR is not set/);
  const ok = await problems(
    BASE.replace('"sqlite:x.db"', '"${NO_SUCH_VAR:-sqlite:y.db}"').replace(
      'cursor: transaction_id',
      'cursor: transaction_id\n      batchSize: ${BATCH}',
    ),
    { BATCH: '250' },
  );
  assert.equal(ok.code, 0, ok.stderr);
});

test('append on a running aggregate is refused', async () => {
  const r = await problems(
    BASE.replace('revenue: sum(quantity_sold * price_per_unit)', 'revenue: sum(quantity_sold * price_per_unit)\n          mode: append'),
  );
  assert.equal(r.code, 2);
  assert.match(r.lines.join('\n'), /21:17: append is not allowed for a running aggregate/);
});

test('YAML syntax errors have positions', async () => {
  const r = await problems('pipeline: t\nflows:\n  main: {source: [\n');
  assert.equal(r.code, 2);
  assert.match(r.lines[0], /^\d+:\d+: /);
});

test('cycles between flows are errors', async () => {
  const flow = (name: string, from: string, to: string) => `  ${name}:
    source: { type: kafka, connection: k, topic: ${from}, schema: { a: int } }
    sinks: [ { type: kafka, connection: k, topic: ${to} } ]
`;
  const r = await problems(
    `pipeline: c\nconnections:\n  k: { type: kafka, brokers: "127.0.0.1:9092" }\nflows:\n${flow('one', 'x', 'y')}${flow('two', 'y', 'x')}`,
  );
  assert.equal(r.code, 2);
  assert.match(r.lines.join('\n'), /cycle through their topics: one -> two -> one/);
});

test('under each problem, validate prints its line of the spec and a caret under the offending text; a password written in the spec is not shown', async () => {
  const under = async (text: string, problem: RegExp) => {
    const r = await problems(text);
    assert.equal(r.code, 2);
    const out = r.stderr.split('\n');
    const i = out.findIndex((l) => problem.test(l));
    assert.notEqual(i, -1, r.stderr);
    return out.slice(i + 1, i + 3);
  };
  assert.deepEqual(
    await under(BASE.replace('sum(quantity_sold * price_per_unit)', 'sum(quantity_sold * price)'), /:20:42: unknown column "price"/),
    ['                revenue: sum(quantity_sold * price)', '                                             ^^^^^'],
    'the caret spans the unknown column',
  );
  assert.deepEqual(
    await under(BASE.replace('groupBy:', 'grupBy:'), /:18:11: .*unknown key "grupBy"/),
    ['              grupBy: [product_name]', '              ^^^^^^'],
    'the caret spans the key',
  );
  const kafka = `pipeline: s
connections:
  k: { type: kafka, brokers: "127.0.0.1:9092", sasl: { mechanism: plain, username: u, password: hunter2 } }
flows:
  main:
    source: { type: kafka, connection: k, topic: t, schema: { a: int } }
    sinks: [ { type: console } ]
`;
  const s = await problems(kafka);
  assert.equal(s.code, 2);
  assert.ok(!s.stderr.includes('hunter2'), s.stderr);
  assert.match(s.stderr, /password: \*{7} \}/);
});

test('validate --format json prints parseable problems', async () => {
  const f = specFile(BASE.replace('groupBy:', 'grupBy:'));
  const r = await call(['validate', '--format', 'json', f]);
  assert.equal(r.code, 2);
  const parsed = JSON.parse(r.stdout);
  assert.equal(parsed[0].file, f);
  assert.ok(
    parsed.some((p: { line: number; col: number; code: string }) => p.line === 18 && p.col === 11 && p.code === 'schema.unknown-key'),
  );
  const unknown = parsed.find((p: { code: string }) => p.code === 'schema.unknown-key');
  assert.deepEqual(Object.keys(unknown).sort(), ['code', 'col', 'endCol', 'endLine', 'file', 'line', 'message', 'severity']);
  assert.deepEqual([unknown.endLine, unknown.endCol], [18, 17]);
});

test('every shipped pipeline validates', async () => {
  const r = await call(['validate', path.join(ROOT, 'pipelines')]);
  assert.equal(r.code, 0, r.stderr);
});

test('schemas/pipeline.schema.json is generated from the operators (run npm run schema)', () => {
  const committed = fs.readFileSync(path.join(ROOT, 'schemas/pipeline.schema.json'), 'utf8');
  assert.equal(committed, JSON.stringify(pipelineSchema(), null, 2) + '\n');
});

test('explain prints flows, schemas and modes, with secrets redacted', async () => {
  const r = await call(['explain', path.join(ROOT, 'pipelines/sales.yaml')], { SALES_DB_URL: 'mysql://u:hunter2secret@db:3306/s' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /flow aggregate_sales\s+\(downstream of publish_sales\)/);
  assert.match(r.stdout, /update keyed by \(product_name, brand, product_category\)/);
  assert.match(r.stdout, /total_revenue decimal\(38,2\)/);
  assert.ok(!r.stdout.includes('hunter2secret'), 'password printed');
});

test('checkpoint.interval auto: 100ms per flow, 5s for a flow with a Parquet output; a duration given applies to every flow', async () => {
  const spec = path.join(ROOT, 'pipelines/sales.yaml');
  let r = await call(['explain', spec]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /checkpoint interval auto/);
  assert.match(r.stdout, /flow publish_sales; checkpoint every 100ms/);
  assert.match(r.stdout, /flow aggregate_sales\s+\(downstream of publish_sales\); checkpoint every 5s/);
  assert.match(r.stdout, /flow archive_sales\s+\(downstream of publish_sales\); checkpoint every 5s/);
  r = await call(['explain', spec], { CHECKPOINT_INTERVAL: '1500ms' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /flow publish_sales; checkpoint every 1.5s/);
  assert.match(r.stdout, /flow aggregate_sales\s+\(downstream of publish_sales\); checkpoint every 1.5s/);
});

test('usage errors exit 2; --version and --help exit 0', async () => {
  assert.equal((await call(['frobnicate'])).code, 2);
  assert.equal((await call(['validate'])).code, 2);
  const v = await call(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+/);
  const h = await call(['--help']);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /Examples:/);
  const missing = await call(['validate', '/nonexistent/spec.yaml']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /\/nonexistent\/spec.yaml:1:1: no such file/);
});

test('a broken sink does not hide the problems of the steps before it', async () => {
  const r = await problems(
    BASE.replace('revenue: sum(quantity_sold * price_per_unit)', 'revenue: sum(product_name)').replace(
      '      - type: console',
      '      - type: console\n        colour: red',
    ),
  );
  assert.equal(r.code, 2);
  assert.deepEqual(
    r.lines.map((l) => l.replace(/ \[.*\]$/, '').replace(/;.*$/, '')),
    ['20:26: sum() needs a number, got string', '23:9: flows.main.sinks[0]: unknown key "colour"'],
  );
});

test('an unquoted decimal(p,s) inside a flow mapping gets a hint', async () => {
  const r = await problems(
    BASE.replace(
      /      schema:\n(        .*\n)+/,
      '      schema: { transaction_id: int, product_name: string, quantity_sold: int, price_per_unit: decimal(12,2) }\n',
    ),
  );
  assert.equal(r.code, 2);
  assert.match(r.lines.join('\n'), /must be quoted: "decimal\(12,2\)"/);
});

test('a window without an event-time column, and a late output without a window, are reported at their positions', async () => {
  const windowed = BASE.replace(
    'revenue: sum(quantity_sold * price_per_unit)',
    'revenue: sum(quantity_sold * price_per_unit)\n          window: { size: 1h }\n          mode: append',
  ).replace('    sinks:\n      - type: console', '    late: { type: file, path: late.jsonl }\n    sinks:\n      - type: console');
  const r = await problems(windowed);
  assert.equal(r.code, 2);
  assert.deepEqual(r.lines, ['21:19: a window needs an event-time column: set window.on, or eventTime on the source [window.eventTime]']);
  // With the event time declared, it validates; a late output on a flow without a window only warns.
  const ok = await problems(
    windowed
      .replace('      cursor: transaction_id', '      cursor: transaction_id\n      eventTime: sold_at')
      .replace('        quantity_sold: int', '        quantity_sold: int\n        sold_at: timestamp'),
  );
  assert.equal(ok.code, 0, ok.stderr);
  const warn = await problems(
    BASE.replace('    sinks:\n      - type: console', '    late: { type: file, path: late.jsonl }\n    sinks:\n      - type: console'),
  );
  assert.equal(warn.code, 0);
  assert.match(warn.lines.join('\n'), /^\d+:\d+: warning: no step of this flow has a watermark, so no record can be late/m);
});

test('explain --format mermaid and dot draw flows connected through their topics, columns only where they change; Graphviz accepts the dot and the drawing fits a screen', async (t) => {
  const spec = path.join(ROOT, 'pipelines/sales.yaml');
  const m = await call(['explain', spec, '--format', 'mermaid']);
  assert.equal(m.code, 0, m.stderr);
  const lines = m.stdout.split('\n');
  assert.equal(lines[0], 'flowchart TB');
  assert.equal(lines.filter((l) => /^  subgraph f\d\["flow /.test(l)).length, 3);
  // publish_sales's Kafka sink writes the topic both other flows read.
  const topic = /^  (topic\d+)\{\{"topic product_sales"\}\}$/m.exec(m.stdout)![1];
  assert.ok(lines.includes(`  f0_k0 --> ${topic}`));
  assert.ok(lines.includes(`  ${topic} --> f1_src`) && lines.includes(`  ${topic} --> f2_src`));
  assert.match(
    m.stdout,
    /f1_s2 -->\|"update keyed by \(product_name, brand, product_category\)<br\/>product_name string, brand string, product_category string, total_quantity_sold int<br\/>total_revenue decimal\(38,2\)"\| f1_k0/,
  );
  // The asserts keep the stream as it is: their edges say so without the columns.
  assert.match(m.stdout, /f1_s0 -->\|"append, event time transaction_date"\| f1_s1/);
  // Both sinks of a flow take one stream: its columns are drawn once.
  assert.equal((m.stdout.match(/total_revenue decimal\(38,2\)/g) ?? []).length, 1);
  const d = await call(['explain', spec, '--format', 'dot']);
  assert.equal(d.code, 0, d.stderr);
  assert.match(d.stdout, /^digraph "sales" \{/);
  const { spawnSync } = await import('node:child_process');
  const dot = spawnSync('dot', ['-Tsvg'], { input: d.stdout, encoding: 'utf8' });
  if (dot.error && process.env.CI !== 'true') return t.skip('Graphviz (dot) is not installed; npm run services:up installs it');
  assert.equal(dot.status, 0, dot.stderr);
  assert.match(dot.stdout, /<svg/);
  assert.match(dot.stdout, /flow aggregate_sales/);
  // It was 10,607 x 499 px as a PNG when every edge repeated the schema left to right.
  const png = spawnSync('dot', ['-Tpng'], { input: d.stdout });
  assert.equal(png.status, 0);
  const [w, h] = [png.stdout.readUInt32BE(16), png.stdout.readUInt32BE(20)];
  assert.ok(w <= 2600 && h <= 1600, `the drawing is ${w} x ${h} px`);
});

test('an unused connection is a warning; a nullable upsert key is an error; --format json carries the severity', async () => {
  const text = BASE.replace(
    '  db: { type: sql, url: "sqlite:x.db" }',
    '  db: { type: sql, url: "sqlite:x.db" }\n  spare: { type: kafka, brokers: "127.0.0.1:9092" }',
  )
    .replace('        quantity_sold: int', '        quantity_sold: int\n        customer_id: int?')
    .replace('groupBy: [product_name]', 'groupBy: [product_name, customer_id]')
    .replace('      - type: console', '      - type: console\n      - { type: sql, connection: db, table: totals }');
  const r = await problems(text);
  assert.equal(r.code, 2);
  assert.deepEqual(r.lines, [
    '4:3: warning: connection "spare" is not used by any flow [graph.unused]',
    '25:9: key column "customer_id" is nullable (int?), but a primary key cannot hold null; filter the nulls out or coalesce() them first [type.nullable]',
  ]);
  const j = await call(['validate', '--format', 'json', specFile(text)]);
  assert.deepEqual(
    JSON.parse(j.stdout).map((p: { severity: string; code: string }) => [p.severity, p.code]),
    [
      ['warning', 'graph.unused'],
      ['error', 'type.nullable'],
    ],
  );
});

test('s3 and hdfs connections are checked offline: a secret key written in the spec, fields, and the kind against the path', async () => {
  const r = await problems(`pipeline: p
connections:
  archive: { type: s3, endpoint: "http://127.0.0.1:9000", accessKeyId: AKIAEXAMPLE, secretAccessKey: Wj4lrXUtn }
  lake: { type: hdfs, url: "http://nn:9870", kerberos: true }
flows:
  f:
    source: { type: parquet, path: "s3://sales-archive/history", connection: lake, schema: { a: int } }
    sinks:
      - { type: parquet, path: "hdfs://nn:8020/out", connection: archive }
`);
  assert.equal(r.code, 2);
  assert.match(
    r.lines.join('\n'),
    /^3:\d+: a secret written in the spec ends up in version control: take it from the environment, e\.g\. secretAccessKey: \$\{AWS_SECRET_ACCESS_KEY\} \[secret\.literal\]$/m,
  );
  assert.match(r.lines.join('\n'), /^4:\d+: .*kerberos/m);
  assert.match(r.lines.join('\n'), /^7:\d+: connection "lake" is an hdfs connection, expected s3 \[ref\.connection\]$/m);
  assert.match(r.lines.join('\n'), /^9:\d+: connection "archive" is an s3 connection, expected hdfs \[ref\.connection\]$/m);
  assert.ok(!r.stderr.includes('Wj4lrXUtn'), 'the secret is not shown');
});
