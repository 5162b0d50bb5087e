/**
 * `salespipe dashboard` in a real browser (Chromium from Debian, driven by
 * playwright-core) over real pipelines: MariaDB -> sales.yaml and
 * inventory.yaml -> Kafka -> the page. Oracles: SQL over the same rows,
 * formatted as the page formats money (Intl.NumberFormat on the exact
 * decimal text). Also the embedded demo (Parquet, no Kafka) behind a token.
 * Screenshots are saved under $SALESPIPE_SCREENSHOTS (default: a temporary
 * directory, printed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { finished, needServices, ROOT, runCli, service, startCli, tmpDir, uniq, until } from '../support/helpers.js';
import { freshDatabase, insertSales, MARIADB_ADMIN, pingDatabase, sqlRows, sqlTotals, sqlite } from '../support/sql.js';
import { BROKERS, createTopic, pingKafka, produceRaw } from '../support/kafka.js';
import { openKnex } from '../../src/connections/sql.js';
import { inventoryRows, insertWorkedExample } from '../../src/gen/generate.js';

const CHROMIUM = process.env.SALESPIPE_CHROMIUM ?? '/usr/bin/chromium';
const SCREENS = process.env.SALESPIPE_SCREENSHOTS ?? tmpDir('salespipe-screenshots-');
const spec = (f: string) => path.join(ROOT, 'pipelines', f);
// As the page formats them: Intl.NumberFormat keeps every digit of a decimal string.
const moneyFormat = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const numFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 20 });
const money = { format: (v: string | bigint) => moneyFormat.format(v as unknown as number) };
const num = { format: (v: string | bigint | number) => numFormat.format(v as unknown as number) };

function needChromium() {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM} (npm run services:up installs Debian's chromium)`);
}

/** Waits for a line of `child`'s output matching `re`; returns the first group. */
async function printed(child: ReturnType<typeof startCli>, re: RegExp, what: string): Promise<string> {
  let m: RegExpExecArray | null = null;
  await until(() => !!(m = re.exec(child.out.stdout + child.out.stderr)) || child.exitCode !== null, 60_000, what);
  assert.ok(m, `${what}:\n${child.out.stderr.slice(-3000)}`);
  return m![1];
}

/** The rows of a table on the page, as the text of their cells. */
const rows = (page: Page, sel: string) =>
  page.$$eval(`${sel} tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));

/** SQL's totals per product, as the page shows them: [product, brand, units, revenue]. */
async function wantTotals(db: string): Promise<string[][]> {
  return [...(await sqlTotals(db, 'quantity_sold > 0 AND price_per_unit >= 0'))]
    .map(([k, v]) => {
      const [product, brand] = k.split('|');
      return [product, brand, num.format(v.units), money.format(v.revenue)];
    })
    .sort((a, b) => a[0].localeCompare(b[0]));
}

const sorted = (r: string[][]) => [...r].sort((a, b) => a[0].localeCompare(b[0]));

/** The dashboard's log, for a failure to be explained. */
let dashboardLog = () => '';

async function settles(page: Page, what: string, pred: () => Promise<boolean>, ms = 90_000) {
  await until(pred, ms, what).catch(async (e: Error) => {
    const shot = path.join(SCREENS, `failed-${Date.now()}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    throw new Error(`${e.message} (the page: ${shot}); the dashboard's log ends:\n${dashboardLog().slice(-3000)}`);
  });
}

/** Waits until the page's revenue today is SQL's over the sales dated `today`. */
async function revenueTodaySettles(page: Page, db: string, today: string, what: string) {
  const [{ r }] = await sqlRows(
    db,
    `SELECT CAST(SUM(quantity_sold * price_per_unit) AS CHAR) AS r FROM product_sales WHERE DATE(transaction_date) = '${today}'`,
  );
  await settles(page, what, async () => (await page.textContent('#kpi-revenue-today')) === money.format(String(r)));
}

