import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Model, decimal, units } from '../../../src/dashboard/model.js';

const NOW = Date.UTC(2026, 11, 1, 15, 30);
const iso = (ms: number) => new Date(ms).toISOString();
const sale = (id: number, at: number, q: string, price: string, product = 'P', brand = 'B') => ({
  transaction_id: String(id),
  product_name: product,
  brand,
  product_category: 'C',
  quantity_sold: q,
  price_per_unit: price,
  transaction_date: iso(at),
});

test('decimals: exact text in, exact text out, past 2^53 cents', () => {
  assert.equal(decimal(units('90071992547409.93')! + units('0.08')!), '90071992547410.01');
  assert.equal(decimal(units('-1.5')!), '-1.50');
  assert.equal(decimal(units('12')!, 0), '12');
  assert.equal(decimal(units('0.125')!), '0.125');
  assert.equal(units('1e2'), units('100'));
  assert.equal(units('abc'), undefined);
  assert.equal(units(null), undefined);
});

test('KPIs: revenue and units today (in the pipeline time zone) and in the last hour, sales per minute, exactly', () => {
  const m = new Model({ timeZone: 'America/New_York', now: () => NOW });
  // 15:30 UTC is 10:30 in New York: 04:59 UTC is still yesterday there.
  m.upsert('product_sales', '1', sale(1, Date.UTC(2026, 11, 1, 4, 59), '1', '10.00'));
  m.upsert('product_sales', '2', sale(2, Date.UTC(2026, 11, 1, 5, 1), '2', '0.10'));
  m.upsert('product_sales', '3', sale(3, NOW - 10 * 60_000, '3', '45035996273704.97'));
  m.upsert('product_sales', '4', sale(4, NOW - 2 * 60_000, '1', '45035996273704.97'));
  const k = m.view().kpis!;
  assert.equal(k.revenueToday, '180143985094820.08');
  assert.equal(k.unitsToday, '6');
  assert.equal(k.revenueLastHour, '180143985094819.88');
  assert.equal(k.unitsLastHour, '4');
  assert.equal(k.salesPerMinute, '0.2'); // one sale in the last 5 minutes
  assert.equal(k.salesToday, 3);
});

test('top products, brands and categories: latest value per key, sums exact, ties in name order, a null value deletes', () => {
  const m = new Model({ timeZone: 'UTC', now: () => NOW });
  const t = (p: string, b: string, c: string, q: string, r: string) => ({
    product_name: p,
    brand: b,
    product_category: c,
    total_quantity_sold: q,
    total_revenue: r,
  });
  m.upsert('aggregated_product_sales', 'a', t('Apple iPhone 12', 'Apple', 'Smartphone', '1', '80000.00'));
  m.upsert('aggregated_product_sales', 'a', t('Apple iPhone 12', 'Apple', 'Smartphone', '3', '240000.00'));
  m.upsert('aggregated_product_sales', 'd', t('Dell Inspiron', 'Dell', 'Laptop', '2', '100000.00'));
  m.upsert('aggregated_product_sales', 'l', t('Lenovo ThinkPad', 'Lenovo', 'Laptop', '1', '65000.00'));
  m.upsert('aggregated_product_sales', 'x', t('<img src=x onerror=alert(1)>', 'X', 'Laptop', '1', '65000.00'));
  let top = m.view().top!;
  assert.deepEqual(
    top.products.map((p) => [p.name, p.revenue, p.units]),
    [
      ['Apple iPhone 12', '240000.00', '3'],
      ['Dell Inspiron', '100000.00', '2'],
      ['<img src=x onerror=alert(1)>', '65000.00', '1'],
      ['Lenovo ThinkPad', '65000.00', '1'],
    ],
  );
  assert.deepEqual(
    top.categories.map((c) => [c.name, c.revenue]),
    [
      ['Smartphone', '240000.00'],
      ['Laptop', '230000.00'],
    ],
  );
  m.upsert('aggregated_product_sales', 'x', null);
  top = m.view().top!;
  assert.equal(top.products.length, 3);
  assert.deepEqual(
    top.brands.map((b) => b.name),
    ['Apple', 'Dell', 'Lenovo'],
  );
});

