/** The kafka source on a real broker: the source contract, records produced by a plain kafkajs producer across three partitions. */
import { needServices, uniq, ROOT } from '../../../support/helpers.js';
import { BROKERS, createTopic, pingKafka, produceRaw } from '../../../support/kafka.js';
import { sourceContract, CONTRACT_SCHEMA, record } from '../../../support/source-contract.js';
import { kafkaSource } from '../../../../src/operators/sources/kafka.js';

sourceContract({
  name: 'kafka',
  def: kafkaSource,
  async fresh(t) {
    if (!(await needServices(t, pingKafka))) return undefined;
    const topic = `contract-src-${uniq()}`;
    await createTopic(topic, 3);
    return {
      cfg: { type: 'kafka', connection: 'kafka', topic, schema: CONTRACT_SCHEMA },
      ctx: { pipeline: topic, specDir: ROOT, connections: { kafka: { type: 'kafka', brokers: BROKERS } } },
      // Each id on its own key: the records spread over the partitions.
      append: (ids) =>
        produceRaw(
          topic,
          ids.map((id) => JSON.stringify(record(id))),
          (i) => `k${ids[i]}`,
        ),
    };
  },
});
