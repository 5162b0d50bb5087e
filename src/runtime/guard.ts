/**
 * @module One instance per pipeline: the guard a run holds while it runs.
 *
 * Rules:
 * - A pipeline with a Kafka checkpoint holds a lease through Kafka
 *   (kafka/lease.ts) on the checkpoint topic of its first such flow: a
 *   second `salespipe run` of it, on any machine sharing the cluster, is
 *   refused within seconds with who runs it; one restarted after kill -9
 *   on the same machine takes over at once.
 * - A pipeline without Kafka holds a lock file in the state directory
 *   (a lock whose process is gone is taken over).
 * - Losing the lease while running stops the run with an error.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Plan } from '../plan/plan.js';
import type { Logger } from '../core/log.js';
import { Lease, LeaseHeld } from '../kafka/lease.js';
import { connection, topicName } from '../connections/config.js';
import { kafkaClient, kafkaConn, kafkaWhere, kafkaAuthError } from '../connections/kafka.js';
import { withRetry } from '../connections/retry.js';
import { ensureCheckpointTopic } from './kafka-checkpoint.js';
import { describeIdentity, identity, isGone, Identity } from '../kafka/members.js';

export { LeaseHeld };

export interface Guard {
  /** Called once if the guard is lost while the run holds it. */
  lost(fn: (why: string) => void): void;
  release(): Promise<void>;
}

/** The lease group of a pipeline (the connection's prefix first, like its consumer groups). */
export const leaseGroup = (prefix: string, pipeline: string) => `${prefix}salespipe-lease.${pipeline}`;

/** Takes the pipeline's guard, or throws LeaseHeld naming the instance that runs it. */
export async function guardPipeline(
  plan: Plan,
  stateDir: string,
  log: Logger,
  signal: AbortSignal,
  sessionTimeout?: number,
): Promise<Guard> {
  const flow = plan.flows.find((f) => f.checkpointConnection);
  const what = `pipeline ${plan.pipeline}`;
  if (!flow) return lockFile(path.join(stateDir, plan.pipeline, 'run.lock'), what, log);
  const name = flow.checkpointConnection!;
  const ctx = { connections: plan.connections, connectionLabels: plan.connectionLabels, specDir: path.dirname(path.resolve(plan.file)) };
  const conn = kafkaConn(ctx, name);
  const c = connection(ctx, name);
  const topic = topicName(c, plan.checkpointTopic);
  await withRetry(`connecting to ${kafkaWhere(conn)}`, log, signal, () =>
    ensureCheckpointTopic(kafkaClient(conn, log), topic, plan.checkpointReplication, log),
  ).catch((e) => {
    throw kafkaAuthError(e, conn) ?? e;
  });
  const lease = new Lease({
    conn,
    topic,
    group: leaseGroup(c.topicPrefix ?? '', plan.pipeline),
    what,
    log: log.child('lease'),
    sessionTimeout,
  });
  try {
    await lease.acquire(signal);
  } catch (e) {
    if (e instanceof LeaseHeld) throw new LeaseHeld(`${e.message}; one instance of a pipeline runs at a time: not starting this one`);
    throw e;
  }
  return { lost: (fn) => lease.lost(fn), release: () => lease.release() };
}

/** A lock file created exclusively, holding its process's identity; a lock whose process is gone is taken over. */
export function lockFile(file: string, what: string, log: Logger): Guard {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, JSON.stringify({ identity: identity() }));
      fs.closeSync(fd);
      return { lost: () => undefined, release: async () => fs.rmSync(file, { force: true }) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      let held: Identity | undefined;
      try {
        held = JSON.parse(fs.readFileSync(file, 'utf8')).identity;
      } catch {
        /* being written, or foreign: held */
      }
      if (!held || !isGone(held))
        throw new LeaseHeld(
          `${what} is already running${held ? ` (${describeIdentity(held)})` : ''}: lock ${file}; one instance of a pipeline runs at a time: not starting this one`,
        );
      log.warn(`taking over the lock of ${what} from a process that is gone (${describeIdentity(held)})`);
      fs.rmSync(file, { force: true });
    }
  }
}