test('trend: final windows from windowed_product_sales, later hours provisional from the sales seen', () => {
  const m = new Model({ timeZone: 'UTC', now: () => NOW });
  const h13 = Date.UTC(2026, 11, 1, 13);
  for (const [k, p, r] of [
    ['1', 'P', '10.00'],
    ['2', 'Q', '5.50'],
  ] as const)
    m.upsert('windowed_product_sales', k, {
      product_name: p,
      brand: 'B',
      window_size: '1h',
      window_start: iso(h13),
      total_revenue: r,
      total_quantity_sold: '1',
    });
  m.upsert('product_sales', '1', sale(1, h13 + 60_000, '1', '10.00')); // in the final hour: not counted twice
  m.upsert('product_sales', '2', sale(2, Date.UTC(2026, 11, 1, 14, 5), '2', '1.25'));
  m.upsert('product_sales', '3', sale(3, Date.UTC(2026, 11, 1, 15, 5), '1', '3.00'));
  assert.deepEqual(
    m.view().trend!.hourly.map((p) => [new Date(p.t).toISOString().slice(11, 16), p.revenue, p.provisional]),
    [
      ['13:00', '15.50', false],
      ['14:00', '2.50', true],
      ['15:00', '3.00', true],
    ],
  );
});

test('memory is bounded: 100 days of sales and windows, 10,000 alert events', () => {
  let now = Date.UTC(2026, 0, 1);
  const m = new Model({ timeZone: 'UTC', now: () => now });
  for (let i = 0; i < 100 * 24 * 6; i++) {
    now += 10 * 60_000;
    m.upsert('product_sales', String(i), sale(i, now, '1', '1.00'));
    if (i % 6 === 0)
      m.upsert('windowed_product_sales', `P|B|1h|${i}`, {
        product_name: 'P',
        brand: 'B',
        window_size: '1h',
        window_start: iso(now - 3_600_000),
        total_revenue: '6.00',
        total_quantity_sold: '6',
      });
  }
  for (let i = 0; i < 10_000; i++)
    m.upsert('low_stock_alerts', 'P|B', { alert_id: `a${i}`, event: i % 2 ? 'resolved' : 'alert', product_name: 'P' });
  m.view();
  const s = m.sizes();
  assert.ok(s.minutes <= 48 * 60, `minutes ${s.minutes}`);
  assert.ok(s.days <= 61, `days ${s.days}`);
  assert.ok(s.windowed_product_sales <= 49, `windows ${s.windowed_product_sales}`);
  assert.equal(s.alerts, 200);
  assert.equal(s.alertIds, 200);
  assert.equal(m.view().alerts!.length, 50);
  assert.equal(m.view().alerts![0].id, 'a9999');
});

test('alerts are deduplicated by alert_id (a replay of the topic shows each once); stock at risk lists the lowest first', () => {
  const m = new Model({ timeZone: 'UTC', now: () => NOW });
  const a = { alert_id: 'x1', event: 'alert', product_name: 'Dell Inspiron', brand: 'Dell', projected_stock: '7', threshold: '10' };
  m.upsert('low_stock_alerts', 'k', a);
  m.upsert('low_stock_alerts', 'k', a);
  assert.equal(m.view().alerts!.length, 1);
  m.upsert('inventory_levels', 'd', { product_name: 'Dell Inspiron', brand: 'Dell', projected_stock: '7', reorder_threshold: '10' });
  m.upsert('inventory_levels', 'h', { product_name: 'HP', brand: 'HP', projected_stock: '900', reorder_threshold: null });
  m.upsert('inventory_levels', 'l', { product_name: 'Lenovo', brand: 'Lenovo', projected_stock: '12', reorder_threshold: '10' });
  assert.deepEqual(
    m.view().stock!.map((s) => [s.product_name, s.projected_stock, s.threshold, s.below]),
    [
      ['Dell Inspiron', '7', '10', true],
      ['Lenovo', '12', '10', false],
      ['HP', '900', '10', false],
    ],
  );
});

