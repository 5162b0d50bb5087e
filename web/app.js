// salespipe dashboard: renders the views the server pushes (/events).
// Every value is written with textContent: names from the data never become HTML.
'use strict';

const $ = (id) => document.getElementById(id);
let fmt = { money: (s) => s, num: (s) => s, time: (s) => s };
let chart;
let last;
/** The x range of the chart: the data's, at least two hours wide (a lone point is not spread over years). */
let xRange = [0, 1];

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  if (cls) td.className = cls;
  tr.appendChild(td);
}

/** Replaces the body of `table` with one row per item; `cols` gives each cell's text (and class). */
function fill(table, items, cols, rowClass) {
  const body = document.createElement('tbody');
  for (const it of items) {
    const tr = document.createElement('tr');
    if (rowClass) tr.className = rowClass(it);
    for (const [get, cls] of cols) cell(tr, get(it), cls);
    body.appendChild(tr);
  }
  table.replaceChild(body, table.tBodies[0]);
}

const show = (id, on) => ($(id).hidden = !on);

function render(v) {
  last = v;
  show('kpis', !!v.kpis);
  if (v.kpis) {
    $('kpi-revenue-today').textContent = fmt.money(v.kpis.revenueToday);
    $('kpi-sales-today').textContent = `${fmt.num(String(v.kpis.salesToday))} sales`;
    $('kpi-units-today').textContent = fmt.num(v.kpis.unitsToday);
    $('kpi-revenue-hour').textContent = fmt.money(v.kpis.revenueLastHour);
    $('kpi-units-hour').textContent = fmt.num(v.kpis.unitsLastHour);
    $('kpi-sales-per-minute').textContent = fmt.num(v.kpis.salesPerMinute);
  }
  show('top', !!v.top);
  show('top-by', !!v.top);
  if (v.top) {
    fill($('top-products'), v.top.products, [
      [(r) => r.name],
      [(r) => r.brand],
      [(r) => fmt.num(r.units), 'n'],
      [(r) => fmt.money(r.revenue), 'n'],
    ]);
    fill($('top-brands'), v.top.brands, [[(r) => r.name], [(r) => fmt.num(r.units), 'n'], [(r) => fmt.money(r.revenue), 'n']]);
    fill($('top-categories'), v.top.categories, [[(r) => r.name], [(r) => fmt.num(r.units), 'n'], [(r) => fmt.money(r.revenue), 'n']]);
  }
  show('trend', !!v.trend);
  if (v.trend) drawTrend(v.trend);
  show('stock-section', !!v.stock);
  if (v.stock)
    fill(
      $('stock'),
      v.stock,
      [[(r) => r.product_name], [(r) => r.brand], [(r) => fmt.num(r.projected_stock), 'n'], [(r) => fmt.num(r.threshold), 'n']],
      (r) => (r.below ? 'below' : ''),
    );
  show('alerts-section', !!v.alerts);
  if (v.alerts) {
    const ol = document.createElement('ol');
    ol.id = 'alerts';
    for (const a of v.alerts) {
      const li = document.createElement('li');
      li.className = a.event;
      const ev = document.createElement('span');
      ev.className = 'event';
      ev.textContent = a.event;
      li.appendChild(ev);
      li.appendChild(
        document.createTextNode(
          a.lead_time_days !== undefined
            ? `${a.product_name} (${a.brand}): stock ${a.projected_stock}${a.predicted_date ? `, out by ${a.predicted_date} (${fmt.num(a.days_of_cover)} days of cover, lead time ${a.lead_time_days})` : ''}`
            : `${a.product_name} (${a.brand}): projected ${a.projected_stock}, threshold ${a.threshold}${a.at ? ` · ${fmt.time(a.at)}` : ''}`,
        ),
      );
      ol.appendChild(li);
    }
    $('alerts').replaceWith(ol);
  }
  show('segments-section', !!v.segments);
  if (v.segments) fill($('segments'), v.segments, [[(r) => r.name], [(r) => fmt.num(r.units), 'n'], [(r) => fmt.money(r.revenue), 'n']]);
  show('predictions-section', !!v.predictions);
  if (v.predictions)
    fill($('predictions'), v.predictions, [
      [(r) => r.period_start.slice(0, 10)],
      [(r) => r.product_name],
      [(r) => r.brand],
      [(r) => fmt.num(r.forecast), 'n'],
      [(r) => `${fmt.num(r.p10)}–${fmt.num(r.p90)}`, 'n'],
      [(r) => (r.actual === undefined ? '' : fmt.num(r.actual)), 'n'],
      [(r) => r.method],
    ]);
  show('recommendations-section', !!v.recommendations);
  fill($('health'), v.health, [
    [(h) => h.pipeline],
    [(h) => h.flow + (h.stale ? ' (no answer)' : '')],
    [(h) => (h.recordsPerSecond === undefined ? '' : fmt.num(String(h.recordsPerSecond))), 'n'],
    [(h) => (h.lag === undefined ? '' : fmt.num(String(h.lag))), 'n'],
    [(h) => (h.watermark ? fmt.time(h.watermark) : '')],
    [(h) => (h.lastCommit ? fmt.time(h.lastCommit) : '')],
    [(h) => fmt.num(String(h.deadLetters)), 'n'],
    [(h) => fmt.num(String(h.late)), 'n'],
  ]);
  $('health-note').textContent = v.metricsEndpoints
    ? ''
    : 'No metrics endpoint given: start runs with --metrics-port and the dashboard with --metrics URL.';
  const feeds = document.createElement('ul');
  feeds.id = 'feeds';
  feeds.className = 'note';
  for (const f of v.feeds) {
    const li = document.createElement('li');
    li.textContent = `${f.name}: ${f.what}${f.staleSince ? ` — stale since ${fmt.time(new Date(f.staleSince).toISOString())}` : ''}`;
    feeds.appendChild(li);
  }
  $('feeds').replaceWith(feeds);
  const stale = v.feeds.filter((f) => f.staleSince);
  $('stale').hidden = !stale.length;
  if (stale.length) {
    const since = Math.min(...stale.map((f) => f.staleSince));
    $('stale').textContent =
      `Stale since ${fmt.time(new Date(since).toISOString())}: ${stale.map((f) => f.what).join(', ')} not answering; showing the last figures received.`;
  }
}

