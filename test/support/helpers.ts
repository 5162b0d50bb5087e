/**
 * Test support: spawning the real CLI, temp dirs, and the independent
 * readers used as oracles (kcat for Kafka, pyarrow for Parquet).
 */
import { spawn, spawnSync, ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { PACKAGE_ROOT } from '../../src/core/paths.js';

export const ROOT = PACKAGE_ROOT;
export const BIN = path.join(ROOT, 'bin/salespipe.js');

export function tmpDir(prefix = 'salespipe-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const uniq = () => `t${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the salespipe binary to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<Result> {
  const child = startCli(args, env, cwd);
  return finished(child);
}

export function startCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd = ROOT,
): ChildProcess & { out: { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, SALESPIPE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d) => (out.stdout += d));
  child.stderr!.on('data', (d) => (out.stderr += d));
  return Object.assign(child, { out });
}

export function finished(child: ChildProcess & { out?: { stdout: string; stderr: string } }): Promise<Result> {
  return new Promise((resolve) => {
    const done = (code: number | null) => resolve({ code, stdout: child.out?.stdout ?? '', stderr: child.out?.stderr ?? '' });
    if (child.exitCode !== null || child.signalCode !== null) return done(child.exitCode);
    child.on('exit', (code) => setImmediate(() => done(code)));
  });
}

/** Waits until `pred` holds (polling), or fails after `ms`. */
export async function until(pred: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/**
 * Reads Parquet with pyarrow (an independent reader); decimals come back as exact strings.
 * `dir` is a local folder, s3://bucket/prefix (the test S3 server, pyarrow's S3FileSystem)
 * or webhdfs://host:port/path (HDFS through fsspec's WebHDFS client).
 */
export function readParquet(dir: string): Record<string, unknown>[] {
  const script = `
import json, sys, decimal, datetime, os
import pyarrow.dataset as ds
where = sys.argv[1]
if where.startswith('s3://'):
    from pyarrow import fs
    f = fs.S3FileSystem(access_key=os.environ['S3_KEY'], secret_key=os.environ['S3_SECRET'], endpoint_override=os.environ['S3_ENDPOINT'], scheme='http')
    t = ds.dataset(where[5:], filesystem=f, format='parquet', partitioning='hive').to_table()
elif where.startswith('webhdfs://'):
    # fsspec's WebHDFS client copies the dataset to a local folder, pyarrow reads that: pyarrow's own
    # thread pool calling back into a Python filesystem aborts the process now and then.
    import fsspec, tempfile
    hostport, _, p = where[10:].partition('/')
    host, _, port = hostport.partition(':')
    h = fsspec.filesystem('webhdfs', host=host, port=int(port), user='salespipe')
    local = tempfile.mkdtemp()
    for f in h.find('/' + p):
        rel = f[len('/' + p):].lstrip('/')
        os.makedirs(os.path.join(local, os.path.dirname(rel)), exist_ok=True)
        with h.open(f, 'rb') as src, open(os.path.join(local, rel), 'wb') as dst: dst.write(src.read())
    t = ds.dataset(local, format='parquet', partitioning='hive').to_table()
    import shutil; shutil.rmtree(local)
else:
    t = ds.dataset(where, format='parquet', partitioning='hive').to_table()
def conv(v):
    if isinstance(v, decimal.Decimal): return str(v)
    if isinstance(v, datetime.datetime): return v.isoformat()
    return v
print(json.dumps([{k: conv(v) for k, v in r.items()} for r in t.to_pylist()]))
`;
  const r = spawnSync('python3', ['-c', script, dir], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    env: { ...process.env, S3_KEY: 'salespipe', S3_SECRET: 'salespipe-secret', S3_ENDPOINT: '127.0.0.1:9000' },
  });
  if (r.status !== 0) throw new Error(`pyarrow could not read ${dir}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Every message of a topic, read by kcat (an independent client), read_committed; `keyFormat` is kcat's (%p: the partition instead of the key). */
export function readTopic(
  topic: string,
  brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
  keyFormat = '%k',
): { key: string; value: string }[] {
  const r = spawnSync(
    'kcat',
    ['-b', brokers, '-C', '-t', topic, '-e', '-q', '-X', 'isolation.level=read_committed', '-f', `${keyFormat}\\t%s\\n`],
    { encoding: 'utf8', maxBuffer: 1 << 30 },
  );
  if (r.status !== 0) throw new Error(`kcat could not read ${topic}: ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const i = l.indexOf('\t');
      return { key: l.slice(0, i), value: l.slice(i + 1) };
    });
}

/**
 * Every message of a topic, read_committed by kcat, once no transaction is
 * pending there: a committed transaction's markers are written just after
 * its commit returns, and until then read_committed readers stop short of
 * it. Waits (up to 60 s) until every partition's last stable offset is its
 * high watermark, asked of the brokers by kcat at each isolation level.
 */
export async function readTopicSettled(
  topic: string,
  brokers = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092',
): Promise<{ key: string; value: string }[]> {
  const meta = spawnSync('kcat', ['-b', brokers, '-L', '-t', topic, '-J'], { encoding: 'utf8' });
  if (meta.status !== 0) throw new Error(`kcat could not read the metadata of ${topic}: ${meta.stderr}`);
  const partitions: number[] = JSON.parse(meta.stdout).topics[0].partitions.map((p: { partition: number }) => p.partition);
  const offsets = (isolation: string) => {
    const r = spawnSync(
      'kcat',
      ['-b', brokers, '-Q', '-X', `isolation.level=${isolation}`, ...partitions.flatMap((p) => ['-t', `${topic}:${p}:-1`])],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`kcat could not query the offsets of ${topic}: ${r.stderr}`);
    return r.stdout.trim().split('\n').sort().join('\n');
  };
  await until(() => offsets('read_committed') === offsets('read_uncommitted'), 60_000, `the transactions on ${topic} to settle`);
  return readTopic(topic, brokers);
}

/** Latest value per key, as a compacted topic's consumer sees it. */
export function latestByKey(msgs: { key: string; value: string }[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const x of msgs) m.set(x.key, x.value);
  return m;
}

/** Parses JSON keeping every number's exact text (for money). */
export function parseExact(text: string): Record<string, string | null> {
  const quoted = text.replace(/([:\[,]\s*)(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?=\s*[,}\]])/g, '$1"$2"');
  return JSON.parse(quoted);
}

const CI = process.env.CI === 'true' || process.env.CI === '1';

/**
 * Integration tests need real services. Under CI a missing one is a failure;
 * elsewhere the test is skipped with the command that starts them.
 */
export async function needServices(t: TestContext, check: () => Promise<void>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch (e) {
    const msg = `services not reachable (${(e as Error).message}); start them with: npm run services:up`;
    if (CI) throw new Error(msg);
    t.skip(msg);
    return false;
  }
}

/** Stops or starts one of the services the project's script runs (services/services.sh), failing the test if it cannot. */
export function service(action: 'stop' | 'start', name: 'mariadb' | 'kafka'): void {
  const r = spawnSync('bash', [path.join(ROOT, 'services/services.sh'), action, name], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`services.sh ${action} ${name} exited with ${r.status}: ${r.stderr}`);
}

/** Money as exact text, with two decimals: 100000 -> "100000.00". */
export const money = (v: string | number) => {
  const s = String(v);
  const [i, f = ''] = s.split('.');
  return `${i}.${f.padEnd(2, '0')}`;
};
