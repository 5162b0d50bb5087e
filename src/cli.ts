/**
 * @module The command line: every command, option and example in one place.
 *
 * Rules:
 * - `cli(argv, io)` is a function tests call in-process; it returns the exit
 *   code (0 success, 1 runtime failure, 2 invalid spec or usage) and never
 *   prints a stack trace unless SALESPIPE_DEBUG is set.
 * - Each command's code is its own module under commands/, loaded when the
 *   command runs: `salespipe --help` loads none of them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { createLogger, Logger, redact, LEVELS } from './core/log.js';
import { PACKAGE_ROOT } from './core/paths.js';
import type { IO } from './core/io.js';
import type { RunFlags } from './commands/run.js';
import type { DashboardFlags } from './commands/dashboard.js';

export type { IO };

const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8'));

const ENVIRONMENT = `
Environment:
  SALES_DB_URL          database of the shipped pipelines (default mysql://salespipe:***@127.0.0.1:3306/salespipe)
  KAFKA_BROKERS         Kafka brokers of the shipped pipelines (default 127.0.0.1:9092)
  KAFKA_TOPIC_PREFIX    prefix of every topic, consumer group and transactional id (keeps environments apart)
  SALES_OUTPUT_DIR      where the shipped pipelines write Parquet (default out/ beside pipelines/)
  CHECKPOINT_INTERVAL   epoch length of the shipped pipelines (default 5s)
  SALESPIPE_STATE_DIR   state directory (default .salespipe/state beside the spec)
  SALESPIPE_LOG_LEVEL   debug, info (default), warn or error
  SALESPIPE_DEBUG       set: print stack traces of failures
  SALESPIPE_DASHBOARD_TOKEN  the token a dashboard off loopback requires on every request
  NO_COLOR              set: no colours`;

/** Examples shown under a command's --help. */
const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}\n`;

/** Runs a command's module, loaded only now. */
type Loaded<T> = () => Promise<{ default: T }>;

/** Wraps a command's action: loads its module when it runs, and keeps its exit code. */
type Act = <A extends unknown[], T extends (...a: never[]) => Promise<number>>(
  load: Loaded<T>,
  call: (fn: T, ...a: A) => Promise<number>,
) => (...a: A) => Promise<void>;

/** What every command's definition gets. */
interface CommandContext {
  io: IO;
  log: Logger;
  act: Act;
}

export async function cli(argv: string[], io: IO): Promise<number> {
  const level = io.env.SALESPIPE_LOG_LEVEL?.toLowerCase();
  if (level !== undefined && level !== '' && !(LEVELS as string[]).includes(level)) {
    io.stderr(`salespipe: SALESPIPE_LOG_LEVEL=${io.env.SALESPIPE_LOG_LEVEL}: expected one of ${LEVELS.join(', ')}\n`);
    return 2;
  }
  const log: Logger = createLogger((l) => io.stderr(l + '\n'), (level || 'info') as 'info');
  let code = 0;
  const act: Act =
    <A extends unknown[], T extends (...a: never[]) => Promise<number>>(load: Loaded<T>, call: (fn: T, ...a: A) => Promise<number>) =>
    async (...a: A) => {
      code = await call((await load()).default, ...a);
    };

  const program = new Command();
  program
    .name('salespipe')
    .description('Real-time sales and inventory analytics from declarative YAML pipelines.')
    .version(pkg.version, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run salespipe --help for usage)')
    .addHelpText(
      'after',
      `
Examples:
  salespipe run pipelines/sales.yaml              run until Ctrl-C (SIGINT/SIGTERM stop gracefully)
  salespipe run pipelines/sales.yaml --drain      process what is there now, commit, exit
  salespipe validate pipelines/                   check every spec, no servers needed
  salespipe test pipelines/                       run the specs' own tests in-process, no servers needed
  salespipe explain pipelines/sales.yaml          operators, edges, schemas, modes (--format mermaid|dot for a diagram)
  salespipe status pipelines/sales.yaml           each flow's checkpoint, positions, lag and counts, without running it
  salespipe backfill pipelines/sales.yaml --from 2026-01-01 --to 2026-01-08   rewrite those days' history partitions
  salespipe compact pipelines/sales.yaml --older-than 1d                      merge the small Parquet files of past epochs
  salespipe generate --count 50000 --writers 8    insert sales into SALES_DB_URL
  salespipe demo                                  the embedded quick start (SQLite, no servers)

