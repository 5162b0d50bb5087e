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
