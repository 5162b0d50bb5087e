/**
 * @module The operator contract: what every source, step and sink provides.
 *
 * Rules:
 * - One file per operator under src/operators/sources|steps|sinks/, named
 *   after its YAML key, holding its config schema (a description and default
 *   per field, the TypeScript type derived from it), its planner (the stream
 *   it produces and everything running it needs, checked without any
 *   server) and its factory, which takes what the planner made.
 * - What the rest of salespipe needs to know of an operator it declares
 *   here (the Kafka connection it uses, the topics it reads and writes, how
 *   a backfill rewrites it): nothing outside an operator switches on its type.
 * - An operator module loads the libraries it runs with (kafkajs, knex,
 *   Arrow, Parquet) only when it opens: planning loads none.
 * - Operators are listed in one explicit registry (registry.ts); nothing
 *   registers itself by import.
 * - Sources are pulled by the runtime (backpressure is the pull); sinks are
 *   awaited (a slow sink slows the source).
 * - Epoch protocol: steps flush -> sinks preCommit (durable, may be staged)
 *   -> checkpoint written -> sinks commit -> sources commit.
 */
import type { FromSchema, JSONSchema } from 'json-schema-to-ts';
import type { Row, Schema } from '../core/types.js';
import type { Logger } from '../core/log.js';
import type { Connections } from '../connections/config.js';
import type { ProblemCode } from '../core/problems.js';

export type { JsonSchema } from '../core/json-schema.js';
import type { Output } from '../core/io.js';
export type { Output };

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
  /**
   * Reports a problem at `path` (relative to the operator's config);
   * `offset` (and `length`) point inside a scalar, e.g. at a column in an
   * expression. A planner that found a problem may still return the stream
   * it would produce, so that the steps after it are checked too: a plan
   * with errors never runs, so nothing uses what such a planner returned.
   */
  error(path: (string | number)[], message: string, code: ProblemCode, offset?: number, length?: number): void;
  warn(path: (string | number)[], message: string, code: ProblemCode): void;
  connections: Connections;
  timeZone: string;
}

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
  /**
   * The input partition this run of the flow owns, when the flow runs as
   * one task per partition (plan.ts, FlowPlan.tasks); absent: the flow is
   * one task reading every partition.
   */
  task?: number;
  /** The spec file as given on the command line, for messages that suggest a command. */
  specFile?: string;
  stateDir: string;
  specDir: string;
  timeZone: string;
  drain: boolean;
  log: Logger;
  signal: AbortSignal;
  connections: Connections;
  /** Where the flow's checkpoint is kept, for messages: `Kafka topic … (connection "kafka")` or `state directory …`. */
  checkpointWhere?: string;
  /** How messages name each connection (plan.ts). */
  connectionLabels?: Record<string, string>;
  /** Where the console sink prints (the command's standard output). */
  output: Output;
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

