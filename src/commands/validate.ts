/**
 * @module `salespipe validate FILE|DIR...`: every problem of every spec, without any server.
 *
 * Rules: text output prints each problem as `file:line:col: message [code]`,
 * then the line it points at with a caret under the offending text; JSON
 * output is the problems as values (with `endLine`/`endCol` when known).
 */
import type { IO } from '../core/io.js';
import type { Problem } from '../spec/errors.js';
import { sortProblems } from '../spec/errors.js';
import { redact } from '../core/log.js';
import { loadPlan, printProblems, specFiles } from './common.js';

export default async function validate(files: string[], o: { format: 'text' | 'json' }, io: IO): Promise<number> {
  const all: Problem[] = [];
  const list = specFiles(files);
  for (const f of list) all.push(...loadPlan(f, io).problems);
  const sorted = sortProblems(all);
  if (o.format === 'json')
    io.stdout(
      JSON.stringify(
        sorted.map(({ seq: _seq, ...p }) => ({ ...p, message: redact(p.message) })),
        null,
        2,
      ) + '\n',
    );
  else {
    printProblems(sorted, io);
    const errors = sorted.filter((p) => p.severity === 'error').length;
    if (!errors) io.stdout(`${list.length} spec(s) valid${sorted.length ? ` (${sorted.length} warning(s))` : ''}\n`);
  }
  return sorted.some((p) => p.severity === 'error') ? 2 : 0;
}
