/**
 * @module `salespipe demo`: the embedded quick start, no servers.
 *
 * Creates (if absent) a SQLite database with the worked example (3001-3003)
 * and generated sales, then runs pipelines/demo.yaml with --drain from a
 * clean state, so every run shows the same totals.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ioStdout, type IO } from '../core/io.js';
import type { Logger } from '../core/log.js';
import { generate } from '../gen/generate.js';
import { loadSpec } from '../spec/load.js';
import { planSpec } from '../plan/plan.js';
import { formatProblem } from '../spec/errors.js';
import { runPlan } from '../runtime/run.js';
import { PACKAGE_ROOT } from '../core/paths.js';

const DEMO_SPEC = path.join(PACKAGE_ROOT, 'pipelines/demo.yaml');

/** The demo database exists and holds sales. */
async function hasSales(file: string): Promise<boolean> {
  if (!fs.existsSync(file)) return false;
  const { openKnex } = await import('../connections/sql.js');
  const { db } = await openKnex(`sqlite:${file}`, process.cwd(), 1);
  try {
    return (await db.schema.hasTable('product_sales')) && (await db('product_sales').first('transaction_id')) !== undefined;
  } catch {
    return false; // not a database at all
  } finally {
    await db.destroy();
  }
}

export async function runDemo(opts: { dir: string; count: number }, io: IO, log: Logger): Promise<number> {
  const db = path.join(opts.dir, 'sales.db');
  fs.mkdirSync(opts.dir, { recursive: true });
  if (!(await hasSales(db))) {
    // A file without the sales (an interrupted creation, or one a run opened before the demo made it) is made again.
    fs.rmSync(db, { force: true });
    log.info(`creating ${db}: the worked example + ${opts.count} generated sales over the last 30 days`);
    const now = Date.now();
    await generate(
      {
        url: `sqlite:${db}`,
        count: opts.count,
        rate: 0,
        writers: 1,
        batch: 500,
        seed: 42,
        from: now - 30 * 86_400_000,
        to: now,
        createTables: true,
        workedExample: true,
      },
      log,
    );
  }
  for (const d of ['state', 'output']) fs.rmSync(path.join(opts.dir, d), { recursive: true, force: true });
  const loaded = loadSpec(DEMO_SPEC, { ...io.env, SALESPIPE_DEMO_DIR: opts.dir });
  const plan = planSpec(loaded);
  if (!plan) {
    loaded.problems.forEach((p) => io.stderr(formatProblem(p) + '\n'));
    return 2;
  }
  await runPlan(plan, {
    stateDir: path.join(opts.dir, 'state'),
    drain: true,
    log,
    signal: io.signal,
    progress: false,
    output: ioStdout(io),
  });
  io.stdout(`\nParquet written under ${path.join(opts.dir, 'output')} (aggregated_product_sales/, sales_history/)\n`);
  return 0;
}

export default runDemo;
