/**
 * Parquet datasets on S3 (s3proxy) and HDFS (MiniDFSCluster over WebHDFS),
 * started by `npm run services:up`. Oracles: SQL over the same rows, and
 * pyarrow reading the dataset from the store (S3FileSystem; fsspec's
 * WebHDFS for HDFS), independently of salespipe.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runCli, startCli, finished, tmpDir, uniq, readParquet, needServices, until, ROOT, money } from '../support/helpers.js';
import { freshDatabase, pingDatabase, sqlTotals, sqlRows, insertSales, MARIADB_ADMIN } from '../support/sql.js';
import { BROKERS, pingKafka } from '../support/kafka.js';
import { sinkContract, APPEND, KEYED, type ContractRow } from '../support/sink-contract.js';
import { runContext } from '../support/run-ctx.js';
import {
  S3_ENV,
  STORE_CONNECTIONS,
  freshBucket,
  freshHdfsPath,
  hdfsFiles,
  openUploads,
  pingHdfs,
  pingS3,
  s3Keys,
} from '../support/storage.js';
import { parquetSink } from '../../src/operators/sinks/parquet/index.js';
import { randomSale, rng } from '../../src/gen/generate.js';

const SALES = path.join(ROOT, 'pipelines/sales.yaml');
const DAY = 86_400_000;
const D0 = Date.UTC(2026, 0, 10);

interface StoreUnderTest {
  name: string;
  ping(): Promise<void>;
  /** A fresh location (nothing there yet). */
  fresh(): Promise<string>;
  /** The connection of STORE_CONNECTIONS that reaches it. */
  connection: string;
  /** The environment that reaches it without a connection. */
  env: Record<string, string>;
  /** Every file under a location, relative to it, hidden ones too. */
  files(where: string): Promise<string[]>;
}

const splitS3 = (where: string) => {
  const [bucket, ...rest] = where.slice('s3://'.length).split('/');
  return { bucket, prefix: rest.join('/') };
};

const STORES: StoreUnderTest[] = [
  {
    name: 'S3',
    ping: pingS3,
    fresh: async () => `s3://${await freshBucket()}/run`,
    connection: 'archive',
    env: S3_ENV,
    async files(where) {
      const { bucket, prefix } = splitS3(where);
      return (await s3Keys(bucket, prefix + '/')).map((k) => k.slice(prefix.length + 1));
    },
  },
  {
    name: 'HDFS',
    ping: pingHdfs,
    fresh: async () => `webhdfs://127.0.0.1:9870${freshHdfsPath()}`,
    connection: 'hadoop',
    env: { HADOOP_USER_NAME: 'salespipe' },
    files: (where) => hdfsFiles(new URL(where.replace(/^webhdfs:/, 'http:')).pathname),
  },
];

/** The location a webhdfs:// or s3:// URL names, as the spec's `path` with a connection (hdfs:// for HDFS). */
const asConnected = (where: string) => where.replace(/^webhdfs:\/\/[^/]+/, 'hdfs://namenode');

for (const st of STORES) {
  for (const input of [APPEND, KEYED]) {
    sinkContract({
      name: `parquet on ${st.name} (${input.mode === 'append' ? 'append: part files' : 'keyed: one file of latest rows'})`,
      def: parquetSink,
      input,
      async fresh(t: TestContext) {
        if (!(await needServices(t, st.ping))) return undefined;
        const where = `${await st.fresh()}/dataset`;
        return {
          cfg: { type: 'parquet', path: asConnected(where), connection: st.connection },
          ctx: runContext({ connections: STORE_CONNECTIONS }),
          visible: async () =>
            ((await st.files(where)).some((k) => k.endsWith('.parquet')) ? readParquet(where) : []) as unknown as ContractRow[],
        };
      },
    });
  }
}

const need = (t: TestContext, st: StoreUnderTest) =>
  needServices(t, async () => {
    await pingDatabase(MARIADB_ADMIN);
    await pingKafka();
    await st.ping();
  });

