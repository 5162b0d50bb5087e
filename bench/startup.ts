/**
 * Start-up time of the command line: `salespipe --help` and `salespipe
 * validate pipelines/sales.yaml`, each the median wall time of several
 * runs in a fresh process, beside the same for a bare `node` (the floor no
 * command can go under). `npm run bench` includes it; `npm run
 * bench:startup` runs it alone (no services needed).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PACKAGE_ROOT } from '../src/core/paths.js';

const BIN = path.join(PACKAGE_ROOT, 'bin/salespipe.js');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median milliseconds of `runs` runs of `node args`, after one warm-up (the file cache). */
function timed(args: string[], runs: number): number {
  const once = () => {
    const t = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { cwd: PACKAGE_ROOT, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  once();
  return median(Array.from({ length: runs }, once));
}

export interface Startup {
  node_ms: number;
  help_ms: number;
  validate_ms: number;
}

export function startupTimes(runs = 9): Startup {
  return {
    node_ms: Math.round(timed(['-e', ''], runs)),
    help_ms: Math.round(timed([BIN, '--help'], runs)),
    validate_ms: Math.round(timed([BIN, 'validate', 'pipelines/sales.yaml'], runs)),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = startupTimes(Number(process.env.BENCH_RUNS ?? 9));
  process.stderr.write(
    `bench: start-up (median): node ${s.node_ms} ms, salespipe --help ${s.help_ms} ms, validate pipelines/sales.yaml ${s.validate_ms} ms\n`,
  );
  console.log(JSON.stringify({ startup: s }));
}
