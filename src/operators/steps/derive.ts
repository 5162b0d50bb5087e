/**
 * @module `derive` step: adds (or replaces) columns computed from expressions.
 * @example
 *   - derive:
 *       revenue: quantity_sold * price_per_unit
 *       sale_date: date(transaction_date)
 */
import type { StepDef, StreamInfo } from '../operator.js';
import { planExpr } from '../expr-config.js';
import { RecordError, Eval } from '../../expr/compile.js';
import type { Row, Schema } from '../../core/types.js';
import { deadLetters } from '../record-schema.js';

const config = {
  type: 'object',
  minProperties: 1,
  propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
  additionalProperties: { type: ['string', 'number', 'boolean'], description: 'Expression computing the column.' },
  description: 'New column name -> expression.',
} as const;

interface Planned {
  cols: [string, Eval][];
  schema: Schema;
}

export const deriveStep: StepDef<typeof config, Planned> = {
  key: 'derive',
  stateless: true,
  doc: 'Adds or replaces columns; each expression sees the columns derived before it.',
  config,
  plan(cfg, input, ctx) {
    let schema: Schema = input.schema;
    const cols: [string, Eval][] = [];
    let ok = true;
    for (const [name, src] of Object.entries(cfg)) {
      const c = planExpr(src, schema, ctx, [name]);
      if (!c) {
        ok = false;
        continue;
      }
      if (input.key?.includes(name)) {
        ok = false;
        ctx.error([name], `cannot replace key column "${name}"`, 'column.key');
      }
      schema = [...schema.filter((f) => f.name !== name), { name, type: c.type }];
      cols.push([name, c.fn]);
    }
    // With a problem, the columns that could be typed still go on, so later steps are checked.
    return { out: { ...input, schema } satisfies StreamInfo, planned: ok ? { cols, schema: input.schema } : (undefined as never) };
  },
  describe: (cfg) =>
    `derive ${Object.entries(cfg)
      .map(([k, v]) => `${k} = ${v}`)
      .join('; ')}`,
  create({ cols, schema }, ctx) {
    const toDead = deadLetters(schema, `${ctx.flow}/derive`);
    return {
      process(rows, dead) {
        const out: Row[] = [];
        next: for (const r of rows) {
          const o: Row = { ...r };
          for (const [name, fn] of cols) {
            try {
              o[name] = fn(o);
            } catch (e) {
              if (!(e instanceof RecordError)) throw e;
              dead.push(toDead(r, `derive ${name}: ${e.message}`));
              continue next;
            }
          }
          out.push(o);
        }
        return out;
      },
    };
  },
};
