/**
 * @module Spec problems as values.
 *
 * Rules: nothing in spec/ or plan/ throws on bad input; every check pushes a
 * Problem with a code and a position, and the caller prints all of them
 * sorted, as `file:line:col: message`.
 */

export type Severity = 'error' | 'warning';

export interface Problem {
  file: string;
  line: number;
  col: number;
  code: string;
  message: string;
  severity: Severity;
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.severity === 'warning' ? 'warning: ' : ''}${p.message} [${p.code}]`;
}

export function sortProblems(ps: Problem[]): Problem[] {
  return [...ps].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.message.localeCompare(b.message));
}

/** Thrown by `loadSpec`'s callers when a spec has errors: carries all of them. */
export class SpecInvalid extends Error {
  constructor(readonly problems: Problem[]) {
    super(sortProblems(problems).filter((p) => p.severity === 'error').map(formatProblem).join('\n'));
  }
}
