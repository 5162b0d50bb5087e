/**
 * The README's commands, run as a newcomer runs them: the history replay
 * of "The retailer's extensions" (generate --ordered, then the sales and
 * windowed pipelines drained), taken from the README's own code block, on
 * a fresh database and topic prefix. Every hour and day before the last
 * must be final in windowed_product_sales, equal to SQL over the same rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT, needServices, parseExact, readTopicSettled, runCli } from '../support/helpers.js';
import { sqlRows } from '../support/sql.js';
import { freshRun, mariadbAndKafka } from '../support/runs.js';

/** The commands of the README's ```sh block that follows `marker`. */
function readmeBlock(marker: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = text.indexOf(marker);
  assert.notEqual(at, -1, `the README says "${marker}"`);
  const block = /```sh\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(block, `a sh block follows "${marker}"`);
  return block[1]
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => l && !l.startsWith('#'));
}

/**
 * Runs a README block's `bin/salespipe.js` commands as written, after checking they are the
 * `expected` ones (command and first argument); out/ becomes this run's output directory.
 * Returns each command's standard output.
 */
async function runWalkthrough(lines: string[], expected: string[], env: NodeJS.ProcessEnv): Promise<string[]> {
  const commands = lines.filter((l) => l.startsWith('bin/salespipe.js '));
  assert.deepEqual(
    commands.map((l) => l.split(/\s+/).slice(1, 3).join(' ')),
    expected,
    lines.join('\n'),
  );
  const out: string[] = [];
  for (const line of commands) {
    const args = line
      .split(/\s+/)
      .slice(1)
      .map((a) => a.replace(/^out\//, `${env.SALES_OUTPUT_DIR}/`));
    const r = await runCli(args, env);
    assert.equal(r.code, 0, `${line}\n${r.stderr.slice(-3000)}`);
    out.push(r.stdout);
  }
  return out;
}
test(
  "the README's history replay: every hour and day before the last is final in windowed_product_sales, equal to SQL",
  { timeout: 600_000 },
  async (t) => {
    if (!(await needServices(t, mariadbAndKafka))) return;
    const lines = readmeBlock('To see windows at once, replay a');
    const { db, prefix, env } = await freshRun();
    const commands = lines.filter((l) => l.startsWith('bin/salespipe.js '));
    assert.deepEqual(
      commands.map((l) => l.split(/\s+/)[1]),
      ['generate', 'run', 'run'],
      lines.join('\n'),
    );
    for (const line of commands) {
      const r = await runCli(line.split(/\s+/).slice(1), env);
      assert.equal(r.code, 0, `${line}\n${r.stderr.slice(-3000)}`);
    }
    assert.ok(
      lines.some((l) => l.startsWith('kcat ') && l.includes('-t windowed_product_sales')),
      'the block reads the output with kcat',
    );
    const got = new Map<string, string>();
    for (const m of await readTopicSettled(`${prefix}windowed_product_sales`)) {
      const v = parseExact(m.value);
      const k = `${v.window_size}|${v.window_start}|${v.product_name}|${v.brand}`;
      assert.ok(!got.has(k), `one message per final window: ${k} twice`);
      got.set(k, `${v.total_quantity_sold} ${v.total_revenue} ${v.transactions}`);
    }
    // SQL over the same rows: every window that ended at least the lateness (10m), plus a few minutes
    // for the partitions' spread, before the latest sale is final.
    const want = new Map<string, string>();
    for (const [size, start, len] of [
      ['1h', "DATE_FORMAT(transaction_date, '%Y-%m-%dT%H:00:00.000Z')", 'INTERVAL 1 HOUR'],
      ['1d', "DATE_FORMAT(transaction_date, '%Y-%m-%dT00:00:00.000Z')", 'INTERVAL 1 DAY'],
    ]) {
      const rows = await sqlRows(
        db,
        `
      SELECT ${start} AS w, product_name, brand, SUM(quantity_sold) AS q, CAST(SUM(quantity_sold * price_per_unit) AS CHAR) AS r, COUNT(*) AS n
      FROM product_sales GROUP BY w, product_name, brand
      HAVING STR_TO_DATE(w, '%Y-%m-%dT%H:%i:%s.000Z') + ${len} <= (SELECT MAX(transaction_date) FROM product_sales) - INTERVAL 15 MINUTE`,
      );
      for (const x of rows) want.set(`${size}|${x.w}|${x.product_name}|${x.brand}`, `${x.q} ${x.r} ${x.n}`);
    }
    const hours = new Set([...want.keys()].filter((k) => k.startsWith('1h|')).map((k) => k.split('|')[1]));
    const days = new Set([...want.keys()].filter((k) => k.startsWith('1d|')).map((k) => k.split('|')[1]));
    assert.ok(
      hours.size >= 24 * 7 - 2 && days.size === 6,
      `a week of hours (${hours.size}) and six days (${days.size}) before the last are final`,
    );
    for (const [k, v] of want) assert.equal(got.get(k), v, `window ${k}: salespipe ${got.get(k) ?? 'nothing'}, SQL ${v}`);
  },
);

test(
  "the README's forecast walkthrough: a forecast per product and day ahead, and predicted_stockout exactly for the products whose projected stock covers less than 7 days of it",
  { timeout: 600_000 },
  async (t) => {
    if (!(await needServices(t, mariadbAndKafka))) return;
    const lines = readmeBlock('To try it on two years of generated history');
    const { db, prefix, env } = await freshRun();
    await runWalkthrough(
      lines,
      [
        'generate --create-tables',
        'run pipelines/sales.yaml',
        'run pipelines/inventory.yaml',
        'generate --history',
        'run pipelines/forecast.yaml',
        'backtest pipelines/forecast.yaml',
      ],
      env,
    );
    assert.ok(lines.some((l) => l.startsWith('kcat ') && l.includes('-t low_stock_alerts')));
    const day = 86_400_000,
      today = Math.floor(Date.now() / day) * day;
    const forecasts = new Map<string, number[]>();
    for (const m of await readTopicSettled(`${prefix}sales_predictions`)) {
      const v = JSON.parse(m.value);
      assert.equal(v.trained_through, new Date(today - day).toISOString().slice(0, 10));
      const k = `${v.product_name}|${v.brand}`;
      if (!forecasts.has(k)) forecasts.set(k, new Array(14).fill(NaN));
      forecasts.get(k)![(Date.parse(v.period_start) - today) / day] = v.forecast;
    }
    assert.equal(forecasts.size, 70, 'every product of the history');
    for (const [k, f] of forecasts)
      assert.ok(
        f.every((x) => x >= 0),
        `${k}: 14 days ahead`,
      );
    // Days of cover from the table and the topic, as the step defines them.
    const expected: string[] = [];
    for (const r of await sqlRows(db, 'SELECT product_name, brand, projected_stock FROM inventory_levels')) {
      const f = forecasts.get(`${r.product_name}|${r.brand}`);
      if (!f) continue;
      let left = Number(r.projected_stock),
        cover: number | null = left <= 0 ? 0 : null;
      for (let i = 0; i < 14 && cover === null; i++) {
        if (f[i] > 0 && left - f[i] <= 0) cover = i + left / f[i];
        left -= f[i];
      }
      if (cover !== null && cover < 7) expected.push(`${r.product_name}|${r.brand}`);
    }
    const alerts = (await readTopicSettled(`${prefix}low_stock_alerts`))
      .map((m) => JSON.parse(m.value))
      .filter((v) => v.event === 'predicted_stockout')
      .map((v) => `${v.product_name}|${v.brand}`);
    assert.deepEqual(alerts.sort(), expected.sort());
    assert.ok(expected.length > 0, 'some product runs short');
  },
);

test(
  "the README's recommendations walkthrough: a list of 5 for every customer of the history, and the backtest's models",
  { timeout: 600_000 },
  async (t) => {
    if (!(await needServices(t, mariadbAndKafka))) return;
    const lines = readmeBlock('To try it on a year of generated history of 1,000 products');
    const { db, prefix, env } = await freshRun();
    const [, , backtest] = await runWalkthrough(
      lines,
      ['generate --create-tables', 'run pipelines/recommendations.yaml', 'backtest pipelines/recommendations.yaml'],
      env,
    );
    assert.ok(lines.some((l) => l.startsWith('kcat ') && l.includes('-t product_recommendations')));
    const [{ n }] = await sqlRows(db, 'SELECT COUNT(*) AS n FROM customer_data');
    assert.equal(Number(n), 20_000);
    // The customers of the history, by pyarrow.
    const py = spawnSync(
      'python3',
      [
        '-c',
        `import sys, pyarrow.dataset as ds, pyarrow.compute as pc
t = ds.dataset(sys.argv[1], format='parquet', partitioning='hive').to_table(columns=['customer_id'])
print(len(pc.unique(t['customer_id'].drop_null())))`,
        path.join(env.SALES_OUTPUT_DIR!, 'sales_history'),
      ],
      { encoding: 'utf8' },
    );
    assert.equal(py.status, 0, py.stderr);
    const lists = await readTopicSettled(`${prefix}product_recommendations`);
    assert.equal(lists.length, Number(py.stdout.trim()), 'a list per customer who bought');
    for (const m of lists) {
      const v = JSON.parse(m.value);
      assert.equal(m.key, String(v.customer_id));
      assert.equal(v.recommendations.length, 5);
    }
    for (const model of ['salespipe', 'als', 'popularity', 'regional', 'item-cosine'])
      assert.match(backtest, new RegExp(`^${model} `, 'm'));
  },
);
