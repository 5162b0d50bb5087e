/**
 * The runtime's own contract, driven by small test operators: backpressure
 * (a slow sink slows the source), the epoch order, and restore on restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { SourceDef, SinkDef, StreamInfo } from '../../../src/operators/operator.js';
import { aggregateStep } from '../../../src/operators/steps/aggregate/index.js';
import { plan as plan_, planContext } from '../../support/operators.js';
import type { Plan } from '../../../src/plan/plan.js';
import { runPlan } from '../../../src/runtime/run.js';
import { createLogger } from '../../../src/core/log.js';
import { tmpDir } from '../../support/helpers.js';

const stream: StreamInfo = {
  mode: 'append',
  schema: [
    { name: 'k', type: { kind: 'string', nullable: false } },
    { name: 'v', type: { kind: 'int', nullable: false } },
  ],
};

function harness(batches: number, perBatch: number, sinkDelayMs: number) {
  const events: string[] = [];
  let pulled = 0,
    written = 0,
    maxAhead = 0;
  const source: SourceDef = {
    type: 'counter',
    doc: '',
    config: {},
    records: 'json',
    plan: () => ({ out: stream, planned: undefined }),
    create: () => {
      let pos = 0;
      return {
        async open(p) {
          pos = (p as number | undefined) ?? 0;
          events.push(`open@${pos}`);
        },
        async next() {
          if (pos >= batches) return null;
          pulled++;
          maxAhead = Math.max(maxAhead, pulled - written);
          pos++;
          return { rows: Array.from({ length: perBatch }, (_, i) => ({ k: `k${i % 3}`, v: 1 })), dead: [] };
        },
        position: () => pos,
        async commit(p) {
          events.push(`source.commit@${p}`);
        },
        async close() {},
      };
    },
  };
  const received: Record<string, unknown>[] = [];
  const sink: SinkDef = {
    type: 'slow',
    doc: '',
    config: {},
    delivery: 'none',
    plan: () => {},
    create: () => ({
      async open() {},
      async write(rows) {
        await new Promise((r) => setTimeout(r, sinkDelayMs));
        received.push(...rows);
        written++;
      },
      async preCommit(e) {
        events.push(`preCommit#${e}`);
        return { e };
      },
      async commit(e) {
        events.push(`commit#${e}`);
      },
      async close() {},
    }),
  };
  return { source, sink, events, received, stats: () => ({ pulled, maxAhead }) };
}

function plan(h: ReturnType<typeof harness>, withAggregate: boolean): Plan {
  const aggCfg = { groupBy: ['k'], compute: { total: 'sum(v)' }, mode: 'update' as const };
  const agg = plan_(aggregateStep, aggCfg, stream, planContext())!;
  const aggOut = agg.out as StreamInfo;
  return {
    pipeline: 'rt',
    file: 'rt.yaml',
    timeZone: 'UTC',
    checkpointInterval: '1m',
    checkpointTopic: '_salespipe_checkpoints',
    checkpointReplication: 1,
    connections: {},
    connectionLabels: {},
    flows: [
      {
        name: 'main',
        checkpointMs: 60_000,
        reads: [],
        writes: [],
        upstream: [],
        tasks: { perPartition: false, because: 'its source has no partitions' },
        source: { type: 'counter', cfg: {}, def: h.source, out: stream, planned: undefined, path: [] },
        steps: withAggregate
          ? [{ key: 'aggregate', cfg: aggCfg, def: aggregateStep as never, input: stream, out: aggOut, planned: agg.planned, path: [] }]
          : [],
        sinks: [{ type: 'slow', cfg: {}, def: h.sink, input: withAggregate ? aggOut : stream, planned: undefined, path: [] }],
      },
    ],
  };
}

test('a slow sink slows the source: at most one batch is pulled ahead of the sink', async () => {
  const h = harness(20, 100, 15);
  await runPlan(plan(h, false), { stateDir: tmpDir(), drain: true, log: createLogger(() => {}), progress: false });
  assert.equal(h.received.length, 2000);
  assert.ok(h.stats().maxAhead <= 1, `source ran ${h.stats().maxAhead} batches ahead`);
});

test('epoch order: preCommit, checkpoint, sink commit, source commit; a restart resumes from the checkpoint', async () => {
  const state = tmpDir();
  const h = harness(5, 10, 0);
  await runPlan(plan(h, true), { stateDir: state, drain: true, log: createLogger(() => {}), progress: false });
  assert.deepEqual(h.events, ['open@0', 'preCommit#1', 'commit#1', 'source.commit@5']);
  const cp = JSON.parse(fs.readFileSync(path.join(state, 'rt', 'main.checkpoint.json'), 'utf8'));
  assert.equal(cp.epoch, 1);
  assert.equal(cp.source, 5);
  assert.deepEqual(cp.sinks, [{ e: 1 }]);
  assert.deepEqual(h.received.map((r) => [r.k, r.total]).sort(), [
    ['k0', 20],
    ['k1', 15],
    ['k2', 15],
  ]);

  // Restart with more input: the aggregate continues from its checkpointed state.
  const h2 = harness(7, 10, 0);
  await runPlan(plan(h2, true), { stateDir: state, drain: true, log: createLogger(() => {}), progress: false });
  assert.deepEqual(h2.events, ['open@5', 'preCommit#2', 'commit#2', 'source.commit@7']);
  assert.deepEqual(h2.received.map((r) => [r.k, r.total]).sort(), [
    ['k0', 28],
    ['k1', 21],
    ['k2', 21],
  ]);
});
