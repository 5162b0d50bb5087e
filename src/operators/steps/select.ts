/**
 * @module `select` step: keeps the listed columns, in that order.
 * @example
 *   - select: [product_name, brand, quantity_sold]
 */
import type { StepDef } from '../operator.js';
import { fieldOf, Row } from '../../core/types.js';

const config = { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string' }, description: 'Columns to keep.' } as const;

export const selectStep: StepDef<typeof config, { columns: readonly string[] }> = {
  key: 'select',
  stateless: true,
  doc: 'Keeps only the listed columns, in the listed order.',
  config,
  plan(cfg, input, ctx) {
    const schema = [];
    let ok = true;
    for (const [i, name] of cfg.entries()) {
      const f = fieldOf(input.schema, name);
      if (!f) {
        ok = false;
        ctx.error([i], `unknown column "${name}"; available: ${input.schema.map((x) => x.name).join(', ')}`, 'column.unknown');
      } else schema.push(f);
    }
    for (const k of input.key ?? [])
      if (!cfg.includes(k)) {
        ok = false;
        ctx.error([], `select must keep key column "${k}"`, 'column.key');
      }
    const out = input.eventTime && !cfg.includes(input.eventTime) ? { ...input, schema, eventTime: undefined } : { ...input, schema };
    return { out, planned: ok ? { columns: cfg } : (undefined as never) };
  },
  describe: (cfg) => `select ${cfg.join(', ')}`,
  create({ columns }) {
    return {
      process(rows) {
        return rows.map((r) => {
          const o: Row = {};
          for (const c of columns) o[c] = r[c];
          return o;
        });
      },
    };
  },
};
