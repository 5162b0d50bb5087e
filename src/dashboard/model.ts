/**
 * @module What the dashboard shows, kept from the pipelines' outputs.
 *
 * Rules:
 * - Records arrive with every number as its exact text (decimal strings,
 *   integers as strings), from Kafka (`upsert`: latest value per message
 *   key; a null value deletes) or from a dataset read whole (`replace`).
 *   Money is summed exactly (scaled bigints) and shown as decimal strings;
 *   the page formats them with Intl.NumberFormat, which keeps every digit.
 * - Datasets are recognised by name (the topic, table or dataset folder):
 *   product_sales / sales_history (single sales: the KPI tiles and the
 *   provisional part of the trend), aggregated_product_sales,
 *   windowed_product_sales, inventory_levels, low_stock_alerts,
 *   customer_segment_sales, sales_predictions, product_recommendations.
 * - Memory is bounded whatever the run's length: keyed datasets hold one
 *   record per key (as their compacted topics do); sales are kept as
 *   per-minute sums for 48 hours and per-day sums for 60 days; windows
 *   beyond those horizons and all but the last 200 alert events are dropped.
 * - `version` grows on every change, so the server pushes a view only when
 *   there is something new.
 */
import { dateIn, localToUtc } from '../core/time.js';

export type Rec = Record<string, unknown>;

export const DATASETS = [
  'product_sales',
  'sales_history',
  'aggregated_product_sales',
  'windowed_product_sales',
  'inventory_levels',
  'low_stock_alerts',
  'customer_segment_sales',
  'sales_predictions',
  'product_recommendations',
] as const;
export type Dataset = (typeof DATASETS)[number];

const SALES = new Set<string>(['product_sales', 'sales_history']);
const MINUTE = 60_000,
  HOUR = 3_600_000,
  DAY = 86_400_000;
const KEEP_MINUTES = 48 * HOUR,
  KEEP_DAYS = 60 * DAY,
  KEEP_ALERTS = 200;

/** Digits kept after the point in sums. */
const SCALE = 6;
const ONE = 10n ** BigInt(SCALE);

/** An exact decimal (string or number text) as an integer count of 10^-6; undefined if it is not a number. */
export function units(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v * ONE;
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(String(v).trim());
  if (!m) return undefined;
  let digits = m[2] + (m[3] ?? '');
  let point = (m[3] ?? '').length - Number(m[4] ?? 0); // digits after the point
  if (point > SCALE) {
    digits = digits.slice(0, Math.max(0, digits.length - (point - SCALE))) || '0';
    point = SCALE;
  }
  const n = BigInt(digits) * 10n ** BigInt(SCALE - point);
  return m[1] ? -n : n;
}

