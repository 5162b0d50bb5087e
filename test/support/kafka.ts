/** Kafka helpers for tests: reachability and producing raw bytes. */
import kafkajs from 'kafkajs';

export const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';

const kafka = () => new kafkajs.Kafka({ brokers: BROKERS.split(','), clientId: 'salespipe-test', logLevel: kafkajs.logLevel.NOTHING, retry: { retries: 3 } });

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

/** Produces raw values; with `key`, all to one partition, in order. */
export async function produceRaw(topic: string, values: (Buffer | string | null)[], key?: string): Promise<void> {
  const p = kafka().producer({ allowAutoTopicCreation: false });
  await p.connect();
  try {
    for (let i = 0; i < values.length; i += 500) {
      await p.send({ topic, acks: -1, messages: values.slice(i, i + 500).map((value, j) => ({ key: key ?? `bad-${i + j}`, value })) });
    }
  } finally {
    await p.disconnect();
  }
}
