/** The assert step: rows that break the check are dead letters with its message (not dropped silently, as filter would). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertStep } from '../../../../src/operators/steps/assert.js';
import type { DeadLetter, StreamInfo } from '../../../../src/operators/operator.js';
import { colType as t } from '../../../support/types.js';
import { runContext } from '../../../support/run-ctx.js';
import { plan, step } from '../../../support/operators.js';
import { planCtx } from '../../../support/lookup.js';

const input: StreamInfo = {
  mode: 'append',
  schema: [
    { name: 'id', type: t('int') },
    { name: 'qty', type: t('int?') },
  ],
};

test('rows whose check is not true (false or null) are dead letters with the message and the row; the others pass unchanged', () => {
  const { out, step: s } = step(assertStep, { check: 'qty > 0', message: 'quantity must be positive' }, input, runContext({ flow: 'f' }));
  assert.deepEqual(out, input);
  const dead: DeadLetter[] = [];
  const got = s.process(
    [
      { id: 1, qty: 1 },
      { id: 2, qty: 0 },
      { id: 3, qty: null },
    ],
    dead,
  );
  assert.deepEqual(got, [{ id: 1, qty: 1 }]);
  assert.deepEqual(
    dead.map((d) => [d.reason, JSON.parse(d.payload).id, d.origin]),
    [
      ['quantity must be positive', 2, 'f/assert'],
      ['quantity must be positive', 3, 'f/assert'],
    ],
  );
});

test('without a message the reason is the check; an overflow in the check is a dead letter saying so', () => {
  const { step: s } = step(assertStep, { check: 'qty * qty * qty > 0' }, input, runContext());
  const dead: DeadLetter[] = [];
  s.process(
    [
      { id: 1, qty: -1 },
      { id: 2, qty: 2 ** 30 },
    ],
    dead,
  );
  assert.equal(dead[0].reason, 'failed check: qty * qty * qty > 0');
  assert.match(dead[1].reason, /^failed check: qty \* qty \* qty > 0 \(numeric overflow/);
});

test('plan: a check that is not bool is reported at check', () => {
  const errors: string[] = [];
  plan(assertStep, { check: 'qty' }, input, planCtx(errors));
  assert.deepEqual(errors, ['check: assert check must be bool, got int? [type.mismatch]']);
});
