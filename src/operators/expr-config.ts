/**
 * @module Compiling expressions from a spec, with problems reported at the
 * exact character of the YAML scalar that holds them.
 */
import { ExprError } from '../expr/parse.js';
import { compileExpr, Compiled } from '../expr/compile.js';
import type { PlanContext } from './operator.js';
import type { Schema } from '../core/types.js';

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
      ctx.error(path, e.message, e.code, e.offset, e.length);
      return undefined;
    }
    throw e;
  }
}
