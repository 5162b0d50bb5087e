/**
 * @module `select` step: keeps the listed columns, in that order.
 * @example
 *   - select: [product_name, brand, quantity_sold]
 */
import type { StepDef } from './operator.js';
import { fieldOf, Row } from '../types.js';

export const selectStep: StepDef<string[]> = {
  key: 'select',
  doc: 'Keeps only the listed columns, in the listed order.',
  config: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string' }, description: 'Columns to keep.' },
  plan(cfg, input, ctx) {
    const schema = [];
    for (const [i, name] of cfg.entries()) {
      const f = fieldOf(input.schema, name);
      if (!f) ctx.error([i], `unknown column "${name}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown');
      else schema.push(f);
    }
    for (const k of input.key ?? []) if (!cfg.includes(k)) ctx.error([], `select must keep key column "${k}"`, 'column.key');
    if (input.eventTime && !cfg.includes(input.eventTime)) return { ...input, schema, eventTime: undefined };
    return { ...input, schema };
  },
  create(cfg) {
    return {
      process(rows) {
        return rows.map((r) => {
          const o: Row = {};
          for (const c of cfg) o[c] = r[c];
          return o;
        });
      },
    };
  },
};
