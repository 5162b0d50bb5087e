/**
 * @module `salespipe status FILE`: where each flow stands, read from its
 * checkpoint and its source, without running anything.
 *
 * Rules:
 * - Read-only: the checkpoint topic is read with read_committed by a
 *   throwaway consumer group (deleted afterwards); no producer is started,
 *   so a running pipeline is never fenced; local checkpoints are read from
 *   the state directory.
 * - Lag is what the source holds beyond the checkpoint: end offsets minus
 *   positions for Kafka, rows with a larger cursor for a table (plus the
 *   open gaps re-queried).
 * - Counts (records in/out, dead letters, late) are the checkpoint's totals
 *   since the flow first ran or was last reset.
 * - A flow that runs as tasks is shown as one: its tasks' checkpoints
 *   combined (positions of every partition, counts summed, the latest
 *   epoch), with the number of tasks.
 */
import path from 'node:path';
import crypto from 'node:crypto';
import type { IO } from '../core/io.js';
import type { Plan, FlowPlan } from '../plan/plan.js';
import type { Logger } from '../core/log.js';
import type { Checkpoint } from '../runtime/checkpoint.js';
import { readCheckpoint } from '../runtime/checkpoint.js';
import { checkpointFile, flowContext } from '../runtime/flow.js';
import { readCheckpoints } from '../runtime/kafka-checkpoint.js';
import { combinedCheckpoint } from '../runtime/task-checkpoints.js';
import { connection, topicName } from '../connections/config.js';
import { kafkaClient, kafkaConn, kafkaWhere } from '../connections/kafka.js';
import { withRetry } from '../connections/retry.js';
import { planOrPrint, oneSpec, stateDir } from './common.js';

export interface FlowStatus {
  flow: string;
  /** Where the checkpoint is kept. */
  where: string;
  checkpoint: { epoch: number; at: string; reset?: Checkpoint['reset'] } | null;
  /** The source's own account (operators' status): topic offsets and ends, or the table position and its largest id. */
  source: Record<string, unknown>;
  sourceText?: string;
  /** Records in the source past the checkpoint; null when it could not be read. */
  lag: number | null;
  totals: Checkpoint['totals'] | null;
  /** The partitions whose tasks have a checkpoint of their own, for a flow that runs as one task per partition (runtime/tasks.ts). */
  tasks?: number[];
  /** Why the source could not be read, if it could not. */
  error?: string;
}

async function checkpoints(
  plan: Plan,
  dir: string,
  log: Logger,
  signal: AbortSignal,
): Promise<Map<string, { where: string; cp?: Checkpoint; tasks?: number[] }>> {
  const out = new Map<string, { where: string; cp?: Checkpoint; tasks?: number[] }>();
  const byConn = new Map<string, FlowPlan[]>();
  const ctx = { connections: plan.connections, connectionLabels: plan.connectionLabels, specDir: path.dirname(path.resolve(plan.file)) };
  for (const f of plan.flows) {
    if (!f.checkpointConnection) {
      const file = checkpointFile(dir, plan.pipeline, f.name);
      out.set(f.name, { where: `file ${file}`, cp: readCheckpoint(file) });
    } else byConn.set(f.checkpointConnection, [...(byConn.get(f.checkpointConnection) ?? []), f]);
  }
  for (const [name, flows] of byConn) {
    const conn = kafkaConn(ctx, name);
    const topic = topicName(connection(ctx, name), plan.checkpointTopic);
    const kafka = kafkaClient(conn, log);
    const group = `salespipe-status.${plan.pipeline}.${crypto.randomBytes(4).toString('hex')}`;
    const admin = kafka.admin();
    await withRetry(`connecting to ${kafkaWhere(conn)}`, log, signal, () => admin.connect());
    try {
      const exists = (await admin.listTopics()).includes(topic);
      const keys = flows.map((f) => `${plan.pipeline}/${f.name}`);
      const got = exists ? await readCheckpoints(kafka, topic, group, keys, false, keys) : new Map();
      for (const f of flows) {
        const key = `${plan.pipeline}/${f.name}`;
        const tasks = new Map<number, Checkpoint>();
        for (const [k, v] of got) if (k.startsWith(`${key}.`) && v.checkpoint) tasks.set(Number(k.slice(key.length + 1)), v.checkpoint);
        out.set(f.name, {
          where: `Kafka topic ${topic} (${plan.connectionLabels[name]})`,
          cp: combinedCheckpoint(got.get(key)?.checkpoint, tasks),
          ...(tasks.size ? { tasks: [...tasks.keys()].sort((a, b) => a - b) } : {}),
        });
      }
      if (exists) await admin.deleteGroups([group]).catch(() => undefined);
    } finally {
      await admin.disconnect();
    }
  }
  return out;
}

export async function pipelineStatus(plan: Plan, dir: string, log: Logger, signal: AbortSignal): Promise<FlowStatus[]> {
  const cps = await checkpoints(plan, dir, log, signal);
  const out: FlowStatus[] = [];
  for (const f of plan.flows) {
    const { where, cp, tasks } = cps.get(f.name)!;
    const s = await f.source.def.status?.(f.source.planned, cp?.source, flowContext(plan, f, { stateDir: dir, log, signal }));
    out.push({
      flow: f.name,
      where,
      checkpoint: cp ? { epoch: cp.epoch, at: cp.at, ...(cp.reset ? { reset: cp.reset } : {}) } : null,
      source: s?.detail ?? { type: f.source.type },
      sourceText: s?.text,
      lag: s?.lag ?? null,
      ...(s?.error ? { error: s.error } : {}),
      totals: cp?.totals ?? null,
      ...(tasks ? { tasks } : {}),
    });
  }
  return out;
}

const n = (v: number) => v.toLocaleString('en-US');

export function statusText(plan: Plan, list: FlowStatus[]): string {
  const lines = [`pipeline ${plan.pipeline} (${plan.file})`];
  for (const s of list) {
    lines.push(
      `  ${s.flow}: ${s.checkpoint ? `${s.tasks ? `${s.tasks.length} task(s), latest ` : ''}epoch ${s.checkpoint.epoch} committed ${s.checkpoint.at}${s.checkpoint.reset ? ` (reset ${s.checkpoint.reset.at})` : ''}` : 'no checkpoint yet'}; checkpoint in ${s.where}`,
    );
    if (s.sourceText) lines.push(`    ${s.sourceText}`);
    const t = s.totals;
    lines.push(
      `    lag ${s.lag === null ? 'unknown' : n(s.lag)}${t ? `; since the start: ${n(t.recordsIn)} records in, ${n(t.recordsOut)} out, ${n(t.deadLetters)} dead letters, ${n(t.late)} late` : ''}${s.error ? `; ${s.error}` : ''}`,
    );
  }
  return lines.join('\n');
}

export default async function status(
  file: string,
  o: { format: 'text' | 'json'; stateDir?: string },
  io: IO,
  log: Logger,
): Promise<number> {
  const spec = oneSpec(file);
  const plan = planOrPrint(spec, io, { errorsOnly: true });
  if (!plan) return 2;
  const signal = io.signal ?? new AbortController().signal;
  const list = await pipelineStatus(plan, stateDir(o.stateDir, spec, io.env), log, signal);
  io.stdout(
    (o.format === 'json' ? JSON.stringify({ pipeline: plan.pipeline, file: plan.file, flows: list }, null, 2) : statusText(plan, list)) +
      '\n',
  );
  return 0;
}
