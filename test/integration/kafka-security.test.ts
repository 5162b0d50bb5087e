/**
 * Kafka over TLS with SASL (SCRAM-SHA-256/512, PLAIN) against the local
 * broker's SASL_SSL listener (127.0.0.1:9094, test CA from services.sh).
 * Oracle: kcat reading the topic over the plaintext listener.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli, tmpDir, uniq, readTopic, needServices } from '../support/helpers.js';
import { pingKafka } from '../support/kafka.js';
import { sqlite } from '../support/sql.js';
import { createTables, WORKED_EXAMPLE } from '../../src/gen/generate.js';

const CA = path.join(process.env.SALESPIPE_SERVICES_DIR ?? path.join(os.homedir(), '.cache/salespipe/services'), 'tls/ca.pem');

const spec = (mechanism: string, password = '${KAFKA_PASSWORD}') => `pipeline: secure
connections:
  db: { type: sql, url: "sqlite:sales.db" }
  kafka:
    type: kafka
    brokers: 127.0.0.1:9094
    topicPrefix: \${KAFKA_TOPIC_PREFIX}
    tls: { ca: "\${KAFKA_CA}" }
    sasl:
      mechanism: ${mechanism}
      username: salespipe
      password: ${password}
flows:
  publish:
    source:
      type: sql
      connection: db
      table: product_sales
      cursor: transaction_id
      schema: { transaction_id: int, product_name: string, quantity_sold: int, price_per_unit: "decimal(12,2)" }
    sinks:
      - { type: kafka, connection: kafka, topic: sales, key: transaction_id }
  totals:
    source:
      type: kafka
      connection: kafka
      topic: sales
      schema: { transaction_id: int, product_name: string, quantity_sold: int, price_per_unit: "decimal(12,2)" }
    steps:
      - aggregate: { groupBy: [product_name], compute: { revenue: sum(quantity_sold * price_per_unit) } }
    sinks:
      - { type: file, path: totals.jsonl }
`;

async function workspace(text: string) {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'secure.yaml'), text);
  const db = sqlite(path.join(dir, 'sales.db'));
  await createTables(db, 'sqlite');
  await db('product_sales').insert(WORKED_EXAMPLE);
  await db.destroy();
  return dir;
}

for (const mechanism of ['scram-sha-256', 'scram-sha-512', 'plain']) {
  test(`Kafka over TLS with SASL ${mechanism}: the right secret works, a wrong one fails at once with a clear message that does not contain it`, async (t) => {
    if (
      !(await needServices(t, async () => {
        await pingKafka();
        if (!fs.existsSync(CA)) throw new Error(`no test CA at ${CA}`);
      }))
    )
      return;
    const dir = await workspace(spec(mechanism));
    const prefix = `${uniq()}.`;
    const env = {
      KAFKA_TOPIC_PREFIX: prefix,
      KAFKA_CA: CA,
      KAFKA_PASSWORD: 'salespipe-secret',
      SALESPIPE_STATE_DIR: path.join(dir, 'state'),
    };
    const ok = await runCli(['run', path.join(dir, 'secure.yaml'), '--drain', '--no-progress'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(
      readTopic(`${prefix}sales`)
        .map((m) => m.key)
        .sort(),
      ['3001', '3002', '3003'],
    );
    const totals = fs
      .readFileSync(path.join(dir, 'totals.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(totals.map((r) => [r.product_name, r.revenue]).sort(), [
      ['Apple iPhone 12', 240000],
      ['Dell Inspiron', 100000],
      ['Lenovo ThinkPad', 65000],
    ]);
    const explain = await runCli(['explain', path.join(dir, 'secure.yaml')], env);
    assert.match(explain.stdout, new RegExp(`kafka: kafka 127.0.0.1:9094, tls, sasl ${mechanism} as salespipe`));
    assert.ok(!explain.stdout.includes('salespipe-secret'));

    const wrong = 'not-the-Secret-42';
    const started = Date.now();
    const bad = await runCli(['run', path.join(dir, 'secure.yaml'), '--drain', '--no-progress'], {
      ...env,
      KAFKA_PASSWORD: wrong,
      KAFKA_TOPIC_PREFIX: `${uniq()}.`,
    });
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      new RegExp(
        `Kafka at 127.0.0.1:9094 refused the login of user "salespipe" \\(${mechanism.toUpperCase()}\\): wrong username or password\\?`,
      ),
    );
    assert.ok(!(bad.stderr + bad.stdout).includes(wrong), 'the wrong secret is never printed');
    assert.doesNotMatch(bad.stderr, /retrying/, 'a refused login is not retried');
    t.diagnostic(`failed after ${Date.now() - started} ms`);
  });
}

test('a password written in the spec is an error at its position', async () => {
  const dir = await workspace(spec('scram-sha-256', 'hunter2'));
  const r = await runCli(['validate', path.join(dir, 'secure.yaml')], { KAFKA_TOPIC_PREFIX: 'x', KAFKA_CA: CA });
  assert.equal(r.code, 2);
  assert.match(
    r.stderr,
    /secure\.yaml:12:17: a password written in the spec ends up in version control: take it from the environment, e\.g\. password: \$\{KAFKA_PASSWORD\} \[secret\.literal\]/,
  );
});
