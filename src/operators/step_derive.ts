/**
 * @module `derive` step: adds (or replaces) columns computed from expressions.
 * @example
 *   - derive:
 *       revenue: quantity_sold * price_per_unit
 *       sale_date: date(transaction_date)
 */
import type { StepDef, StreamInfo } from './operator.js';
import { planExpr, compileAtRun } from './expr-config.js';
import { RecordError, Eval } from '../expr/compile.js';
import type { Row, Schema } from '../types.js';
import { deadLetters } from './record-schema.js';

type Config = Record<string, string>;

export const deriveStep: StepDef<Config> = {
  key: 'derive',
  doc: 'Adds or replaces columns; each expression sees the columns derived before it.',
  config: {
    type: 'object',
    minProperties: 1,
    propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]*$' },
    additionalProperties: { type: ['string', 'number', 'boolean'], description: 'Expression computing the column.' },
    description: 'New column name -> expression.',
  },
  plan(cfg, input, ctx) {
    let schema: Schema = input.schema;
    for (const [name, src] of Object.entries(cfg)) {
      const c = planExpr(src, schema, ctx, [name]);
      if (!c) continue;
      if (input.key?.includes(name)) ctx.error([name], `cannot replace key column "${name}"`, 'column.key');
      schema = [...schema.filter((f) => f.name !== name), { name, type: c.type }];
    }
    return { ...input, schema } satisfies StreamInfo;
  },
  create(cfg, input, _out, ctx) {
    let schema = input.schema;
    const cols: [string, Eval][] = [];
    for (const [name, src] of Object.entries(cfg)) {
      const c = compileAtRun(src, schema, ctx);
      cols.push([name, c.fn]);
      schema = [...schema.filter((f) => f.name !== name), { name, type: c.type }];
    }
    const dead_ = deadLetters(input.schema, `${ctx.flow}/derive`);
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
              dead.push(dead_(r, `derive ${name}: ${e.message}`));
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
