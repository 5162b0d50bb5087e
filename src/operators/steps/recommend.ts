/**
 * @module `recommend` step: the top products per customer from purchase
 * history (implicit ALS, recommend/model.ts) and the popularity of the
 * customer's region.
 *
 * Rules:
 * - Input: purchases, an append stream with the customer, the item's key
 *   columns (e.g. product_name, brand), optionally the units bought, the
 *   customer's region (e.g. from a lookup join with customer_data) and the
 *   item's category. A row without a customer is anonymous: counted, not
 *   learnt from.
 * - State: per customer the units bought per item and their latest
 *   region; as a changelog one entry per customer, so an epoch logs the
 *   customers who bought in it.
 * - The model is trained when the input ends: at the end of a drain run
 *   (the cron retraining) or of a bounded run, on everything the state
 *   holds. Rows are then emitted for every customer with a purchase:
 *   `{customer, recommendations, model_version, generated_at}`, where
 *   recommendations is a JSON list of `{<item columns>, score, reason}`,
 *   best first, and model_version names the training (the last purchase's
 *   date and the purchases it learnt from), so a rerun of the same input
 *   gives the same version.
 * - Items a customer bought are not recommended to them (`exclude:
 *   bought`), except in the `repurchasable` categories (cables, chargers);
 *   `exclude: none` keeps them.
 * - The output is keyed by the customer: a compacted topic keeps each
 *   customer's latest list.
 * - `model: FILE` keeps the trained model (item factors, regional
 *   popularity, each customer's purchases); a step with `foldIn: true` in a
 *   flow reading the live sales (class FoldIn below) re-solves each buying
 *   customer against it at every epoch.
 *
 * @example
 *   - recommend:
 *       customer: customer_id
 *       item: [product_name, brand]
 *       quantity: quantity_sold
 *       region: region
 *       category: product_category
 *       repurchasable: [Accessory]
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ConfigOf, PlanContext, RunContext, Step, StepDef, StreamInfo } from '../operator.js';
import { Row, Schema, Value, fieldOf, isNumeric, typeName } from '../../core/types.js';
import { formatTimestamp } from '../../core/time.js';
import { entryId } from '../keyed-state.js';
import { csr } from '../../recommend/als.js';
import {
  confidence,
  Recommendation,
  Recommender,
  RecommenderOptions,
  RECOMMENDER_DEFAULTS,
  SavedRecommender,
} from '../../recommend/model.js';

const D = RECOMMENDER_DEFAULTS;

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['customer', 'item'],
  properties: {
    customer: { type: 'string', description: 'Column identifying the customer (rows where it is null are anonymous).' },
    item: {
      type: 'array',
      items: { type: 'string' },
      minItems: 1,
      uniqueItems: true,
      description: 'Columns identifying an item, e.g. [product_name, brand]; each recommendation carries them.',
    },
    quantity: { type: 'string', description: 'Numeric column of units bought (default: 1 per row).' },
    region: {
      type: 'string',
      description: "String column of the customer's region (null: none), e.g. from a lookup join with customer_data.",
    },
    category: { type: 'string', description: "String column of the item's category (for repurchasable)." },
    top: { type: 'integer', minimum: 1, maximum: 100, default: 5, description: 'Recommendations per customer.' },
    exclude: {
      enum: ['bought', 'none'],
      default: 'bought',
      description: 'bought: items a customer bought are not recommended to them (except repurchasable categories).',
    },
    repurchasable: {
      type: 'array',
      items: { type: 'string' },
      uniqueItems: true,
      description: 'Categories bought again and again (e.g. [Accessory]): recommended even when bought.',
    },
    factors: { type: 'integer', minimum: 1, maximum: 256, default: D.als.factors, description: 'Latent factors of the ALS model.' },
    regularization: { type: 'number', minimum: 0, default: D.als.regularization, description: 'L2 regularization of the factors.' },
    alpha: { type: 'number', exclusiveMinimum: 0, default: D.als.alpha, description: 'Confidence of a purchase: 1 + alpha * r.' },
    confidence: { enum: ['log1p', 'raw'], default: 'log1p', description: 'r: log1p(units) or the units.' },
    iterations: { type: 'integer', minimum: 1, maximum: 200, default: D.als.iterations, description: 'ALS iterations.' },
    blend: {
      type: 'number',
      minimum: 0,
      default: D.blend,
      description: 'Weight of regional popularity: a customer with n items gets n / (n + blend) of personal scores.',
    },
    shrink: {
      type: 'number',
      minimum: 0,
      default: D.shrink,
      description: "Pseudo-buyers of global popularity added to each region's counts.",
    },
    seed: { type: 'integer', default: D.als.seed, description: 'Seed of the initial factors (a training is repeatable).' },
    model: {
      type: 'string',
      description:
        'A file (relative to the spec) for the trained model: a training writes it (atomically); with foldIn the step reads it, and reads it again when a training replaces it.',
    },
    foldIn: {
      type: 'boolean',
      default: false,
      description:
        "Live updates (a flow reading the sales stream): no training; at every epoch each customer who bought in it gets a new list, their factors re-solved from all their purchases (the model's and the stream's since) against the model's item factors.",
    },
  },
} as const;

type Config = ConfigOf<typeof config>;

export const RECOMMENDATIONS = 'recommendations';

interface Planned {
  customer: string;
  item: string[];
  quantity?: string;
  /** 10^scale of a decimal quantity, else 1. */
  divisor: number;
  region?: string;
  category?: string;
  top: number;
  exclude: 'bought' | 'none';
  repurchasable: Set<string>;
  options: RecommenderOptions;
  confidence: 'log1p' | 'raw';
  on?: string;
  model?: string;
  foldIn: boolean;
}

