/**
 * @module The operator contract: what every source, step and sink provides.
 *
 * Rules:
 * - One file per operator under src/operators/, named after its YAML key,
 *   holding its config schema (a description per field), its planner (the
 *   schema and mode it produces, checked without any server) and its factory.
 * - Operators are listed in one explicit registry (registry.ts); nothing
 *   registers itself by import.
 * - Sources are pulled by the runtime (backpressure is the pull); sinks are
 *   awaited (a slow sink slows the source).
 * - Epoch protocol: steps flush -> sinks preCommit (durable, may be staged)
 *   -> checkpoint written -> sinks commit -> sources commit.
 */
import type { Row, Schema } from '../types.js';
import type { Logger } from '../runtime/log.js';

export type JsonSchema = Record<string, unknown>;

/** How rows on an edge relate to each other. */
export type Mode = 'append' | 'update' | 'complete';

export interface StreamInfo {
  schema: Schema;
  /** append: each row is a new fact; update/complete: rows are the latest value per `key`. */
  mode: Mode;
  key?: string[];
  /** Column carrying event time, if the stream has one. */
  eventTime?: string;
  /** Windowed streams: how their rows were cut (for explain). */
  watermark?: { on: string; lateness: number; size: number; slide: number };
}

/** Everything a planner may need, and where it reports problems. */
export interface PlanContext {
  /** Reports a problem at `path` (relative to the operator's config); `offset` points inside a scalar. */
  error(path: (string | number)[], message: string, code?: string, offset?: number): void;
  warn(path: (string | number)[], message: string, code?: string): void;
  connections: Record<string, { type: string; [k: string]: unknown }>;
  timeZone: string;
}

/** A PlanContext that reports nothing: for re-planning at run time what validation already checked. */
export const SILENT_PLAN: PlanContext = { error: () => {}, warn: () => {}, connections: {}, timeZone: 'UTC' };

export interface DeadLetter {
  reason: string;
  /** The original bytes as text when they are valid UTF-8, else base64. */
  payload: string;
  encoding: 'utf8' | 'base64' | 'json';
  origin: string;
  /** A record behind the watermark: goes to the flow's late output when it has one. */
  late?: boolean;
}

export interface RunContext {
  pipeline: string;
  flow: string;
  /** The spec file as given on the command line, for messages that suggest a command. */
  specFile?: string;
  stateDir: string;
  specDir: string;
  timeZone: string;
  drain: boolean;
  log: Logger;
  signal: AbortSignal;
  connections: Record<string, { type: string; [k: string]: unknown }>;
  /** Where the flow's checkpoint is kept, for messages: `Kafka topic … (connection "kafka")` or `state directory …`. */
  checkpointWhere?: string;
  /** How messages name each connection (plan.ts). */
  connectionLabels?: Record<string, string>;
  /** Resolves when every upstream flow of a drain run has finished. */
  upstreamDone: Promise<void>;
  /** Bounded runs (`salespipe test`): rows of lookup tables by table name, instead of the database. */
  tables?: Record<string, Record<string, unknown>[]>;
  /**
   * The flow's Kafka transaction (flows writing to Kafka, outside bounded
   * runs): Kafka sinks on `connection` send through it, so their rows commit
   * with the epoch's checkpoint.
   */
  kafkaTxn?: { connection: string; send(record: import('kafkajs').ProducerRecord): Promise<unknown> };
}

export interface SourceBatch {
  rows: Row[];
  dead: DeadLetter[];
}

export interface Source {
  /** Restores the position from the last checkpoint (undefined on a first run). */
  open(position: unknown): Promise<void>;
  /** Next batch; null once drained (drain mode) or stopped. Waits (poll) when nothing is new. */
  next(): Promise<SourceBatch | null>;
  /** Position covering every row returned so far; stored in the checkpoint. */
  position(): unknown;
  /** Called after a checkpoint holding `position` is durable. */
  commit(position: unknown): Promise<void>;
  /**
   * Event time the source has reached in every partition it reads (the
   * smallest of the partitions' largest event times), if it tracks one.
   * Windows derive their watermark from it, so one partition read ahead of
   * another does not make the other's records late. null while not known
   * yet (a partition with records to read has not been read).
   */
  eventTimeProgress?(): number | null;
  /** Lag in records, if the source can tell. */
  lag?(): number | undefined;
  close(): Promise<void>;
}

export interface Step {
  /** Transforms one batch; rows that fail go to `dead`. */
  process(rows: Row[], dead: DeadLetter[]): Row[];
  /**
   * After each batch: the source's event-time progress; null when it is not
   * known yet; undefined when the source does not track one, or it does not
   * apply to this step's input (the step then goes by what it sees).
   */
  advance?(progress: number | null | undefined): void;
  /** The step's watermark, if it keeps one (windowed aggregates): for progress and metrics. */
  watermark?(): number | undefined;
  /** Epoch end: rows this step holds back until then (aggregates). */
  flush?(): Row[];
  snapshot?(): unknown;
  restore?(state: unknown): void;
  /** Connects what the step needs (a lookup table); opened with the sources and sinks. */
  open?(): Promise<void>;
  close?(): Promise<void>;
  /** True when the step has output to flush although no record came in (a table changed). */
  pending?(): boolean;
  /** Counts shown in progress and in the run summary, e.g. join misses. */
  counters?(): Record<string, number>;
}

export interface Sink {
  /**
   * `state` is what preCommit returned for the last committed epoch, `epoch`
   * that epoch (0: no checkpoint). A sink whose output shows a later epoch
   * of this flow than `epoch` refuses: the run lacks the checkpoint of what
   * it wrote, and would write it again.
   */
  open(state: unknown, epoch: number): Promise<void>;
  write(rows: Row[]): Promise<void>;
  /** Makes everything written so far durable (or staged); returns state for the checkpoint. */
  preCommit(epoch: number): Promise<unknown>;
  /** The checkpoint holding preCommit's state is durable: publish. Idempotent. */
  commit(epoch: number, state: unknown): Promise<void>;
  /** True when the sink wants the epoch to end early (size-based roll). */
  full?(): boolean;
  close(): Promise<void>;
}

export interface SourceDef<C = any> {
  type: string;
  doc: string;
  config: JsonSchema;
  plan(cfg: C, ctx: PlanContext): StreamInfo | undefined;
  /** Names of topics this source reads (to order connected flows). */
  reads?(cfg: C, connections: PlanContext['connections']): string[];
  create(cfg: C, out: StreamInfo, ctx: RunContext): Source;
}

export interface StepDef<C = any> {
  key: string;
  doc: string;
  config: JsonSchema;
  plan(cfg: C, input: StreamInfo, ctx: PlanContext): StreamInfo | undefined;
  create(cfg: C, input: StreamInfo, out: StreamInfo, ctx: RunContext): Step;
}

export interface SinkDef<C = any> {
  type: string;
  doc: string;
  config: JsonSchema;
  plan(cfg: C, input: StreamInfo, ctx: PlanContext): void;
  writes?(cfg: C, connections: PlanContext['connections']): string[];
  create(cfg: C, input: StreamInfo, ctx: RunContext): Sink;
}

/** Schema of a connection reference field, shared by sources and sinks. */
export const connectionField = (kind: string) => ({
  type: 'string',
  description: `Name of a ${kind} connection under the spec's top-level \`connections\`.`,
});
