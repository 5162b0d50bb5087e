import { test } from 'node:test';
import { colType } from '../../support/types.js';
import assert from 'node:assert/strict';
import { compileExpr, RecordError } from '../../../src/expr/compile.js';
import { ExprError } from '../../../src/expr/parse.js';
import { Schema, formatDecimal, toScaled } from '../../../src/core/types.js';

const t = colType;
const schema: Schema = [
  { name: 'quantity_sold', type: t('int') },
  { name: 'price_per_unit', type: t('decimal(12,2)') },
  { name: 'product_name', type: t('string') },
  { name: 'discount', type: t('decimal(5,3)?') },
  { name: 'ratio', type: t('float') },
  { name: 'transaction_date', type: t('timestamp') },
];
const row = {
  quantity_sold: 3,
  price_per_unit: 8000001,
  product_name: 'Apple iPhone 12',
  discount: null,
  ratio: 0.5,
  transaction_date: Date.UTC(2026, 0, 15, 10),
};

test('decimal arithmetic stays exact on scaled integers', () => {
  const c = compileExpr('quantity_sold * price_per_unit', schema);
  assert.deepEqual({ kind: c.type.kind, scale: c.type.scale }, { kind: 'decimal', scale: 2 });
  assert.equal(formatDecimal(c.fn(row) as number, 2), '240000.03');
  // 0.1 + 0.2 is exact with decimals, unlike floats
  const s = compileExpr('0.1 + 0.2', schema);
  assert.equal(formatDecimal(s.fn(row) as number, s.type.scale!), '0.3');
  const mixed = compileExpr('price_per_unit + 1.005', schema);
  assert.equal(mixed.type.scale, 3);
  assert.equal(formatDecimal(mixed.fn(row) as number, 3), '80001.015');
});

test('comparisons, logic and null semantics', () => {
  assert.equal(compileExpr("quantity_sold > 2 and product_name = 'Apple iPhone 12'", schema).fn(row), true);
  assert.equal(compileExpr('price_per_unit >= 80000.01', schema).fn(row), true);
  assert.equal(compileExpr('price_per_unit > 80000.01', schema).fn(row), false);
  assert.equal(compileExpr('discount > 0', schema).fn(row), null);
  assert.equal(compileExpr('discount is null', schema).fn(row), true);
  assert.equal(compileExpr('coalesce(discount, 0.5) * 2', schema).fn(row), 1000);
  assert.equal(compileExpr("transaction_date >= '2026-01-15 10:00:00'", schema).fn(row), true);
  assert.equal(compileExpr('date(transaction_date)', schema).fn(row), '2026-01-15');
  assert.equal(compileExpr('not (quantity_sold = 3) or false', schema).fn(row), false);
  assert.equal(compileExpr('ratio * 2', schema).fn(row), 1);
});

test('type errors name the problem and its offset', () => {
  const err = (src: string) => {
    try {
      compileExpr(src, schema);
    } catch (e) {
      assert.ok(e instanceof ExprError);
      return e;
    }
    assert.fail(`expected an error for ${src}`);
  };
  const e1 = err('quantity_sold * product_name');
  assert.match(e1.message, /needs numbers/);
  assert.equal(e1.offset, 16);
  const e2 = err('quantity_sold + qty');
  assert.match(e2.message, /unknown column "qty"/);
  assert.equal(e2.offset, 16);
  assert.match(err('price_per_unt > 1').message, /did you mean "price_per_unit"/);
  assert.match(err('product_name > 3').message, /cannot compare string with int/);
  assert.match(err('sum(quantity_sold)').message, /only in an aggregate/);
  assert.match(err('quantity_sold +').message, /unexpected end/);
  assert.match(err("'open").message, /unterminated string/);
  assert.match(err('quantity_sold; drop table x').message, /unexpected character/);
  assert.match(err('process.exit(1)').message, /unexpected character/);
});

test('overflow is a record error, never a silent wrong number', () => {
  const c = compileExpr('quantity_sold * price_per_unit', schema);
  assert.throws(() => c.fn({ ...row, quantity_sold: 2 ** 40, price_per_unit: 2 ** 30 }), RecordError);
});

test('decimal parsing is exact and strict', () => {
  assert.equal(toScaled('50000.15', 2), 5000015);
  assert.equal(toScaled(50000.15, 2), 5000015);
  assert.equal(toScaled('-0.5', 2), -50);
  assert.match(String(toScaled('1.005', 2)), /more than 2 decimal places/);
  assert.match(String(toScaled(1.005, 2)), /more than 2 decimal places/);
  assert.match(String(toScaled('1e400', 2)), /not a decimal/);
  assert.match(String(toScaled(1e300, 2)), /too large/);
  assert.equal(formatDecimal(123n * 10n ** 20n, 2), '123000000000000000000.00');
  assert.equal(formatDecimal(-5, 2), '-0.05');
});
