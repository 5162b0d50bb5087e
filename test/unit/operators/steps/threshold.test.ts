/** The threshold step: crossings, resolutions, deterministic alert ids. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { thresholdStep } from '../../../../src/operators/steps/threshold.js';
import type { StreamInfo } from '../../../../src/operators/operator.js';
import { colType as t } from '../../../support/types.js';
import { runContext } from '../../../support/run-ctx.js';
import { plan } from '../../../support/operators.js';
import { planCtx } from '../../../support/lookup.js';

test('threshold: one alert per crossing, resolved on the way back, deterministic ids that survive a restore', () => {
  const input: StreamInfo = {
    mode: 'update',
    key: ['product'],
    schema: [
      { name: 'product', type: t('string') },
      { name: 'projected', type: t('int') },
      { name: 'reorder_threshold', type: t('int?') },
    ],
  };
  const cfg = { value: 'projected', below: 'coalesce(reorder_threshold, 10)' };
  const errors: string[] = [];
  const p = plan(thresholdStep, cfg, input, planCtx(errors))!;
  assert.deepEqual(errors, []);
  const make = () => thresholdStep.create(p.planned, runContext());
  const seq = [
    [30, null],
    [12, null],
    [9, null],
    [4, null],
    [50, null],
    [50, null],
    [19, 20],
    [8, null],
  ] as const;
  const rows = seq.map(([projected, reorder_threshold]) => ({ product: 'a', projected, reorder_threshold }));
  const a = make();
  const events = a.process(rows.slice(0, 5), []);
  const b = make();
  b.restore!(JSON.parse(JSON.stringify(a.snapshot!())));
  events.push(...b.process(rows.slice(5), []));
  assert.deepEqual(
    events.map((e) => [e.event, e.crossing, e.projected, e.threshold]),
    [
      ['alert', 1, 9, 10],
      ['resolved', 1, 50, 10],
      ['alert', 2, 19, 20],
    ],
  );
  // The same input gives the same ids: a consumer can deduplicate a replay.
  const again = make().process(rows, []);
  assert.deepEqual(
    again.map((e) => e.alert_id),
    events.map((e) => e.alert_id),
  );
  assert.equal(new Set(events.map((e) => e.alert_id)).size, 3);
  const bad: string[] = [];
  plan(thresholdStep, { value: 'product', above: 3 }, { ...input, key: undefined }, planCtx(bad));
  assert.deepEqual(bad.sort(), [
    ': threshold needs a key: what is watched (set key, or feed it a keyed stream such as an aggregate) [value.key]',
    'value: value must be numeric, got string [type.mismatch]',
  ]);
});
