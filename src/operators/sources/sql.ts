/**
 * @module `type: sql` source: incremental, resumable reads of a table through knex.
 *
 * Rules:
 * - The cursor is an increasing integer column (an auto-increment id). Each
 *   poll reads `cursor > high-water mark` in cursor order, `batchSize` rows.
 * - Concurrent writers commit out of id order (id 100 after id 101). An id
 *   skipped below the high-water mark is kept as an open gap and re-queried
 *   on every poll until it appears or `gapTimeout` passes (a rolled-back
 *   insert leaves a gap that never fills). Gaps are part of the position, so
 *   they survive restarts.
 * - The position is stored in the checkpoint; it advances only when the
 *   sinks have durably taken the rows.
 * - Drain mode reads up to the largest cursor present at start, then ends.
 * - knex and the table checks load when the source opens (sql-table.ts).
 * - Backfills read a range of event time through readRange.
 */
import type { Knex } from 'knex';
import type { SourceDef, Source, SourceBatch, StreamInfo, RunContext, ConfigOf } from '../operator.js';
import { connectionField } from '../operator.js';
import { schemaConfig, planSchema, makeDecoder, deadRow, setSource, RawRowRef } from '../record-schema.js';
import { checkConnection, connection, sqlWhere } from '../../connections/config.js';
import { withRetry, sleep } from '../../connections/retry.js';
import type { Schema } from '../../core/types.js';
import { naiveTimestamp, parseDuration } from '../../core/time.js';
import { fieldOf } from '../../core/types.js';

interface Position {
  hwm: number | null;
  /** Ids below hwm not seen yet, with the time each was first noticed. */
  gaps: [number, number][];
}

const MAX_IN = 1000;

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['type', 'connection', 'table', 'cursor', 'schema'],
  properties: {
    type: { const: 'sql' },
    connection: connectionField('sql'),
    table: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$',
      description: 'Table to read, optionally schema-qualified.',
    },
    cursor: { type: 'string', description: 'Increasing integer column (e.g. an auto-increment id) that orders new rows.' },
    eventTime: { type: 'string', description: 'Timestamp column carrying event time.' },
    schema: schemaConfig,
    batchSize: { type: 'integer', minimum: 1, maximum: 100000, default: 5000, description: 'Rows per query.' },
    pollInterval: { type: 'string', default: '1s', description: 'Wait between polls when no new row was found.' },
    gapTimeout: {
      type: 'string',
      default: '60s',
      description: 'How long an id skipped by out-of-order commits is re-queried before it is taken as rolled back.',
    },
    maxOpenGaps: { type: 'integer', minimum: 0, default: 100000, description: 'Upper bound on ids tracked as open gaps.' },
  },
} as const;

type Config = ConfigOf<typeof config>;

interface Planned {
  cfg: Config;
  out: StreamInfo;
  pollMs: number;
  gapMs: number;
}

