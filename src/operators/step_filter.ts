/**
 * @module `filter` step: keeps the rows for which a bool expression is true.
 * @example
 *   - filter: quantity_sold > 0 and brand != 'Acme'
 */
import type { StepDef } from './operator.js';
import { planExpr, compileAtRun } from './expr-config.js';
import { RecordError } from '../expr/compile.js';
import { typeName } from '../types.js';
import { deadLetters } from './record-schema.js';

export const filterStep: StepDef<string> = {
  key: 'filter',
  doc: 'Keeps rows whose condition is true (null counts as false). Rows that cannot be evaluated go to the dead-letter output.',
  config: { type: 'string', minLength: 1, description: 'Bool expression, e.g. `quantity_sold > 0`.' },
  plan(cfg, input, ctx) {
    const c = planExpr(cfg, input.schema, ctx, []);
    if (c && c.type.kind !== 'bool') ctx.error([], `filter condition must be bool, got ${typeName(c.type)}`, 'type.mismatch');
    return input;
  },
  create(cfg, input, _out, ctx) {
    const fn = compileAtRun(cfg, input.schema, ctx).fn;
    const dead_ = deadLetters(input.schema, `${ctx.flow}/filter`);
    return {
      process(rows, dead) {
        const out = [];
        for (const r of rows) {
          try {
            if (fn(r) === true) out.push(r);
          } catch (e) {
            if (!(e instanceof RecordError)) throw e;
            dead.push(dead_(r, e.message));
          }
        }
        return out;
      },
    };
  },
};
