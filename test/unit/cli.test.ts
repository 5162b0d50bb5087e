/**
 * The command line as a newcomer meets it (issue 11): the natural CI
 * commands, exit codes for wrong paths, help texts, log levels, exact
 * figures in messages and expectations, YAML errors cause first, the
 * progress rate. In-process (`cli(argv, io)`), no server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { cli } from '../../src/cli.js';
import { ROOT, tmpDir } from '../support/helpers.js';
import { makeDecoder } from '../../src/operators/record-schema.js';
import { makeJsonEncoder, makeKeyEncoder } from '../../src/operators/json-row.js';
import { compileExpr } from '../../src/expr/compile.js';
import { Rate } from '../../src/runtime/progress.js';
import { colType } from '../support/types.js';

async function call(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string) {
  let stdout = '',
    stderr = '';
  const before = process.cwd();
  if (cwd) process.chdir(cwd);
  try {
    const code = await cli(args, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), env });
    return { code, stdout, stderr };
  } finally {
    process.chdir(before);
  }
}

const shipped = () =>
  fs
    .readdirSync(path.join(ROOT, 'pipelines'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => path.join(ROOT, 'pipelines', f));

test('validate pipelines/*.yaml and test pipelines/*.yaml, sidecars included, pass on the shipped pipelines', async () => {
  const files = shipped();
  assert.ok(
    files.some((f) => f.endsWith('.tests.yaml')),
    'the glob names sidecars',
  );
  const v = await call(['validate', ...files]);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, new RegExp(`^${files.filter((f) => !f.endsWith('.tests.yaml')).length} spec\\(s\\) valid`));
  const t = await call(['test', ...files]);
  assert.equal(t.code, 0, t.stdout + t.stderr);
  assert.doesNotMatch(t.stdout + t.stderr, /missing required key "flows"|no flow "/);
  // Each spec's tests run once, however many of its files are named.
  const dir = await call(['test', path.join(ROOT, 'pipelines')]);
  assert.equal(/(\d+) passed/.exec(t.stdout)![1], /(\d+) passed/.exec(dir.stdout)![1]);
});

test('a directory without specs fails validate and test (a wrong path must not pass CI); run of a directory says what it takes', async () => {
  const empty = tmpDir();
  fs.writeFileSync(path.join(empty, 'README.md'), 'no specs here');
  for (const cmd of ['validate', 'test']) {
    const r = await call([cmd, empty]);
    assert.equal(r.code, 2, cmd);
    assert.equal(r.stderr, `salespipe: no specs found in ${empty} (expected .yaml or .yml files)\n`);
  }
  const r = await call(['run', path.join(ROOT, 'pipelines')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^salespipe: \S+pipelines is a directory; this command takes one spec file \(e\.g\. \S+\.yaml\)\n$/);
  assert.doesNotMatch(r.stderr, /EISDIR/);
});

test('salespipe test states totals past 2^53 cents exactly (as strings), which the runtime produces exactly', async () => {
  const dir = tmpDir();
  const spec = path.join(dir, 'big.yaml');
  fs.writeFileSync(
    spec,
    `pipeline: big
connections: { db: { type: sql, url: "sqlite:x.db" } }
flows:
  totals:
    source: { type: sql, connection: db, table: s, cursor: id, schema: { id: int, p: string, q: int, price: "decimal(12,2)" } }
    steps: [ { aggregate: { groupBy: [p], compute: { revenue: sum(q * price) } } } ]
    sinks: [ { type: console } ]
tests:
  - name: past 2^53 cents
    input:
      totals:
        - { id: 1, p: a, q: 5000, price: "9999999999.99" }
        - { id: 2, p: a, q: 5000, price: "9999999999.99" }
    expect:
      totals: [ { p: a, revenue: "99999999999900.00" } ]
  - name: one cent off fails, with both figures shown
    input:
      totals: [ { id: 1, p: a, q: 5000, price: "9999999999.99" }, { id: 2, p: a, q: 5000, price: "9999999999.99" } ]
    expect:
      totals: [ { p: a, revenue: "99999999999900.01" } ]
`,
  );
  const r = await call(['test', spec]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /ok   big: past 2\^53 cents/);
  assert.match(r.stdout, /FAIL big: one cent off fails/);
  assert.match(r.stdout, /expected \{ p: "a", revenue: 99999999999900\.01 \}\n\s+got \{ p: "a", revenue: 99999999999900\.00 \}/);
  assert.doesNotMatch(r.stdout, /too large for an exact decimal/);
});

test('decimals go to Kafka as exact JSON numbers, or as strings with decimals: string; keys write timestamps and decimals as values do', () => {
  const schema = [
    { name: 'total', type: { kind: 'decimal' as const, precision: 38, scale: 2, nullable: false } },
    { name: 'at', type: colType('timestamp') },
  ];
  const row = { total: 9007199254740993n * 10n, at: Date.parse('2026-01-15T10:00:00Z') };
  assert.equal(makeJsonEncoder(schema)(row), '{"total":900719925474099.30,"at":"2026-01-15T10:00:00.000Z"}');
  assert.equal(makeJsonEncoder(schema, { decimals: 'string' })(row), '{"total":"900719925474099.30","at":"2026-01-15T10:00:00.000Z"}');
  assert.equal(makeKeyEncoder(['at', 'total'], schema)(row), '2026-01-15T10:00:00.000Z|900719925474099.30');
});

test('overflow reasons show the exact figure and the limit', () => {
  const dec = makeDecoder([{ name: 'quantity_sold', type: colType('int') }], { timeZone: 'UTC' });
  assert.equal(
    dec({ quantity_sold: 2 ** 60 }),
    `field "quantity_sold": 1152921504606846976 is outside the exact integer range (at most ±9007199254740991)`,
  );
  const price = makeDecoder([{ name: 'p', type: colType('decimal(12,2)') }], { timeZone: 'UTC' });
  assert.equal(price({ p: '123456789012.34' }), 'field "p": 123456789012.34 exceeds decimal(12,2) (at most ±9999999999.99)');
  const schema = [
    { name: 'q', type: colType('int') },
    { name: 'p', type: colType('decimal(12,2)') },
  ];
  const f = compileExpr('q * p', schema).fn;
  assert.throws(() => f({ q: 2147483647, p: 999999999999 }), {
    message: 'numeric overflow: 21474836469978525163.53 is outside the exact range (at most ±90071992547409.91)',
  });
});

test('a YAML tab is reported before the error it causes', async () => {
  const f = path.join(tmpDir(), 'tab.yaml');
  fs.writeFileSync(f, 'pipeline: x\nflows:\n\tpipeline: y\n');
  const r = await call(['validate', f]);
  assert.equal(r.code, 2);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith(f));
  assert.match(lines[0], /tab\.yaml:3:1: Tabs are not allowed as indentation \[yaml\.tab_as_indent\]/);
  assert.match(lines[1], /tab\.yaml:2:7: Map keys must be unique \(perhaps a consequence of the error at 3:1\) \[yaml\.duplicate_key\]/);
});

test("help: the environment settings, each command's examples, no password shown; a log level that does not exist is refused", async () => {
  const top = await call(['--help']);
  assert.equal(top.code, 0);
  for (const v of [
    'SALES_DB_URL',
    'KAFKA_BROKERS',
    'KAFKA_TOPIC_PREFIX',
    'SALES_OUTPUT_DIR',
    'SALESPIPE_STATE_DIR',
    'SALESPIPE_LOG_LEVEL',
    'NO_COLOR',
  ])
    assert.match(top.stdout, new RegExp(v));
  for (const cmd of ['validate', 'explain', 'test', 'schema', 'run', 'status', 'reset', 'backfill', 'generate', 'demo']) {
    const h = await call([cmd, '--help']);
    assert.equal(h.code, 0, cmd);
    assert.match(h.stdout, /\nExamples:\n  salespipe /, `${cmd} --help has examples`);
  }
  const g = await call(['generate', '--help'], { SALES_DB_URL: 'postgres://shop:s3cr3t-pw@db:5432/shop' });
  assert.doesNotMatch(g.stdout, /s3cr3t-pw/);
  assert.match(g.stdout, /SALES_DB_URL:\s+postgres:\/\/shop:\*\*\*@db:5432\/shop/);
  const plain = await call(['generate', '--help']);
  assert.doesNotMatch(plain.stdout, /salespipe:salespipe@/);
  const bad = await call(['validate', path.join(ROOT, 'pipelines')], { SALESPIPE_LOG_LEVEL: 'verbose' });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr, 'salespipe: SALESPIPE_LOG_LEVEL=verbose: expected one of debug, info, warn, error\n');
});

test('the progress rate is over the last 10 s: steady records arriving in bursts show a steady rate', () => {
  const r = new Rate(0);
  let n = 0;
  const seen: number[] = [];
  // 200 records/s arriving as one burst of 1000 every 5 s (a commit), sampled every 500 ms.
  for (let t = 500; t <= 60_000; t += 500) {
    if (t % 5000 === 0) n += 1000;
    const rate = r.add(t, n);
    if (t >= 15_000) seen.push(rate);
  }
  assert.ok(Math.min(...seen) >= 150 && Math.max(...seen) <= 250, `rates ${Math.min(...seen)}..${Math.max(...seen)}`);
});

test('the default state directory is beside the spec, whatever the working directory', async () => {
  const dir = tmpDir();
  const spec = path.join(dir, 's.yaml');
  fs.writeFileSync(
    spec,
    'pipeline: s\nconnections: { db: { type: sql, url: "sqlite:s.db" } }\nflows:\n  f:\n    source: { type: sql, connection: db, table: product_sales, cursor: transaction_id, schema: { transaction_id: int } }\n    sinks: [ { type: console } ]\n',
  );
  const { openKnex } = await import('../../src/connections/sql.js');
  const { createTables } = await import('../../src/gen/generate.js');
  const { db } = await openKnex(`sqlite:${path.join(dir, 's.db')}`, dir, 1, { create: true });
  await createTables(db, 'sqlite');
  await db.destroy();
  const r = await call(['run', 's.yaml', '--drain', '--no-progress'], {}, dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`state in ${path.join(dir, '.salespipe', 'state').replace(/\./g, '\\.')}`));
  const elsewhere = await call(['run', spec, '--drain', '--no-progress'], {}, tmpDir());
  assert.match(elsewhere.stderr, new RegExp(`state in ${path.join(dir, '.salespipe', 'state').replace(/\./g, '\\.')}`));
});

/** A SQLite sales table in `dir` with `n` rows, and a spec reading it into `sink`. */
async function sqliteSpec(dir: string, n: number, sink: string, extra = ''): Promise<string> {
  const { openKnex } = await import('../../src/connections/sql.js');
  const { createTables } = await import('../../src/gen/generate.js');
  const { db } = await openKnex(`sqlite:${path.join(dir, 's.db')}`, dir, 1, { create: true });
  await createTables(db, 'sqlite');
  for (let i = 0; i < n; i += 500) {
    await db('product_sales').insert(
      Array.from({ length: Math.min(500, n - i) }, () => ({
        product_name: 'Dell Inspiron',
        product_category: 'Laptop',
        brand: 'Dell',
        quantity_sold: 1,
        price_per_unit: '10.00',
        transaction_date: '2026-01-15 10:00:00',
      })),
    );
  }
  await db.destroy();
  const spec = path.join(dir, 's.yaml');
  fs.writeFileSync(
    spec,
    `pipeline: s\n${extra}connections: { db: { type: sql, url: "sqlite:s.db" } }\nflows:\n  f:\n    source: { type: sql, connection: db, table: product_sales, cursor: transaction_id, pollInterval: 100ms, schema: { transaction_id: int, quantity_sold: int, transaction_date: timestamp } }\n    sinks: [ ${sink} ]\n`,
  );
  return spec;
}

