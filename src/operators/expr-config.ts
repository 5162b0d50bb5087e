/**
 * @module Compiling expressions from a spec, with problems reported at the
 * exact character of the YAML scalar that holds them.
 */
import { ExprError } from '../expr/parse.js';
import { compileExpr, Compiled } from '../expr/compile.js';
import type { PlanContext, RunContext } from './operator.js';
import type { Schema } from '../types.js';

/** Compiles `src` or reports the problem at `path` (+ offset) and returns undefined. */
export function planExpr(src: unknown, schema: Schema, ctx: PlanContext, path: (string | number)[]): Compiled | undefined {
  if (typeof src !== 'string' && typeof src !== 'number' && typeof src !== 'boolean') {
    ctx.error(path, 'expected an expression', 'expr.syntax');
    return undefined;
  }
  try {
    return compileExpr(String(src), schema, { timeZone: ctx.timeZone });
  } catch (e) {
    if (e instanceof ExprError) {
      const code = /unknown column/.test(e.message) ? 'column.unknown' : /needs|cannot compare|must share|not defined/.test(e.message) ? 'type.mismatch' : 'expr.syntax';
      ctx.error(path, e.message, code, e.offset);
      return undefined;
    }
    throw e;
  }
}

/** Compiles an expression the plan already checked, in the run's time zone. */
export function compileAtRun(src: unknown, schema: Schema, ctx: RunContext): Compiled {
  return compileExpr(String(src), schema, { timeZone: ctx.timeZone });
}