/** What sales.yaml reads from the environment, writing its Parquet outputs to `where`. */
const salesEnv = (st: StoreUnderTest, db: string, where: string, interval: string) => ({
  ...st.env,
  SALES_DB_URL: db,
  KAFKA_BROKERS: BROKERS,
  KAFKA_TOPIC_PREFIX: `${uniq()}.`,
  SALES_OUTPUT_DIR: where,
  SALESPIPE_STATE_DIR: tmpDir(),
  CHECKPOINT_INTERVAL: interval,
});

/** The running totals in `where`/aggregated_product_sales, read by pyarrow, equal SQL's. */
async function totalsEqualSql(db: string, where: string) {
  const want = new Map([...(await sqlTotals(db))].map(([k, v]) => [k, { units: v.units, revenue: money(v.revenue) }]));
  const totals = new Map(
    readParquet(`${where}/aggregated_product_sales`).map((x) => [
      `${x.product_name}|${x.brand}|${x.product_category}`,
      { units: String(x.total_quantity_sold), revenue: money(String(x.total_revenue)) },
    ]),
  );
  assert.deepEqual(totals, want, 'Parquet totals equal SQL');
}

/** SQL oracle: the sales of one day as `id:revenue` strings. */
async function sqlDay(db: string, day: string): Promise<string[]> {
  const rows = await sqlRows(
    db,
    `SELECT transaction_id, CAST(quantity_sold * price_per_unit AS CHAR) AS revenue FROM product_sales
     WHERE transaction_date >= '${day} 00:00:00' AND transaction_date < '${day} 00:00:00' + INTERVAL 1 DAY`,
  );
  return rows.map((r) => `${r.transaction_id}:${money(String(r.revenue))}`).sort();
}

const parquetDay = (where: string, day: string) =>
  readParquet(`${where}/sales_history/sale_date=${day}`)
    .map((r) => `${r.transaction_id}:${money(String(r.revenue))}`)
    .sort();

/** Reads a dataset on `st` back with salespipe's Parquet source (into a JSON-lines file): the rows' transaction_id, revenue, sale_date. */
async function readBack(st: StoreUnderTest, where: string): Promise<{ transaction_id: number; revenue: string; sale_date: string }[]> {
  const dir = tmpDir();
  const spec = path.join(dir, 'read.yaml');
  fs.writeFileSync(
    spec,
    `pipeline: readback
connections: ${JSON.stringify({ [st.connection]: STORE_CONNECTIONS[st.connection as keyof typeof STORE_CONNECTIONS] })}
flows:
  read:
    source:
      type: parquet
      path: ${asConnected(where)}
      connection: ${st.connection}
      schema: { transaction_id: int, revenue: "decimal(14,2)", sale_date: string }
    sinks:
      - { type: file, path: rows.jsonl }
`.replace('salespipe-secret', '${S3_SECRET}'),
  );
  const res = await runCli(['run', spec, '--drain', '--no-progress', '--state-dir', path.join(dir, 'state')], {
    S3_SECRET: 'salespipe-secret',
  });
  assert.equal(res.code, 0, res.stderr);
  const text = fs.existsSync(path.join(dir, 'rows.jsonl')) ? fs.readFileSync(path.join(dir, 'rows.jsonl'), 'utf8').trim() : '';
  return text ? text.split('\n').map((l) => JSON.parse(l)) : [];
}