export const sqlSource: SourceDef<typeof config, Planned> = {
  type: 'sql',
  doc: 'Reads new rows of a relational table (MySQL/MariaDB, PostgreSQL, SQLite) incrementally by an increasing cursor column, without losing rows committed out of order.',
  config,
  records: 'rows',
  plan(cfg, ctx) {
    checkConnection(ctx, ['connection'], cfg.connection, 'sql');
    const schema = planSchema(cfg.schema, ctx, ['schema']);
    let ok = true;
    const cur = fieldOf(schema, cfg.cursor);
    if (!cur) {
      ok = false;
      ctx.error(['cursor'], `cursor column "${cfg.cursor}" is not declared in schema`, 'column.unknown');
    } else if (cur.type.kind !== 'int' || cur.type.nullable) {
      ok = false;
      ctx.error(['cursor'], `cursor column "${cfg.cursor}" must be a non-nullable int`, 'type.mismatch');
    }
    if (cfg.eventTime) {
      const et = fieldOf(schema, cfg.eventTime);
      if (!et) {
        ok = false;
        ctx.error(['eventTime'], `event-time column "${cfg.eventTime}" is not declared in schema`, 'column.unknown');
      } else if (et.type.kind !== 'timestamp') {
        ok = false;
        ctx.error(['eventTime'], `event-time column "${cfg.eventTime}" must be a timestamp`, 'type.mismatch');
      }
    }
    const ms = (k: 'pollInterval' | 'gapTimeout') => {
      const v = parseDuration(cfg[k]);
      if (v === undefined) {
        ok = false;
        ctx.error([k], `invalid duration "${cfg[k]}" (e.g. 500ms, 10s, 5m)`, 'value.duration');
      }
      return v ?? 0;
    };
    const pollMs = ms('pollInterval'),
      gapMs = ms('gapTimeout');
    const out: StreamInfo = { schema, mode: 'append', eventTime: cfg.eventTime };
    return { out, planned: ok ? { cfg, out, pollMs, gapMs } : (undefined as never) };
  },
  async status(p, position, ctx) {
    const { cfg } = p;
    const pos = position as Position | undefined;
    const detail = {
      type: 'sql',
      table: cfg.table,
      cursor: cfg.cursor,
      position: pos?.hwm ?? null,
      openGaps: pos?.gaps?.length ?? 0,
      max: null as number | null,
    };
    const text = () =>
      `source table ${cfg.table}: read up to ${cfg.cursor} ${detail.position ?? '(nothing yet)'}${detail.openGaps ? ` with ${detail.openGaps} open gap(s)` : ''}; largest ${cfg.cursor} ${detail.max ?? '(empty)'}`;
    const { openKnex } = await import('../../connections/sql.js');
    const { db } = await openKnex(connection(ctx, cfg.connection).url!, ctx.specDir, 1);
    try {
      let q = db(cfg.table).count({ n: '*' });
      if (detail.position !== null) q = q.where(cfg.cursor, '>', detail.position);
      const [r] = await q;
      const all = await db(cfg.table).max({ m: cfg.cursor });
      detail.max = all[0]?.m === null || all[0]?.m === undefined ? null : Number(all[0].m);
      return { detail, text: text(), lag: Number(r.n) + detail.openGaps };
    } catch (e) {
      return { detail, text: text(), lag: null, error: `reading ${sqlWhere(ctx, cfg.connection)}: ${(e as Error).message}` };
    } finally {
      await db.destroy();
    }
  },
  async readRange(p, range, ctx) {
    const { cfg, out } = p;
    if (!cfg.eventTime) throw new Error(`flow ${ctx.flow}: a backfill reads a range of event time, so its sql source needs eventTime`);
    const url = connection(ctx, cfg.connection).url!;
    const { openKnex } = await import('../../connections/sql.js');
    const { db } = await openKnex(url, ctx.specDir, 1);
    try {
      return await db(cfg.table)
        .select(out.schema.map((c) => c.name))
        .where(cfg.eventTime, '>=', naiveTimestamp(range.from, ctx.timeZone))
        .andWhere(cfg.eventTime, '<', naiveTimestamp(range.to, ctx.timeZone))
        .orderBy(cfg.cursor);
    } catch (e) {
      throw new Error(`reading ${cfg.table} at ${sqlWhere(ctx, cfg.connection)}: ${(e as Error).message}`);
    } finally {
      await db.destroy();
    }
  },
  create(p, ctx) {
    return new SqlSource(p, ctx);
  },
};

class SqlSource implements Source {
  private db!: Knex;
  private pos: Position = { hwm: null, gaps: [] };
  private target: number | null = null;
  private decode;
  private batchSize: number;
  private pollMs: number;
  private gapMs: number;
  private maxGaps: number;
  private columns: string[];
  private lastGapQuery = 0;
  private drained = false;
  private lagEstimate: number | undefined;
  private lagCheckedAt = 0;
  private maxSeen: number | null = null;
  private log;
  private schema: Schema;

  private cfg: Config;