test(
  'the live page over sales.yaml and inventory.yaml: the worked example exact, a sale updates it, an alert appears, a hostile name stays text, a broker restart is survived',
  { timeout: 10 * 60_000 },
  async (t) => {
    if (
      !(await needServices(t, async () => {
        needChromium();
        await pingDatabase(MARIADB_ADMIN);
        await pingKafka();
      }))
    )
      return;
    const db = await freshDatabase('mysql', `sp_${uniq()}`);
    const { db: k } = await openKnex(db, ROOT, 1);
    await insertWorkedExample(k, 'mysql');
    // Every product well stocked but the Dell Inspiron: 12 on hand, reorder at 10.
    await k('inventory').insert(inventoryRows(1, Date.now() - 3_600_000).map((r) => ({ ...r, stock_level: 1000 })));
    await k('inventory').where({ product_name: 'Dell Inspiron', brand: 'Dell' }).update({ stock_level: 12, reorder_threshold: 10 });
    await k.destroy();
    const e = {
      SALES_DB_URL: db,
      KAFKA_BROKERS: BROKERS,
      KAFKA_TOPIC_PREFIX: `${uniq()}.`,
      SALES_OUTPUT_DIR: tmpDir(),
      SALESPIPE_STATE_DIR: tmpDir(),
      CHECKPOINT_INTERVAL: '1s',
      INVENTORY_REFRESH: '1s',
    };
    const sales = startCli(['run', spec('sales.yaml'), '--no-progress', '--metrics-port', '0'], e);
    const inventory = startCli(['run', spec('inventory.yaml'), '--no-progress', '--metrics-port', '0'], e);
    let dash: ReturnType<typeof startCli> | undefined;
    let browser: Browser | undefined;
    let brokerDown = false;
    try {
      const m1 = await printed(sales, /metrics at (http:\S+)\/metrics/, 'the sales run to serve metrics');
      const m2 = await printed(inventory, /metrics at (http:\S+)\/metrics/, 'the inventory run to serve metrics');
      dash = startCli(
        [
          'dashboard',
          spec('sales.yaml'),
          spec('inventory.yaml'),
          spec('windowed-sales.yaml'),
          '--port',
          '0',
          '--metrics',
          m1,
          '--metrics',
          m2,
        ],
        e,
      );
      const url = await printed(dash, /^(http:\/\/127\.0\.0\.1:\d+)\/$/m, 'the dashboard to listen');
      dashboardLog = () => dash!.out.stderr;
      browser = await chromium.launch({ executablePath: CHROMIUM });
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const dialogs: string[] = [];
      const errors: string[] = [];
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      page.on('pageerror', (err) => errors.push(String(err)));
      page.on('console', (msg) => msg.type() === 'error' && errors.push(msg.text()));
      await page.goto(url + '/');

      // The worked example's three totals, exactly.
      await settles(page, 'the worked example on the page', async () => {
        const got = sorted((await rows(page, '#top-products')).map((r) => [r[0], r[1], r[2], r[3]]));
        return JSON.stringify(got) === JSON.stringify(await wantTotals(db));
      });
      const worked = sorted(await rows(page, '#top-products'));
      assert.deepEqual(worked, [
        ['Apple iPhone 12', 'Apple', '3', '$240,000.00'],
        ['Dell Inspiron', 'Dell', '2', '$100,000.00'],
        ['Lenovo ThinkPad', 'Lenovo', '1', '$65,000.00'],
      ]);

      // A sale now, and a product named like an attack: the page follows, exactly, and shows the name as text.
      const HOSTILE = '<img src=x onerror=alert(1)>';
      const now = new Date();
      await insertSales(db, [
        {
          product_name: 'Dell Inspiron',
          product_category: 'Laptop',
          brand: 'Dell',
          quantity_sold: 3,
          price_per_unit: '49999.99',
          transaction_date: now,
        },
        {
          product_name: HOSTILE,
          product_category: 'Laptop',
          brand: '<b>x</b>',
          quantity_sold: 1,
          price_per_unit: '0.01',
          transaction_date: now,
        },
      ]);
      await settles(page, 'the new sales on the page', async () => {
        const got = sorted(await rows(page, '#top-products'));
        return JSON.stringify(got) === JSON.stringify(await wantTotals(db));
      });
      const today = now.toISOString().slice(0, 10);
      await revenueTodaySettles(page, db, today, "today's revenue");
      assert.equal(await page.textContent('#kpi-revenue-today'), '$149,999.98');
      assert.equal(await page.$$eval('#top-products img, #top-products b', (x) => x.length), 0, 'no element made from a name');
      assert.ok((await rows(page, '#top-products')).some((r) => r[0] === HOSTILE && r[1] === '<b>x</b>'));
      assert.deepEqual(dialogs, [], 'no script ran');

      // 12 - 3 = 9 < 10: an alert in the feed, and the product at the top of the stock at risk.
      await settles(page, 'the low-stock alert', async () =>
        (await page.$$eval('#alerts li.alert', (li) => li.map((x) => x.textContent ?? ''))).some((x) =>
          /Dell Inspiron \(Dell\): projected 9, threshold 10/.test(x),
        ),
      );
      assert.deepEqual((await rows(page, '#stock'))[0], ['Dell Inspiron', 'Dell', '9', '10']);
      // Health from both runs' metrics.
      await settles(page, 'pipeline health', async () => {
        const h = await rows(page, '#health');
        return ['publish_sales', 'aggregate_sales', 'archive_sales', 'inventory_levels', 'low_stock_alerts'].every((f) =>
          h.some((r) => r[1] === f),
        );
      });
      // Forecasts and recommendations appear once their topics exist (written here as those flows will write them).
      await createTopic(`${e.KAFKA_TOPIC_PREFIX}sales_predictions`, 1);
      await createTopic(`${e.KAFKA_TOPIC_PREFIX}product_recommendations`, 1);
      await produceRaw(
        `${e.KAFKA_TOPIC_PREFIX}sales_predictions`,
        [
          JSON.stringify({
            product_name: 'Dell Inspiron',
            brand: 'Dell',
            period_start: '2026-12-02',
            forecast: 4.25,
            p10: 2,
            p90: 7,
            method: 'ses',
          }),
        ],
        'Dell Inspiron|Dell|2026-12-02',
      );
      await produceRaw(
        `${e.KAFKA_TOPIC_PREFIX}product_recommendations`,
        [JSON.stringify({ customer_id: 77, recommendations: [{ product_name: HOSTILE, brand: 'X', score: 0.91, reason: 'personal' }] })],
        '77',
      );
      await settles(
        page,
        'the forecasts and recommendations sections',
        async () => !(await page.isHidden('#predictions-section')) && !(await page.isHidden('#recommendations-section')),
      );
      assert.deepEqual(await rows(page, '#predictions'), [['2026-12-02', 'Dell Inspiron', 'Dell', '4.25', '2–7', '', 'ses']]);
      await page.fill('#rec-customer', '77');
      await page.click('#rec-form button');
      await settles(
        page,
        'the recommendations of customer 77',
        async () => (await page.textContent('#rec-result')) === `${HOSTILE} (X) — personal, score 0.91`,
      );
      await page.fill('#rec-customer', '78');
      await page.click('#rec-form button');
      await settles(
        page,
        'no recommendations for customer 78',
        async () => (await page.textContent('#rec-result')) === 'No recommendations for customer 78.',
      );
      // Rendering replaces what the page shows: the same number of elements views later.
      const count = () => page.evaluate(() => document.getElementsByTagName('*').length);
      const before = await count();
      await new Promise((r) => setTimeout(r, 11_000)); // two views pushed on the clock at least
      assert.equal(await count(), before, 'no element added by views that changed nothing');
      await page.screenshot({ path: path.join(SCREENS, 'dashboard-live.png'), fullPage: true });

      // The broker stops: the page says since when it is stale; it starts again: the page follows new sales.
      service('stop', 'kafka');
      brokerDown = true;
      await settles(page, 'the page to say it is stale', async () => !(await page.isHidden('#stale')), 60_000);
      assert.match((await page.textContent('#stale'))!, /^Stale since .+: Kafka not answering/);
      await page.screenshot({ path: path.join(SCREENS, 'dashboard-stale.png'), fullPage: true });
      service('start', 'kafka');
      brokerDown = false;
      await insertSales(db, [
        {
          product_name: 'Lenovo ThinkPad',
          product_category: 'Laptop',
          brand: 'Lenovo',
          quantity_sold: 2,
          price_per_unit: '64000.50',
          transaction_date: new Date(),
        },
      ]);
      await settles(
        page,
        'the page to follow the sales after the restart',
        async () =>
          JSON.stringify(sorted(await rows(page, '#top-products'))) === JSON.stringify(await wantTotals(db)) &&
          (await page.isHidden('#stale')),
        180_000,
      );
      assert.ok((await rows(page, '#top-products')).some((r) => r[0] === 'Lenovo ThinkPad' && r[3] === '$193,001.00'));
      // Two reconnects (new topics, the broker's restart) counted no sale twice: today's revenue is still SQL's.
      await revenueTodaySettles(page, db, today, "today's revenue after the restart");
      assert.equal(await page.textContent('#kpi-revenue-today'), '$278,000.98');
      assert.deepEqual(dialogs, []);
      assert.deepEqual(errors, [], 'no error in the page');
      t.diagnostic(`screenshots in ${SCREENS}`);
    } finally {
      if (brokerDown) service('start', 'kafka');
      await browser?.close();
      for (const c of [dash, sales, inventory]) c?.kill('SIGTERM');
      for (const c of [dash, sales, inventory]) if (c) assert.equal((await finished(c)).code, 0, c.out.stderr.slice(-3000));
    }
  },
);

