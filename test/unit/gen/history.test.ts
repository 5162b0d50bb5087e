/**
 * `generate --history`: the structure a forecast should find is there
 * (weekly seasonality, launches, an intermittent tail), the history is
 * deterministic, and it lands in a database (SQLite here, the knex path of
 * every dialect) or a Parquet dataset read back by the project's reader.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { historyCatalog, historySales, insertHistory, writeHistoryParquet, HISTORY_SCHEMA } from '../../../src/gen/history.js';
import { readDataset } from '../../../src/operators/sinks/parquet/index.js';
import { createLogger } from '../../../src/core/log.js';
import { tmpDir } from '../../support/helpers.js';
import { sqlite } from '../../support/sql.js';

const END = Date.UTC(2026, 10, 30);
const DAY = 86_400_000;
const log = createLogger(() => undefined);

test('history: weekends sell more, launched products sell nothing before their launch, the accessories are intermittent', () => {
  const days = 365;
  const catalog = historyCatalog(3, days);
  const units = new Map<string, Float64Array>(catalog.map((p) => [p.name, new Float64Array(days)]));
  const from = END - days * DAY;
  for (const s of historySales(3, days, END)) {
    const d = Math.floor((Date.parse(`${s.transaction_date.replace(' ', 'T')}Z`) - from) / DAY);
    units.get(s.product_name)![d] += s.quantity_sold;
  }
  let weekend = 0,
    weekday = 0;
  for (const p of catalog.filter((x) => x.category === 'Smartphone'))
    units.get(p.name)!.forEach((u, d) => {
      const dow = new Date(from + d * DAY).getUTCDay();
      if (dow === 0 || dow === 6) weekend += u / 2;
      else weekday += u / 5;
    });
  assert.ok(weekend > 1.4 * weekday, `weekend ${weekend} vs weekday ${weekday} per day`);
  const launched = catalog.filter((p) => p.launch > 0);
  assert.ok(launched.length >= 5);
  for (const p of launched) {
    const u = units.get(p.name)!;
    assert.equal(
      u.slice(0, p.launch).reduce((a, b) => a + b, 0),
      0,
      `${p.name} before its launch`,
    );
    assert.ok(u.slice(p.launch).reduce((a, b) => a + b, 0) > 0, `${p.name} after its launch`);
  }
  const tail = catalog.filter((p) => p.category === 'Accessory');
  assert.equal(tail.length, 40);
  for (const p of tail) assert.ok(units.get(p.name)!.filter((u) => u === 0).length > days / 2, `${p.name} is intermittent`);
  // Deterministic for a seed.
  const a = [...historySales(9, 20, END)].map((s) => JSON.stringify(s));
  const b = [...historySales(9, 20, END)].map((s) => JSON.stringify(s));
  assert.deepEqual(a, b);
});

test('history into a database and as Parquet: every sale once, ids increasing, the same rows both ways', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'h.db');
  const n = await insertHistory(`sqlite:${file}`, { seed: 4, days: 30, end: END, batch: 500, createTables: true }, log);
  const db = sqlite(file);
  try {
    const rows = await db('product_sales').select('transaction_id', 'quantity_sold').orderBy('transaction_id');
    assert.equal(rows.length, n);
    assert.ok(n > 1000);
    rows.forEach((r, i) => assert.equal(r.transaction_id, i + 1));
    // A second insert appends after the largest id.
    await insertHistory(`sqlite:${file}`, { seed: 4, days: 1, end: END, batch: 500 }, log);
    const [{ m }] = await db('product_sales').max({ m: 'transaction_id' });
    assert.ok(Number(m) > n);
    const written = await writeHistoryParquet(path.join(dir, 'sales_history'), { seed: 4, days: 30, end: END }, log);
    assert.equal(written, n);
    const back = await readDataset(path.join(dir, 'sales_history'), HISTORY_SCHEMA);
    assert.equal(back.length, n);
    const units = (xs: { quantity_sold: unknown }[]) => xs.reduce((a, r) => a + Number(r.quantity_sold), 0);
    assert.equal(units(back as never), units(rows.slice(0, n)));
  } finally {
    await db.destroy();
  }
});