  constructor(
    p: Planned,
    private ctx: RunContext,
  ) {
    const out = p.out;
    this.cfg = p.cfg;
    this.schema = out.schema;
    this.decode = makeDecoder(out.schema, { timeZone: ctx.timeZone, numericText: true });
    this.batchSize = p.cfg.batchSize;
    this.pollMs = p.pollMs;
    this.gapMs = p.gapMs;
    this.maxGaps = p.cfg.maxOpenGaps;
    this.columns = out.schema.map((f) => f.name);
    this.log = ctx.log.child('sql');
  }

  async open(position: unknown) {
    const c = connection(this.ctx, this.cfg.connection);
    const where = sqlWhere(this.ctx, this.cfg.connection);
    const [{ openKnex }, { openTable }] = await Promise.all([import('../../connections/sql.js'), import('../sql-table.js')]);
    const k = await openKnex(c.url!, this.ctx.specDir, c.pool);
    this.db = k.db;
    if (position) this.pos = structuredClone(position as Position);
    await openTable(this.db, k.dialect, this.cfg.table, this.columns, this.schema, where, this.log, this.ctx.signal);
    if (position && this.pos.hwm !== null) {
      // A table emptied or recreated since the checkpoint: its new rows would have ids below the position.
      const r = await withRetry(`reading max ${this.cfg.cursor}`, this.log, this.ctx.signal, () =>
        this.db(this.cfg.table).max({ m: this.cfg.cursor }),
      );
      const max = r[0]?.m === null || r[0]?.m === undefined ? null : Number(r[0].m);
      if (max === null || max < this.pos.hwm) {
        throw new Error(
          `flow ${this.ctx.flow}: its checkpoint has read ${this.cfg.table} up to ${this.cfg.cursor} ${this.pos.hwm}, but the table's largest ${this.cfg.cursor} is ${max ?? 'none (it is empty)'}: ` +
            `was it emptied or created again? Its new rows would be skipped. Nothing was read. To read it from the start, run \`salespipe reset ${this.ctx.specFile ?? 'FILE'} --flow ${this.ctx.flow} --positions\` (keeps the flow's state) or without --positions (starts over)`,
        );
      }
    }
    if (this.ctx.drain) {
      const r = await withRetry('reading max cursor', this.log, this.ctx.signal, () => this.db(this.cfg.table).max({ m: this.cfg.cursor }));
      const m = r[0]?.m;
      this.target = m === null || m === undefined ? null : Number(m);
      this.log.info(`drain: reading ${this.cfg.table} up to ${this.cfg.cursor} ${this.target ?? '(empty table)'}`);
    }
  }

  position() {
    return { hwm: this.pos.hwm, gaps: this.pos.gaps.slice() };
  }

  lag() {
    return this.lagEstimate;
  }

  async next(): Promise<SourceBatch | null> {
    if (this.drained || this.ctx.signal.aborted) return null;
    const batch: SourceBatch = { rows: [], dead: [] };
    const polled = withRetry(
      `polling ${this.cfg.table}`,
      this.log,
      this.ctx.signal,
      async () => {
        // One attempt is all or nothing: a failure half-way must not drop the gaps it found.
        const before: Position = { hwm: this.pos.hwm, gaps: this.pos.gaps.slice() };
        batch.rows.length = 0;
        batch.dead.length = 0;
        try {
          await this.pollGaps(batch);
          await this.pollNew(batch);
          await this.refreshLag();
        } catch (e) {
          this.pos = before;
          throw e;
        }
      },
      10_000,
    );
    try {
      await polled;
    } catch (e) {
      // Stopped (SIGINT/SIGTERM) while the database was away: nothing new was read; end cleanly.
      if (this.ctx.signal.aborted) return null;
      throw e;
    }
    const empty = batch.rows.length === 0 && batch.dead.length === 0;
    if (empty && this.reachedTarget()) {
      this.drained = true;
      if (this.pos.gaps.length)
        this.log.info(
          `drain finished with ${this.pos.gaps.length} open gap(s) below id ${this.pos.hwm}; they stay tracked for the next run`,
        );
      return null;
    }
    if (empty && !this.ctx.drain) await sleep(this.pollMs, this.ctx.signal);
    return batch;
  }

