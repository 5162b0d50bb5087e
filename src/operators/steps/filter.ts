/**
 * @module `filter` step: keeps the rows for which a bool expression is true.
 * @example
 *   - filter: quantity_sold > 0 and brand != 'Acme'
 */
import type { StepDef } from '../operator.js';
import { planExpr } from '../expr-config.js';
import { RecordError, Eval } from '../../expr/compile.js';
import { Schema, typeName } from '../../core/types.js';
import { deadLetters } from '../record-schema.js';

const config = { type: 'string', minLength: 1, description: 'Bool expression, e.g. `quantity_sold > 0`.' } as const;

export const filterStep: StepDef<typeof config, { fn: Eval; schema: Schema }> = {
  key: 'filter',
  stateless: true,
  doc: 'Keeps rows whose condition is true (null counts as false). Rows that cannot be evaluated go to the dead-letter output.',
  config,
  plan(cfg, input, ctx) {
    const c = planExpr(cfg, input.schema, ctx, []);
    if (c && c.type.kind !== 'bool') ctx.error([], `filter condition must be bool, got ${typeName(c.type)}`, 'type.mismatch');
    // The stream goes on unchanged, so the steps after this one are still checked.
    return { out: input, planned: c && { fn: c.fn, schema: input.schema } } as never;
  },
  describe: (cfg) => `filter ${cfg}`,
  create({ fn, schema }, ctx) {
    const toDead = deadLetters(schema, `${ctx.flow}/filter`);
    return {
      process(rows, dead) {
        const out = [];
        for (const r of rows) {
          try {
            if (fn(r) === true) out.push(r);
          } catch (e) {
            if (!(e instanceof RecordError)) throw e;
            dead.push(toDead(r, e.message));
          }
        }
        return out;
      },
    };
  },
};
