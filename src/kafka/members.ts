/**
 * @module Who is behind a consumer-group member, and removing the members of
 * processes that are gone.
 *
 * Rules:
 * - Every group member salespipe runs says which process it is: host, boot
 *   id, pid namespace and pid travel in the member's subscription userData
 *   (the clientId stays the user's, for quotas).
 * - kafkajs has no static membership: a process killed with SIGKILL stays a
 *   member until its session times out, and its partitions go unread that
 *   long. A new process on the same machine sees from the userData that the
 *   member's process no longer exists and sends LeaveGroup for it: the group
 *   rebalances at once. A member whose process may be alive (another
 *   machine, a live pid) is never touched.
 * - Kafka shows members' subscriptions only while the group is stable. The
 *   members of internal groups (leases), which carry no data and so no
 *   quotas, also say who they are in their client id, which Kafka shows
 *   in every state: a process killed during a lease's rebalance is still
 *   recognised. A data consumer keeps the user's client id: one killed
 *   during a rebalance times out.
 */
import fs from 'node:fs';
import os from 'node:os';
import crypto from 'node:crypto';
import kafkajs from 'kafkajs';
import type { Logger } from '../core/log.js';

const { MemberMetadata, MemberAssignment } = kafkajs.AssignerProtocol;

export interface Identity {
  host: string;
  /** Distinguishes reboots and containers sharing a hostname. */
  boot: string;
  pidns: string;
  pid: number;
  /** Random per process: tells this process's members from a reused pid's. */
  token: string;
  /** When this process started (ms). */
  since: number;
}

const read = (f: string) => {
  try {
    return fs.readFileSync(f, 'utf8').trim();
  } catch {
    return '';
  }
};
const link = (f: string) => {
  try {
    return fs.readlinkSync(f);
  } catch {
    return '';
  }
};

let self: Identity | undefined;

/** This process. Worker threads share it (same pid): the token is derived from the process, not the thread. */
export function identity(): Identity {
  self ??= {
    host: os.hostname(),
    boot: read('/proc/sys/kernel/random/boot_id'),
    pidns: link('/proc/self/ns/pid'),
    pid: process.pid,
    token: crypto
      .createHash('sha256')
      .update(`${process.pid}:${read('/proc/self/stat').split(' ')[21] ?? ''}:${os.hostname()}`)
      .digest('hex')
      .slice(0, 12),
    since: Math.round(Date.now() - process.uptime() * 1000),
  };
  return self;
}

export const describeIdentity = (i: Identity) => `pid ${i.pid} on ${i.host} since ${new Date(i.since).toISOString()}`;