Exit codes: 0 success, 1 runtime failure (or a failed test), 2 invalid spec or usage.
${ENVIRONMENT}`,
    );

  for (const define of COMMANDS) define(program, { io, log, act });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help' ? 0 : 2;
    }
    if (e instanceof Error && e.name === 'UsageError') {
      io.stderr(`salespipe: ${e.message}\n`);
      return 2;
    }
    io.stderr(`salespipe: error: ${redact((e as Error).message ?? String(e))}\n`);
    if (io.env.SALESPIPE_DEBUG) io.stderr(redact(String((e as Error).stack)) + '\n');
    return 1;
  }
}

/** A whole-number option. */
const intArg = (name: string) => (v: string) => {
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} expects a whole number, got "${v}"`);
  return Number(v);
};

function validateCommand(program: Command, { io, act }: CommandContext): void {
  program
    .command('validate')
    .description('check specs (YAML, schema, variables, columns, types, modes) without any server')
    .argument('<files...>', 'spec files or directories (a FILE.tests.yaml stands for FILE.yaml)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .addHelpText('after', examples(['salespipe validate pipelines/*.yaml', 'salespipe validate pipelines/ --format json']))
    .action(
      act(
        () => import('./commands/validate.js'),
        (fn, files: string[], o: { format: 'text' | 'json' }) => fn(files, o, io),
      ),
    );
}

function explainCommand(program: Command, { io, act }: CommandContext): void {
  program
    .command('explain')
    .description('print the plan: operators, edges, inferred schemas and modes')
    .argument('<file>', 'spec file')
    .addOption(
      new Option('--format <format>', 'text, mermaid (a flowchart) or dot (Graphviz)').choices(['text', 'mermaid', 'dot']).default('text'),
    )
    .addHelpText(
      'after',
      examples(['salespipe explain pipelines/sales.yaml', 'salespipe explain pipelines/sales.yaml --format dot | dot -Tsvg > sales.svg']),
    )
    .action(
      act(
        () => import('./commands/explain.js'),
        (fn, file: string, o: { format: 'text' | 'mermaid' | 'dot' }) => fn(file, o, io),
      ),
    );
}

function backtestCommand(program: Command, { io, log, act }: CommandContext): void {
  program
    .command('backtest')
    .description(
      "score a flow on its own history: the forecast step's methods and auto (RMSSE, MASE, interval coverage, WAPE and bias per brand/category and week), or the recommend step against popularity, regional popularity and item-item cosine (precision@5, recall@10, NDCG@10, coverage) on the last weeks",
    )
    .argument('<file>', 'spec file with a forecast or a recommend step')
    .option('--flow <name>', 'the flow to backtest (default: the first with a forecast or a recommend step)')
    .option('--origins <n>', 'forecasts: evaluation origins, the last n windows of the horizon', intArg('--origins'), 3)
    .option('--test-days <n>', 'recommendations: the holdout, the last n days of the history', intArg('--test-days'), 28)
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--plot <dir>', 'write SVG charts of actual vs forecast with the interval for the top series')
    .option('--top <n>', 'series charted by --plot (by units sold)', intArg('--top'), 6)
    .addHelpText(
      'after',
      examples([
        'salespipe backtest pipelines/forecast.yaml',
        'salespipe backtest pipelines/forecast.yaml --origins 6 --plot out/backtest --format json',
        'salespipe backtest pipelines/recommendations.yaml --test-days 28',
      ]),
    )
    .action(
      act(
        () => import('./commands/backtest.js'),
        (fn, file: string, o) => fn(file, o as never, io, log),
      ),
    );
}

function testCommand(program: Command, { io, act }: CommandContext): void {
  program
    .command('test')
    .description('run the tests written in specs (tests:) or beside them (FILE.tests.yaml), in-process, without any server')
    .argument('<files...>', 'spec files or directories')
    .addHelpText('after', examples(['salespipe test pipelines/', 'salespipe test pipelines/sales.yaml']))
    .action(
      act(
        () => import('./commands/test.js'),
        (fn, files: string[]) => fn(files, io),
      ),
    );
}

function schemaCommand(program: Command, { io, act }: CommandContext): void {
  program
    .command('schema')
    .description('print the JSON Schema of pipeline specs (the one in schemas/pipeline.schema.json)')
    .addHelpText('after', examples(['salespipe schema > pipeline.schema.json']))
    .action(
      act(
        () => import('./commands/schema.js'),
        (fn) => fn(io),
      ),
    );
}

function runCommand(program: Command, { io, log, act }: CommandContext): void {
  program
    .command('run')
    .description('run a pipeline: until SIGINT/SIGTERM, or with --drain until the sources are drained')
    .argument('<file>', 'spec file')
    .option('--drain', 'process everything available at start, flush and commit, then exit')
    .option('--timeout <duration>', 'with --drain: give up after this long (e.g. 10m), exit 1')
    .option(
      '--state-dir <dir>',
      'checkpoints and default dead-letter files (default: .salespipe/state beside the spec, or SALESPIPE_STATE_DIR)',
    )
    .option('--no-progress', 'no spinner or periodic progress lines')
    .option('--metrics-port <port>', 'serve Prometheus metrics at /metrics, and /healthz, /readyz, on this port')
    .option('--metrics-host <host>', 'the address the metrics listen on (default 127.0.0.1)')
    .option(
      '--workers <n>',
      "worker threads the flows (and the tasks of flows that run one per partition) run on (default: this machine's cores; 1: all on the main thread)",
    )
    .addHelpText(
      'after',
      examples([
        'salespipe run pipelines/sales.yaml                       until Ctrl-C; a second Ctrl-C exits at once',
        'salespipe run pipelines/sales.yaml --metrics-port 9464   scrape http://127.0.0.1:9464/metrics',
        'salespipe run pipelines/sales.yaml --drain --timeout 15m  from cron: what is there now, then exit',
      ]),
    )
    .action(
      act(
        () => import('./commands/run.js'),
        (fn, file: string, o: RunFlags) => fn(file, o, io, log),
      ),
    );
}

function dashboardCommand(program: Command, { io, log, act }: CommandContext): void {
  program
    .command('dashboard')
    .description("a live web page over pipelines' outputs: sales now, top products, trend, stock at risk, alerts, health")
    .argument('[files...]', 'spec files or directories whose outputs to show (default: ./pipelines without the demo)')
    .option('--port <port>', 'port to listen on', '8080')
    .option('--host <host>', `address to listen on; any but loopback requires ${'SALESPIPE_DASHBOARD_TOKEN'}`, '127.0.0.1')
    .option('--metrics <url>', "a run's metrics endpoint, for pipeline health (repeatable)", (v: string, prev: string[] = []) => [
      ...prev,
      v,
    ])
    .option('--currency <code>', 'currency of the amounts (ISO 4217)', 'USD')
    .option('--locale <locale>', 'how numbers are written (BCP 47)', 'en-US')
    .addHelpText(
      'after',
      examples([
        'salespipe dashboard pipelines/sales.yaml pipelines/windowed-sales.yaml pipelines/inventory.yaml --metrics http://127.0.0.1:9464',
        "salespipe dashboard pipelines/demo.yaml                 after npm run demo: the demo's Parquet outputs",
        'SALESPIPE_DASHBOARD_TOKEN=… salespipe dashboard --host 0.0.0.0   open http://HOST:8080/?token=… once',
      ]),
    )
    .action(
      act(
        () => import('./commands/dashboard.js'),
        (fn, files: string[], o: DashboardFlags) => fn(files, o, io, log),
      ),
    );
}

function statusCommand(program: Command, { io, log, act }: CommandContext): void {
  program
    .command('status')
    .description("each flow's checkpoint, source positions, lag and counts so far, read without running the pipeline")
    .argument('<file>', 'spec file')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--state-dir <dir>', 'where local checkpoints are (as for run)')
    .addHelpText('after', examples(['salespipe status pipelines/sales.yaml', 'salespipe status pipelines/sales.yaml --format json']))
    .action(
      act(
        () => import('./commands/status.js'),
        (fn, file: string, o: { format: 'text' | 'json'; stateDir?: string }) => fn(file, o, io, log),
      ),
    );
}

function resetCommand(program: Command, { io, log, act }: CommandContext): void {
  program
    .command('reset')
    .description('start flows over: drop their source positions and operator state (outputs are kept); the pipeline must not be running')
    .argument('<file>', 'spec file')
    .option('--flow <name>', 'a flow to reset (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--all', 'every flow of the spec')
    .option('--positions', 'drop only the source positions: keep the state, read the source again from startFrom')
    .option('--state-dir <dir>', 'where local checkpoints are (as for run)')
    .addHelpText(
      'after',
      examples([
        'salespipe reset pipelines/sales.yaml --flow aggregate_sales              the topic was recreated: start over',
        'salespipe reset pipelines/sales.yaml --flow archive_sales --positions    read the topic again, keep the state',
      ]),
    )
    .action(
      act(
        () => import('./commands/reset.js'),
        (fn, file: string, o: { flow?: string[]; all?: boolean; positions?: boolean; stateDir?: string }) => fn(file, o, io, log),
      ),
    );
}

function backfillCommand(program: Command, { io, log, act }: CommandContext): void {
  program
    .command('backfill')
    .description('recompute [--from, --to) from the database and rewrite exactly the Parquet partitions it covers, atomically (cron-safe)')
    .argument('<file>', 'spec file')
    .requiredOption('--from <time>', 'start of the range (inclusive), e.g. 2026-01-15 (in the pipeline time zone) or 2026-01-15T00:00:00Z')
    .requiredOption('--to <time>', 'end of the range (exclusive)')
    .option('--dry-run', 'list the partitions that would be rewritten; write nothing')
    .option('--to-kafka', 'also re-emit the recomputed final rows (append outputs no other flow reads) to their Kafka topics')
    .option(
      '--history <dir>',
      'Parquet dataset of source records (e.g. out/sales_history, or s3://bucket/sales_history) for flows reading a topic no flow of the spec writes',
    )
    .option(
      '--history-connection <name>',
      "the spec's s3 or hdfs connection reaching an s3:// or hdfs:// --history (default: its only one)",
    )
    .option('--timeout <duration>', 'give up after this long (e.g. 30m), exit 1')
    .option('--state-dir <dir>', 'where the lock lives (as for run)')
    .addHelpText(
      'after',
      examples([
        'salespipe backfill pipelines/sales.yaml --from 2026-01-12 --to 2026-01-14',
        'salespipe backfill pipelines/windowed-sales.yaml --from 2026-01-12 --to 2026-01-14 --history out/sales_history --dry-run',
      ]),
    )
    .action(
      act(
        () => import('./commands/backfill.js'),
        (fn, file: string, o: import('./commands/backfill.js').BackfillFlags) => fn(file, o, io, log),
      ),
    );
}

function compactCommand(program: Command, { io, log, act }: CommandContext): void {
  program
    .command('compact')
    .description(
      "merge the small per-epoch files of the spec's append Parquet datasets (local, S3, HDFS) into one per partition, while the pipeline appends (cron-safe)",
    )
    .argument('<file>', 'spec file')
    .option('--output <path>', 'only the Parquet output with this path, or this last folder name (e.g. sales_history)')
    .option('--older-than <duration>', 'merge files written longer ago than this (default 1h), e.g. 1d', '1h')
    .option('--dry-run', 'list what would be merged; write nothing')
    .addHelpText(
      'after',
      examples([
        'salespipe compact pipelines/sales.yaml --older-than 1d',
        'salespipe compact pipelines/sales.yaml --output sales_history --dry-run',
      ]),
    )
    .action(
      act(
        () => import('./commands/compact.js'),
        (fn, file: string, o: import('./commands/compact.js').CompactFlags) => fn(file, o, io, log),
      ),
    );
}

function generateCommand(program: Command, { io, log, act }: CommandContext): void {
  const defaultDb = io.env.SALES_DB_URL || 'mysql://salespipe:salespipe@127.0.0.1:3306/salespipe';
  program
    .command('generate')
    .description('insert realistic sales into a database (MariaDB/MySQL, PostgreSQL or SQLite)')
    .addOption(
      new Option('--db <url>', 'database URL').default(
        defaultDb,
        io.env.SALES_DB_URL ? `SALES_DB_URL: ${redact(defaultDb)}` : redact(defaultDb),
      ),
    )
    .option('--count <n>', 'sales to insert', intArg('--count'), 1000)
    .option('--rate <n>', 'sales per second (0 = as fast as possible)', intArg('--rate'), 0)
    .option('--writers <n>', 'concurrent writers (transactions commit out of id order)', intArg('--writers'), 4)
    .option('--batch <n>', 'rows per transaction', intArg('--batch'), 50)
    .option('--seed <n>', 'random seed', intArg('--seed'), 1)
    .option('--from <time>', 'event times from this instant (default: wall clock at insert)')
    .option('--to <time>', 'event times before this instant')
    .option(
      '--ordered',
      'with --from/--to: event times advance with the inserts (history replayed in order, up to a minute out of order) instead of random',
    )
    .option('--rollback <fraction>', 'fraction of transactions to roll back (leaves id gaps)', parseFloat, 0)
    .option('--create-tables', 'create the tables from sql/<dialect>.sql first')
    .option('--worked-example', 'also insert the worked example (transactions 3001-3003)')
    .option(
      '--reference-data [customers]',
      'also insert customers (default 500, with --history 20000: the buyers of the history; with segment and region) and an inventory row per product, where missing',
      intArg('--reference-data'),
    )
    .option('--restock-every <duration>', 'restock a random product this often while inserting, e.g. 10s')
    .option(
      '--history <days>',
      'instead: sales history with weekly seasonality, trends, promotions, launches and intermittent products, ending yesterday (UTC), e.g. 730d (--count does not apply)',
    )
    .option(
      '--parquet <dir>',
      'with --history: write it as a Parquet dataset partitioned by sale_date (as the archive flow does), not into the database; a folder, s3://bucket/prefix (the AWS environment) or webhdfs://host:port/path',
    )
    .option(
      '--products <n>',
      "with --history: products in the catalogue: the catalog's 70, then numbered models of the same brands and categories (a long tail)",
      intArg('--products'),
    )
    .addHelpText(
      'after',
      examples([
        'salespipe generate --create-tables --worked-example --count 10000 --writers 4',
        'salespipe generate --db sqlite:demo/sales.db --count 5000 --from 2026-01-01 --to 2026-01-08 --ordered',
        'salespipe generate --reference-data --count 20000 --rate 200 --restock-every 20s   a live feed, a progress line every 10 s',
        'salespipe generate --history 730d --parquet out/sales_history   two years of history for pipelines/forecast.yaml',
        'salespipe generate --history 730d --parquet out/sales_history --reference-data   ... and its 20,000 customers, for pipelines/recommendations.yaml',
      ]),
    )
    .action(
      act(
        () => import('./commands/generate.js'),
        (fn, o) => fn(o as never, io, log),
      ),
    );
}

function demoCommand(program: Command, { io, log, act }: CommandContext): void {
  program
    .command('demo')
    .description('embedded quick start: SQLite sales (worked example + generated) -> aggregates -> Parquet and console')
    .option('--dir <dir>', 'where the demo database and outputs go', 'demo')
    .option('--count <n>', 'generated sales besides the worked example', intArg('--count'), 5000)
    .addHelpText('after', examples(['salespipe demo', 'salespipe demo --dir /tmp/demo --count 100000']))
    .action(
      act(
        () => import('./commands/demo.js'),
        (fn, o: { dir: string; count: number }) => fn({ dir: path.resolve(o.dir), count: o.count }, io, log),
      ),
    );
}

/** Every command, in the order --help lists them. */
const COMMANDS: ((program: Command, ctx: CommandContext) => void)[] = [
  validateCommand,
  explainCommand,
  testCommand,
  schemaCommand,
  runCommand,
  dashboardCommand,
  statusCommand,
  resetCommand,
  backfillCommand,
  compactCommand,
  generateCommand,
  backtestCommand,
  demoCommand,
];

/** A mistake in how a command was called: exit 2, one line, no stack. */
class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Entry point of bin/salespipe.js: real stdio, signals, exit code.
 * Under `npx`/`npm exec` a signal to npm does not reach this process (npm
 * runs it through a shell that does not pass signals on): when npm goes
 * away, this process stops as it would on SIGTERM.
 */
export async function main(): Promise<void> {
  // A reader that stops reading (\`salespipe --help | head\`) closes the pipe: nothing more to say, no stack trace.
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
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
  if (process.env.npm_command === 'exec') {
    const parent = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid !== parent && !ctl.signal.aborted) onSignal('the end of npx/npm exec (its parent)');
    }, 500);
    watch.unref();
  }
  const code = await cli(process.argv.slice(2), {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    stdoutIsTTY: !!process.stdout.isTTY,
    env: process.env,
    signal: ctl.signal,
  });
  process.exitCode = code;
  // kafkajs and knex may hold timers briefly after close; don't wait for them.
  setTimeout(() => process.exit(code), 200).unref();
}
