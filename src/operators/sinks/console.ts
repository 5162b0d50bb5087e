/**
 * @module `type: console` sink: rows on standard output.
 *
 * Rules: on a terminal, a table (a keyed stream shows every key's current
 * value after each epoch; an append stream shows the epoch's rows, at most
 * `maxRows`); otherwise, and with `format: json`, JSON lines that a script
 * can read.
 */
import type { SinkDef, Sink, StreamInfo, RunContext, ConfigOf } from '../operator.js';
import { Row, Schema, formatDecimal } from '../../core/types.js';
import { formatTimestamp } from '../../core/time.js';
import { makeJsonEncoder, makeKeyEncoder } from '../json-row.js';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['type'],
  properties: {
    type: { const: 'console' },
    format: {
      enum: ['auto', 'table', 'json'],
      default: 'auto',
      description: 'auto (table on a TTY, JSON lines otherwise), table or json.',
    },
    maxRows: { type: 'integer', minimum: 1, default: 50, description: 'Rows shown per table.' },
    title: { type: 'string', description: "Heading printed above each table (default: the flow's name)." },
  },
} as const;

type Config = ConfigOf<typeof config>;

export const consoleSink: SinkDef<typeof config, { cfg: Config; input: StreamInfo }> = {
  type: 'console',
  doc: 'Prints rows: a table on a terminal, JSON lines otherwise.',
  config,
  delivery: 'none',
  plan: (cfg, input) => ({ cfg, input }),
  create(p, ctx) {
    return new ConsoleSink(p.cfg, p.input, ctx);
  },
};

export function renderTable(schema: Schema, rows: Row[]): string {
  const cell = (f: Schema[number], v: Row[string]) =>
    v === null || v === undefined
      ? ''
      : f.type.kind === 'decimal'
        ? formatDecimal(v as number, f.type.scale ?? 0)
        : f.type.kind === 'timestamp'
          ? formatTimestamp(v as number)
          : String(v);
  const cells = rows.map((r) => schema.map((f) => cell(f, r[f.name])));
  const widths = schema.map((f, i) => Math.max(f.name.length, ...cells.map((c) => c[i].length)));
  const right = schema.map((f) => ['int', 'float', 'decimal'].includes(f.type.kind));
  const line = (vals: string[]) => vals.map((v, i) => (right[i] ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ');
  return [line(schema.map((f) => f.name)), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

class ConsoleSink implements Sink {
  private json: boolean;
  private encode;
  private key;
  private current = new Map<string, Row>();
  private epochRows: Row[] = [];
  /** Rows of the epoch, shown or not (append streams). */
  private epochCount = 0;
  private dirty = false;

  constructor(
    private cfg: Config,
    private input: StreamInfo,
    private ctx: RunContext,
  ) {
    this.json = cfg.format === 'json' || (cfg.format !== 'table' && !ctx.output.isTTY);
    this.encode = makeJsonEncoder(input.schema);
    this.key = makeKeyEncoder(input.key ?? []);
  }

  async open() {}

  async write(rows: Row[]) {
    if (this.json) {
      if (rows.length) this.ctx.output.write(rows.map((r) => this.encode(r)).join('\n') + '\n');
      return;
    }
    this.dirty ||= rows.length > 0;
    if (this.input.mode === 'append') {
      this.epochRows.push(...rows.slice(0, this.cfg.maxRows - this.epochRows.length));
      this.epochCount += rows.length;
    } else for (const r of rows) this.current.set(this.key(r), r);
  }

  async preCommit() {
    if (this.json || !this.dirty) return undefined;
    this.dirty = false;
    const rows = this.input.mode === 'append' ? this.epochRows : [...this.current.values()];
    if (!rows.length) return undefined;
    const cols = this.input.key ?? [];
    const sorted =
      this.input.mode === 'append'
        ? rows
        : rows.sort((a, b) => cols.map((c) => String(a[c]).localeCompare(String(b[c]))).find((x) => x !== 0) ?? 0);
    const shown = sorted.slice(0, this.cfg.maxRows);
    const more = (this.input.mode === 'append' ? this.epochCount : rows.length) - shown.length;
    this.ctx.output.write(
      `\n${this.cfg.title ?? `${this.ctx.flow}`}\n${renderTable(this.input.schema, shown)}\n${more > 0 ? `… ${more} more row(s)\n` : ''}`,
    );
    this.epochRows = [];
    this.epochCount = 0;
    return undefined;
  }

  async commit() {}

  async close() {}
}