/** True when `i` is certainly a process of this machine that no longer exists. */
export function isGone(i: Identity): boolean {
  const me = identity();
  if (i.host !== me.host || i.boot !== me.boot || i.pidns !== me.pidns || !i.boot) return false;
  if (i.pid === me.pid) return i.token !== me.token;
  try {
    process.kill(i.pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
  // The pid is in use: by the same process, unless it started after the member did (pid reuse).
  const started = read(`/proc/${i.pid}/stat`).split(' ')[21];
  if (!started) return false;
  const ticks = 100; // USER_HZ on Linux
  const bootMs = Date.now() - Number(read('/proc/uptime').split(' ')[0]) * 1000;
  return bootMs + (Number(started) / ticks) * 1000 > i.since + 2000;
}

export interface MemberInfo {
  memberId: string;
  clientId: string;
  identity?: Identity;
  holds?: boolean;
}

/** A client id naming this process: `<base>@<host>#<boot>#<pidns>#<pid>#<token>#<since>`. */
export function identityClientId(base: string): string {
  const i = identity();
  return `${base}@${i.host}#${i.boot}#${i.pidns.replace(/\D/g, '')}#${i.pid}#${i.token}#${i.since}`;
}

function identityOfClientId(clientId: string): Identity | undefined {
  const m = /@([^#]*)#([^#]*)#(\d*)#(\d+)#([0-9a-f]+)#(\d+)$/.exec(clientId);
  if (!m) return undefined;
  return { host: m[1], boot: m[2], pidns: m[3] ? `pid:[${m[3]}]` : '', pid: Number(m[4]), token: m[5], since: Number(m[6]) };
}

function decodeUserData(buf: Buffer | null | undefined): { identity?: Identity; holds?: boolean } {
  if (!buf?.length) return {};
  try {
    const o = JSON.parse(buf.toString('utf8'));
    return o && typeof o === 'object' && o.identity ? o : {};
  } catch {
    return {};
  }
}

/** The members of a group, with the identity each one's subscription carries (if it is salespipe's). */
export async function groupMembers(admin: kafkajs.Admin, groupId: string): Promise<MemberInfo[]> {
  const { groups } = await admin.describeGroups([groupId]);
  const g = groups[0];
  if (!g || g.protocolType !== 'consumer') return [];
  return g.members.map((m) => {
    let userData: Buffer | null = null;
    try {
      userData = MemberMetadata.decode(m.memberMetadata)?.userData ?? null;
    } catch {
      /* not a consumer subscription */
    }
    const fromData = decodeUserData(userData);
    return { memberId: m.memberId, clientId: m.clientId, ...fromData, identity: fromData.identity ?? identityOfClientId(m.clientId) };
  });
}

type ClusterLike = {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  refreshMetadata(): Promise<void>;
  findGroupCoordinator(o: { groupId: string }): Promise<{ leaveGroup(o: { groupId: string; memberId: string }): Promise<unknown> }>;
};

/** kafkajs's cluster factory, kept on the client under a private symbol (kafkajs 2.2). */
export function clusterOf(kafka: kafkajs.Kafka): ClusterLike {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === 'private:Kafka:createCluster');
  if (!sym) throw new Error('this kafkajs version does not expose its cluster factory (expected kafkajs 2.2)');
  return (kafka as unknown as Record<symbol, (o: object) => ClusterLike>)[sym]({ allowAutoTopicCreation: false });
}

/**
 * Removes from `groupId` the members whose process is gone (see the module
 * rules); returns how many. Failures are only logged: the member then times
 * out on its own, as it would without this.
 */
export async function evictGone(kafka: kafkajs.Kafka, admin: kafkajs.Admin, groupId: string, log: Logger): Promise<number> {
  let gone: MemberInfo[];
  try {
    gone = (await groupMembers(admin, groupId)).filter((m) => m.identity && isGone(m.identity));
  } catch (e) {
    log.debug(`could not describe group ${groupId}: ${(e as Error).message}`);
    return 0;
  }
  if (!gone.length) return 0;
  const cluster = clusterOf(kafka);
  try {
    await cluster.connect();
    const coordinator = await cluster.findGroupCoordinator({ groupId });
    for (const m of gone) {
      await coordinator.leaveGroup({ groupId, memberId: m.memberId });
      log.info(`removed member ${m.memberId} from group ${groupId}: its process (${describeIdentity(m.identity!)}) is gone`);
    }
    return gone.length;
  } catch (e) {
    log.debug(`could not remove gone members from ${groupId}: ${(e as Error).message}`);
    return 0;
  } finally {
    await cluster.disconnect().catch(() => undefined);
  }
}

/**
 * kafkajs's round-robin assignment, with this process's identity in the
 * subscription's userData; with `only`, of those partitions alone (a
 * task's group reads its partition and no other).
 */
export function roundRobinAssigner(only?: number[]): kafkajs.PartitionAssigner {
  return ({ cluster }) => ({
    name: 'SalespipeRoundRobin',
    version: 0,
    async assign({ members, topics }) {
      const sorted = members.map((m) => m.memberId).sort();
      const assignment: Record<string, Record<string, number[]>> = {};
      let i = 0;
      for (const topic of topics) {
        for (const m of cluster.findTopicPartitionMetadata(topic)) {
          if (only && !only.includes(m.partitionId)) continue;
          const to = sorted[i++ % sorted.length];
          ((assignment[to] ??= {})[topic] ??= []).push(m.partitionId);
        }
      }
      return sorted.map((memberId) => ({
        memberId,
        memberAssignment: MemberAssignment.encode({ version: 0, assignment: assignment[memberId] ?? {}, userData: Buffer.alloc(0) }),
      }));
    },
    protocol({ topics }) {
      return {
        name: 'SalespipeRoundRobin',
        metadata: MemberMetadata.encode({ version: 0, topics, userData: Buffer.from(JSON.stringify({ identity: identity() })) }),
      };
    },
  });
}

/**
 * A lease: the group's members subscribe to a one-partition topic; the
 * partition goes to the member that holds it already, else to the one
 * that started first. Whoever has it holds the lease.
 */
export function leaseAssigner(holds: () => boolean): kafkajs.PartitionAssigner {
  return () => ({
    name: 'SalespipeLease',
    version: 0,
    async assign({ members, topics }) {
      const info = members.map((m) => {
        let userData: Buffer | null = null;
        try {
          userData = MemberMetadata.decode(m.memberMetadata)?.userData ?? null;
        } catch {
          /* ignore */
        }
        return { memberId: m.memberId, ...decodeUserData(userData) };
      });
      info.sort(
        (a, b) =>
          Number(!!b.holds) - Number(!!a.holds) ||
          (a.identity?.since ?? Infinity) - (b.identity?.since ?? Infinity) ||
          (a.memberId < b.memberId ? -1 : 1),
      );
      const winner = info[0]?.memberId;
      return info.map((m) => ({
        memberId: m.memberId,
        memberAssignment: MemberAssignment.encode({
          version: 0,
          assignment: m.memberId === winner ? Object.fromEntries(topics.map((t) => [t, [0]])) : {},
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }) {
      return {
        name: 'SalespipeLease',
        metadata: MemberMetadata.encode({
          version: 0,
          topics,
          userData: Buffer.from(JSON.stringify({ identity: identity(), holds: holds() })),
        }),
      };
    },
  });
}