/** How a run of a flow is named in checkpoints, transactional ids, groups and output markers: `<flow>`, or `<flow>.<partition>` for a task. */
export function taskName(ctx: { flow: string; task?: number }): string {
  return ctx.task === undefined ? ctx.flow : `${ctx.flow}.${ctx.task}`;
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
  /**
   * A drain run has read its input to the end (not called on a stop, nor in
   * bounded runs, whose end is the end of event time: advance(Infinity)).
   */
  inputEnded?(): void;
  /** Epoch end: rows this step holds back until then (aggregates). */
  flush?(): Row[];
  snapshot?(): unknown;
  restore?(state: unknown): void;
  /**
   * Keyed state kept as a changelog (flows whose checkpoint is in Kafka): a
   * checkpoint then costs what changed, not the whole state. The step's
   * state is `stateMeta()` (small, in the checkpoint) plus entries by id;
   * `stateChanges(false)` returns the entries changed since the last call
   * (value null: removed), `stateChanges(true)` every live entry. Values
   * are JSON (BigInt allowed). A step offering these also offers
   * snapshot/restore (local checkpoints, older checkpoints).
   */
  stateChanges?(all: boolean): [string, unknown][];
  stateMeta?(): unknown;
  /** Restores from the meta and the live entries of the last checkpoint. */
  loadState?(meta: unknown, entries: Map<string, unknown>): void;
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

/**
 * A config schema: JSON Schema, written once per operator as a literal
 * (`as const`). Validation, the published schema and editor completion use
 * it as it is; the config's TypeScript type is derived from it (ConfigOf);
 * the planner fills in its `default`s before the operator sees the config.
 */
export type ConfigSchema = JSONSchema;

/** The config an operator's planner receives: its schema's type, with defaulted fields present. */
export type ConfigOf<S> = 0 extends 1 & S ? any : S extends ConfigSchema ? FromSchema<S> : never;

/** What planning an operator gives: the stream it produces, and everything running it needs. Lowering happens once. */
export interface Planned<P> {
  out: StreamInfo;
  planned: P;
}

export interface SourceStatus {
  detail: Record<string, unknown>;
  text: string;
  lag: number | null;
  error?: string;
}

/** A range of event time, [from, to) in epoch ms (backfills). */
export interface TimeRange {
  from: number;
  to: number;
}

export interface SourceDef<S extends ConfigSchema = any, P = any> {
  type: string;
  doc: string;
  config: S;
  plan(cfg: ConfigOf<S>, ctx: PlanContext): Planned<P> | undefined;
  /** Topics it reads, as topic ids (`brokers|name`): connects flows, and feeds bounded runs from in-memory topics. */
  reads?(cfg: ConfigOf<S>, connections: Connections): string[];
  /** The Kafka connection it reads through, if any: a flow reading Kafka keeps its checkpoint there. */
  kafkaConnection?(cfg: ConfigOf<S>): string;
  /** How records given to a bounded run (`salespipe test`) look: parsed JSON messages, or database rows (numbers may be text). */
  records: 'json' | 'rows';
  /**
   * `salespipe status`: where the saved position stands against the source
   * as it is now (read-only): `detail` for --format json, `text` for a
   * person, `lag` in records (null when it cannot tell).
   */
  status?(planned: P, position: unknown, ctx: RunContext): Promise<SourceStatus>;
  /** Backfills: its records with event time in the range, in the order it would read them. */
  readRange?(planned: P, range: TimeRange, ctx: RunContext): Promise<Record<string, unknown>[]>;
  create(planned: P, ctx: RunContext): Source;
}

export interface StepDef<S extends ConfigSchema = any, P = any> {
  key: string;
  doc: string;
  config: S;
  /** Keeps nothing from one record to the next: a flow of such steps can run as one task per input partition. */
  stateless?: true;
  plan(cfg: ConfigOf<S>, input: StreamInfo, ctx: PlanContext): Planned<P> | undefined;
  /** One line for `salespipe explain`, e.g. `filter quantity_sold > 0`. */
  describe(cfg: ConfigOf<S>): string;
  create(planned: P, ctx: RunContext): Step;
}

/** What a backfill asks of a sink that can rewrite a range of its output. */
/** What an output needs outside a run (backfills, their recovery, compaction): where the spec is, its connections. */
export interface OutputContext {
  specDir: string;
  log: Logger;
  connections: Connections;
  connectionLabels?: Record<string, string>;
  signal: AbortSignal;
}

export interface BackfillRequest extends OutputContext {
  rows: Row[];
  range: TimeRange;
  timeZone: string;
  dryRun: boolean;
  /** Names the flow in messages. */
  flow: string;
}

/**
 * How a sink keeps its output exactly once across a crash between an
 * epoch's preCommit and its commit (the contract suite checks each):
 * - `staged`: written out of readers' sight in preCommit, published by
 *   commit (renamed into place); a restart finishes what the checkpoint
 *   lists and discards the rest.
 * - `transactional`: written in the flow's Kafka transaction, which commits
 *   with the checkpoint; read_committed readers never see an aborted epoch.
 * - `rollback`: written in place in preCommit; a restart truncates it back
 *   to what the last checkpoint recorded.
 * - `idempotent`: written in place in preCommit (upserts of the epoch's
 *   latest row per key); a replayed epoch writes the same values again.
 * - `none`: a display (the console), no guarantee.
 */
export type Delivery = 'staged' | 'transactional' | 'rollback' | 'idempotent' | 'none';

export interface SinkDef<S extends ConfigSchema = any, P = any> {
  type: string;
  doc: string;
  config: S;
  delivery: Delivery;
  /** Checks the sink against its input stream; returns what running it needs (undefined: it cannot run). */
  plan(cfg: ConfigOf<S>, input: StreamInfo, ctx: PlanContext): P | undefined;
  /** Topics it writes, as topic ids (`brokers|name`). */
  writes?(cfg: ConfigOf<S>, connections: Connections): string[];
  /** The Kafka connection it writes through: its records go into the flow's Kafka transaction there. */
  kafkaConnection?(cfg: ConfigOf<S>): string;
  /**
   * The checkpoint interval a flow writing through it gets by default
   * (`checkpoint.interval: auto`), for a sink whose every epoch costs a
   * file: fewer, larger files. Other flows get AUTO_INTERVAL_MS.
   */
  autoIntervalMs?: number;
  /** It can take a flow's dead letters and late records. */
  deadLetters?: boolean;
  /** `backfill --to-kafka` re-emits recomputed final rows through it. */
  reemits?: boolean;
  /**
   * Backfills: replaces the output of a range with recomputed rows (append
   * streams only), atomically and idempotently; returns how many units
   * (partitions) it rewrote, or would rewrite on a dry run.
   */
  backfill?(planned: P, req: BackfillRequest): Promise<number>;
  /** Backfills: finishes or discards what an interrupted backfill of this output left. */
  recover?(planned: P, ctx: OutputContext): Promise<void>;
  create(planned: P, ctx: RunContext): Sink;
}

/** Schema of a connection reference field, shared by sources and sinks. */
export const connectionField = <K extends string>(kind: K) =>
  ({
    type: 'string',
    description: `Name of a ${kind} connection under the spec's top-level \`connections\`.`,
  }) as const;
