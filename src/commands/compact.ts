/**
 * @module `salespipe compact FILE [--output PATH] [--older-than 1d]`: merge
 * the small per-epoch files of the spec's append Parquet datasets, on any
 * store, while the pipeline keeps appending (rules: sinks/parquet/compact.ts).
 */
import path from 'node:path';
import type { IO } from '../core/io.js';
import type { Logger } from '../core/log.js';
import type { FlowPlan, SinkNode } from '../plan/plan.js';
import { openStore } from '../storage/store.js';
import { locationOf, type Planned } from '../operators/sinks/parquet/index.js';
import { durationArg, planOrPrint, oneSpec, UsageError } from './common.js';

export interface CompactFlags {
  output?: string;
  olderThan?: string;
  dryRun?: boolean;
}

export default async function compactCommand(file: string, o: CompactFlags, io: IO, log: Logger): Promise<number> {
  const spec = oneSpec(file);
  // 0s is allowed: a writer never changes a published file, so even its newest ones can be merged.
  const olderThan = /^0+(ms|s|m|h|d)?$/.test(o.olderThan ?? '') ? 0 : durationArg(o.olderThan ?? '1h', '--older-than')!;
  const plan = planOrPrint(spec, io);
  if (!plan) return 2;
  const datasets: { f: FlowPlan; s: SinkNode }[] = [];
  for (const f of plan.flows)
    for (const s of f.sinks)
      if (
        s.type === 'parquet' &&
        (o.output === undefined || s.cfg.path === o.output || s.cfg.path.replace(/\/+$/, '').split('/').pop() === o.output)
      )
        datasets.push({ f, s });
  const appends = datasets.filter((d) => d.s.input.mode === 'append');
  for (const d of datasets)
    if (d.s.input.mode !== 'append')
      log.info(`${d.f.name} -> parquet ${d.s.cfg.path}: skipped: a keyed dataset holds one file per partition already`);
  if (!appends.length)
    throw new UsageError(
      o.output !== undefined
        ? `no append Parquet output with path ${o.output} in ${file}; its Parquet outputs: ${plan.flows.flatMap((f) => f.sinks.filter((s) => s.type === 'parquet').map((s) => s.cfg.path)).join(', ') || 'none'}`
        : `${file} writes no append Parquet dataset: nothing to compact`,
    );
  const { compact } = await import('../operators/sinks/parquet/compact.js');
  const { toParquet, fromParquet } = await import('../operators/sinks/parquet/arrow-rows.js');
  const stop = new AbortController();
  io.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  const specDir = path.dirname(path.resolve(plan.file));
  for (const { f, s } of appends) {
    const p = s.planned as Planned;
    const store = await openStore(locationOf(p, specDir), {
      connections: plan.connections,
      connectionLabels: plan.connectionLabels,
      specDir,
      log,
      signal: stop.signal,
    });
    try {
      const parts = p.cfg.partitionBy ?? [];
      const started = Date.now();
      const r = await compact({
        store,
        fileSchema: p.input.schema.filter((c) => !parts.includes(c.name)),
        compression: p.cfg.compression,
        before: Date.now() - olderThan,
        dryRun: !!o.dryRun,
        log: log.child(f.name),
        read: fromParquet,
        write: toParquet,
      });
      log.info(
        `${f.name} -> ${store.where}: ${r.partitions} partition(s) ${o.dryRun ? 'would be ' : ''}compacted, ${r.filesBefore} -> ${r.filesAfter} file(s), ${r.rows} row(s) rewritten, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    } finally {
      await store.close();
    }
  }
  return 0;
}
