/**
 * Driving one operator in a test as a plan would: its config's defaults
 * filled in, planned once (a reported problem fails the test), then created
 * from what the planner returned.
 */
import assert from 'node:assert/strict';
import type { PlanContext, RunContext, StreamInfo, Sink, Source, Step } from '../../src/operators/operator.js';

/** Any operator definition (their config types are derived from their schemas; comparing them is beyond the compiler's depth). */
type Def = { config: unknown; plan(...a: any[]): any; create(...a: any[]): any };
import { withDefaults } from '../../src/core/json-schema.js';

export function planContext(over: Partial<PlanContext> = {}): PlanContext {
  return { error: (p, m) => assert.fail(`${p.join('.')}: ${m}`), warn: () => {}, connections: {}, timeZone: 'UTC', ...over };
}

/** A step planned over `input`: its output stream and the step itself. */
export function step(
  def: Def,
  cfg: unknown,
  input: StreamInfo,
  ctx: RunContext,
  plan: Partial<PlanContext> = {},
): { out: StreamInfo; step: Step; planned: unknown } {
  const p = def.plan(withDefaults(def.config, cfg), input, planContext({ timeZone: ctx.timeZone, connections: ctx.connections, ...plan }));
  assert.ok(p, 'the step plans');
  return { out: p.out, step: def.create(p.planned, ctx), planned: p.planned };
}

/** Plans an operator's config as the plan does (defaults filled in), reporting to `ctx`; returns what the planner returned. */
export function plan(def: Def, cfg: unknown, ...args: unknown[]): any {
  return def.plan(withDefaults(def.config, cfg), ...args);
}

/** The stream a step produces, planning only. */
export function planned(def: Def, cfg: unknown, input: StreamInfo, plan: Partial<PlanContext> = {}): StreamInfo {
  const p = def.plan(withDefaults(def.config, cfg), input, planContext(plan));
  assert.ok(p, 'the step plans');
  return p.out;
}

export function source(def: Def, cfg: unknown, ctx: RunContext): { out: StreamInfo; source: Source } {
  const p = def.plan(withDefaults(def.config, cfg), planContext({ timeZone: ctx.timeZone, connections: ctx.connections }));
  assert.ok(p, 'the source plans');
  return { out: p.out, source: def.create(p.planned, ctx) };
}

export function sink(def: Def, cfg: unknown, input: StreamInfo, ctx: RunContext): Sink {
  const p = def.plan(withDefaults(def.config, cfg), input, planContext({ timeZone: ctx.timeZone, connections: ctx.connections }));
  assert.ok(p !== undefined, 'the sink plans');
  return def.create(p, ctx);
}