test(
  'an output made read-only mid-run: the flow fails naming the sink, the path and EROFS, and the summary counts what committed',
  { skip: process.getuid?.() === 0 ? false : 'needs root to mount' },
  async (t) => {
    const { spawnSync } = await import('node:child_process');
    const mnt = tmpDir();
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) {
      if (process.env.CI === 'true') assert.fail(`mount of a tmpfs failed: ${m.stderr}`);
      return t.skip(`cannot mount: ${m.stderr.trim()}`);
    }
    try {
      const dir = tmpDir();
      const spec = await sqliteSpec(dir, 500, `{ type: parquet, path: ${mnt}/history }`, 'checkpoint: { interval: 200ms }\n');
      const { startCli, finished, until } = await import('../support/helpers.js');
      const run = startCli(['run', spec, '--no-progress'], { SALESPIPE_LOG_LEVEL: 'debug' });
      await until(() => /epoch 1 committed/.test(run.out.stderr), 30_000, 'the first epoch');
      assert.equal(spawnSync('mount', ['-o', 'remount,ro', mnt]).status, 0);
      const { openKnex } = await import('../../src/connections/sql.js');
      const { db } = await openKnex(`sqlite:${path.join(dir, 's.db')}`, dir, 1);
      await db('product_sales').insert({
        product_name: 'x',
        product_category: 'y',
        brand: 'z',
        quantity_sold: 1,
        price_per_unit: '1.00',
        transaction_date: '2026-01-15 11:00:00',
      });
      await db.destroy();
      const r = await finished(run);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(
          `parquet sink ${mnt}/history: cannot write ${mnt}/history/transaction_date=[^:]*: the filesystem is mounted read-only \\(EROFS\\)|parquet sink ${mnt}/history: cannot write \\S+: the filesystem is mounted read-only \\(EROFS\\)`,
        ),
      );
      assert.match(
        r.stderr,
        /f: 500 records in, 500 out, 0 dead letters, 1 epoch\(s\)/,
        'the summary counts the committed epoch, not the row read after it',
      );
    } finally {
      spawnSync('umount', [mnt]);
    }
  },
);

