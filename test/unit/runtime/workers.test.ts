/**
 * Flows on worker threads (`run --workers N`): spread, exact outputs against
 * SQL, logs and console output through the main thread, a failing flow, a
 * graceful stop. The embedded demo (SQLite, local files): no server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runCli, startCli, finished, tmpDir, until } from '../../support/helpers.js';
import { checkDemoOutputs } from '../../support/sql.js';
import { spread, spreadFlows, usefulWorkers } from '../../../src/runtime/workers.js';
import type { FlowPlan } from '../../../src/plan/plan.js';

const DEMO = path.join(ROOT, 'pipelines/demo.yaml');

const f = (name: string, type: string, perPartition = false) =>
  ({ name, source: { type }, tasks: perPartition ? { perPartition } : { perPartition, because: 'a test' } }) as unknown as FlowPlan;

test('flows are spread heaviest first onto the least loaded worker; never more workers than flows', () => {
  const flows = [f('publish', 'sql'), f('aggregate', 'kafka'), f('archive', 'kafka'), f('alerts', 'sql')];
  assert.deepEqual(spreadFlows(flows, 2), [
    ['aggregate', 'publish'],
    ['archive', 'alerts'],
  ]);
  assert.deepEqual(spreadFlows(flows, 3), [['aggregate'], ['archive'], ['publish', 'alerts']]);
  assert.deepEqual(spreadFlows(flows.slice(0, 2), 8), [['aggregate'], ['publish']]);
  assert.deepEqual(spreadFlows(flows, 1), [['aggregate', 'archive', 'publish', 'alerts']]);
});

test('a flow that runs as tasks goes to every worker, its weight shared, and can use more workers than there are flows', () => {
  const flows = [f('publish', 'sql'), f('aggregate', 'kafka'), f('archive', 'kafka', true)];
  // aggregate (2) goes to the first thread, publish (1) to the second; archive to both.
  assert.deepEqual(spreadFlows(flows, 2), [
    ['archive', 'aggregate'],
    ['archive', 'publish'],
  ]);
  // The less loaded thread (publish) is member 0 of archive's: it gets two of three partitions.
  assert.deepEqual(
    spread(flows, 2).map((w) => w.member),
    [1, 0],
  );
  assert.deepEqual(spreadFlows([f('archive', 'kafka', true)], 3), [['archive'], ['archive'], ['archive']]);
  assert.deepEqual(
    spread([f('archive', 'kafka', true)], 3).map((w) => w.member),
    [0, 1, 2],
  );
  assert.equal(usefulWorkers([f('archive', 'kafka', true)], 4), 4);
  assert.equal(usefulWorkers([f('aggregate', 'kafka'), f('publish', 'sql')], 4), 2);
  assert.deepEqual(spreadFlows(flows, 1), [['archive', 'aggregate', 'publish']]);
});

/** A demo database of `count` sales in a new folder. */
async function demoDir(count: number): Promise<string> {
  const dir = tmpDir();
  const r = await runCli(['demo', '--dir', dir, '--count', String(count)]);
  assert.equal(r.code, 0, r.stderr);
  for (const d of ['state', 'output']) fs.rmSync(path.join(dir, d), { recursive: true, force: true });
  return dir;
}

test('run --workers 2: the three demo flows on two threads, outputs equal SQL, logs and console output reach the command, a rerun adds nothing', async () => {
  const dir = await demoDir(3000);
  const args = ['run', DEMO, '--drain', '--workers', '2', '--no-progress', '--state-dir', path.join(dir, 'state')];
  const env = { SALESPIPE_DEMO_DIR: dir };
  const r = await runCli(args, env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /3 flows on 2 worker threads/);
  // Log lines from the workers keep their flow's scope; the summary counts every sale.
  assert.match(r.stderr, /\[sales_history\/sql\] drain: reading product_sales up to transaction_id \d+/);
  assert.match(r.stderr, /sales_history: 3,003 records in, 3,003 out, 0 dead letters/);
  assert.match(r.stderr, /worked_example: 3,003 records in, 3 out/);
  // The console sinks print on the command's standard output.
  assert.match(r.stdout, /Worked example \(transactions 3001-3003\)/);
  assert.match(r.stdout, /Dell Inspiron\s+Dell\s+Laptop\s+2\s+100000\.00/);
  await checkDemoOutputs(dir);
  for (const f of ['worked_example', 'sales_totals', 'sales_history'])
    assert.ok(fs.existsSync(path.join(dir, 'state', 'demo', `${f}.checkpoint.json`)), `${f} checkpointed`);

  // The workers' checkpoints are the flows' checkpoints: a second run reads nothing again.
  const again = await runCli(args, env);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /sales_history: 0 records in/);
  await checkDemoOutputs(dir);
  // And --workers 1 continues from them on the main thread.
  const one = await runCli([...args.slice(0, 4), '1', ...args.slice(5)], env);
  assert.equal(one.code, 0, one.stderr);
  assert.doesNotMatch(one.stderr, /worker threads/);
  assert.match(one.stderr, /sales_totals: 0 records in/);
});

test('run --workers 2: a flow failing on its worker fails the run with its reason, without a stack trace, and commits nothing', async () => {
  const dir = await demoDir(500);
  // The history's folder cannot be created: a file stands where its parent should be.
  fs.mkdirSync(path.join(dir, 'output'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'output', 'sales_history'), 'not a folder');
  const r = await runCli(['run', DEMO, '--drain', '--workers', '2', '--no-progress', '--state-dir', path.join(dir, 'state')], {
    SALESPIPE_DEMO_DIR: dir,
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /flow sales_history failed: .*sales_history/);
  assert.doesNotMatch(r.stderr, /    at /, 'no stack trace');
  assert.equal(fs.existsSync(path.join(dir, 'state', 'demo', 'sales_history.checkpoint.json')), false);
});

test('run --workers 2 stopped by SIGTERM: each flow ends its epoch on its worker, and the next run resumes from there', async () => {
  const dir = await demoDir(2000);
  const state = path.join(dir, 'state');
  const child = startCli(['run', DEMO, '--workers', '2', '--no-progress', '--state-dir', state], { SALESPIPE_DEMO_DIR: dir });
  await until(
    () => ['worked_example', 'sales_totals', 'sales_history'].every((f) => fs.existsSync(path.join(state, 'demo', `${f}.checkpoint.json`))),
    60_000,
    'a checkpoint of every flow',
  );
  child.kill('SIGTERM');
  const r = await finished(child);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /sales_history: [\d,]+ records in, [\d,]+ out, 0 dead letters/);
  // Whatever the stop committed, a drain from there gives each sale once.
  const rest = await runCli(['run', DEMO, '--drain', '--workers', '2', '--no-progress', '--state-dir', state], { SALESPIPE_DEMO_DIR: dir });
  assert.equal(rest.code, 0, rest.stderr);
  assert.match(rest.stderr, /\[sales_history\] resuming from checkpoint of epoch/);
  await checkDemoOutputs(dir);
});
