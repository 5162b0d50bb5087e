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
  /** Syntax errors: the order the parser found them in, cause before consequence; they sort by it. */
  seq?: number;
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.severity === 'warning' ? 'warning: ' : ''}${p.message} [${p.code}]`;
}

export function sortProblems(ps: Problem[]): Problem[] {
  const rank = (p: Problem) => p.seq ?? Number.MAX_SAFE_INTEGER;
  return [...ps].sort((a, b) => a.file.localeCompare(b.file) || rank(a) - rank(b) || a.line - b.line || a.col - b.col || a.message.localeCompare(b.message));
}


