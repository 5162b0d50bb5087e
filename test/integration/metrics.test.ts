/**
 * `salespipe run … --metrics-port`: the endpoint scraped while
 * pipelines/sales.yaml runs against real MariaDB and Kafka, read by an
 * independent parser of the Prometheus text format. Oracles: SQL (how many
 * sales, how many invalid) and the run's own summary printed at the stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { finished, needServices, ROOT, startCli, tmpDir, uniq, until } from '../support/helpers.js';
import { freshDatabase, insertSales, MARIADB_ADMIN, pingDatabase, sqlRows } from '../support/sql.js';
import { BROKERS, pingKafka } from '../support/kafka.js';
import { parsePrometheus, sample, type Family } from '../support/prometheus.js';
import { METRIC_NAMES as N } from '../../src/metrics/metrics.js';
import { randomSale, rng } from '../../src/gen/generate.js';

const SPEC = path.join(ROOT, 'pipelines/sales.yaml');
const FLOWS = ['publish_sales', 'aggregate_sales', 'archive_sales'];

/** The summary line the run prints for `flow` at its end. */
function summary(stderr: string, flow: string): { in: number; out: number; dead: number; epochs: number } {
  const m = new RegExp(`${flow}: ([\\d,]+) records in, ([\\d,]+) out, ([\\d,]+) dead letters.*?(\\d+) epoch\\(s\\)`).exec(stderr);
  assert.ok(m, `a summary line for ${flow}:\n${stderr.slice(-2000)}`);
  const n = (s: string) => Number(s.replace(/,/g, ''));
  return { in: n(m[1]), out: n(m[2]), dead: n(m[3]), epochs: n(m[4]) };
}

test(
  '/metrics while sales.yaml runs: records in and dead letters equal SQL, the figures equal the run summary; /healthz and /readyz answer',
  { timeout: 5 * 60_000 },
  async (t) => {
    if (
      !(await needServices(t, async () => {
        await pingDatabase(MARIADB_ADMIN);
        await pingKafka();
      }))
    )
      return;
    const db = await freshDatabase('mysql', `sp_${uniq()}`);
    const r = rng(5);
    await insertSales(db, [
      ...Array.from({ length: 1500 }, (_, i) => randomSale(r, Date.UTC(2026, 10, 1) + i * 60_000)),
      // Two invalid sales: dead letters.
      { ...randomSale(r, Date.UTC(2026, 10, 3)), quantity_sold: 0 },
      { ...randomSale(r, Date.UTC(2026, 10, 3)), price_per_unit: '-1.00' },
    ]);
    const e = {
      SALES_DB_URL: db,
      KAFKA_BROKERS: BROKERS,
      KAFKA_TOPIC_PREFIX: `${uniq()}.`,
      SALES_OUTPUT_DIR: tmpDir(),
      SALESPIPE_STATE_DIR: tmpDir(),
      CHECKPOINT_INTERVAL: '1s',
    };
    const run = startCli(['run', SPEC, '--no-progress', '--metrics-port', '0'], e);
    let families: Family[] = [];
    try {
      let base = '';
      await until(
        () => !!(base = /metrics at (http:\S+)\/metrics/.exec(run.out.stderr)?.[1] ?? '') || run.exitCode !== null,
        60_000,
        'the metrics endpoint',
      );
      assert.ok(base, run.out.stderr);
      const [{ n }] = await sqlRows(db, 'SELECT COUNT(*) AS n FROM product_sales');
      const scrape = async () => parsePrometheus(await (await fetch(`${base}/metrics`)).text());
      // Every sale through every flow and committed.
      await until(
        async () => {
          families = await scrape();
          return FLOWS.every((f) => sample(families, N.recordsIn, f) === Number(n) && (sample(families, N.lag, f) ?? 0) === 0);
        },
        120_000,
        'every sale to be read by every flow',
      );
      assert.equal((await fetch(`${base}/readyz`)).status, 200);
      assert.equal((await fetch(`${base}/healthz`)).status, 200);
      // Idle now: a later scrape says the same.
      await new Promise((res) => setTimeout(res, 2500));
      families = await scrape();
    } finally {
      run.kill('SIGTERM');
    }
    const done = await finished(run);
    assert.equal(done.code, 0, done.stderr.slice(-3000));
    // The aggregate refuses both invalid sales; the archive only the one without a positive quantity.
    const [{ a, h }] = await sqlRows(
      db,
      'SELECT SUM(quantity_sold <= 0 OR price_per_unit < 0) AS a, SUM(quantity_sold <= 0) AS h FROM product_sales',
    );
    assert.equal(sample(families, N.deadLetters, 'aggregate_sales'), Number(a));
    assert.equal(sample(families, N.deadLetters, 'archive_sales'), Number(h));
    assert.equal(sample(families, N.deadLetters, 'publish_sales'), 0);
    for (const f of FLOWS) {
      const s = summary(done.stderr, f);
      assert.deepEqual(
        {
          in: sample(families, N.recordsIn, f),
          out: sample(families, N.recordsOut, f),
          dead: sample(families, N.deadLetters, f),
          epochs: sample(families, N.epochs, f),
        },
        s,
        `${f}: the scraped figures are the summary's`,
      );
      assert.equal(sample(families, N.ready, f), 1);
      assert.ok(sample(families, N.checkpointBytes, f)! > 0, `${f}: a checkpoint size`);
      assert.ok(
        sample(families, N.checkpointBytesTotal, f)! >= sample(families, N.checkpointBytes, f)!,
        `${f}: checkpoint bytes of the run`,
      );
      assert.ok(Math.abs(sample(families, N.lastCommit, f)! * 1000 - Date.now()) < 120_000, `${f}: the last commit is recent`);
    }
    assert.ok(sample(families, N.watermark, 'aggregate_sales')! >= Date.UTC(2026, 10, 2) / 1000, 'the event time reached');
  },
);