export const recommendStep: StepDef<typeof config, Planned> = {
  key: 'recommend',
  doc: "Recommends the top products per customer from their purchases (implicit ALS, conjugate gradient) blended with their region's popularity; trained when the input ends (a drain run, e.g. from cron), one row per customer with the list as JSON; with foldIn, a live flow's buying customers re-solved against the trained model at every epoch.",
  config,
  plan: planRecommend,
  describe: (c) =>
    c.foldIn
      ? `recommend the top ${c.top ?? 5} (${c.item.join(', ')}) per buying ${c.customer}: fold-in against the model in ${c.model}`
      : `recommend the top ${c.top ?? 5} (${c.item.join(', ')}) per ${c.customer}: implicit ALS, ${c.factors ?? D.als.factors} factors${c.model ? `, model kept in ${c.model}` : ''}`,
  create: (p, ctx) => {
    const model = p.model === undefined ? undefined : path.resolve(ctx.specDir, p.model);
    return p.foldIn ? new FoldIn(p, model!, ctx.log) : new Recommend(p, model);
  },
};

function planRecommend(cfg: Config, input: StreamInfo, ctx: PlanContext) {
  let ok = true;
  const column = (path: (string | number)[], name: string, want: 'any' | 'numeric' | 'string') => {
    const f = fieldOf(input.schema, name);
    if (!f) {
      ok = false;
      ctx.error(path, `unknown column "${name}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown');
    } else if ((want === 'numeric' && !isNumeric(f.type)) || (want === 'string' && f.type.kind !== 'string')) {
      ok = false;
      ctx.error(path, `column "${name}" must be ${want === 'numeric' ? 'numeric' : 'a string'}, got ${typeName(f.type)}`, 'type.mismatch');
    }
    return f;
  };
  const customer = column(['customer'], cfg.customer, 'any');
  cfg.item.forEach((c, i) => column(['item', i], c, 'any'));
  const qty = cfg.quantity ? column(['quantity'], cfg.quantity, 'numeric') : undefined;
  if (cfg.region) column(['region'], cfg.region, 'string');
  if (cfg.category) column(['category'], cfg.category, 'string');
  if (cfg.repurchasable?.length && !cfg.category) {
    ok = false;
    ctx.error(['repurchasable'], 'repurchasable names categories: set category, the column that holds them', 'option.requires');
  }
  if (input.mode !== 'append') {
    ok = false;
    ctx.error([], `recommend needs an append stream of purchases as input, got ${input.mode}`, 'mode.invalid');
  }
  if (cfg.foldIn && !cfg.model) {
    ok = false;
    ctx.error(['foldIn'], 'foldIn folds purchases into a trained model: set model, the file a training writes', 'option.requires');
  }
  const schema: Schema = [
    { name: cfg.customer, type: { ...(customer?.type ?? { kind: 'int' }), nullable: false } },
    { name: RECOMMENDATIONS, type: { kind: 'json', nullable: false } },
    { name: 'model_version', type: { kind: 'string', nullable: false } },
    { name: 'generated_at', type: { kind: 'timestamp', nullable: false } },
  ];
  const out: StreamInfo = { schema, mode: 'append', key: [cfg.customer] };
  const planned: Planned = {
    customer: cfg.customer,
    item: [...cfg.item],
    quantity: cfg.quantity,
    divisor: qty?.type.kind === 'decimal' ? 10 ** (qty.type.scale ?? 0) : 1,
    region: cfg.region,
    category: cfg.category,
    top: cfg.top,
    exclude: cfg.exclude,
    repurchasable: new Set(cfg.repurchasable ?? []),
    options: {
      als: {
        ...D.als,
        factors: cfg.factors,
        regularization: cfg.regularization,
        alpha: cfg.alpha,
        iterations: cfg.iterations,
        seed: cfg.seed,
      },
      blend: cfg.blend,
      shrink: cfg.shrink,
    },
    confidence: cfg.confidence,
    on: input.eventTime,
    model: cfg.model,
    foldIn: cfg.foldIn,
  };
  return { out, planned: ok ? planned : (undefined as never) };
}

/** One purchase as the step reads it. */
export interface PurchaseRow {
  key: Value;
  /** The customer's and the item's ids (JSON of their key values). */
  customer: string;
  item: string;
  units: number;
  /** Event time (null: none). */
  at: number | null;
  /** The customer's region; undefined when the step has no region column. */
  region?: string | null;
}

interface Customer {
  key: Value;
  region: string | null;
  /** Units per item id. */
  units: Map<string, number>;
}

interface Item {
  keys: Value[];
  category: string | null;
}

interface Meta {
  /** Items (id -> keys, category): small, kept whole. */
  items: [string, Value[], string | null][];
  purchases: number;
  anonymous: number;
  lastEventTime: number | null;
  /** The last training's version (a restart does not emit it again). */
  emitted: string | null;
}

/** What a row says, or null for an anonymous row or one without units; a new item joins `items`. */
function readPurchase(p: Planned, r: Row, keyBuf: Value[], items: Map<string, Item>): PurchaseRow | null {
  const { customer, item, quantity, region, category, on } = p;
  const c = r[customer];
  if (c === null || c === undefined) return null;
  const units = quantity ? Number(r[quantity] ?? 0) / p.divisor : 1;
  if (!(units > 0)) return null;
  for (let k = 0; k < item.length; k++) keyBuf[k] = r[item[k]];
  const id = entryId(keyBuf);
  if (!items.has(id)) items.set(id, { keys: keyBuf.slice(), category: category ? ((r[category] as string | null) ?? null) : null });
  const t = on ? (r[on] as number | null) : null;
  return { key: c, customer: entryId(c), item: id, units, at: t, region: region ? ((r[region] as string | null) ?? null) : undefined };
}

/** A customer's output row. */
function listRow(p: Planned, key: Value, list: Recommendation[], itemRows: Item[], version: string, now: number): Row {
  const recs = list.map((r) => {
    const o: Record<string, unknown> = {};
    p.item.forEach((c, k) => (o[c] = itemRows[r.item].keys[k]));
    o.score = Math.round(r.score * 1e4) / 1e4;
    o.reason = r.reason;
    return o;
  });
  return {
    [p.customer]: key,
    [RECOMMENDATIONS]: JSON.stringify(recs, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)),
    model_version: version,
    generated_at: now,
  };
}

/** The file a training writes (`model:`) and a fold-in step reads. */
interface ModelFile {
  version: string;
  /** The last purchase's event time: the stream's purchases up to it are in the model. */
  trainedThrough: number | null;
  /** Per item index: id, key values, category. */
  items: [string, Value[], string | null][];
  regions: string[];
  recommender: SavedRecommender;
  /** Per customer: id, key, region, [item index, units][]. */
  customers: [string, Value, string | null, [number, number][]][];
}

/** Writes `file` whole or not at all (a temporary file renamed over it). */
function writeModel(file: string, m: ModelFile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(
    tmp,
    JSON.stringify(m, (_k, v) => (typeof v === 'bigint' ? `${v}` : v)),
  );
  fs.renameSync(tmp, file);
}

export class Recommend implements Step {
  private customers = new Map<string, Customer>();
  private items = new Map<string, Item>();
  private changed = new Set<string>();
  private purchases = 0;
  private anonymous = 0;
  private lastEventTime = -Infinity;
  private ended = false;
  private emitted: string | null = null;
  private trained = 0;
  private keyBuf: Value[];

  constructor(
    private p: Planned,
    /** Where the trained model goes (none: not kept). */
    private modelFile?: string,
  ) {
    this.keyBuf = new Array(p.item.length);
  }

  /** What a row says, or null for an anonymous row or one without units. */
  read(r: Row): PurchaseRow | null {
    return readPurchase(this.p, r, this.keyBuf, this.items);
  }

  process(rows: Row[]): Row[] {
    for (const r of rows) {
      const p = this.read(r);
      if (!p) {
        if (r[this.p.customer] === null || r[this.p.customer] === undefined) this.anonymous++;
        continue;
      }
      let s = this.customers.get(p.customer);
      if (!s) this.customers.set(p.customer, (s = { key: p.key, region: null, units: new Map() }));
      if (p.region !== undefined) s.region = p.region;
      s.units.set(p.item, (s.units.get(p.item) ?? 0) + p.units);
      this.changed.add(p.customer);
      this.purchases++;
      if (p.at !== null && p.at > this.lastEventTime) this.lastEventTime = p.at;
    }
    return [];
  }

  /** What the step was planned with (backtests). */
  settings(): { options: RecommenderOptions; confidence: 'log1p' | 'raw' } {
    return { options: this.p.options, confidence: this.p.confidence };
  }

  advance(progress: number | null | undefined): void {
    // A bounded input (a test, a backfill) has ended: train as at the end of a drain.
    if (progress === Infinity) this.ended = true;
  }

  inputEnded(): void {
    this.ended = true;
  }

  private version(): string {
    const through = Number.isFinite(this.lastEventTime) ? formatTimestamp(this.lastEventTime).slice(0, 10) : 'none';
    return `als-${through}-${this.purchases}`;
  }

  pending(): boolean {
    return this.ended && this.customers.size > 0 && this.emitted !== this.version();
  }

  flush(): Row[] {
    if (!this.pending()) return [];
    const version = this.version();
    this.emitted = version;
    this.trained++;
    return this.recommendAll(version);
  }

  /** Trains on the state and recommends for every customer. */
  recommendAll(version: string, now = Date.now()): Row[] {
    const { options, top, exclude, repurchasable } = this.p;
    const itemIds = [...this.items.keys()].sort();
    const itemIndex = new Map(itemIds.map((id, i) => [id, i]));
    const custIds = [...this.customers.keys()].sort();
    const regions = [...new Set([...this.customers.values()].map((c) => c.region).filter((r): r is string => r !== null))].sort();
    const regionIndex = new Map(regions.map((r, i) => [r, i]));
    const rows: number[] = [],
      cols: number[] = [],
      vals: number[] = [];
    const region = new Int32Array(custIds.length);
    custIds.forEach((cid, u) => {
      const c = this.customers.get(cid)!;
      region[u] = c.region === null ? -1 : regionIndex.get(c.region)!;
      for (const [iid, units] of c.units) {
        rows.push(u);
        cols.push(itemIndex.get(iid)!);
        vals.push(confidence(units, options.als.alpha, this.p.confidence));
      }
    });
    const m = csr(custIds.length, itemIds.length, rows, cols, vals);
    const rec = Recommender.train(m, region, regions.length, options);
    const itemRows = itemIds.map((id) => this.items.get(id)!);
    const keep = itemRows.map((it) => it.category !== null && repurchasable.has(it.category));
    const out: Row[] = [];
    for (let u = 0; u < custIds.length; u++) {
      const bought = m.indices.subarray(m.indptr[u], m.indptr[u + 1]);
      const owned = exclude === 'bought' ? bought.filter((i) => !keep[i]) : undefined;
      out.push(
        listRow(
          this.p,
          this.customers.get(custIds[u])!.key,
          rec.recommend(rec.factors(u), bought.length, region[u], top, owned),
          itemRows,
          version,
          now,
        ),
      );
    }
    if (this.modelFile)
      writeModel(this.modelFile, {
        version,
        trainedThrough: Number.isFinite(this.lastEventTime) ? this.lastEventTime : null,
        items: itemIds.map((id, i) => [id, itemRows[i].keys, itemRows[i].category]),
        regions,
        recommender: rec.save(),
        customers: custIds.map((cid, u) => {
          const c = this.customers.get(cid)!;
          const pairs: [number, number][] = [];
          for (const [iid, units] of c.units) pairs.push([itemIndex.get(iid)!, units]);
          return [cid, c.key, c.region, pairs];
        }),
      });
    return out;
  }

  counters(): Record<string, number> {
    return {
      customers: this.customers.size,
      items: this.items.size,
      purchases: this.purchases,
      anonymous: this.anonymous,
      trainings: this.trained,
    };
  }

  private meta(): Meta {
    return {
      items: [...this.items].map(([id, it]) => [id, it.keys, it.category]),
      purchases: this.purchases,
      anonymous: this.anonymous,
      lastEventTime: Number.isFinite(this.lastEventTime) ? this.lastEventTime : null,
      emitted: this.emitted,
    };
  }

  private loadMeta(m: Meta) {
    this.items = new Map(m.items.map(([id, keys, category]) => [id, { keys, category }]));
    this.purchases = m.purchases;
    this.anonymous = m.anonymous;
    this.lastEventTime = m.lastEventTime ?? -Infinity;
    this.emitted = m.emitted;
    this.customers = new Map();
    this.changed.clear();
  }

  snapshot(): unknown {
    return { ...this.meta(), customers: [...this.customers].map(([id, c]) => [id, c.key, c.region, [...c.units]]) };
  }

  restore(state: unknown): void {
    const st = state as Meta & { customers: [string, Value, string | null, [string, number][]][] };
    this.loadMeta(st);
    for (const [id, key, region, units] of st.customers) this.customers.set(id, { key, region, units: new Map(units) });
  }

  stateChanges(all: boolean): [string, unknown][] {
    const ids = all ? this.customers.keys() : this.changed;
    const out: [string, unknown][] = [];
    for (const id of ids) {
      const c = this.customers.get(id);
      if (c) out.push([id, [c.key, c.region, [...c.units]]]);
    }
    this.changed.clear();
    return out;
  }

  stateMeta(): unknown {
    return this.meta();
  }

  loadState(meta: unknown, entries: Map<string, unknown>): void {
    this.loadMeta(meta as Meta);
    for (const [id, v] of entries) {
      const [key, region, units] = v as [Value, string | null, [string, number][]];
      this.customers.set(id, { key, region, units: new Map(units) });
    }
  }
}

/** A fold-in step's state per customer: what they bought since the model. */
interface Recent {
  key: Value;
  /** The latest region their rows gave (undefined: the step has no region column). */
  region?: string | null;
  purchases: [string, number, number | null][];
}

interface LoadedModel {
  version: string;
  trainedThrough: number | null;
  rec: Recommender;
  itemIndex: Map<string, number>;
  itemRows: Item[];
  keep: boolean[];
  regionIndex: Map<string, number>;
  customers: Map<string, { region: string | null; pairs: [number, number][] }>;
  mtimeMs: number;
}

/**
 * The live half of `recommend` (`foldIn: true`): the model a training wrote
 * to `model`, and each buying customer's list re-solved at the epoch end.
 *
 * Rules:
 * - A customer's factors are solved exactly (one k x k system) from all
 *   their purchases: the model's and those the stream brought since, on the
 *   model's item factors. A new customer gets their region's popularity
 *   blended in as in a training (n / (n + blend) personal).
 * - Only the customers who bought in the epoch get a row, all of the
 *   epoch's purchases counted; their rows carry the model's version.
 * - The model file is read at start and again at an epoch end when a
 *   training replaced it: purchases up to its trainedThrough are then in
 *   the model and leave the state.
 * - Products the model does not know (launched since) are neither learnt
 *   nor recommended until the next training.
 */
export class FoldIn implements Step {
  private recent = new Map<string, Recent>();
  private touched = new Set<string>();
  private changed = new Set<string>();
  private items = new Map<string, Item>();
  private keyBuf: Value[];
  private model?: LoadedModel;
  private updates = 0;
  private warned = false;

  constructor(
    private p: Planned,
    private file: string,
    private log: RunContext['log'],
  ) {
    this.keyBuf = new Array(p.item.length);
  }

  async open(): Promise<void> {
    this.reload();
  }

  /** Reads the model file if it is new or changed since it was read; prunes what it now holds. */
  private reload(): void {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch {
      if (!this.warned) this.log.warn(`no model at ${this.file} yet: lists follow purchases once a training has written it`);
      this.warned = true;
      return;
    }
    if (this.model && this.model.mtimeMs === st.mtimeMs) return;
    const m = JSON.parse(fs.readFileSync(this.file, 'utf8')) as ModelFile;
    if (this.model?.version === m.version) {
      this.model.mtimeMs = st.mtimeMs;
      return;
    }
    const itemRows = m.items.map(([, keys, category]) => ({ keys, category }));
    this.model = {
      version: m.version,
      trainedThrough: m.trainedThrough,
      rec: Recommender.load(m.recommender),
      itemIndex: new Map(m.items.map(([id], i) => [id, i])),
      itemRows,
      keep: itemRows.map((it) => it.category !== null && this.p.repurchasable.has(it.category)),
      regionIndex: new Map(m.regions.map((r, i) => [r, i])),
      customers: new Map(m.customers.map(([id, , region, pairs]) => [id, { region, pairs }])),
      mtimeMs: st.mtimeMs,
    };
    this.warned = false;
    // What the model learnt from leaves the state.
    const through = m.trainedThrough ?? -Infinity;
    for (const [id, c] of this.recent) {
      const left = c.purchases.filter(([, , at]) => at === null || at > through);
      if (left.length === c.purchases.length) continue;
      if (left.length) c.purchases = left;
      else this.recent.delete(id);
      this.changed.add(id);
    }
    this.log.info(`model ${m.version} read from ${this.file}: ${m.items.length} items, ${m.customers.length} customers`);
  }

  process(rows: Row[]): Row[] {
    for (const r of rows) {
      const p = readPurchase(this.p, r, this.keyBuf, this.items);
      if (!p) continue;
      let c = this.recent.get(p.customer);
      if (!c) this.recent.set(p.customer, (c = { key: p.key, purchases: [] }));
      if (p.region !== undefined) c.region = p.region;
      c.purchases.push([p.item, p.units, p.at]);
      this.touched.add(p.customer);
      this.changed.add(p.customer);
    }
    return [];
  }

  flush(): Row[] {
    this.reload();
    const m = this.model;
    if (!m || !this.touched.size) {
      this.touched.clear();
      return [];
    }
    const { options, top, exclude } = this.p;
    const now = Date.now();
    const out: Row[] = [];
    for (const id of [...this.touched].sort()) {
      const c = this.recent.get(id);
      if (!c) continue;
      const units = new Map<number, number>(m.customers.get(id)?.pairs ?? []);
      for (const [item, u] of c.purchases) {
        const i = m.itemIndex.get(item);
        if (i !== undefined) units.set(i, (units.get(i) ?? 0) + u);
      }
      const cols = [...units.keys()].sort((a, b) => a - b);
      const data = cols.map((i) => confidence(units.get(i)!, options.als.alpha, this.p.confidence));
      const x = cols.length ? m.rec.foldIn(cols, data) : null;
      const region = c.region !== undefined ? c.region : (m.customers.get(id)?.region ?? null);
      const owned = exclude === 'bought' ? cols.filter((i) => !m.keep[i]) : undefined;
      const list = m.rec.recommend(x, cols.length, region === null ? -1 : (m.regionIndex.get(region) ?? -1), top, owned);
      out.push(listRow(this.p, c.key, list, m.itemRows, m.version, now));
    }
    this.updates += out.length;
    this.touched.clear();
    return out;
  }

  counters(): Record<string, number> {
    return { customers: this.recent.size, updates: this.updates };
  }

  snapshot(): unknown {
    return { recent: [...this.recent] };
  }

  restore(state: unknown): void {
    this.recent = new Map((state as { recent: [string, Recent][] }).recent);
    this.touched.clear();
    this.changed.clear();
  }

  stateChanges(all: boolean): [string, unknown][] {
    const out: [string, unknown][] = [];
    for (const id of all ? new Set([...this.recent.keys(), ...this.changed]) : this.changed) out.push([id, this.recent.get(id) ?? null]);
    this.changed.clear();
    return out;
  }

  stateMeta(): unknown {
    return {};
  }

  loadState(_meta: unknown, entries: Map<string, unknown>): void {
    this.recent = new Map();
    for (const [id, v] of entries) if (v) this.recent.set(id, v as Recent);
    this.touched.clear();
    this.changed.clear();
  }
}
