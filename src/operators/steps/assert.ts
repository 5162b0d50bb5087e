/**
 * @module `assert` step: rows that break a rule go to the dead-letter output
 * with the rule's message, instead of being silently dropped (as `filter` would).
 * @example
 *   - assert: { check: quantity_sold > 0, message: quantity must be positive }
 */
import type { StepDef } from '../operator.js';
import { planExpr } from '../expr-config.js';
import { RecordError, Eval } from '../../expr/compile.js';
import { Schema, typeName } from '../../core/types.js';
import { deadLetters } from '../record-schema.js';

const config = {
  type: 'object',
  additionalProperties: false,
  required: ['check'],
  properties: {
    check: { type: 'string', minLength: 1, description: 'Bool expression every valid row satisfies.' },
    message: { type: 'string', description: 'Reason recorded with a failing row (default: the check itself).' },
  },
} as const;

export const assertStep: StepDef<typeof config, { fn: Eval; reason: string; schema: Schema }> = {
  key: 'assert',
  stateless: true,
  doc: 'Sends rows whose check is not true to the dead-letter output, with a message; other rows pass unchanged.',
  config,
  plan(cfg, input, ctx) {
    const c = planExpr(cfg.check, input.schema, ctx, ['check']);
    if (c && c.type.kind !== 'bool') ctx.error(['check'], `assert check must be bool, got ${typeName(c.type)}`, 'type.mismatch');
    // The stream goes on unchanged, so the steps after this one are still checked.
    return { out: input, planned: c && { fn: c.fn, reason: cfg.message ?? `failed check: ${cfg.check}`, schema: input.schema } } as never;
  },
  describe: (cfg) => `assert ${cfg.check}`,
  create({ fn, reason, schema }, ctx) {
    const toDead = deadLetters(schema, `${ctx.flow}/assert`);
    return {
      process(rows, dead) {
        const out = [];
        for (const r of rows) {
          let ok: unknown;
          try {
            ok = fn(r);
          } catch (e) {
            if (!(e instanceof RecordError)) throw e;
            ok = e.message;
          }
          if (ok === true) out.push(r);
          else dead.push(toDead(r, typeof ok === 'string' ? `${reason} (${ok})` : reason));
        }
        return out;
      },
    };
  },
};
