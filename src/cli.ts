/**
 * @module The command line: every command, option and example in one place.
 *
 * Rules: `cli(argv, io)` is a function tests call in-process; it returns the
 * exit code (0 success, 1 runtime failure, 2 invalid spec or usage) and never
 * prints a stack trace unless SALESPIPE_DEBUG is set.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { loadSpec } from './spec/load.js';
import { formatProblem, sortProblems, Problem } from './spec/errors.js';
import { planSpec, Plan } from './plan/plan.js';
import { explainText, explainMermaid, explainDot } from './plan/explain.js';
import { collectTests, runSpecTest, isSidecar, SpecTest } from './testing.js';
import { backfill } from './backfill.js';
import { runPlan } from './runtime/run.js';
import { createLogger, Logger, redact } from './runtime/log.js';
import { generate } from './gen/generate.js';
import { parseDuration, parseTimestamp } from './time.js';
import { runDemo } from './demo.js';
import { pipelineSchema } from './spec/schema.js';
import { PACKAGE_ROOT } from './paths.js';

export interface IO {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  env: NodeJS.ProcessEnv;
  /** Aborted to stop a running pipeline (the binary wires SIGINT/SIGTERM here). */
  signal?: AbortSignal;
}

const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8'));

/** Expands directories into their .yaml/.yml files, sorted. */
function specFiles(inputs: string[]): string[] {
  const out: string[] = [];
  for (const p of inputs) {
    if (fs.existsSync(p) && fs.statSync(p).isDirectory()) {
      // Sidecar test files (FILE.tests.yaml) belong to their spec, not on their own.
      for (const f of fs.readdirSync(p).sort()) if (/\.ya?ml$/.test(f) && !isSidecar(f)) out.push(path.join(p, f));
    } else out.push(p);
  }
  return out;
}

function loadPlan(file: string, io: IO): { plan?: Plan; problems: Problem[]; tests: SpecTest[] } {
  const loaded = loadSpec(file, io.env);
  const plan = loaded.problems.some((p) => p.severity === 'error') && !loaded.spec ? undefined : planSpec(loaded);
  // The spec's tests (and its sidecar's) are part of what validate checks.
  const t = collectTests(loaded, plan, io.env);
  return { plan, problems: sortProblems([...loaded.problems, ...t.problems]), tests: t.tests };
}

function printProblems(problems: Problem[], io: IO) {
  for (const p of problems) io.stderr(redact(formatProblem(p)) + '\n');
}