  private reachedTarget(): boolean {
    return this.ctx.drain && (this.target === null || (this.pos.hwm !== null && this.pos.hwm >= this.target));
  }

  private emit(raw: Record<string, unknown>, batch: SourceBatch) {
    const r = this.decode(raw);
    const origin = `${this.cfg.table}#${raw[this.cfg.cursor]}`;
    if (typeof r === 'string') batch.dead.push(deadRow(raw, r, origin));
    else {
      setSource(r, new RawRowRef(raw, origin));
      batch.rows.push(r);
    }
  }

  /** Re-queries open gaps (ids skipped by out-of-order commits), at most once per poll interval. */
  private async pollGaps(batch: SourceBatch) {
    if (!this.pos.gaps.length) return;
    const now = Date.now();
    if (now - this.lastGapQuery < this.pollMs && !this.reachedTarget()) return;
    this.lastGapQuery = now;
    const found = new Set<number>();
    for (let i = 0; i < this.pos.gaps.length; i += MAX_IN) {
      const ids = this.pos.gaps.slice(i, i + MAX_IN).map((g) => g[0]);
      const rows = await this.db(this.cfg.table).select(this.columns).whereIn(this.cfg.cursor, ids);
      for (const raw of rows) {
        found.add(Number(raw[this.cfg.cursor]));
        this.emit(raw, batch);
      }
    }
    const before = this.pos.gaps.length;
    this.pos.gaps = this.pos.gaps.filter(([id, since]) => !found.has(id) && now - since < this.gapMs);
    const expired = before - found.size - this.pos.gaps.length;
    if (found.size) this.log.debug(`${found.size} row(s) committed out of order were picked up`);
    if (expired > 0) this.log.debug(`${expired} gap(s) expired after ${this.gapMs} ms (rolled back or deleted)`);
  }

  private async pollNew(batch: SourceBatch) {
    let q = this.db(this.cfg.table).select(this.columns).orderBy(this.cfg.cursor).limit(this.batchSize);
    if (this.pos.hwm !== null) q = q.where(this.cfg.cursor, '>', this.pos.hwm);
    if (this.target !== null) q = q.where(this.cfg.cursor, '<=', this.target);
    const rows = await q;
    const now = Date.now();
    let expect = this.pos.hwm === null ? null : this.pos.hwm + 1;
    for (const raw of rows) {
      const id = Number(raw[this.cfg.cursor]);
      if (expect !== null && id > expect) this.openGaps(expect, id, now);
      expect = id + 1;
      this.emit(raw, batch);
    }
    if (rows.length) this.pos.hwm = Number(rows[rows.length - 1][this.cfg.cursor]);
  }

  /** Rows not read yet, estimated from ids (the table's max id, checked at most every 5 s). */
  private async refreshLag() {
    if (!this.ctx.drain && Date.now() - this.lagCheckedAt >= 5000) {
      this.lagCheckedAt = Date.now();
      const r = await this.db(this.cfg.table).max({ m: this.cfg.cursor });
      this.maxSeen = r[0]?.m === null || r[0]?.m === undefined ? null : Number(r[0].m);
    }
    const top = this.ctx.drain ? this.target : this.maxSeen;
    this.lagEstimate = top === null ? 0 : Math.max(0, top - (this.pos.hwm ?? 0));
  }

  private openGaps(from: number, to: number, now: number) {
    const room = this.maxGaps - this.pos.gaps.length;
    if (to - from > room)
      this.log.warn(`ids ${from}..${to - 1} are missing; tracking only ${Math.max(0, room)} of them as open gaps (maxOpenGaps)`);
    for (let id = from; id < to && this.pos.gaps.length < this.maxGaps; id++) this.pos.gaps.push([id, now]);
  }

  async commit() {}

  async close() {
    await this.db?.destroy();
  }
}
