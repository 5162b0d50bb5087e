/**
 * @module `salespipe reset FILE --flow NAME`: start a flow over.
 *
 * Rules:
 * - The pipeline must not be running: reset takes the pipeline's guard
 *   (runtime/guard.ts) for its duration.
 * - A reset is a new checkpoint, committed like any other (to Kafka in a
 *   transaction, or to the local file by rename), with the source positions
 *   dropped and, unless `--positions`, the operator state too; the epoch
 *   number goes on, so outputs that recorded earlier epochs
 *   (output-owner.ts) accept the flow again. Staged outputs of the last
 *   committed epoch are still published by the next run.
 * - A flow that runs as tasks (runtime/tasks.ts) has each task's
 *   checkpoint reset, and its own, if it has one from before it ran as
 *   tasks. A flow that ran as tasks and now runs as one has its tasks'
 *   checkpoints removed: it starts over as one task.
 * - Outputs are kept as they are: a keyed dataset or a compacted topic
 *   holds the old values until the flow writes new ones.
 */
import path from 'node:path';
import type { IO } from '../core/io.js';
import type { Plan } from '../plan/plan.js';
import type { Logger } from '../core/log.js';
import type { Checkpoint } from '../runtime/checkpoint.js';
import { readCheckpoint, writeCheckpoint, ZERO_TOTALS } from '../runtime/checkpoint.js';
import { checkpointFile } from '../runtime/flow.js';
import { KafkaCheckpointStore } from '../runtime/kafka-checkpoint.js';
import { guardPipeline } from '../runtime/guard.js';
import { connection, topicName } from '../connections/config.js';
import { kafkaConn } from '../connections/kafka.js';
import { planOrPrint, oneSpec, stateDir, UsageError } from './common.js';

export function resetCheckpoint(cp: Checkpoint, positionsOnly: boolean): Checkpoint {
  return {
    ...cp,
    epoch: cp.epoch + 1,
    source: undefined,
    steps: positionsOnly ? cp.steps : cp.steps.map(() => null),
    totals: positionsOnly ? cp.totals : { ...ZERO_TOTALS },
    reset: { at: new Date().toISOString(), positionsOnly },
    at: new Date().toISOString(),
  };
}

export async function resetFlows(
  plan: Plan,
  flows: string[],
  positionsOnly: boolean,
  dir: string,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const guard = await guardPipeline(plan, dir, log, signal);
  try {
    const ctx = { connections: plan.connections, connectionLabels: plan.connectionLabels, specDir: path.dirname(path.resolve(plan.file)) };
    for (const name of flows) {
      const f = plan.flows.find((x) => x.name === name)!;
      const what = positionsOnly ? 'positions' : 'positions and state';
      if (!f.checkpointConnection) {
        const file = checkpointFile(dir, plan.pipeline, f.name);
        const cp = readCheckpoint(file);
        if (!cp) {
          log.info(`${f.name}: no checkpoint in ${file}: nothing to reset`);
          continue;
        }
        writeCheckpoint(file, resetCheckpoint(cp, positionsOnly));
        log.info(`${f.name}: ${what} reset (checkpoint of epoch ${cp.epoch + 1} in ${file})`);
        continue;
      }
      const c = connection(ctx, f.checkpointConnection);
      const topic = topicName(c, plan.checkpointTopic);
      const flowKey = `${plan.pipeline}/${f.name}`;
      // The flow's checkpoint, or a task's (`<flow>.<partition>`), each under its own transactional id.
      const open = async (name: string, fn: (store: KafkaCheckpointStore, cp: Checkpoint | undefined) => Promise<void>) => {
        const store = new KafkaCheckpointStore({
          conn: kafkaConn(ctx, f.checkpointConnection!),
          topic,
          transactionalId: `${c.topicPrefix ?? ''}salespipe.${plan.pipeline}.${name}`,
          key: `${plan.pipeline}/${name}`,
          family: flowKey,
          replicationFactor: plan.checkpointReplication,
          transactionTimeout: 60_000,
          log: log.child(name),
          signal,
        });
        try {
          await fn(store, await store.open());
        } finally {
          await store.close();
          await store.settle();
        }
      };
      const reset = async (store: KafkaCheckpointStore, cp: Checkpoint, name: string) => {
        const next = resetCheckpoint(cp, positionsOnly);
        await store.commit(next);
        log.info(`${name}: ${what} reset (checkpoint of epoch ${next.epoch} committed to ${topic})`);
      };
      let tasks: string[] = [];
      await open(f.name, async (store, cp) => {
        tasks = [...store.family().keys()].filter((k) => k !== flowKey).map((k) => k.slice(plan.pipeline.length + 1));
        if (cp) await reset(store, cp, f.name);
        else if (!tasks.length) log.info(`${f.name}: no checkpoint in Kafka: nothing to reset`);
      });
      for (const t of tasks)
        await open(t, async (store, cp) => {
          if (!cp) return;
          if (f.tasks.perPartition) return reset(store, cp, t);
          // The flow runs as one task now: its tasks' checkpoints go, and it starts over.
          await store.remove();
          log.info(`${t}: checkpoint removed (flow ${f.name} runs as one task now)`);
        });
    }
  } finally {
    await guard.release();
  }
}

export default async function reset(
  file: string,
  o: { flow?: string[]; all?: boolean; positions?: boolean; stateDir?: string },
  io: IO,
  log: Logger,
): Promise<number> {
  const spec = oneSpec(file);
  const plan = planOrPrint(spec, io, { errorsOnly: true });
  if (!plan) return 2;
  const names = o.all ? plan.flows.map((f) => f.name) : (o.flow ?? []);
  if (!names.length) throw new UsageError('name the flows to reset with --flow NAME (repeatable), or --all');
  for (const n of names)
    if (!plan.flows.some((f) => f.name === n))
      throw new UsageError(`no flow "${n}" in ${spec}; flows: ${plan.flows.map((f) => f.name).join(', ')}`);
  await resetFlows(plan, names, !!o.positions, stateDir(o.stateDir, spec, io.env), log, io.signal ?? new AbortController().signal);
  return 0;
}
