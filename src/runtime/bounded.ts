/**
 * @module Bounded, in-memory runs of a plan: `salespipe test` (and the
 * backfill's recomputation). No server is contacted.
 *
 * Rules:
 * - Flows run one after the other, upstream first. A flow's source yields
 *   the records given for it, or else what upstream flows wrote to the topic
 *   it reads (as the JSON a Kafka sink would have written), decoded against
 *   its declared schema exactly as the real source decodes: a record that
 *   does not fit becomes a dead letter.
 * - Lookup tables come from the rows given by table name.
 * - Sinks are captured in memory; a Kafka sink's output also feeds the
 *   in-memory topic downstream flows read.
 * - Records are read `batchSize` at a time (one, for tests: the watermark
 *   then advances after each record, in the order given, so late data is
 *   deterministic). The input is bounded: at its end every window is final.
 */
import type { Plan, FlowPlan, SinkNode } from '../plan/plan.js';
import { DEAD_LETTER_STREAM } from '../plan/plan.js';
import type { Sink, Source, SourceBatch, StreamInfo } from '../operators/operator.js';
import { makeDecoder, deadRow, setSource } from '../operators/record-schema.js';
import { makeJsonEncoder } from '../operators/json-row.js';
import type { Row } from '../core/types.js';
import { FlowRunner, FlowStats } from './flow.js';
import type { Logger } from '../core/log.js';

export interface BoundedInput {
  /** Records per flow name, fed to that flow's source. */
  records: Record<string, Record<string, unknown>[]>;
  /** Rows of lookup tables, by table name; without it, join and balance steps read the database. */
  tables?: Record<string, Record<string, unknown>[]>;
}

export interface FlowOutput {
  /** The stream every sink of the flow received, in order. */
  stream: StreamInfo;
  rows: Row[];
  dead: Row[];
  late: Row[];
  stats: FlowStats;
}

class MemorySource implements Source {
  private i = 0;
  constructor(
    private all: SourceBatch,
    private size: number,
  ) {}
  async open() {}
  async next(): Promise<SourceBatch | null> {
    const { rows, dead } = this.all;
    if (this.i >= rows.length && this.i >= dead.length) return null;
    const b = { rows: rows.slice(this.i, this.i + this.size), dead: dead.slice(this.i, this.i + this.size) };
    this.i += this.size;
    return b;
  }
  position() {
    return null;
  }
  async commit() {}
  async close() {}
}

class MemorySink implements Sink {
  constructor(
    private into: Row[],
    private topic?: { texts: string[]; encode: (r: Row) => string },
  ) {}
  async open() {}
  async write(rows: Row[]) {
    for (const r of rows) {
      this.into.push({ ...r });
      this.topic?.texts.push(this.topic.encode(r));
    }
  }
  async preCommit() {
    return null;
  }
  async commit() {}
  async close() {}
}

export async function runBounded(plan: Plan, input: BoundedInput, log: Logger, batchSize = 1): Promise<Map<string, FlowOutput>> {
  const timeZone = plan.timeZone;
  /** In-memory topics by topic id: what sinks writing a topic wrote, as JSON texts. */
  const topics = new Map<string, string[]>();
  const topic = (id: string) => {
    let t = topics.get(id);
    if (!t) topics.set(id, (t = []));
    return t;
  };
  const out = new Map<string, FlowOutput>();
  for (const flow of plan.flows) {
    const stream = flow.steps.length ? flow.steps[flow.steps.length - 1].out : flow.source.out;
    const result: FlowOutput = { stream, rows: [], dead: [], late: [], stats: undefined as never };
    const runner = new FlowRunner(plan, flow, {
      stateDir: '',
      drain: true,
      signal: new AbortController().signal,
      upstreamDone: Promise.resolve(),
      log,
      bounded: {
        tables: input.tables,
        source: (f) => new MemorySource(sourceBatch(f, input, topics, timeZone), batchSize),
        sink: (node: SinkNode | undefined, role) => {
          const into = role === 'sink' ? (node === flow.sinks[0] ? result.rows : []) : role === 'late' ? result.late : result.dead;
          const ids = node?.def.writes?.(node.cfg, plan.connections) ?? [];
          if (!ids.length) return new MemorySink(into);
          return new MemorySink(into, {
            texts: topic(ids[0]),
            encode: makeJsonEncoder(role === 'sink' ? node!.input.schema : DEAD_LETTER_STREAM.schema),
          });
        },
      },
    });
    result.stats = await runner.run();
    out.set(flow.name, result);
  }
  return out;
}

function sourceBatch(flow: FlowPlan, input: BoundedInput, topics: Map<string, string[]>, timeZone: string): SourceBatch {
  const decode = makeDecoder(flow.source.out.schema, { timeZone, numericText: flow.source.def.records === 'rows' });
  const batch: SourceBatch = { rows: [], dead: [] };
  const given = input.records[flow.name];
  // Records from an in-memory topic are message texts, as a Kafka source would read them.
  const texts = given || !flow.reads.length ? undefined : (topics.get(flow.reads[0]) ?? []);
  const records: unknown[] = given ?? texts?.map((t) => JSON.parse(t)) ?? [];
  records.forEach((rec, i) => {
    const r = decode(rec);
    const origin = `${flow.name}#${i + 1}`;
    if (typeof r === 'string') batch.dead.push(deadRow(rec, r, origin));
    else {
      const payload = typeof texts?.[i] === 'string' ? texts[i] : JSON.stringify(rec);
      setSource(r, { payload, encoding: texts ? 'utf8' : 'json', origin });
      batch.rows.push(r);
    }
  });
  return batch;
}
