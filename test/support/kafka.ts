/** Kafka helpers for tests: reachability and producing raw bytes. */
import kafkajs from 'kafkajs';

export const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';

const kafka = () =>
  new kafkajs.Kafka({ brokers: BROKERS.split(','), clientId: 'salespipe-test', logLevel: kafkajs.logLevel.NOTHING, retry: { retries: 3 } });

export async function pingKafka(): Promise<void> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    await admin.listTopics();
  } finally {
    await admin.disconnect();
  }
}

export async function createTopic(topic: string, partitions = 3): Promise<void> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/** Produces raw values; with a `key`, all to one partition, in order; a function gives each value its key. */
export async function produceRaw(topic: string, values: (Buffer | string | null)[], key?: string | ((i: number) => string)): Promise<void> {
  const p = kafka().producer({ allowAutoTopicCreation: false });
  await p.connect();
  try {
    // Requests of at most 500 messages and ~512 KB: a partition's batch must stay under the broker's 1 MB.
    let batch: { key: string; value: Buffer | string | null }[] = [];
    let bytes = 0;
    const flush = async () => {
      if (batch.length) await p.send({ topic, acks: -1, messages: batch });
      batch = [];
      bytes = 0;
    };
    for (const [i, value] of values.entries()) {
      const size = value === null ? 0 : value.length;
      if (batch.length >= 500 || (bytes + size > 512 * 1024 && batch.length)) await flush();
      batch.push({ key: typeof key === 'function' ? key(i) : (key ?? `bad-${i}`), value });
      bytes += size;
    }
    await flush();
  } finally {
    await p.disconnect();
  }
}
