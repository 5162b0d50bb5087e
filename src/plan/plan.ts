/**
 * @module Plan: a loaded spec lowered to typed flows of operators, once.
 *
 * Rules:
 * - Each operator's config gets its schema's defaults (core/json-schema.ts)
 *   and its planner infers the stream (schema, mode, key, event time) on its
 *   output edge from its input edge, and returns everything running it
 *   needs (compiled expressions, resolved settings): the runtime creates
 *   operators from what the plan holds and plans nothing again.
 * - Problems are reported at the operator's position in the spec, and
 *   planning goes on so that every problem is found in one pass.
 * - Flows connect through topics: a flow whose source reads a topic another
 *   flow of the same spec writes runs downstream of it. Cycles are errors.
 * - What a flow needs of its operators (the Kafka connection its checkpoint
 *   and transaction live on) comes from what the operators declare.
 * - No database or broker is contacted.
 */
import type { LoadedSpec, Path } from '../spec/load.js';
import type { PlanContext, StreamInfo, SourceDef, StepDef, SinkDef } from '../operators/operator.js';
import { SOURCES, STEPS, SINKS } from '../operators/registry.js';
import { isValidZone, parseDuration } from '../core/time.js';
import { withDefaults } from '../core/json-schema.js';
import type { Schema } from '../core/types.js';
import type { Connections } from '../connections/config.js';
import { pipelineSettings } from '../spec/pipeline.js';

export interface SourceNode {
  type: string;
  cfg: any;
  def: SourceDef;
  out: StreamInfo;
  planned: unknown;
  path: Path;
}
export interface StepNode {
  key: string;
  cfg: any;
  def: StepDef;
  input: StreamInfo;
  out: StreamInfo;
  planned: unknown;
  path: Path;
}
export interface SinkNode {
  type: string;
  cfg: any;
  def: SinkDef;
  input: StreamInfo;
  planned: unknown;
  path: Path;
}

export interface FlowPlan {
  name: string;
  source: SourceNode;
  steps: StepNode[];
  sinks: SinkNode[];
  /** Explicit dead-letter sink; the runtime supplies a file when absent. */
  deadLetter?: SinkNode;
  /** Explicit output for late records; they go to the dead-letter output otherwise. */
  late?: SinkNode;
  /** The Kafka connection of the flow's Kafka outputs, if it has any: their transactions hold its checkpoint. */
  kafkaOutput?: string;
  /**
   * Where the checkpoint lives: the Kafka connection of the outputs, else
   * that of a Kafka source (so that a Kafka-reading flow never depends on a
   * local directory), else undefined: a local file in the state directory.
   */
  checkpointConnection?: string;
  /** Epoch length: the spec's interval, or under auto the longest its outputs ask for (SinkDef.autoIntervalMs), at least AUTO_INTERVAL_MS. */
  checkpointMs: number;
  reads: string[];
  writes: string[];
  /** Flows that feed this one through a topic. */
  upstream: string[];
  /**
   * Whether it runs as one task per partition of its Kafka topic (each with
   * its own checkpoint, transaction and output files), and if not, why not.
   */
  tasks: { perPartition: true } | { perPartition: false; because: string };
}

/** Whether a flow can run as one task per input partition: nothing it keeps or writes may span partitions. */
function taskPlan(source: SourceNode, steps: StepNode[], outputs: SinkNode[]): FlowPlan['tasks'] {
  const no = (because: string) => ({ perPartition: false as const, because });
  if (source.type !== 'kafka') return no('its source has no partitions');
  if (source.out.mode !== 'append') return no('it reads a topic of latest values per key, whose outputs have one writer');
  const stateful = steps.find((s) => !s.def.stateless);
  if (stateful)
    return no(`step ${stateful.key} keeps state across records, which needs its input repartitioned by its key (not built yet)`);
  const file = outputs.find((s) => s.def.delivery === 'rollback');
  if (file) return no(`its ${file.type} output ${file.cfg.path ?? ''} is one file, written by one writer`);
  return { perPartition: true };
}

export interface Plan {
  pipeline: string;
  file: string;
  /** The text the plan was made from (absent for plans built in code). */
  text?: string;
  timeZone: string;
  /** As the spec gives it: a duration, or auto (each flow's checkpointMs says what it is). */
  checkpointInterval: string;
  /** Checkpoint topic (before the connection's prefix) and its replication factor. */
  checkpointTopic: string;
  /** undefined: the brokers' default.replication.factor. */
  checkpointReplication?: number;
  connections: Connections;
  /** Per connection, how messages name it: `connection "kafka" (brokers from ${KAFKA_BROKERS})`. */
  connectionLabels: Record<string, string>;
  /** In dependency order: upstream flows first. */
  flows: FlowPlan[];
}

/**
 * A flow's epoch under `checkpoint.interval: auto` when its outputs ask no
 * longer: measured (npm run bench:latency, 5,000 sales/s) p50 85-88 ms and
 * p99 183-228 ms from a sale to its total read_committed, against p99 1 s at 1s.
 */
export const AUTO_INTERVAL_MS = 100;

