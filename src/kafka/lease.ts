/**
 * @module A lease held through Kafka: at most one process at a time runs a
 * pipeline (or, later, a task without partitions).
 *
 * Rules:
 * - Holders are members of one consumer group subscribed to a one-partition
 *   topic (the checkpoint topic); the member assigned partition 0 holds the
 *   lease (members.ts: the holder keeps it across rebalances, else the
 *   oldest member gets it). The group's coordinator is the arbiter: no
 *   clock, no file, no cluster manager of our own.
 * - Acquiring first removes members of gone processes of this machine
 *   (members.ts), so a restart after kill -9 gets the lease at once; a
 *   process that died elsewhere holds it until its session times out.
 * - A process that joins and is not given the partition is refused with
 *   who holds it: the join completes only once every member has rejoined,
 *   so the holder is alive.
 * - The lease partition is paused: holding it reads nothing.
 * - Losing it (our session expired and another process took over) is
 *   reported through `lost`; the caller stops. A crash of the holding
 *   consumer that kafkajs does not restart from (no group coordinator found
 *   for a while after a broker restart) is not a loss: a new consumer joins,
 *   still claiming the lease, and keeps it unless another process took it.
 */
import kafkajs from 'kafkajs';
import type { Logger } from '../core/log.js';
import { kafkaClient, KafkaConn, kafkaAuthError } from '../connections/kafka.js';
import { withRetry } from '../connections/retry.js';
import { describeIdentity, evictGone, groupMembers, identityClientId, leaseAssigner } from './members.js';

export class LeaseHeld extends Error {}

export interface LeaseOptions {
  conn: KafkaConn;
  /** One-partition topic the members subscribe to (it must exist). */
  topic: string;
  group: string;
  /** What the lease is for, in messages: e.g. `pipeline sales`. */
  what: string;
  log: Logger;
  sessionTimeout?: number;
}

export class Lease {
  private kafka: kafkajs.Kafka;
  private consumer?: kafkajs.Consumer;
  private held = false;
  private onLost: ((why: string) => void) | null = null;

  constructor(private opts: LeaseOptions) {
    // The client id says which process this is, also while the group rebalances (members.ts).
    this.kafka = kafkaClient({ ...opts.conn, clientId: identityClientId(opts.conn.clientId ?? 'salespipe') }, opts.log);
  }

  /** Resolves once held; throws LeaseHeld when a live process holds it. */
  async acquire(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    const { log, group, topic, what } = this.opts;
    const admin = this.kafka.admin();
    await withRetry('connecting to Kafka', log, signal, () => admin.connect()).catch((e) => {
      throw kafkaAuthError(e, this.opts.conn) ?? e;
    });
    try {
      await evictGone(this.kafka, admin, group, log);
      const sessionTimeout = this.opts.sessionTimeout ?? this.opts.conn.sessionTimeoutMs;
      const consumer = (this.consumer = this.kafka.consumer({
        groupId: group,
        sessionTimeout,
        heartbeatInterval: Math.max(500, Math.floor(sessionTimeout / 4)),
        rebalanceTimeout: sessionTimeout * 3,
        partitionAssigners: [leaseAssigner(() => this.held)],
        maxWaitTimeInMs: 1000,
        allowAutoTopicCreation: false,
      }));
      let first: (assigned: boolean) => void;
      const joined = new Promise<boolean>((r) => (first = r));
      let joins = 0;
      // Holding the lease reads nothing. A consumer restarted after a crash (e.g. the group's
      // coordinator still loading on a new cluster) forgets its paused topics and has no group
      // until it rejoins: it is paused again at each join.
      const pause = () => {
        try {
          consumer.pause([{ topic }]);
        } catch {
          // Restarting: paused at its next join.
        }
      };
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        pause();
        const assigned = (e.payload.memberAssignment[topic] ?? []).includes(0);
        if (joins++ === 0) return first(assigned);
        if (this.held && !assigned) {
          this.held = false;
          this.onLost?.(`the lease of ${what} went to another process (this one's group session had expired)`);
        }
      });
      consumer.on(consumer.events.CRASH, (e) => {
        // A crash kafkajs does not restart from (e.g. no group coordinator found for a while
        // after a broker restart) ends this consumer, not the lease: join the group again.
        if (!e.payload.restart && this.held && this.consumer === consumer) void this.rejoin(e.payload.error?.message ?? 'crashed');
      });
      await withRetry('joining the lease group', log, signal, () => consumer.connect());
      await consumer.subscribe({ topic, fromBeginning: false });
      const waiting = setTimeout(
        () => log.info(`waiting for the lease of ${what}: a member of group ${group} that may have stopped is still in its session`),
        3000,
      );
      await consumer.run({ autoCommit: false, eachBatch: async () => undefined });
      pause();
      const assigned = await Promise.race([
        joined,
        new Promise<'aborted'>((r) => signal.addEventListener('abort', () => r('aborted'), { once: true })),
      ]);
      clearTimeout(waiting);
      if (assigned === 'aborted') {
        await this.release();
        throw new LeaseHeld(`stopped while waiting for the lease of ${what}`);
      }
      if (!assigned) {
        const others = (await groupMembers(admin, group).catch(() => [])).filter((m) => m.holds);
        await this.release();
        const who = others[0]?.identity ? ` (${describeIdentity(others[0].identity)})` : '';
        throw new LeaseHeld(`${what} is already running${who}`);
      }
      this.held = true;
      log.debug(`holding the lease of ${what} (group ${group})`);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private signal?: AbortSignal;

  /**
   * The consumer holding the lease has crashed: a new one joins the group.
   * It still says it holds the lease, so it keeps it unless another process
   * took it meanwhile (our session expired): only then is the lease lost.
   */
  private async rejoin(why: string): Promise<void> {
    const { log, what } = this.opts;
    const signal = this.signal!;
    const onLost = this.onLost;
    const old = this.consumer;
    this.consumer = undefined;
    log.warn(`the consumer holding the lease of ${what} stopped (${why}); joining the lease group again`);
    await old?.disconnect().catch(() => undefined);
    if (signal.aborted) return;
    try {
      await this.acquire(signal);
      this.onLost = onLost;
      log.info(`still holding the lease of ${what}`);
    } catch (e) {
      if (signal.aborted) return;
      this.held = false;
      onLost?.(`the lease of ${what} was lost (${why}): ${(e as Error).message}`);
    }
  }

  /** Called once if the lease is lost while held. */
  lost(fn: (why: string) => void): void {
    this.onLost = fn;
  }

  async release(): Promise<void> {
    this.held = false;
    this.onLost = null;
    const c = this.consumer;
    this.consumer = undefined;
    await c?.disconnect().catch(() => undefined);
  }
}