function drawTrend(trend) {
  const pts = trend[$('trend-size').value] ?? [];
  const xs = pts.map((p) => p.t / 1000);
  const final = pts.map((p) => (p.provisional ? null : Number(p.revenue)));
  // The provisional line starts at the last final point, so the two join.
  const firstOpen = pts.findIndex((p) => p.provisional);
  const prov = pts.map((p, i) => (p.provisional || (firstOpen > 0 && i === firstOpen - 1) ? Number(p.revenue) : null));
  const data = [xs, final, prov];
  const lo = xs.length ? xs[0] : Date.now() / 1000 - 3600;
  const hi = xs.length ? xs[xs.length - 1] : Date.now() / 1000;
  xRange = hi - lo < 7200 ? [lo - 3600, hi + 3600] : [lo, hi];
  const el = $('trend-chart');
  const width = Math.max(300, el.clientWidth);
  if (!chart) {
    chart = new uPlot(
      {
        width,
        height: 260,
        series: [
          {},
          { label: 'final', stroke: '#2f6fde', width: 2, value: (u, v) => (v == null ? '' : fmt.money(String(v))) },
          { label: 'provisional', stroke: '#2f6fde', dash: [6, 4], width: 2, value: (u, v) => (v == null ? '' : fmt.money(String(v))) },
        ],
        axes: [{}, { values: (u, vals) => vals.map((v) => fmt.compact(v)), size: 70 }],
        scales: { x: { time: true, range: () => xRange } },
      },
      data,
      el,
    );
  } else {
    if (chart.width !== width) chart.setSize({ width, height: 260 });
    chart.setData(data);
  }
}

function connect() {
  const es = new EventSource('/events');
  es.addEventListener('open', () => {
    $('status').textContent = 'live';
    $('status').dataset.state = 'live';
  });
  es.addEventListener('view', (e) => {
    render(JSON.parse(e.data));
    $('status').textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    $('status').dataset.state = 'live';
  });
  es.addEventListener('error', () => {
    $('status').textContent = 'reconnecting…';
    $('status').dataset.state = 'down';
    // The browser retries by itself, unless the server answered with an error: then start again.
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
  });
}

async function main() {
  const s = await fetch('/settings.json').then((r) => r.json());
  const money = new Intl.NumberFormat(s.locale, { style: 'currency', currency: s.currency });
  const num = new Intl.NumberFormat(s.locale, { maximumFractionDigits: 20 });
  const compact = new Intl.NumberFormat(s.locale, { notation: 'compact', maximumFractionDigits: 1 });
  const time = new Intl.DateTimeFormat(s.locale, { dateStyle: 'short', timeStyle: 'medium' });
  // Intl.NumberFormat formats decimal strings exactly (no rounding through a double).
  fmt = {
    money: (x) => money.format(x),
    num: (x) => num.format(x),
    compact: (x) => compact.format(x),
    time: (x) => time.format(new Date(x)),
  };
  $('title').textContent = s.title;
  $('trend-size').addEventListener('change', () => last?.trend && drawTrend(last.trend));
  $('rec-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const id = $('rec-customer').value.trim();
    const ol = document.createElement('ol');
    ol.id = 'rec-result';
    const r = await fetch(`/api/recommendations?customer=${encodeURIComponent(id)}`);
    const body = await r.json();
    if (!r.ok || body.found === false) {
      const li = document.createElement('li');
      li.textContent = `No recommendations for customer ${id}.`;
      ol.appendChild(li);
    } else
      for (const it of body.recommendations ?? []) {
        const li = document.createElement('li');
        li.textContent = `${it.product_name} (${it.brand}) — ${it.reason}, score ${it.score}`;
        ol.appendChild(li);
      }
    $('rec-result').replaceWith(ol);
  });
  connect();
}

main();
