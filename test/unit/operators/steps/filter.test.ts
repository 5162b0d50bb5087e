/** The filter step: rows whose condition is true pass; null is not true; a row it cannot evaluate is a dead letter. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filterStep } from '../../../../src/operators/steps/filter.js';
import type { DeadLetter, StreamInfo } from '../../../../src/operators/operator.js';
import { colType as t } from '../../../support/types.js';
import { runContext } from '../../../support/run-ctx.js';
import { step } from '../../../support/operators.js';
import { planCtx } from '../../../support/lookup.js';
import { plan } from '../../../support/operators.js';

const input: StreamInfo = {
  mode: 'append',
  schema: [
    { name: 'id', type: t('int') },
    { name: 'qty', type: t('int?') },
    { name: 'brand', type: t('string') },
    { name: 'price', type: t('decimal(12,2)') },
  ],
};

test('keeps the rows whose condition is true; null and false drop; the stream goes on unchanged', () => {
  const { out, step: s } = step(filterStep, "qty > 0 and brand != 'Acme'", input, runContext());
  assert.deepEqual(out, input);
  const dead: DeadLetter[] = [];
  const got = s.process(
    [
      { id: 1, qty: 2, brand: 'Dell', price: 100 },
      { id: 2, qty: 0, brand: 'Dell', price: 100 },
      { id: 3, qty: null, brand: 'Dell', price: 100 },
      { id: 4, qty: 5, brand: 'Acme', price: 100 },
    ],
    dead,
  );
  assert.deepEqual(
    got.map((r) => r.id),
    [1],
  );
  assert.deepEqual(dead, []);
});

test('a row whose condition overflows is a dead letter with the reason and the row; the others pass', () => {
  const { step: s } = step(filterStep, 'qty * price > 0', input, runContext({ flow: 'f' }));
  const dead: DeadLetter[] = [];
  const got = s.process(
    [
      { id: 1, qty: 2 ** 40, brand: 'x', price: 2 ** 30 },
      { id: 2, qty: 1, brand: 'x', price: 1 },
    ],
    dead,
  );
  assert.deepEqual(
    got.map((r) => r.id),
    [2],
  );
  assert.equal(dead.length, 1);
  assert.match(dead[0].reason, /numeric overflow/);
  assert.equal(dead[0].origin, 'f/filter');
  assert.equal(JSON.parse(dead[0].payload).id, 1);
});

test('plan: a condition that is not bool, or names an unknown column, is reported at its offset', () => {
  const errors: string[] = [];
  plan(filterStep, 'qty + 1', input, planCtx(errors));
  plan(filterStep, 'qtty > 1', input, planCtx(errors));
  assert.deepEqual(errors, [
    ': filter condition must be bool, got int? [type.mismatch]',
    ': unknown column "qtty" (did you mean "qty"?); available: id, qty, brand, price [column.unknown]',
  ]);
});