test('two folders of one dataset (hourly/ and daily/ windows) each replace only their own records', () => {
  const m = new Model({ timeZone: 'UTC', now: () => NOW });
  const w = (size: string, start: string, r: string) => ({
    product_name: 'P',
    brand: 'B',
    window_size: size,
    window_start: start,
    total_revenue: r,
    total_quantity_sold: '1',
  });
  m.replace('windowed_product_sales', [w('1h', '2026-12-01T13:00:00.000Z', '1.00')], '/out/hourly');
  m.replace('windowed_product_sales', [w('1d', '2026-11-30T00:00:00.000Z', '7.00')], '/out/daily');
  m.replace('windowed_product_sales', [w('1h', '2026-12-01T13:00:00.000Z', '2.00')], '/out/hourly');
  const t = m.view().trend!;
  assert.deepEqual(
    t.hourly.filter((p) => !p.provisional).map((p) => p.revenue),
    ['2.00'],
  );
  assert.deepEqual(
    t.daily.filter((p) => !p.provisional).map((p) => p.revenue),
    ['7.00'],
  );
});

test('a dataset read whole replaces what was there; segments, predictions with actuals, recommendations by customer', () => {
  const m = new Model({ timeZone: 'UTC', now: () => NOW });
  m.replace('sales_history', [sale(1, NOW - 60_000, '2', '5.00')]);
  m.replace('sales_history', [sale(2, NOW - 60_000, '1', '5.00')]);
  assert.equal(m.view().kpis!.revenueToday, '5.00');
  m.upsert('customer_segment_sales', 'a', {
    customer_segment: 'Premium',
    product_name: 'P',
    total_revenue: '10.01',
    total_quantity_sold: '1',
  });
  m.upsert('customer_segment_sales', 'b', {
    customer_segment: 'Premium',
    product_name: 'Q',
    total_revenue: '0.99',
    total_quantity_sold: '2',
  });
  m.upsert('customer_segment_sales', 'c', { customer_segment: null, product_name: 'Q', total_revenue: '1', total_quantity_sold: '1' });
  assert.deepEqual(
    m.view().segments!.map((s) => [s.name, s.revenue, s.units]),
    [
      ['Premium', '11.00', '3'],
      ['(none)', '1.00', '1'],
    ],
  );
  m.upsert('windowed_product_sales', 'w', {
    product_name: 'P',
    brand: 'B',
    window_size: '1d',
    window_start: '2026-11-30T00:00:00.000Z',
    total_quantity_sold: '4',
    total_revenue: '4',
  });
  m.upsert('sales_predictions', 'p1', {
    product_name: 'P',
    brand: 'B',
    period_start: '2026-11-30',
    forecast: '3.5',
    p10: '1',
    p90: '6',
    method: 'ses',
  });
  m.upsert('sales_predictions', 'p2', {
    product_name: 'P',
    brand: 'B',
    period_start: '2026-12-02',
    forecast: '3.7',
    p10: '1',
    p90: '6',
    method: 'ses',
  });
  assert.deepEqual(
    m.view().predictions!.map((p) => [p.period_start, p.forecast, p.actual]),
    [
      ['2026-11-30', '3.5', '4'],
      ['2026-12-02', '3.7', undefined],
    ],
  );
  m.upsert('product_recommendations', '42', {
    customer_id: '42',
    recommendations: [{ product_name: 'P', brand: 'B', score: '0.9', reason: 'personal' }],
  });
  assert.equal(m.view().recommendations!.customers, 1);
  assert.equal((m.recommendations('42') as { customer_id: string }).customer_id, '42');
  assert.equal(m.recommendations('7'), undefined);
});

test('a predicted stock-out (the stockout step) shows its stock, date and cover; a threshold alert keeps its own fields', () => {
  const m = new Model({ timeZone: 'UTC', now: () => NOW });
  m.upsert('low_stock_alerts', 'a', {
    alert_id: 't1',
    event: 'alert',
    product_name: 'HP',
    brand: 'HP',
    projected_stock: '4',
    threshold: '10',
  });
  m.upsert('low_stock_alerts', 'b', {
    alert_id: 'p1',
    event: 'predicted_stockout',
    product_name: 'Dell Inspiron',
    brand: 'Dell',
    stock: '10',
    lead_time_days: '7',
    days_of_cover: '3.3333333333333335',
    predicted_date: '2026-12-04',
  });
  const [p, t] = m.view().alerts!;
  assert.deepEqual(
    [p.event, p.projected_stock, p.predicted_date, p.days_of_cover, p.lead_time_days],
    ['predicted_stockout', '10', '2026-12-04', '3.3333333333333335', '7'],
  );
  assert.deepEqual([t.event, t.projected_stock, t.threshold, t.predicted_date], ['alert', '4', '10', undefined]);
});
