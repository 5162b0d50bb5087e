/**
 * @module What the commands share: finding specs, loading a plan, printing
 * problems, usage errors, and the run-time settings every command reads
 * the same way (state directory, durations).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { IO } from '../core/io.js';
import { loadSpec } from '../spec/load.js';
import { caretLines, formatProblem, sortProblems, Problem } from '../spec/errors.js';
import { planSpec, Plan } from '../plan/plan.js';
import { collectTests, SpecTest, isSidecar } from '../testing/tests.js';
import { redact } from '../core/log.js';
import { parseDuration } from '../core/time.js';

/** A mistake in how a command was called: exit 2, one line, no stack. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export { isSidecar };

/** The spec a sidecar belongs to: FILE.yaml (or .yml) beside FILE.tests.yaml. */
export function specOfSidecar(file: string): string {
  const base = file.replace(/\.tests\.ya?ml$/, '');
  return fs.existsSync(`${base}.yml`) && !fs.existsSync(`${base}.yaml`) ? `${base}.yml` : `${base}.yaml`;
}

/**
 * Expands directories into their .yaml/.yml specs, sorted; a sidecar named
 * on its own stands for its spec (whose tests it holds), once. A directory
 * without specs is a usage error: a wrong path must not pass CI.
 */
export function specFiles(inputs: string[]): string[] {
  const out: string[] = [];
  const add = (f: string) => {
    if (!out.includes(f)) out.push(f);
  };
  for (const p of inputs) {
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
      const specs = fs
        .readdirSync(p)
        .sort()
        .filter((f) => /\.ya?ml$/.test(f) && !isSidecar(f));
      if (!specs.length) throw new UsageError(`no specs found in ${p} (expected .yaml or .yml files)`);
      for (const f of specs) add(path.join(p, f));
    } else add(isSidecar(p) ? specOfSidecar(p) : p);
  }
  return out;
}

/** A run takes one spec file. */
export function oneSpec(file: string): string {
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) {
    const specs = fs.readdirSync(file).filter((f) => /\.ya?ml$/.test(f) && !isSidecar(f));
    throw new UsageError(
      `${file} is a directory; this command takes one spec file${specs.length ? ` (e.g. ${path.join(file, specs.sort()[0])})` : ''}`,
    );
  }
  return isSidecar(file) ? specOfSidecar(file) : file;
}

export function loadPlan(file: string, io: IO): { plan?: Plan; problems: Problem[]; tests: SpecTest[] } {
  const loaded = loadSpec(file, io.env);
  const plan = loaded.problems.some((p) => p.severity === 'error') && !loaded.spec ? undefined : planSpec(loaded);
  // The spec's tests (and its sidecar's) are part of what validate checks.
  const t = collectTests(loaded, plan, io.env);
  return { plan, problems: sortProblems([...loaded.problems, ...t.problems]), tests: t.tests };
}

/** Prints each problem as `file:line:col: message [code]`, then its line of the spec with a caret under the offending text. */
export function printProblems(problems: Problem[], io: IO) {
  const sources = new Map<string, string | undefined>();
  const source = (file: string) => {
    if (!sources.has(file)) {
      try {
        sources.set(file, fs.readFileSync(file, 'utf8'));
      } catch {
        sources.set(file, undefined);
      }
    }
    return sources.get(file);
  };
  for (const p of problems) {
    const text = source(p.file);
    io.stderr([redact(formatProblem(p)), ...(text === undefined ? [] : caretLines(p, text))].join('\n') + '\n');
  }
}

/**
 * The plan of one spec, its problems printed (with `errorsOnly`, its
 * warnings left out); undefined when it has errors: the command exits 2.
 */
export function planOrPrint(file: string, io: IO, opts: { errorsOnly?: boolean } = {}): Plan | undefined {
  const { plan, problems } = loadPlan(file, io);
  printProblems(opts.errorsOnly ? problems.filter((p) => p.severity === 'error') : problems, io);
  return plan;
}

/**
 * The state directory: `--state-dir` or SALESPIPE_STATE_DIR (relative to
 * the working directory, as any command-line path), else `.salespipe/state`
 * beside the spec, like every relative path in a spec: a run from another
 * directory finds the same state.
 */
export function stateDir(given: string | undefined, specFile: string, env: NodeJS.ProcessEnv): string {
  if (given) return path.resolve(given);
  if (env.SALESPIPE_STATE_DIR) return path.resolve(env.SALESPIPE_STATE_DIR);
  return path.join(path.dirname(path.resolve(specFile)), '.salespipe', 'state');
}

export function intArg(v: string, name: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} expects a whole number, got "${v}"`);
  return Number(v);
}

export function durationArg(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const ms = parseDuration(v);
  if (ms === undefined || ms <= 0) throw new UsageError(`${name}: invalid duration "${v}" (e.g. 30s, 5m, 1h)`);
  return ms;
}

/** A TCP port given on the command line (0: any free port). */
export function portArg(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new UsageError(`${flag} ${text}: a port is a whole number from 0 to 65535`);
  return n;
}