/** An address of this machine other than loopback, if it has one. */
function outsideAddress(): string | undefined {
  for (const list of Object.values(os.networkInterfaces()))
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return undefined;
}

test(
  'the embedded demo on the page, no Kafka: totals equal SQL over the demo database; off loopback a token is required',
  { timeout: 5 * 60_000 },
  async (t) => {
    if (!(await needServices(t, async () => needChromium()))) return;
    const dir = tmpDir();
    const demo = await runCli(['demo', '--dir', dir, '--count', '2000']);
    assert.equal(demo.code, 0, demo.stderr);
    const e = { SALESPIPE_DEMO_DIR: dir };
    const refused = await runCli(['dashboard', spec('demo.yaml'), '--host', '0.0.0.0', '--port', '0'], e);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /--host 0\.0\.0\.0 is reachable from other machines: set SALESPIPE_DASHBOARD_TOKEN/);

    const TOKEN = `tok-${uniq()}`;
    const dash = startCli(['dashboard', spec('demo.yaml'), '--host', '0.0.0.0', '--port', '0'], { ...e, SALESPIPE_DASHBOARD_TOKEN: TOKEN });
    let browser: Browser | undefined;
    try {
      const port = await printed(dash, /^http:\/\/0\.0\.0\.0:(\d+)\/$/m, 'the dashboard to listen');
      const outside = outsideAddress();
      for (const host of ['127.0.0.1', ...(outside ? [outside] : [])]) {
        const base = `http://${host}:${port}`;
        for (const p of ['/', '/events', '/api/view', '/app.js'])
          assert.equal((await fetch(base + p)).status, 401, `${base}${p} without the token`);
        assert.equal((await fetch(base + '/api/view', { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
      }
      assert.ok(!dash.out.stderr.includes(TOKEN) && !dash.out.stdout.includes(TOKEN), 'the token is never printed');
      browser = await chromium.launch({ executablePath: CHROMIUM });
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(`http://${outside ?? '127.0.0.1'}:${port}/?token=${TOKEN}`);
      assert.equal(new URL(page.url()).search, '', 'the token leaves the address bar');
      const file = path.join(dir, 'sales.db');
      const k = sqlite(file);
      // SQL selects the rows; their money is summed exactly here, in cents (SQLite holds the decimals as text).
      const sums = new Map<string, { q: bigint; cents: bigint }>();
      for (const r of (await k('product_sales')
        .where('quantity_sold', '>', 0)
        .select('product_name', 'brand', 'quantity_sold', 'price_per_unit')) as {
        product_name: string;
        brand: string;
        quantity_sold: number;
        price_per_unit: string;
      }[]) {
        const key = `${r.product_name}|${r.brand}`;
        const s = sums.get(key) ?? { q: 0n, cents: 0n };
        const [int, frac = ''] = String(r.price_per_unit).split('.');
        s.q += BigInt(r.quantity_sold);
        s.cents += BigInt(r.quantity_sold) * BigInt(int + frac.padEnd(2, '0').slice(0, 2));
        sums.set(key, s);
      }
      const want = [...sums]
        .sort((a, b) => (b[1].cents > a[1].cents ? 1 : b[1].cents < a[1].cents ? -1 : a[0].localeCompare(b[0])))
        .slice(0, 10)
        .map(([key, v]) => [
          ...key.split('|'),
          num.format(v.q),
          money.format(`${v.cents / 100n}.${String(v.cents % 100n).padStart(2, '0')}`),
        ]);
      await k.destroy();
      await settles(
        page,
        'the demo totals',
        async () => JSON.stringify(await rows(page, '#top-products')) === JSON.stringify(want),
        60_000,
      );
      assert.equal(await page.isHidden('#kpis'), false, 'the KPI tiles, from sales_history');
      assert.ok((await page.$$eval('#trend-chart canvas', (c) => c.length)) > 0, 'the trend chart is drawn');
      await page.screenshot({ path: path.join(SCREENS, 'dashboard-demo.png'), fullPage: true });
    } finally {
      await browser?.close();
      dash.kill('SIGTERM');
      assert.equal((await finished(dash)).code, 0, dash.out.stderr.slice(-2000));
    }
  },
);
