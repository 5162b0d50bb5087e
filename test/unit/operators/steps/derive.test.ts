/** The derive step: columns computed in order, each seeing the ones before; exact decimals; a row it cannot compute is a dead letter. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveStep } from '../../../../src/operators/steps/derive.js';
import type { DeadLetter, StreamInfo } from '../../../../src/operators/operator.js';
import { typeName } from '../../../../src/core/types.js';
import { colType as t } from '../../../support/types.js';
import { runContext } from '../../../support/run-ctx.js';
import { plan, step } from '../../../support/operators.js';
import { planCtx } from '../../../support/lookup.js';

const input: StreamInfo = {
  mode: 'update',
  key: ['id'],
  schema: [
    { name: 'id', type: t('int') },
    { name: 'qty', type: t('int') },
    { name: 'price', type: t('decimal(12,2)') },
    { name: 'at', type: t('timestamp') },
  ],
};

test('adds columns with their types, each seeing the ones derived before it; a replaced column moves to the end with its new value', () => {
  const cfg = { revenue: 'qty * price', doubled: 'revenue * 2', qty: 'qty + 1', day: 'date(at)' };
  const { out, step: s } = step(deriveStep, cfg, input, runContext());
  assert.deepEqual(
    out.schema.map((f) => `${f.name} ${typeName(f.type)}`),
    ['id int', 'price decimal(12,2)', 'at timestamp', 'revenue decimal(18,2)', 'doubled decimal(18,2)', 'qty int', 'day string'],
  );
  assert.deepEqual(out.key, ['id']);
  const dead: DeadLetter[] = [];
  const [r] = s.process([{ id: 1, qty: 3, price: 33333, at: Date.UTC(2026, 0, 15, 23, 59) }], dead);
  assert.deepEqual(r, {
    id: 1,
    qty: 4,
    price: 33333,
    at: Date.UTC(2026, 0, 15, 23, 59),
    revenue: 99999,
    doubled: 199998,
    day: '2026-01-15',
  });
  assert.deepEqual(dead, []);
});

test('a row whose expression overflows is a dead letter naming the column; nothing of it goes on', () => {
  const { step: s } = step(deriveStep, { revenue: 'qty * price' }, input, runContext({ flow: 'f' }));
  const dead: DeadLetter[] = [];
  const got = s.process(
    [
      { id: 1, qty: 2 ** 40, price: 2 ** 30, at: 0 },
      { id: 2, qty: 1, price: 5, at: 0 },
    ],
    dead,
  );
  assert.deepEqual(
    got.map((r) => [r.id, r.revenue]),
    [[2, 5]],
  );
  assert.match(dead[0].reason, /^derive revenue: numeric overflow/);
});

test('plan: a key column cannot be replaced; an unknown column is reported at its offset, and the other columns still go on', () => {
  const errors: string[] = [];
  const p = plan(deriveStep, { id: 'id + 1', ok: 'qty * 2', bad: 'qty * prise' }, input, planCtx(errors));
  assert.deepEqual(errors, [
    'id: cannot replace key column "id" [column.key]',
    'bad: unknown column "prise" (did you mean "price"?); available: qty, price, at, id, ok [column.unknown]',
  ]);
  assert.ok(
    p.out.schema.some((f: { name: string }) => f.name === 'ok'),
    'the columns that could be typed go on to the next step',
  );
});
