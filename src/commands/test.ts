/** @module `salespipe test FILE|DIR...`: the specs' own tests, in-process, without any server. */
import path from 'node:path';
import type { IO } from '../core/io.js';
import { runSpecTest } from '../testing/tests.js';
import { createLogger } from '../core/log.js';
import { loadPlan, printProblems, specFiles } from './common.js';

export default async function test(files: string[], io: IO): Promise<number> {
  let passed = 0,
    failed = 0,
    invalid = false;
  const quiet = createLogger((l) => io.stderr(l + '\n'), 'error');
  for (const f of specFiles(files)) {
    const { plan, problems, tests } = loadPlan(f, io);
    printProblems(problems, io);
    if (!plan || problems.some((p) => p.severity === 'error')) {
      invalid = true;
      continue;
    }
    if (!tests.length) {
      io.stdout(`${f}: no tests\n`);
      continue;
    }
    for (const t of tests) {
      const r = await runSpecTest(plan, t, quiet);
      if (r.passed) passed++;
      else failed++;
      io.stdout(
        `${r.passed ? 'ok  ' : 'FAIL'} ${plan.pipeline}: ${t.name}  (${path.relative(process.cwd(), t.file) || t.file}:${t.line})\n`,
      );
      for (const d of r.diff) io.stdout(`       ${d}\n`);
    }
  }
  io.stdout(`${passed} passed, ${failed} failed\n`);
  return invalid ? 2 : failed ? 1 : 0;
}
