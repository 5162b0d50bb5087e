/** Column types for tests, parsed as a spec would write them. */
import { ColumnType, parseType } from '../../src/core/types.js';

export function colType(text: string): ColumnType {
  const t = parseType(text);
  if (typeof t === 'string') throw new Error(t);
  return t;
}