test('NO_COLOR: the spinner on a terminal draws no colour', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const dir = tmpDir();
  const spec = await sqliteSpec(dir, 10, '{ type: console, format: json }');
  const bin = path.join(ROOT, 'bin/salespipe.js');
  // Two seconds of a run on a pseudo-terminal, then Ctrl-C (SIGINT).
  const tty = (env: string) =>
    spawnSync(
      'script',
      [
        '-qec',
        `stty cols 120 rows 40; env -u CI ${env} timeout --preserve-status -s INT 2 ${process.execPath} ${bin} run ${spec}`,
        '/dev/null',
      ],
      { encoding: 'utf8', env: { ...process.env, CI: '' } },
    );
  const plain = tty('NO_COLOR=1');
  if (plain.error) return t.skip('script(1) is not available');
  assert.equal(plain.status, 0, plain.stdout);
  assert.doesNotMatch(plain.stdout, /\x1b\[3\dm/, 'no colour codes with NO_COLOR');
  const coloured = tty('FORCE_COLOR=1');
  assert.match(coloured.stdout, /\x1b\[36m/, 'the spinner is cyan otherwise');
});

test('generate --rate reports progress every 10 s', async () => {
  const dir = tmpDir();
  const { runCli } = await import('../support/helpers.js');
  const r = await runCli([
    'generate',
    '--db',
    `sqlite:${path.join(dir, 'g.db')}`,
    '--create-tables',
    '--count',
    '1200',
    '--rate',
    '100',
    '--writers',
    '1',
    '--batch',
    '10',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /inserted \d+ of 1200 sale\(s\) in 10 s \(\d+\/s\)/);
  assert.match(r.stderr, /inserted 1200 sale\(s\) with 1 writer\(s\)/);
});

test('output piped to a reader that stops early (salespipe --help | head -1): exit 0, no stack trace', async () => {
  const { spawn } = await import('node:child_process');
  const { BIN } = await import('../support/helpers.js');
  // `sh -c` gives the real thing: head exits after one line and the pipe closes under salespipe.
  const child = spawn('sh', ['-c', `"${process.execPath}" "${BIN}" --help | head -1`], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const code = await new Promise((r) => child.on('exit', r));
  assert.equal(code, 0);
  assert.equal(stderr, '', 'nothing on stderr: no EPIPE, no stack');
});
