import { test } from 'node:test';
import { colType } from '../../support/types.js';
import assert from 'node:assert/strict';
import { makeDecoder } from '../../../src/operators/record-schema.js';
import type { Schema } from '../../../src/core/types.js';

const t = colType;
const schema: Schema = [
  { name: 'transaction_id', type: t('int') },
  { name: 'product_name', type: t('string') },
  { name: 'quantity_sold', type: t('int') },
  { name: 'price_per_unit', type: t('decimal(12,2)') },
  { name: 'transaction_date', type: t('timestamp') },
  { name: 'customer_id', type: t('int?') },
];
const decode = makeDecoder(schema, { timeZone: 'UTC' });
const good = {
  transaction_id: 3001,
  product_name: 'Dell Inspiron',
  quantity_sold: 2,
  price_per_unit: 50000,
  transaction_date: '2026-01-15 10:00:00',
  customer_id: null,
};

test('a valid record decodes to typed values', () => {
  assert.deepEqual(decode(good), { ...good, price_per_unit: 5000000, transaction_date: Date.UTC(2026, 0, 15, 10) });
  assert.deepEqual(decode({ ...good, price_per_unit: '50000.10', transaction_date: '2026-01-15T10:00:00+01:00' }), {
    ...good,
    price_per_unit: 5000010,
    transaction_date: Date.UTC(2026, 0, 15, 9),
  });
  const { customer_id: _omit, ...noCustomer } = good;
  assert.equal((decode(noCustomer) as Record<string, unknown>).customer_id, null);
});

test('every kind of bad record gets a reason', () => {
  const cases: [unknown, RegExp][] = [
    [[1, 2], /expected a JSON object/],
    ['text', /expected a JSON object/],
    [null, /expected a JSON object/],
    [{ ...good, transaction_id: undefined }, /missing required field "transaction_id"/],
    [{ ...good, quantity_sold: '2' }, /expected int, got string/],
    [{ ...good, quantity_sold: 2.5 }, /not an integer/],
    [{ ...good, quantity_sold: 1e20 }, /outside the exact integer range/],
    [{ ...good, price_per_unit: 'cheap' }, /not a decimal/],
    [{ ...good, price_per_unit: 1e30 }, /too large|exceeds/],
    [{ ...good, product_name: 'x'.repeat(5000) }, /exceeds the limit/],
    [{ ...good, product_name: 'a\u0000b' }, /NUL/],
    [{ ...good, product_name: 42 }, /expected string, got number/],
    [{ ...good, transaction_date: 'yesterday' }, /not a timestamp/],
    [{ ...good, transaction_id: null }, /is null but not nullable/],
  ];
  for (const [input, reason] of cases) {
    const r = decode(input);
    assert.equal(typeof r, 'string', `expected a reason for ${JSON.stringify(input)?.slice(0, 80)}`);
    assert.match(r as string, reason);
  }
});

test('timestamps without a zone are read in the configured zone', () => {
  const berlin = makeDecoder(schema, { timeZone: 'Europe/Berlin' });
  assert.equal((berlin(good) as Record<string, number>).transaction_date, Date.UTC(2026, 0, 15, 9)); // CET = UTC+1
  assert.equal(
    (berlin({ ...good, transaction_date: '2026-07-15 10:00:00' }) as Record<string, number>).transaction_date,
    Date.UTC(2026, 6, 15, 8),
  ); // CEST
});

test('ISO timestamps: the fast path agrees with Date.parse and rejects what it must', () => {
  const dec = makeDecoder([{ name: 'at', type: t('timestamp') }], { timeZone: 'UTC' });
  for (const s of ['2026-01-15T10:00:00.000Z', '2024-02-29T23:59:59.999Z', '2026-12-31T00:00:00.123Z', '1999-03-28T01:02:03.004Z']) {
    assert.equal((dec({ at: s }) as Record<string, number>).at, Date.parse(s), s);
  }
  for (const s of ['2026-13-15T10:00:00.000Z', '20x6-01-15T10:00:00.000Z', '2026-02-30T10:00:00.000Z', '2026-01-15T24:00:00.000Z']) {
    assert.equal(typeof dec({ at: s }), 'string', s);
  }
});
