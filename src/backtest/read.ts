/**
 * @module A flow's input as a backtest reads it: the source read to its end
 * (as `--drain` would, without touching the flow's checkpoint or outputs),
 * through the steps up to a given step, in a scratch state directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FlowPlan, Plan } from '../plan/plan.js';
import type { Logger } from '../core/log.js';
import type { DeadLetter, Step } from '../operators/operator.js';
import type { Row } from '../core/types.js';
import { flowContext } from '../runtime/flow.js';

/**
 * Runs the flow's records through its steps before the one keyed `key`
 * and hands each batch to `onRows`; returns that step (created, fed
 * nothing) and the records read.
 */
export async function readThrough<S extends Step>(
  plan: Plan,
  flow: FlowPlan,
  key: string,
  o: { log: Logger; signal?: AbortSignal },
  onRows: (rows: Row[], step: S) => void,
): Promise<{ step: S; read: number }> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'salespipe-backtest-'));
  const ctx = flowContext(plan, flow, { stateDir, drain: true, log: o.log, signal: o.signal });
  const at = flow.steps.findIndex((s) => s.key === key);
  const steps: Step[] = flow.steps.slice(0, at + 1).map((s) => s.def.create(s.planned, ctx));
  const step = steps[at] as S;
  const before = steps.slice(0, at);
  const source = flow.source.def.create(flow.source.planned, ctx);
  let read = 0;
  try {
    for (const s of steps) await s.open?.();
    await source.open(undefined);
    for (;;) {
      const batch = await source.next();
      if (batch === null) break;
      read += batch.rows.length;
      let rows: Row[] = batch.rows;
      const dead: DeadLetter[] = [];
      for (const s of before) rows = s.process(rows, dead);
      onRows(rows, step);
    }
  } finally {
    await source.close();
    for (const s of steps) await s.close?.();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
  return { step, read };
}
