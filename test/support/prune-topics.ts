/**
 * Deletes the Kafka topics earlier test runs left on the loopback broker.
 * Every test names its topics with `uniq()` (helpers.ts): `t`, the creation
 * time in base 36 (8 digits), then 1-4 random digits. A broker that keeps
 * thousands of those partitions takes minutes to recover them at start-up
 * (7,200 partitions, 6.4 GB: 97 s, past services.sh's wait), so `npm test`
 * runs this first. Only topics whose embedded time is more than an hour old
 * go: a run in progress elsewhere keeps its own.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { BROKERS } from './kafka.js';

const TOKEN = /(?:^|[^0-9a-z])t([0-9a-z]{8})[0-9a-z]{1,4}(?=$|[^0-9a-z])/g;
const EARLIEST = Date.UTC(2025, 0, 1);

/** The creation time `uniq()` wrote into a topic's name, or null for a name no test made. */
export function testTopicTime(topic: string, now = Date.now()): number | null {
  for (const m of topic.matchAll(TOKEN)) {
    const t = parseInt(m[1], 36);
    if (t >= EARLIEST && t <= now) return t;
  }
  return null;
}

export function staleTestTopics(topics: string[], now = Date.now(), age = 3600_000): string[] {
  return topics.filter((t) => {
    const at = testTopicTime(t, now);
    return at !== null && at < now - age;
  });
}

async function main(): Promise<void> {
  const kafka = new kafkajs.Kafka({
    brokers: BROKERS.split(','),
    clientId: 'salespipe-test-prune',
    logLevel: kafkajs.logLevel.NOTHING,
    retry: { retries: 2 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
  } catch (e) {
    // The integration tests report an unreachable broker themselves, as a failure under CI.
    console.error(`prune-topics: Kafka at ${BROKERS} unreachable (${(e as Error).message}); nothing pruned`);
    return;
  }
  try {
    const stale = staleTestTopics(await admin.listTopics());
    for (let i = 0; i < stale.length; i += 200) await admin.deleteTopics({ topics: stale.slice(i, i + 200), timeout: 60_000 });
    if (stale.length) console.error(`prune-topics: deleted ${stale.length} topics earlier test runs left on ${BROKERS}`);
  } finally {
    await admin.disconnect();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