export async function cli(argv: string[], io: IO): Promise<number> {
  const log: Logger = createLogger((l) => io.stderr(l + '\n'), (io.env.SALESPIPE_LOG_LEVEL as 'info') || 'info');
  const program = new Command();
  program
    .name('salespipe')
    .description('Real-time sales and inventory analytics from declarative YAML pipelines.')
    .version(pkg.version, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run salespipe --help for usage)')
    .addHelpText('after', `
Examples:
  salespipe run pipelines/sales.yaml              run until Ctrl-C (SIGINT/SIGTERM stop gracefully)
  salespipe run pipelines/sales.yaml --drain      process what is there now, commit, exit
  salespipe validate pipelines/                   check every spec, no servers needed
  salespipe test pipelines/                       run the specs' own tests in-process, no servers needed
  salespipe explain pipelines/sales.yaml          operators, edges, schemas, modes (--format mermaid|dot for a diagram)
  salespipe backfill pipelines/sales.yaml --from 2026-01-01 --to 2026-01-08   rewrite those days' history partitions
  salespipe generate --db mysql://salespipe:salespipe@127.0.0.1:3306/salespipe --count 50000 --writers 8
  salespipe demo                                  the embedded quick start (SQLite, no servers)

Exit codes: 0 success, 1 runtime failure (or a failed test), 2 invalid spec or usage.
Environment: SALES_DB_URL, KAFKA_BROKERS (used by the shipped pipelines), SALESPIPE_STATE_DIR,
SALESPIPE_LOG_LEVEL (debug|info|warn|error).`);

  let code = 0;

  program
    .command('validate')
    .description('check specs (YAML, schema, variables, columns, types, modes) without any server')
    .argument('<files...>', 'spec files or directories')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .action((files: string[], o: { format: string }) => {
      const all: Problem[] = [];
      const list = specFiles(files);
      for (const f of list) all.push(...loadPlan(f, io).problems);
      const sorted = sortProblems(all);
      if (o.format === 'json') io.stdout(JSON.stringify(sorted.map((p) => ({ ...p, message: redact(p.message) })), null, 2) + '\n');
      else {
        printProblems(sorted, io);
        const errors = sorted.filter((p) => p.severity === 'error').length;
        if (!errors) io.stdout(`${list.length} spec(s) valid${sorted.length ? ` (${sorted.length} warning(s))` : ''}\n`);
      }
      code = sorted.some((p) => p.severity === 'error') ? 2 : 0;
    });

  program
    .command('explain')
    .description('print the plan: operators, edges, inferred schemas and modes')
    .argument('<file>', 'spec file')
    .addOption(new Option('--format <format>', 'text, mermaid (a flowchart) or dot (Graphviz)').choices(['text', 'mermaid', 'dot']).default('text'))
    .action((file: string, o: { format: 'text' | 'mermaid' | 'dot' }) => {
      const { plan, problems } = loadPlan(file, io);
      printProblems(problems, io);
      if (!plan) { code = 2; return; }
      io.stdout({ text: explainText, mermaid: explainMermaid, dot: explainDot }[o.format](plan) + '\n');
    });

  program
    .command('test')
    .description('run the tests written in specs (tests:) or beside them (FILE.tests.yaml), in-process, without any server')
    .argument('<files...>', 'spec files or directories')
    .action(async (files: string[]) => {
      let passed = 0, failed = 0, invalid = false;
      const quiet = createLogger((l) => io.stderr(l + '\n'), 'error');
      for (const f of specFiles(files)) {
        const { plan, problems, tests } = loadPlan(f, io);
        printProblems(problems, io);
        if (!plan || problems.some((p) => p.severity === 'error')) { invalid = true; continue; }
        if (!tests.length) { io.stdout(`${f}: no tests\n`); continue; }
        for (const t of tests) {
          const r = await runSpecTest(plan, t, quiet);
          if (r.passed) passed++;
          else failed++;
          io.stdout(`${r.passed ? 'ok  ' : 'FAIL'} ${plan.pipeline}: ${t.name}  (${path.relative(process.cwd(), t.file) || t.file}:${t.line})\n`);
          for (const d of r.diff) io.stdout(`       ${d}\n`);
        }
      }
      io.stdout(`${passed} passed, ${failed} failed\n`);
      code = invalid ? 2 : failed ? 1 : 0;
    });

  program
    .command('schema')
    .description('print the JSON Schema of pipeline specs (the one in schemas/pipeline.schema.json)')
    .action(() => io.stdout(JSON.stringify(pipelineSchema(), null, 2) + '\n'));

  program
    .command('run')
    .description('run a pipeline: until SIGINT/SIGTERM, or with --drain until the sources are drained')
    .argument('<file>', 'spec file')
    .option('--drain', 'process everything available at start, flush and commit, then exit')
    .option('--state-dir <dir>', 'checkpoints and default dead-letter files', io.env.SALESPIPE_STATE_DIR || '.salespipe/state')
    .option('--no-progress', 'no spinner or periodic progress lines')
    .action(async (file: string, o: { drain?: boolean; stateDir: string; progress: boolean }) => {
      const { plan, problems } = loadPlan(file, io);
      printProblems(problems, io);
      if (!plan) { code = 2; return; }
      log.info(`running ${plan.pipeline} (${plan.flows.map((f) => f.name).join(', ')})${o.drain ? ' until drained' : ''}; state in ${o.stateDir}`);
      await runPlan(plan, { stateDir: path.resolve(o.stateDir), drain: !!o.drain, log, signal: io.signal, progress: o.progress });
    });

  program
    .command('backfill')
    .description('recompute [--from, --to) from the database and rewrite exactly the Parquet partitions it covers, atomically (cron-safe)')
    .argument('<file>', 'spec file')
    .requiredOption('--from <time>', 'start of the range (inclusive), e.g. 2026-01-15 (in the pipeline time zone) or 2026-01-15T00:00:00Z')
    .requiredOption('--to <time>', 'end of the range (exclusive)')
    .option('--dry-run', 'list the partitions that would be rewritten; write nothing')
    .option('--to-kafka', "also re-emit the recomputed final rows (append outputs no other flow reads) to their Kafka topics")
    .option('--history <dir>', 'Parquet dataset of source records (e.g. out/sales_history) for flows reading a topic no flow of the spec writes')
    .option('--state-dir <dir>', 'where the lock lives', io.env.SALESPIPE_STATE_DIR || '.salespipe/state')
    .action(async (file: string, o: { from: string; to: string; dryRun?: boolean; toKafka?: boolean; history?: string; stateDir: string }) => {
      const { plan, problems } = loadPlan(file, io);
      printProblems(problems, io);
      if (!plan) { code = 2; return; }
      const from = parseTimestamp(o.from, plan.timeZone), to = parseTimestamp(o.to, plan.timeZone);
      if (typeof from === 'string') throw new UsageError(`--from: ${from}`);
      if (typeof to === 'string') throw new UsageError(`--to: ${to}`);
      if (from >= to) throw new UsageError('--from must be before --to');
      await backfill(plan, { from, to, dryRun: !!o.dryRun, toKafka: !!o.toKafka, history: o.history && path.resolve(o.history), stateDir: path.resolve(o.stateDir), log });
    });

  program
    .command('generate')
    .description('insert realistic sales into a database (MariaDB/MySQL, PostgreSQL or SQLite)')
    .option('--db <url>', 'database URL', io.env.SALES_DB_URL || 'mysql://salespipe:salespipe@127.0.0.1:3306/salespipe')
    .option('--count <n>', 'sales to insert', (v) => intArg(v, '--count'), 1000)
    .option('--rate <n>', 'sales per second (0 = as fast as possible)', (v) => intArg(v, '--rate'), 0)
    .option('--writers <n>', 'concurrent writers (transactions commit out of id order)', (v) => intArg(v, '--writers'), 4)
    .option('--batch <n>', 'rows per transaction', (v) => intArg(v, '--batch'), 50)
    .option('--seed <n>', 'random seed', (v) => intArg(v, '--seed'), 1)
    .option('--from <time>', 'event times from this instant (default: wall clock at insert)')
    .option('--to <time>', 'event times before this instant')
    .option('--ordered', 'with --from/--to: event times advance with the inserts (history replayed in order, up to a minute out of order) instead of random')
    .option('--rollback <fraction>', 'fraction of transactions to roll back (leaves id gaps)', parseFloat, 0)
    .option('--create-tables', 'create the tables from sql/<dialect>.sql first')
    .option('--worked-example', 'also insert the worked example (transactions 3001-3003)')
    .option('--reference-data [customers]', 'also insert customers (default 500, with segment and region) and an inventory row per product, where missing', (v) => intArg(v, '--reference-data'))
    .option('--restock-every <duration>', 'restock a random product this often while inserting, e.g. 10s')
    .action(async (o) => {
      const restockEvery = o.restockEvery === undefined ? undefined : parseDuration(o.restockEvery);
      if (restockEvery === undefined && o.restockEvery !== undefined) throw new UsageError(`--restock-every: invalid duration "${o.restockEvery}"`);
      const from = o.from !== undefined ? parseTimestamp(o.from) : undefined;
      const to = o.to !== undefined ? parseTimestamp(o.to) : undefined;
      if (typeof from === 'string' || typeof to === 'string') throw new UsageError(`--from/--to: ${from ?? to}`);
      if ((from === undefined) !== (to === undefined)) throw new UsageError('--from and --to go together');
      if (o.ordered && from === undefined) throw new UsageError('--ordered needs --from and --to');
      await generate({ url: o.db, count: o.count, rate: o.rate, writers: o.writers, batch: o.batch, seed: o.seed, from, to, ordered: o.ordered, rollback: o.rollback, createTables: o.createTables, workedExample: o.workedExample, referenceData: o.referenceData === true ? 500 : o.referenceData, restockEvery }, log, io.signal);
    });

  program
    .command('demo')
    .description('embedded quick start: SQLite sales (worked example + generated) -> aggregates -> Parquet and console')
    .option('--dir <dir>', 'where the demo database and outputs go', 'demo')
    .option('--count <n>', 'generated sales besides the worked example', (v) => intArg(v, '--count'), 5000)
    .action(async (o: { dir: string; count: number }) => {
      code = await runDemo({ dir: path.resolve(o.dir), count: o.count }, io, log);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : 2;
    }
    if (e instanceof UsageError) { io.stderr(`salespipe: ${e.message}\n`); return 2; }
    io.stderr(`salespipe: error: ${redact((e as Error).message ?? String(e))}\n`);
    if (io.env.SALESPIPE_DEBUG) io.stderr(redact(String((e as Error).stack)) + '\n');
    return 1;
  }
}

class UsageError extends Error {}

function intArg(v: string, name: string): number {
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} expects a whole number, got "${v}"`);
  return Number(v);
}

/** Entry point of bin/salespipe.js: real stdio, signals, exit code. */
export async function main(): Promise<void> {
  const ctl = new AbortController();
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      process.stderr.write(`salespipe: second ${sig}, exiting without a final checkpoint\n`);
      process.exit(130);
    }
    process.stderr.write(`salespipe: ${sig} received, finishing the current epoch (send again to exit at once)\n`);
    ctl.abort();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  const code = await cli(process.argv.slice(2), {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    env: process.env,
    signal: ctl.signal,
  });
  process.exitCode = code;
  // kafkajs and knex may hold timers briefly after close; don't wait for them.
  setTimeout(() => process.exit(code), 200).unref();
}
