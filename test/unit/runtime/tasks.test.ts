/**
 * Flows as tasks (runtime/tasks.ts) without a server: which flows run as
 * one task per partition, what a task takes over from the flow's checkpoint,
 * how status combines the tasks' checkpoints, how figures add up, and who
 * may write an output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { ROOT } from '../../support/helpers.js';
import { loadSpec, loadSpecText } from '../../../src/spec/load.js';
import { planSpec } from '../../../src/plan/plan.js';
import { combineStats } from '../../../src/runtime/tasks.js';
import { combinedCheckpoint, newTaskCheckpoint, taskCheckpoint } from '../../../src/runtime/task-checkpoints.js';
import type { Checkpoint } from '../../../src/runtime/checkpoint.js';
import type { FlowStats } from '../../../src/runtime/flow.js';
import { checkMarkers } from '../../../src/operators/output-owner.js';

const plan = (f: string) => planSpec(loadSpec(path.join(ROOT, 'pipelines', f), {}))!;

test('a Kafka flow runs as one task per partition when no step keeps state and every output takes several writers; the others say why not', () => {
  const sales = plan('sales.yaml');
  const by = new Map(sales.flows.map((f) => [f.name, f.tasks]));
  assert.deepEqual(by.get('archive_sales'), { perPartition: true });
  assert.deepEqual(by.get('publish_sales'), { perPartition: false, because: 'its source has no partitions' });
  assert.match((by.get('aggregate_sales') as { because: string }).because, /^step aggregate keeps state across records/);
  const inv = plan('inventory.yaml');
  assert.match((inv.flows.find((f) => f.name === 'low_stock_alerts')!.tasks as { because: string }).because, /latest values per key/);

  const spec = (sink: string) =>
    planSpec(
      loadSpecText(
        'x.yaml',
        `pipeline: x
connections: { k: { type: kafka, brokers: "127.0.0.1:9092" } }
flows:
  f:
    source: { type: kafka, connection: k, topic: t, schema: { id: int } }
    steps: [ { filter: "id > 0" } ]
    sinks: [ ${sink} ]
`,
        {},
      ),
    )!.flows[0].tasks;
  assert.deepEqual(spec('{ type: kafka, connection: k, topic: u }'), { perPartition: true });
  assert.deepEqual(spec('{ type: file, path: out.jsonl }'), {
    perPartition: false,
    because: 'its file output out.jsonl is one file, written by one writer',
  });
});

const flowCp: Checkpoint = {
  version: 1,
  epoch: 7,
  source: { topic: 't', topicId: 'id1', offsets: { 0: '10', 1: '20', 2: '30' }, eventTimes: { 0: 100, 2: 300 } },
  steps: [null, null],
  sinks: [[{ key: 'a.parquet', id: 'a.staged', tag: 'x' }]],
  deadLetter: { length: 42 },
  at: '2026-12-01T00:00:00.000Z',
  totals: { recordsIn: 60, recordsOut: 55, deadLetters: 5, late: 0 },
};

test("a task's first checkpoint is the flow's: the same epoch, its partition's position; task 0 alone finishes the staged outputs and carries the counts", () => {
  const t0 = taskCheckpoint(flowCp, 0);
  assert.equal(t0.epoch, 7);
  assert.deepEqual(t0.source, { topic: 't', topicId: 'id1', offsets: { 0: '10' }, eventTimes: { 0: 100 } });
  assert.deepEqual(t0.sinks, flowCp.sinks);
  assert.deepEqual(t0.totals, flowCp.totals);
  // The flow's dead-letter file is not the task's: its length says nothing about the task's file.
  assert.equal(t0.deadLetter, undefined);
  const t1 = taskCheckpoint(flowCp, 1);
  assert.deepEqual(t1.source, { topic: 't', topicId: 'id1', offsets: { 1: '20' }, eventTimes: {} });
  assert.deepEqual(t1.sinks, [undefined]);
  assert.deepEqual(t1.totals, { recordsIn: 0, recordsOut: 0, deadLetters: 0, late: 0 });
  // A partition the flow had not seen (added since): no position, so the source reads it from its start.
  assert.deepEqual((taskCheckpoint(flowCp, 3).source as { offsets: object }).offsets, {});
  // After a reset (no positions), no task has one.
  assert.equal(taskCheckpoint({ ...flowCp, source: undefined }, 0).source, undefined);
});

test('a task whose partition was added after the others started begins with no position (its partition read from the start) and no counts', () => {
  const sibling: Checkpoint = { ...taskCheckpoint(flowCp, 1), epoch: 12, reset: undefined };
  const cp = newTaskCheckpoint(sibling);
  assert.equal(cp.epoch, 12);
  assert.deepEqual(cp.source, { topic: 't', topicId: 'id1', offsets: {}, eventTimes: {} });
  assert.deepEqual(cp.sinks, [undefined]);
  assert.deepEqual(cp.totals, { recordsIn: 0, recordsOut: 0, deadLetters: 0, late: 0 });
  assert.equal(newTaskCheckpoint({ ...sibling, source: undefined }).source, undefined);
});

test("status combines the tasks' checkpoints: every partition's position, the counts summed, the latest epoch", () => {
  const task = (p: number, epoch: number, off: string, n: number, at = '2026-12-02T00:00:00.000Z'): Checkpoint => ({
    ...taskCheckpoint(flowCp, p),
    epoch,
    at,
    source: { topic: 't', topicId: 'id1', offsets: { [p]: off }, eventTimes: {} },
    totals: { recordsIn: n, recordsOut: n, deadLetters: 0, late: 0 },
  });
  assert.equal(combinedCheckpoint(flowCp, new Map()), flowCp);
  // Task 2 has not committed yet: its partition stands where the flow's checkpoint left it, and the
  // counts are task 0's (which took the flow's over) plus task 1's.
  const c = combinedCheckpoint(
    flowCp,
    new Map([
      [0, task(0, 9, '15', 65)],
      [1, task(1, 12, '25', 5)],
    ]),
  )!;
  assert.equal(c.epoch, 12);
  assert.deepEqual((c.source as { offsets: object }).offsets, { 0: '15', 1: '25', 2: '30' });
  assert.deepEqual(c.totals, { recordsIn: 70, recordsOut: 70, deadLetters: 0, late: 0 });
  // Task 0 not committed yet: the flow's own counts still count.
  const d = combinedCheckpoint(flowCp, new Map([[1, task(1, 8, '25', 5)]]))!;
  assert.equal(d.totals!.recordsIn, 65);
  // A flow that started as tasks has no checkpoint of its own.
  const e = combinedCheckpoint(undefined, new Map([[0, task(0, 3, '4', 4)]]))!;
  assert.deepEqual((e.source as { offsets: object }).offsets, { 0: '4' });
});

test("a flow's figures from its tasks': counts summed, the watermark the least, unknown while any task has none", () => {
  const s = (over: Partial<FlowStats>): FlowStats => ({
    flow: 'f',
    recordsIn: 0,
    recordsOut: 0,
    deadLetters: 0,
    late: 0,
    epochs: 0,
    counters: {},
    startedAt: 1000,
    ...over,
  });
  const c = combineStats('f', [
    s({ recordsIn: 10, recordsOut: 9, deadLetters: 1, epochs: 2, lag: 3, watermark: 500, counters: { 'join misses': 1 }, lastCommitAt: 5 }),
    s({ recordsIn: 5, recordsOut: 5, epochs: 1, lag: 4, watermark: 300, counters: { 'join misses': 2 }, startedAt: 900, lastCommitAt: 7 }),
  ]);
  assert.equal(c.recordsIn, 15);
  assert.equal(c.recordsOut, 14);
  assert.equal(c.deadLetters, 1);
  assert.equal(c.epochs, 3);
  assert.equal(c.lag, 7);
  assert.equal(c.watermark, 300);
  assert.deepEqual(c.counters, { 'join misses': 3 });
  assert.equal(c.startedAt, 900);
  assert.equal(c.lastCommitAt, 7);
  assert.equal(c.finishedAt, undefined);
  assert.equal(combineStats('f', [s({ watermark: 1 }), s({})]).watermark, undefined);
  assert.equal(combineStats('f', [s({ lag: undefined })]).lag, undefined);
});

test("the tasks of a flow each own their files of an output; an exclusive output still refuses another flow, and a task's own marker is checked", () => {
  const m = (flow: string, epoch: number) => ({ pipeline: 'p', flow, epoch, at: 'then' });
  const all = [m('archive', 7), m('archive.0', 9), m('archive.1', 8)];
  checkMarkers(all, { pipeline: 'p', flow: 'archive.2' }, 'dataset d', 0, 'cp', true);
  checkMarkers(all, { pipeline: 'p', flow: 'archive.0' }, 'dataset d', 9, 'cp', true);
  assert.throws(
    () => checkMarkers(all, { pipeline: 'p', flow: 'archive.0' }, 'dataset d', 8, 'cp', false),
    /dataset d holds output of flow archive\.0 up to epoch 9/,
  );
  assert.throws(
    () => checkMarkers(all, { pipeline: 'p', flow: 'other' }, 'dataset d', 0, 'cp', true),
    /is written by flow archive of pipeline p/,
  );
  assert.throws(
    () => checkMarkers([m('archive_x.0', 1)], { pipeline: 'p', flow: 'archive' }, 'dataset d', 0, 'cp', true),
    /written by flow archive_x\.0/,
  );
});