/** The record schema of dead letters, whichever sink takes them. */
export const DEAD_LETTER_STREAM: StreamInfo = {
  mode: 'append',
  schema: [
    { name: 'reason', type: { kind: 'string', nullable: false } },
    { name: 'payload', type: { kind: 'string', nullable: false } },
    { name: 'encoding', type: { kind: 'string', nullable: false } },
    { name: 'origin', type: { kind: 'string', nullable: false } },
    { name: 'pipeline', type: { kind: 'string', nullable: false } },
    { name: 'flow', type: { kind: 'string', nullable: false } },
    { name: 'at', type: { kind: 'timestamp', nullable: false } },
  ] satisfies Schema,
  key: ['origin'],
};

export function planSpec(loaded: LoadedSpec): Plan | undefined {
  const spec = loaded.spec;
  if (!spec || typeof spec !== 'object') return undefined;
  const schemaBroken = (prefix: Path) => loaded.invalidPaths.some((p) => prefix.every((seg, i) => p[i] === seg));
  const settings = pipelineSettings(spec);

  const timeZone = settings.timeZone;
  if (!isValidZone(timeZone))
    loaded.problem(['timeZone'], `unknown time zone "${timeZone}" (an IANA name such as UTC or Europe/Berlin)`, 'value.zone');
  const interval = settings.checkpoint.interval;
  const checkpointMs = interval === 'auto' ? undefined : parseDuration(interval);
  if (interval !== 'auto' && (checkpointMs === undefined || checkpointMs <= 0))
    loaded.problem(['checkpoint', 'interval'], `invalid duration "${interval}" (e.g. 100ms, 5s, 1m; or auto)`, 'value.duration');

  const connections = (spec.connections && typeof spec.connections === 'object' ? spec.connections : {}) as Connections;
  const ctxAt = (base: Path): PlanContext => ({
    error: (p, m, code, offset, length) => loaded.problem([...base, ...p], m, code, { offset, length }),
    warn: (p, m, code) => loaded.problem([...base, ...p], m, code, { severity: 'warning' }),
    connections,
    timeZone: isValidZone(timeZone) ? timeZone : 'UTC',
  });
  const planSink = (def: SinkDef, raw: unknown, input: StreamInfo, path: Path): SinkNode | undefined => {
    const cfg = withDefaults(def.config, raw);
    const planned = def.plan(cfg, input, ctxAt(path));
    return planned === undefined ? undefined : { type: def.type, cfg, def, input, planned, path };
  };

  const flows: FlowPlan[] = [];
  /** Replication factors the Kafka outputs ask for: the checkpoint topic takes the largest. */
  const sinkReplication: number[] = [];
  for (const [name, flow] of Object.entries<any>(spec.flows ?? {})) {
    const base: Path = ['flows', name];
    // Plan as far as the JSON Schema allows: a broken source stops the flow, a broken
    // step stops it there, a broken sink is skipped; the rest is still checked.
    if (!flow || typeof flow !== 'object' || !flow.source || schemaBroken([...base, 'source'])) continue;
    const sdef = SOURCES[flow.source.type];
    const spath = [...base, 'source'];
    const scfg = withDefaults(sdef.config, flow.source);
    const planned = sdef.plan(scfg, ctxAt(spath));
    if (!planned) continue;
    let stream = planned.out;
    const source: SourceNode = { type: sdef.type, cfg: scfg, def: sdef, out: stream, planned: planned.planned, path: spath };
    const steps: StepNode[] = [];
    let ok = true;
    for (const [i, step] of (Array.isArray(flow.steps) ? flow.steps : []).entries()) {
      if (schemaBroken([...base, 'steps', i]) || schemaBroken([...base, 'steps'])) {
        ok = false;
        break;
      }
      const key = Object.keys(step)[0];
      const path = [...base, 'steps', i, key];
      const def = STEPS[key];
      const cfg = withDefaults(def.config, step[key]);
      const p = def.plan(cfg, stream, ctxAt(path));
      if (!p) {
        ok = false;
        break;
      }
      steps.push({ key, cfg, def, input: stream, out: p.out, planned: p.planned, path });
      stream = p.out;
    }
    if (!ok) continue;
    const sinks: SinkNode[] = [];
    for (const [i, s] of (Array.isArray(flow.sinks) ? flow.sinks : []).entries()) {
      const path = [...base, 'sinks', i];
      if (schemaBroken(path) || !SINKS[s?.type]) continue;
      const node = planSink(SINKS[s.type], s, stream, path);
      if (node) sinks.push(node);
    }
    const sideOutput = (k: 'deadLetter' | 'late'): SinkNode | undefined => {
      if (!flow[k] || schemaBroken([...base, k])) return undefined;
      return planSink(SINKS[flow[k].type], flow[k], DEAD_LETTER_STREAM, [...base, k]);
    };
    const deadLetter = sideOutput('deadLetter');
    const late = sideOutput('late');
    const windowed = steps.some((s) => s.out.watermark || s.cfg?.window);
    if (late && !windowed)
      ctxAt([...base, 'late']).warn([], 'no step of this flow has a watermark, so no record can be late', 'option.unused');
    const outputs = [...sinks, ...(deadLetter ? [deadLetter] : []), ...(late ? [late] : [])];
    const writes = outputs.flatMap((s) => s.def.writes?.(s.cfg, connections) ?? []);
    // One Kafka transaction per epoch holds every Kafka output of the flow and its checkpoint:
    // they must all live on one cluster.
    const kafkaOutputs = outputs.filter((s) => s.def.kafkaConnection);
    const kafkaOutput = kafkaOutputs[0] && kafkaOutputs[0].def.kafkaConnection!(kafkaOutputs[0].cfg);
    for (const s of kafkaOutputs) if (s.cfg.replicationFactor !== undefined) sinkReplication.push(Number(s.cfg.replicationFactor));
    for (const s of kafkaOutputs.slice(1)) {
      if (s.def.kafkaConnection!(s.cfg) !== kafkaOutput)
        loaded.problem(
          [...s.path, 'connection'],
          `every Kafka output of a flow must use the same connection: its outputs and its checkpoint commit in one Kafka transaction (the flow's first Kafka output uses "${kafkaOutput}")`,
          'checkpoint.connections',
        );
    }
    const checkpointConnection = kafkaOutput ?? sdef.kafkaConnection?.(scfg);
    flows.push({
      name,
      checkpointMs: checkpointMs ?? Math.max(AUTO_INTERVAL_MS, ...outputs.map((s) => s.def.autoIntervalMs ?? 0)),
      source,
      steps,
      sinks,
      deadLetter,
      late,
      kafkaOutput,
      checkpointConnection,
      reads: sdef.reads?.(scfg, connections) ?? [],
      writes,
      upstream: [],
      tasks: taskPlan(source, steps, outputs),
    });
  }

  for (const [name, c] of Object.entries(connections)) {
    const st = (c as { sessionTimeout?: unknown }).sessionTimeout;
    if (c.type !== 'kafka' || typeof st !== 'string') continue;
    const ms = parseDuration(st);
    if (ms === undefined || ms < 1000 || ms > 30 * 60_000)
      loaded.problem(
        ['connections', name, 'sessionTimeout'],
        `invalid session timeout "${st}": a duration from 1s to 30m (the brokers allow 6s to 30m by default)`,
        'value.duration',
      );
  }

  // A connection nobody uses is most likely a typo elsewhere, or left over.
  const used = new Set<string>();
  JSON.stringify(spec.flows ?? {}, (k, v) => {
    if (k === 'connection' && typeof v === 'string') used.add(v);
    return v;
  });
  for (const name of Object.keys(connections)) {
    if (!used.has(name))
      loaded.problem(['connections', name], `connection "${name}" is not used by any flow`, 'graph.unused', {
        key: true,
        severity: 'warning',
      });
  }

  for (const f of flows) {
    for (const t of f.reads) {
      for (const g of flows) if (g.writes.includes(t) && !f.upstream.includes(g.name)) f.upstream.push(g.name);
    }
  }
  const ordered = topoOrder(flows, (cycle) =>
    loaded.problem(['flows', cycle[0], 'source'], `flows form a cycle through their topics: ${cycle.join(' -> ')}`, 'graph.cycle'),
  );

  if (loaded.problems.some((p) => p.severity === 'error')) return undefined;
  const checkpointReplication =
    settings.checkpoint.replicationFactor ?? (sinkReplication.length ? Math.max(...sinkReplication) : undefined);
  const connectionLabels = Object.fromEntries(
    Object.entries(connections).map(([n, c]) => {
      const field = c.type === 'kafka' ? 'brokers' : 'url';
      const vars = loaded.varsAt(['connections', n, field]);
      return [n, `connection "${n}"${vars.length ? ` (${field} from ${vars.map((v) => `\${${v}}`).join(', ')})` : ''}`];
    }),
  );
  return {
    pipeline: spec.pipeline,
    file: loaded.file,
    text: loaded.text,
    timeZone,
    checkpointInterval: interval,
    checkpointTopic: settings.checkpoint.topic,
    checkpointReplication,
    connections,
    connectionLabels,
    flows: ordered,
  };
}

function topoOrder(flows: FlowPlan[], onCycle: (cycle: string[]) => void): FlowPlan[] {
  const byName = new Map(flows.map((f) => [f.name, f]));
  const state = new Map<string, 'visiting' | 'done'>();
  const out: FlowPlan[] = [];
  const reported = new Set<string>();
  const visit = (f: FlowPlan, stack: string[]) => {
    const s = state.get(f.name);
    if (s === 'done') return;
    if (s === 'visiting') {
      const cycle = [...stack.slice(stack.indexOf(f.name)), f.name];
      const id = [...new Set(cycle)].sort().join(',');
      if (!reported.has(id)) {
        reported.add(id);
        onCycle(cycle);
      }
      return;
    }
    state.set(f.name, 'visiting');
    for (const u of f.upstream) visit(byName.get(u)!, [...stack, f.name]);
    state.set(f.name, 'done');
    out.push(f);
  };
  for (const f of flows) visit(f, []);
  return out;
}
