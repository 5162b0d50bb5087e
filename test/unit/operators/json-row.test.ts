/** Rows to JSON: exact decimals, ISO timestamps, and json columns embedded as JSON, not as strings. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeJsonEncoder, makeKeyEncoder } from '../../../src/operators/json-row.js';
import { colType as t } from '../../support/types.js';

const schema = [
  { name: 'customer_id', type: t('int') },
  { name: 'total', type: t('decimal(12,2)') },
  { name: 'at', type: t('timestamp') },
  { name: 'recommendations', type: { kind: 'json' as const, nullable: true } },
];

test('a json column is embedded as the JSON it holds; decimals and timestamps are exact', () => {
  const enc = makeJsonEncoder(schema);
  const list = [{ product_name: 'Dell "XPS" 13', score: 0.5, reason: 'personal' }];
  const text = enc({ customer_id: 7, total: 10000050, at: Date.UTC(2026, 0, 2, 3, 4, 5), recommendations: JSON.stringify(list) });
  assert.equal(
    text,
    '{"customer_id":7,"total":100000.50,"at":"2026-01-02T03:04:05.000Z","recommendations":[{"product_name":"Dell \\"XPS\\" 13","score":0.5,"reason":"personal"}]}',
  );
  assert.deepEqual(JSON.parse(text).recommendations, list);
  assert.equal(JSON.parse(enc({ customer_id: 1, total: null, at: null, recommendations: null })).recommendations, null);
  assert.equal(
    makeJsonEncoder(schema, { decimals: 'string' })({ customer_id: 1, total: 5, at: 0, recommendations: '[]' }),
    '{"customer_id":1,"total":"0.05","at":"1970-01-01T00:00:00.000Z","recommendations":[]}',
  );
});

test('keys: one column its text, several joined by |', () => {
  assert.equal(makeKeyEncoder(['customer_id'], schema)({ customer_id: 42 }), '42');
  assert.equal(makeKeyEncoder(['customer_id', 'total'], schema)({ customer_id: 42, total: 150 }), '42|1.50');
});
