/**
 * The Kafka sink on a real broker, inside the flow's Kafka transaction (the
 * checkpoint store of runtime/kafka-checkpoint.ts, as a run uses it): the
 * sink contract, read back by kcat with read_committed.
 */
import { needServices, parseExact, readTopicSettled, uniq, ROOT } from '../../../support/helpers.js';
import { BROKERS, pingKafka } from '../../../support/kafka.js';
import { runContext } from '../../../support/run-ctx.js';
import { sinkContract, APPEND, type ContractRow, type Transaction } from '../../../support/sink-contract.js';
import { kafkaSink } from '../../../../src/operators/sinks/kafka.js';
import { KafkaCheckpointStore } from '../../../../src/runtime/kafka-checkpoint.js';
import { kafkaConn } from '../../../../src/connections/kafka.js';
import type { RunContext } from '../../../../src/operators/operator.js';

/** The flow's transaction: one transactional producer per (re)start, fencing the one before. */
function transaction(ctx: RunContext, id: string): Transaction {
  let store: KafkaCheckpointStore | undefined;
  const dead: KafkaCheckpointStore[] = [];
  return {
    async begin() {
      // A clean restart: the flow closed its producer before starting again (a crash left it in `dead`).
      await store?.close();
      store = new KafkaCheckpointStore({
        conn: kafkaConn(ctx, 'kafka'),
        topic: `${id}.checkpoints`,
        transactionalId: id,
        key: `${ctx.pipeline}/${ctx.flow}`,
        transactionTimeout: 60_000,
        log: ctx.log,
        signal: ctx.signal,
      });
      await store.open();
      const s = store;
      ctx.kafkaTxn = { connection: 'kafka', send: (r) => s.send(r) };
    },
    async commit(epoch) {
      await store!.commit({ version: 1, epoch, source: null, steps: [], sinks: [], deadLetter: null, at: new Date().toISOString() });
    },
    crash() {
      dead.push(store!);
      store = undefined;
    },
    async close() {
      for (const s of [...dead, ...(store ? [store] : [])]) await s.close();
    },
  };
}

sinkContract({
  name: 'kafka',
  def: kafkaSink,
  input: APPEND,
  async fresh(t) {
    if (!(await needServices(t, pingKafka))) return undefined;
    const topic = `contract-${uniq()}`;
    const ctx = runContext({ specDir: ROOT, pipeline: topic, connections: { kafka: { type: 'kafka', brokers: BROKERS } } });
    return {
      cfg: { type: 'kafka', connection: 'kafka', topic, partitions: 3 },
      ctx,
      txn: transaction(ctx, `salespipe.${topic}`),
      visible: async () => (await readTopicSettled(topic)).map((m) => parseExact(m.value)) as unknown as ContractRow[],
    };
  },
});
