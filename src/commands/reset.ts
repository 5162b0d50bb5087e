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
      const txid = `${c.topicPrefix ?? ''}salespipe.${plan.pipeline}.${f.name}`;
      const store = new KafkaCheckpointStore({
        conn: kafkaConn(ctx, f.checkpointConnection),
        topic: topicName(c, plan.checkpointTopic),
        transactionalId: txid,
        key: `${plan.pipeline}/${f.name}`,
        replicationFactor: plan.checkpointReplication,
        transactionTimeout: 60_000,
        log: log.child(f.name),
        signal,
      });
      try {
        const cp = await store.open();
        if (!cp) {
          log.info(`${f.name}: no checkpoint in Kafka: nothing to reset`);
          continue;
        }
        const next = resetCheckpoint(cp, positionsOnly);
        await store.commit(next);
        log.info(`${f.name}: ${what} reset (checkpoint of epoch ${next.epoch} committed to ${topicName(c, plan.checkpointTopic)})`);
      } finally {
        await store.close();
        await store.settle();
      }
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
