/** The select step: the listed columns, in that order; keys kept; event time dropped with its column. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectStep } from '../../../../src/operators/steps/select.js';
import type { StreamInfo } from '../../../../src/operators/operator.js';
import { colType as t } from '../../../support/types.js';
import { runContext } from '../../../support/run-ctx.js';
import { plan, step } from '../../../support/operators.js';
import { planCtx } from '../../../support/lookup.js';

const input: StreamInfo = {
  mode: 'append',
  eventTime: 'at',
  schema: [
    { name: 'id', type: t('int') },
    { name: 'name', type: t('string?') },
    { name: 'at', type: t('timestamp') },
  ],
};

test('keeps the listed columns in the listed order; without the event-time column the stream has none', () => {
  const { out, step: s } = step(selectStep, ['name', 'id'], input, runContext());
  assert.deepEqual(
    out.schema.map((f) => f.name),
    ['name', 'id'],
  );
  assert.equal(out.eventTime, undefined);
  assert.deepEqual(s.process([{ id: 1, name: null, at: 5 }], []), [{ name: null, id: 1 }]);
  assert.deepEqual(Object.keys(s.process([{ id: 1, name: 'a', at: 5 }], [])[0]), ['name', 'id']);
  assert.equal(step(selectStep, ['at', 'id'], input, runContext()).out.eventTime, 'at');
});

test('plan: unknown columns and a dropped key column are reported', () => {
  const errors: string[] = [];
  plan(selectStep, ['id', 'nme'], input, planCtx(errors));
  plan(selectStep, ['name'], { ...input, mode: 'update', key: ['id'] }, planCtx(errors));
  assert.deepEqual(errors, [
    '1: unknown column "nme"; available: id, name, at [column.unknown]',
    ': select must keep key column "id" [column.key]',
  ]);
});