/** `u` (10^-6 units) as a decimal string with at least `min` decimals and no trailing zeros beyond them. */
export function decimal(u: bigint, min = 2): string {
  const neg = u < 0n;
  const a = neg ? -u : u;
  const int = a / ONE;
  let frac = (a % ONE).toString().padStart(SCALE, '0').replace(/0+$/, '');
  if (frac.length < min) frac = frac.padEnd(min, '0');
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

const str = (v: unknown) => (v === null || v === undefined ? '' : String(v));
const time = (v: unknown) =>
  typeof v === 'string' || typeof v === 'number' ? new Date(/^\d+$/.test(String(v)) ? Number(v) : String(v)).getTime() : NaN;

interface Sums {
  revenue: bigint;
  units: bigint;
  count: number;
}
const zero = (): Sums => ({ revenue: 0n, units: 0n, count: 0 });

export interface Totals {
  name: string;
  brand?: string;
  revenue: string;
  units: string;
}

export interface TrendPoint {
  /** Window start, Unix ms. */
  t: number;
  revenue: string;
  units: string;
  /** Not final yet: summed from the sales seen so far (the window is open or its lateness has not passed). */
  provisional: boolean;
}

export interface View {
  generatedAt: number;
  timeZone: string;
  datasets: string[];
  kpis?: {
    revenueToday: string;
    unitsToday: string;
    revenueLastHour: string;
    unitsLastHour: string;
    salesPerMinute: string;
    salesToday: number;
  };
  top?: { products: Totals[]; brands: Totals[]; categories: Totals[] };
  trend?: { hourly: TrendPoint[]; daily: TrendPoint[] };
  stock?: { product_name: string; brand: string; projected_stock: string; threshold: string; below: boolean }[];
  alerts?: {
    at: string;
    event: string;
    product_name: string;
    brand: string;
    projected_stock: string;
    threshold: string;
    id: string;
    /** Predicted stock-outs (the stockout step): when, and the cover behind it. */
    predicted_date?: string;
    days_of_cover?: string;
    lead_time_days?: string;
  }[];
  segments?: Totals[];
  predictions?: {
    product_name: string;
    brand: string;
    period_start: string;
    forecast: string;
    p10: string;
    p90: string;
    method: string;
    actual?: string;
  }[];
  recommendations?: { customers: number };
}

export class Model {
  version = 0;
  private keyed = new Map<string, Map<string, Rec>>();
  private seen = new Set<string>();
  private minutes = new Map<number, Sums>();
  private days = new Map<string, Sums>();
  private alerts: Rec[] = [];
  private alertIds = new Set<string>();
  private latestWindow = { '1h': 0, '1d': 0 };

  constructor(private opts: { timeZone: string; now?: () => number }) {}

  private now = () => (this.opts.now ?? Date.now)();

  /** The latest value of `key` in `dataset` (a Kafka message); null deletes it. */
  upsert(dataset: string, key: string, rec: Rec | null): void {
    this.seen.add(dataset);
    if (SALES.has(dataset)) {
      if (rec) this.addSale(rec, 1);
    } else if (dataset === 'low_stock_alerts') {
      if (rec) this.addAlert(rec);
    } else if (dataset === 'windowed_product_sales') {
      if (rec && !this.windowKept(rec)) return;
      this.put(dataset, key, rec);
    } else this.put(dataset, key, rec);
    this.version++;
  }

  /** Every record of `dataset` that `source` holds (a dataset read whole): what it held before is forgotten. */
  replace(dataset: string, recs: Rec[], source = dataset): void {
    this.seen.add(dataset);
    if (SALES.has(dataset)) {
      this.minutes.clear();
      this.days.clear();
      for (const r of recs) this.addSale(r, 1);
    } else if (dataset === 'low_stock_alerts') {
      this.alerts = [];
      this.alertIds.clear();
      for (const r of recs) this.addAlert(r);
    } else {
      // Several folders may hold one dataset (hourly/ and daily/ windows): each replaces its own records.
      const m = this.keyed.get(dataset);
      if (m) for (const k of m.keys()) if (k.startsWith(`${source}#`)) m.delete(k);
      recs.forEach((r, i) => (dataset !== 'windowed_product_sales' || this.windowKept(r)) && this.put(dataset, `${source}#${i}`, r));
    }
    this.version++;
  }

  private put(dataset: string, key: string, rec: Rec | null) {
    let m = this.keyed.get(dataset);
    if (!m) this.keyed.set(dataset, (m = new Map()));
    if (rec) m.set(key, rec);
    else m.delete(key);
  }

  private addSale(r: Rec, sign: 1 | -1) {
    const t = time(r.transaction_date);
    const q = units(r.quantity_sold);
    const revenue = r.revenue !== undefined ? units(r.revenue) : q !== undefined ? mul(q, units(r.price_per_unit)) : undefined;
    if (!Number.isFinite(t) || q === undefined || revenue === undefined) return;
    const now = this.now();
    const add = (s: Sums) => {
      s.revenue += BigInt(sign) * revenue;
      s.units += BigInt(sign) * q;
      s.count += sign;
    };
    if (t > now - KEEP_MINUTES) {
      const m = Math.floor(t / MINUTE) * MINUTE;
      let s = this.minutes.get(m);
      if (!s) this.minutes.set(m, (s = zero()));
      add(s);
    }
    if (t > now - KEEP_DAYS) {
      const d = dateIn(t, this.opts.timeZone);
      let s = this.days.get(d);
      if (!s) this.days.set(d, (s = zero()));
      add(s);
    }
  }

  private addAlert(r: Rec) {
    const id = str(r.alert_id) || JSON.stringify(r);
    if (this.alertIds.has(id)) return;
    this.alertIds.add(id);
    this.alerts.push(r);
    while (this.alerts.length > KEEP_ALERTS) this.alertIds.delete(str(this.alerts.shift()!.alert_id));
  }

  /** Windows older than the kept horizon are dropped (and so are the ones they push out). */
  private windowKept(r: Rec): boolean {
    const size = str(r.window_size) === '1d' ? '1d' : '1h';
    const t = time(r.window_start);
    if (!Number.isFinite(t)) return false;
    const keep = size === '1d' ? KEEP_DAYS : KEEP_MINUTES;
    if (t > this.latestWindow[size]) {
      this.latestWindow[size] = t;
      const m = this.keyed.get('windowed_product_sales');
      if (m) for (const [k, w] of m) if (str(w.window_size || '1h') === size && time(w.window_start) <= t - keep) m.delete(k);
    }
    return t > this.latestWindow[size] - keep;
  }

  /** Drops sums that have aged out (called before each view). */
  private prune(now: number) {
    for (const m of this.minutes.keys()) if (m <= now - KEEP_MINUTES) this.minutes.delete(m);
    const oldest = dateIn(now - KEEP_DAYS, this.opts.timeZone);
    for (const d of this.days.keys()) if (d < oldest) this.days.delete(d);
  }

  /** How much the model holds (the test of its bounds). */
  sizes(): Record<string, number> {
    const out: Record<string, number> = {
      minutes: this.minutes.size,
      days: this.days.size,
      alerts: this.alerts.length,
      alertIds: this.alertIds.size,
    };
    for (const [d, m] of this.keyed) out[d] = m.size;
    return out;
  }

  recommendations(customer: string): Rec | undefined {
    return (
      this.keyed.get('product_recommendations')?.get(customer) ??
      [...(this.keyed.get('product_recommendations')?.values() ?? [])].find((r) => str(r.customer_id) === customer)
    );
  }

  view(): View {
    const now = this.now();
    this.prune(now);
    const v: View = { generatedAt: now, timeZone: this.opts.timeZone, datasets: [...this.seen].sort() };
    if ([...this.seen].some((d) => SALES.has(d))) v.kpis = this.kpis(now);
    const totals = this.keyed.get('aggregated_product_sales');
    if (totals) v.top = top(totals);
    if (this.seen.has('windowed_product_sales') || v.kpis) v.trend = this.trend(now);
    const inv = this.keyed.get('inventory_levels');
    if (inv) v.stock = stock(inv);
    if (this.seen.has('low_stock_alerts'))
      v.alerts = this.alerts
        .slice(-50)
        .reverse()
        .map((a) => ({
          at: str(a.last_movement_at ?? a.updated_at ?? a.generated_at),
          event: str(a.event),
          product_name: str(a.product_name),
          brand: str(a.brand),
          projected_stock: str(a.projected_stock ?? a.stock),
          threshold: str(a.threshold),
          id: str(a.alert_id),
          ...(a.lead_time_days !== undefined
            ? { predicted_date: str(a.predicted_date), days_of_cover: str(a.days_of_cover), lead_time_days: str(a.lead_time_days) }
            : {}),
        }));
    const seg = this.keyed.get('customer_segment_sales');
    if (seg) v.segments = sumBy(seg.values(), (r) => [str(r.customer_segment) || '(none)']);
    const pred = this.keyed.get('sales_predictions');
    if (pred) v.predictions = this.predictions(pred);
    const recs = this.keyed.get('product_recommendations');
    if (recs) v.recommendations = { customers: recs.size };
    return v;
  }

  private kpis(now: number): NonNullable<View['kpis']> {
    const today = this.days.get(dateIn(now, this.opts.timeZone)) ?? zero();
    const hour = zero(),
      last5 = zero();
    for (const [m, s] of this.minutes) {
      if (m > now - HOUR && m <= now) {
        hour.revenue += s.revenue;
        hour.units += s.units;
        hour.count += s.count;
      }
      if (m > now - 5 * MINUTE && m <= now) last5.count += s.count;
    }
    return {
      revenueToday: decimal(today.revenue),
      unitsToday: decimal(today.units, 0),
      revenueLastHour: decimal(hour.revenue),
      unitsLastHour: decimal(hour.units, 0),
      salesPerMinute: (last5.count / 5).toFixed(1),
      salesToday: today.count,
    };
  }

  /** Final windows from windowed_product_sales; after the last final one, provisional sums of the sales seen. */
  private trend(now: number): NonNullable<View['trend']> {
    const final = { '1h': new Map<number, Sums>(), '1d': new Map<number, Sums>() };
    for (const w of this.keyed.get('windowed_product_sales')?.values() ?? []) {
      const size = str(w.window_size) === '1d' ? '1d' : '1h';
      const t = time(w.window_start);
      let s = final[size].get(t);
      if (!s) final[size].set(t, (s = zero()));
      s.revenue += units(w.total_revenue) ?? 0n;
      s.units += units(w.total_quantity_sold) ?? 0n;
    }
    const points = (m: Map<number, Sums>, provisional: boolean) =>
      [...m].map(([t, s]): TrendPoint => ({ t, revenue: decimal(s.revenue), units: decimal(s.units, 0), provisional }));
    const lastFinal = (m: Map<number, Sums>) => Math.max(-Infinity, ...m.keys());
    // Hours after the last final one, from the per-minute sums.
    const openHours = new Map<number, Sums>();
    const afterHour = lastFinal(final['1h']);
    for (const [m, s] of this.minutes) {
      const h = Math.floor(m / HOUR) * HOUR;
      if (h <= afterHour || h < now - KEEP_MINUTES) continue;
      let o = openHours.get(h);
      if (!o) openHours.set(h, (o = zero()));
      o.revenue += s.revenue;
      o.units += s.units;
    }
    const openDays = new Map<number, Sums>();
    const afterDay = lastFinal(final['1d']);
    for (const [d, s] of this.days) {
      const t = localToUtc(Date.parse(`${d}T00:00:00Z`), this.opts.timeZone);
      if (t <= afterDay) continue;
      openDays.set(t, { ...s });
    }
    const byTime = (a: TrendPoint, b: TrendPoint) => a.t - b.t;
    return {
      hourly: [...points(final['1h'], false), ...points(openHours, true)].sort(byTime).filter((p) => p.t > now - KEEP_MINUTES),
      daily: [...points(final['1d'], false), ...points(openDays, true)].sort(byTime).filter((p) => p.t > now - KEEP_DAYS),
    };
  }

  private predictions(pred: Map<string, Rec>): NonNullable<View['predictions']> {
    const actual = new Map<string, bigint>();
    for (const w of this.keyed.get('windowed_product_sales')?.values() ?? [])
      if (str(w.window_size) === '1d')
        actual.set(`${str(w.product_name)}|${str(w.brand)}|${str(w.window_start).slice(0, 10)}`, units(w.total_quantity_sold) ?? 0n);
    return [...pred.values()]
      .map((p) => {
        const a = actual.get(`${str(p.product_name)}|${str(p.brand)}|${str(p.period_start).slice(0, 10)}`);
        return {
          product_name: str(p.product_name),
          brand: str(p.brand),
          period_start: str(p.period_start),
          forecast: str(p.forecast),
          p10: str(p.p10),
          p90: str(p.p90),
          method: str(p.method),
          ...(a !== undefined ? { actual: decimal(a, 0) } : {}),
        };
      })
      .sort((a, b) => a.period_start.localeCompare(b.period_start) || a.product_name.localeCompare(b.product_name))
      .slice(0, 30);
  }
}

function mul(q: bigint, price: bigint | undefined): bigint | undefined {
  return price === undefined ? undefined : (q * price) / ONE;
}

const cmp = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

function sumBy(recs: Iterable<Rec>, key: (r: Rec) => string[]): Totals[] {
  const m = new Map<string, { k: string[]; s: Sums }>();
  for (const r of recs) {
    const k = key(r);
    const id = JSON.stringify(k);
    let e = m.get(id);
    if (!e) m.set(id, (e = { k, s: zero() }));
    e.s.revenue += units(r.total_revenue) ?? 0n;
    e.s.units += units(r.total_quantity_sold) ?? 0n;
  }
  return [...m.values()]
    .sort((a, b) => cmp(b.s.revenue, a.s.revenue) || a.k.join('|').localeCompare(b.k.join('|')))
    .slice(0, 10)
    .map(({ k, s }) => ({ name: k[0], ...(k.length > 1 ? { brand: k[1] } : {}), revenue: decimal(s.revenue), units: decimal(s.units, 0) }));
}

function top(totals: Map<string, Rec>): NonNullable<View['top']> {
  return {
    products: sumBy(totals.values(), (r) => [str(r.product_name), str(r.brand)]),
    brands: sumBy(totals.values(), (r) => [str(r.brand)]),
    categories: sumBy(totals.values(), (r) => [str(r.product_category) || '(none)']),
  };
}

function stock(inv: Map<string, Rec>): NonNullable<View['stock']> {
  return [...inv.values()]
    .map((r) => {
      const p = units(r.projected_stock) ?? 0n;
      const th = units(r.reorder_threshold) ?? 10n * ONE;
      return { r, p, th, below: p < th };
    })
    .sort((a, b) => cmp(a.p - a.th, b.p - b.th) || str(a.r.product_name).localeCompare(str(b.r.product_name)))
    .slice(0, 15)
    .map(({ r, p, th, below }) => ({
      product_name: str(r.product_name),
      brand: str(r.brand),
      projected_stock: decimal(p, 0),
      threshold: decimal(th, 0),
      below,
    }));
}
