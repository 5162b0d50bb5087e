/**
 * @module Spec problems, printed.
 *
 * Rules: nothing in spec/ or plan/ throws on bad input; every check pushes a
 * Problem (core/problems.ts) with a code and a position, and the caller
 * prints all of them sorted, as `file:line:col: message [code]`, with the
 * offending line and a caret under it where the source is at hand.
 */
import type { Problem } from '../core/problems.js';
import { redact } from '../core/log.js';

export type { Problem, ProblemCode, Severity } from '../core/problems.js';

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.severity === 'warning' ? 'warning: ' : ''}${p.message} [${p.code}]`;
}

/**
 * The problem's line of the source and a caret under what it points at
 * (to its end on that line, at least one character), indented by four.
 * A password written in the spec is shown as stars, and URL credentials
 * masked, as everywhere salespipe prints.
 */
export function caretLines(p: Problem, source: string): string[] {
  let line = source.split(/\r?\n/)[p.line - 1];
  if (line === undefined) return [];
  line = line.replace(/\t/g, ' ');
  const end = Math.min(p.endLine === p.line && p.endCol !== undefined ? p.endCol : line.length + 1, line.length + 1);
  const start = Math.min(Math.max(1, p.col), line.length + 1);
  if (p.code === 'secret.literal') line = line.slice(0, start - 1) + '*'.repeat(Math.max(0, end - start)) + line.slice(end - 1);
  return [`    ${redact(line)}`, `    ${' '.repeat(start - 1)}${'^'.repeat(Math.max(1, end - start))}`];
}

export function sortProblems(ps: Problem[]): Problem[] {
  const rank = (p: Problem) => p.seq ?? Number.MAX_SAFE_INTEGER;
  return [...ps].sort(
    (a, b) => a.file.localeCompare(b.file) || rank(a) - rank(b) || a.line - b.line || a.col - b.col || a.message.localeCompare(b.message),
  );
}
