/** One run of the shipped pipelines against MariaDB and Kafka: its services, its fresh environment, and its totals on Kafka. */
import { latestByKey, money, parseExact, readTopic, tmpDir, uniq } from './helpers.js';
import { freshDatabase, pingDatabase, MARIADB_ADMIN } from './sql.js';
import { BROKERS, pingKafka } from './kafka.js';

/** The services the shipped sales pipelines need (for needServices). */
export async function mariadbAndKafka(): Promise<void> {
  await pingDatabase(MARIADB_ADMIN);
  await pingKafka();
}

/** A fresh MariaDB database, topic prefix, output and state directories: the environment of one run of the shipped pipelines. */
export async function freshRun(extra: NodeJS.ProcessEnv = {}) {
  const db = await freshDatabase('mysql', `sp_${uniq()}`);
  const prefix = `${uniq()}.`;
  const env = {
    SALES_DB_URL: db,
    KAFKA_BROKERS: BROKERS,
    KAFKA_TOPIC_PREFIX: prefix,
    SALES_OUTPUT_DIR: tmpDir(),
    SALESPIPE_STATE_DIR: tmpDir(),
    ...extra,
  };
  return { db, prefix, env };
}

/** The latest total per product on aggregated_product_sales, read by kcat: units and revenue as exact text. */
export function topicTotals(prefix: string): Map<string, { units: string; revenue: string }> {
  return new Map(
    [...latestByKey(readTopic(`${prefix}aggregated_product_sales`)).values()].map((v) => {
      const r = parseExact(v);
      return [
        `${r.product_name}|${r.brand}|${r.product_category}`,
        { units: String(r.total_quantity_sold), revenue: money(r.total_revenue!) },
      ];
    }),
  );
}