for (const st of STORES) {
  test(`${st.name}: sales.yaml with its Parquet outputs there: totals and history read back by pyarrow equal SQL, each sale once; a backfill (killed once) rewrites exactly its days; the dataset reads back as a source`, async (t) => {
    if (!(await need(t, st))) return;
    const db = await freshDatabase('mysql', `sp_${uniq()}`);
    const where = await st.fresh();
    const e = salesEnv(st, db, where, '500ms');
    const r = rng(41);
    await insertSales(
      db,
      Array.from({ length: 3000 }, (_, i) => randomSale(r, D0 + Math.floor((i / 3000) * 4 * DAY))),
    );
    let res = await runCli(['run', SALES, '--drain', '--no-progress'], e);
    assert.equal(res.code, 0, res.stderr);

    await totalsEqualSql(db, where);
    const ids = readParquet(`${where}/sales_history`).map((x) => Number(x.transaction_id));
    assert.equal(ids.length, 3000, 'each sale archived once');
    assert.equal(new Set(ids).size, 3000, 'every sale archived');
    const files = await st.files(where);
    assert.ok(
      files.filter((f) => f.startsWith('sales_history/sale_date=')).length >= 4,
      `the history is partitioned by day:\n${files.join('\n')}`,
    );
    assert.ok(!files.some((f) => /(^|\/)\.[^/]*\.staged$/.test(f)), 'no staged file left');
    if (st.name === 'S3') assert.deepEqual(await openUploads(splitS3(where).bucket), [], 'no multipart upload left open');

    // A rerun writes nothing new.
    res = await runCli(['run', SALES, '--drain', '--no-progress'], e);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(readParquet(`${where}/sales_history`).length, 3000);

    // Corrections in the database, then a backfill of two days, killed once while it rewrites.
    await sqlRows(
      db,
      `DELETE FROM product_sales WHERE transaction_date >= '2026-01-11 00:00:00' AND transaction_date < '2026-01-11 08:00:00'`,
    );
    await insertSales(
      db,
      Array.from({ length: 30 }, (_, i) => randomSale(r, Date.UTC(2026, 0, 11 + (i % 2), 20))),
    );
    const untouched = new Map(['2026-01-10', '2026-01-13'].map((d) => [d, parquetDay(where, d)]));
    const before = (await st.files(where)).filter((f) => /sale_date=2026-01-1[03]\//.test(f)).sort();
    const args = ['backfill', SALES, '--from', '2026-01-11', '--to', '2026-01-13'];
    // Killed at three points: as it starts rewriting, while it stages, while it swaps (or publishes and deletes).
    for (const delay of [0, 150, 400]) {
      const child = startCli(args, e);
      await until(() => /rewriting/.test(child.out.stderr) || child.exitCode !== null, 60_000, 'the backfill to start rewriting');
      await new Promise((res2) => setTimeout(res2, delay));
      child.kill('SIGKILL');
      await finished(child);
    }
    res = await runCli(args, e);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /2 partition\(s\) rewritten in 1 dataset\(s\)/);
    for (const d of ['2026-01-11', '2026-01-12']) assert.deepEqual(parquetDay(where, d), await sqlDay(db, d), `${d} equals SQL`);
    for (const [d, rows] of untouched) assert.deepEqual(parquetDay(where, d), rows, `${d} is outside the range: untouched`);
    const after = await st.files(where);
    assert.deepEqual(after.filter((f) => /sale_date=2026-01-1[03]\//.test(f)).sort(), before, 'the files of other days are the same');
    assert.deepEqual(
      after.filter((f) => /sale_date=2026-01-1[12]\//.test(f) && !f.split('/').pop()!.startsWith('.')),
      ['sales_history/sale_date=2026-01-11/part-0000000000.parquet', 'sales_history/sale_date=2026-01-12/part-0000000000.parquet'],
    );
    assert.ok(!after.some((f) => /_backfill\.json|\.backfill-/.test(f)), 'journal and staging cleaned up');
    if (st.name === 'S3') assert.deepEqual(await openUploads(splitS3(where).bucket), [], 'no multipart upload left open');

    // The history on the store as a backfill's --history (windows recomputed from it; a dry run writes nothing).
    const hist = await runCli(
      [
        'backfill',
        path.join(ROOT, 'pipelines/windowed-sales.yaml'),
        '--from',
        '2026-01-11',
        '--to',
        '2026-01-13',
        '--history',
        `${where}/sales_history`,
        '--dry-run',
      ],
      e,
    );
    assert.equal(hist.code, 0, hist.stderr);
    const inRange = (await sqlDay(db, '2026-01-11')).length + (await sqlDay(db, '2026-01-12')).length;
    assert.match(hist.stderr, new RegExp(`: ${inRange} record\\(s\\) of \\S+sales_history with transaction_date in`));

    // The dataset as a source: every row of the history, read from the store.
    const back = await readBack(st, `${where}/sales_history`);
    // What pyarrow reads there: the backfilled days as the database has them now, the others as archived.
    const oracle = readParquet(`${where}/sales_history`)
      .map((x) => `${x.transaction_id}:${money(String(x.revenue))}:${x.sale_date}`)
      .sort();
    assert.deepEqual(back.map((x) => `${x.transaction_id}:${money(String(x.revenue))}:${x.sale_date}`).sort(), oracle);
  });
}

test(
  'S3: sales.yaml killed with SIGKILL at least 10 times while 8 writers insert: every sale in the S3 history exactly once, totals equal SQL, no multipart upload left',
  { timeout: 30 * 60_000 },
  async (t) => {
    const st = STORES[0];
    if (!(await need(t, st))) return;
    const db = await freshDatabase('mysql', `sp_${uniq()}`);
    const where = await st.fresh();
    const e = salesEnv(st, db, where, '300ms');
    const N = 20_000;
    const gen = startCli(['generate', '--db', db, '--count', String(N), '--writers', '8', '--batch', '20', '--rate', '800'], e);
    let generating = true;
    const generated = finished(gen).then((x) => ((generating = false), x));
    const rand = rng(5);
    let kills = 0;
    while (kills < 10 || generating) {
      const child = startCli(['run', SALES, '--no-progress'], e);
      await new Promise((res) => setTimeout(res, 1500 + Math.floor(rand() * 3500)));
      assert.equal(child.exitCode, null, `the run exited by itself:\n${child.out.stderr.slice(-3000)}`);
      child.kill('SIGKILL');
      await finished(child);
      kills++;
    }
    assert.equal((await generated).code, 0);
    const res = await runCli(['run', SALES, '--drain', '--no-progress'], e);
    assert.equal(res.code, 0, res.stderr);
    const ids = readParquet(`${where}/sales_history`).map((x) => Number(x.transaction_id));
    assert.equal(new Set(ids).size, N, 'every sale archived');
    assert.equal(ids.length, N, 'no sale archived twice');
    await totalsEqualSql(db, where);
    assert.deepEqual(await openUploads(splitS3(where).bucket), [], 'no multipart upload left open after the final drain');
  },
);

test(
  'S3: the object store stopped for 30 s mid-run: the run retries (a line per attempt), resumes, and loses or doubles nothing',
  { timeout: 10 * 60_000 },
  async (t) => {
    const st = STORES[0];
    if (!(await need(t, st))) return;
    const db = await freshDatabase('mysql', `sp_${uniq()}`);
    const where = await st.fresh();
    const e = salesEnv(st, db, where, '500ms');
    const r = rng(8);
    await insertSales(
      db,
      Array.from({ length: 1000 }, () => randomSale(r, D0 + Math.floor(r() * DAY))),
    );
    const child = startCli(['run', SALES, '--no-progress'], e);
    try {
      await until(
        async () => child.exitCode !== null || (await st.files(where)).some((f) => /^sales_history\/.*\.parquet$/.test(f)),
        60_000,
        'the run to publish history',
      );
      await new Promise((res) => setTimeout(res, 2000));
      const svc = path.join(ROOT, 'services/services.sh');
      assert.equal(spawnSync('bash', [svc, 'stop', 's3'], { stdio: 'ignore' }).status, 0);
      try {
        await insertSales(
          db,
          Array.from({ length: 1000 }, () => randomSale(r, D0 + DAY + Math.floor(r() * DAY))),
        );
        await new Promise((res) => setTimeout(res, 30_000));
        assert.equal(child.exitCode, null, `the run gave up while S3 was away:\n${child.out.stderr.slice(-3000)}`);
        assert.match(child.out.stderr, /s3:\/\/.*failed \(.*\); retrying in \d+ ms/);
      } finally {
        assert.equal(spawnSync('bash', [svc, 'start', 's3'], { stdio: 'ignore' }).status, 0);
      }
      await until(() => /works again after \d+ failed attempt/.test(child.out.stderr), 120_000, 'the run to reach S3 again');
    } finally {
      child.kill('SIGTERM');
      await finished(child);
    }
    const res = await runCli(['run', SALES, '--drain', '--no-progress'], e);
    assert.equal(res.code, 0, res.stderr);
    const ids = readParquet(`${where}/sales_history`).map((x) => Number(x.transaction_id));
    assert.equal(new Set(ids).size, 2000, 'every sale archived');
    assert.equal(ids.length, 2000, 'no sale archived twice');
  },
);

test('S3: a wrong secret fails at once, naming the connection, exit 1, the secret never printed', async (t) => {
  const st = STORES[0];
  if (!(await needServices(t, st.ping))) return;
  const bucket = splitS3(await st.fresh()).bucket;
  const dir = tmpDir();
  const spec = path.join(dir, 'wrong.yaml');
  fs.writeFileSync(
    spec,
    `pipeline: wrong
connections:
  archive: { type: s3, endpoint: "http://127.0.0.1:9000", pathStyle: true, accessKeyId: salespipe, secretAccessKey: "\${S3_SECRET}" }
flows:
  f:
    source: { type: parquet, path: empty, schema: { a: int? } }
    sinks:
      - { type: parquet, path: "s3://${bucket}/out", connection: archive }
`,
  );
  fs.mkdirSync(path.join(dir, 'empty'));
  const secret = `wrong-${uniq()}`;
  const started = Date.now();
  const res = await runCli(['run', spec, '--drain', '--no-progress', '--state-dir', path.join(dir, 'state')], { S3_SECRET: secret });
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /connection "archive": S3 refused the credentials \(SignatureDoesNotMatch/);
  assert.ok(!res.stderr.includes(secret) && !res.stdout.includes(secret), 'the secret is not printed');
  assert.doesNotMatch(res.stderr, /retrying/);
  assert.doesNotMatch(res.stderr, /    at /);
  assert.ok(Date.now() - started < 30_000, 'at once, not after retries');
});

for (const st of STORES) {
  test(
    `${st.name}: compaction while sales.yaml appends to the same history, one run killed with SIGKILL: salespipe's readers see each sale once at every read, nothing lost; files drop to one per day; pyarrow and SQL agree at the end`,
    { timeout: 15 * 60_000 },
    async (t) => {
      if (!(await need(t, st))) return;
      const db = await freshDatabase('mysql', `sp_${uniq()}`);
      const where = await st.fresh();
      const e = salesEnv(st, db, where, '300ms');
      const from = new Date(D0).toISOString(),
        to = new Date(D0 + 3 * DAY).toISOString();
      const N = 3000;
      const run = startCli(['run', SALES, '--no-progress'], e);
      const gen = startCli(
        ['generate', '--db', db, '--count', String(N), '--writers', '2', '--batch', '10', '--rate', '120', '--from', from, '--to', to],
        e,
      );
      let generating = true;
      const generated = finished(gen).then((x) => ((generating = false), x));
      const history = `${where}/sales_history`;
      const compactArgs = ['compact', SALES, '--output', 'sales_history', '--older-than', '0s'];
      let last = 0,
        round = 0,
        merged = 0;
      try {
        while (generating || round < 4) {
          round++;
          const c = startCli(compactArgs, e);
          const read = readBack(st, history);
          if (round === 2) {
            // Killed while it merges: the next run finishes or discards what it left.
            await until(() => /merged into|compacted/.test(c.out.stderr) || c.exitCode !== null, 60_000, 'the compaction to merge');
            c.kill('SIGKILL');
          }
          const cr = await finished(c);
          if (round !== 2) assert.equal(cr.code, 0, cr.stderr);
          merged += (cr.stdout + cr.stderr).match(/merged into/g)?.length ?? 0;
          const rows = await read;
          const ids = rows.map((x) => x.transaction_id);
          assert.equal(new Set(ids).size, ids.length, `read ${round}: a sale read twice`);
          assert.ok(ids.length >= last, `read ${round}: ${ids.length} sales, fewer than the ${last} read before`);
          last = ids.length;
        }
        assert.equal((await generated).code, 0);
      } finally {
        run.kill('SIGTERM');
        await finished(run);
      }
      assert.ok(merged >= 3, `only ${merged} merges happened`);
      let res = await runCli(['run', SALES, '--drain', '--no-progress'], e);
      assert.equal(res.code, 0, res.stderr);
      res = await runCli(compactArgs, e);
      assert.equal(res.code, 0, res.stderr);
      const files = (await st.files(history)).filter((f) => /^sale_date=[^/]+\/[^./][^/]*\.parquet$/.test(f));
      const days = new Set(files.map((f) => f.split('/')[0]));
      assert.equal(files.length, days.size, `one file per day after the last compaction:\n${files.join('\n')}`);
      const [{ n }] = await sqlRows(db, 'SELECT COUNT(*) AS n FROM product_sales');
      assert.equal(Number(n), N);
      const ids = readParquet(history).map((x) => Number(x.transaction_id));
      assert.equal(ids.length, N, 'pyarrow: each sale once');
      assert.equal(new Set(ids).size, N, 'pyarrow: every sale');
      assert.equal((await readBack(st, history)).length, N, "salespipe's reader: every sale once");
      if (st.name === 'S3') assert.deepEqual(await openUploads(splitS3(where).bucket), [], 'no multipart upload left open');
    },
  );
}

test('S3: a listing pages past 1,000 objects (ListObjectsV2 continuation), and so does the list of open uploads', async (t) => {
  const st = STORES[0];
  if (!(await needServices(t, st.ping))) return;
  const { bucket } = splitS3(await st.fresh());
  const { openStore } = await import('../../src/storage/store.js');
  const store = await openStore(
    { kind: 's3', bucket, prefix: 'many', connection: 'archive' },
    { ...runContext(), connections: STORE_CONNECTIONS },
  );
  try {
    const keys = Array.from({ length: 1100 }, (_, i) => `d=${i % 7}/f${String(i).padStart(4, '0')}.parquet`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, Buffer.from(k))));
    assert.deepEqual((await store.list()).map((e) => e.key).sort(), [...keys].sort());
    assert.equal((await s3Keys(bucket, 'many/')).length, 1100, 'an independent listing agrees');
    const staged = [];
    for (let i = 0; i < 1010; i += 50)
      staged.push(
        ...(await Promise.all(Array.from({ length: Math.min(50, 1010 - i) }, (_, j) => store.stage(`u/x${i + j}`, Buffer.from('x'), 't')))),
      );
    assert.equal((await store.staged()).length, 1010);
    for (let i = 0; i < staged.length; i += 50) await Promise.all(staged.slice(i, i + 50).map((s) => store.discard(s)));
    assert.deepEqual(await openUploads(bucket), []);
  } finally {
    await store.close();
  }
});

for (const st of STORES) {
  test(`${st.name}: generate --history --parquet writes the history there, each day a partition, read back whole by pyarrow`, async (t) => {
    if (!(await needServices(t, st.ping))) return;
    const where = `${await st.fresh()}/sales_history`;
    const res = await runCli(['generate', '--history', '5d', '--parquet', where, '--seed', '3'], st.env);
    assert.equal(res.code, 0, res.stderr);
    const n = Number(/wrote (\d+) sale\(s\) of 5 day\(s\)/.exec(res.stderr)?.[1]);
    assert.ok(n > 0, res.stderr);
    const rows = readParquet(where);
    assert.equal(rows.length, n);
    assert.equal(new Set(rows.map((r) => r.sale_date)).size, 5);
    assert.ok(!(await st.files(where)).some((f) => f.includes('.staged')), 'nothing staged left');
  });
}
