/**
 * @module `salespipe explain`: a plan as text — operators, edges, schemas, modes.
 */
import type { Plan, FlowPlan } from './plan.js';
import type { StreamInfo } from '../operators/operator.js';
import { typeName } from '../types.js';
import { redact } from '../runtime/log.js';

const schemaText = (s: StreamInfo) => s.schema.map((f) => `${f.name} ${typeName(f.type)}`).join(', ');

const dur = (ms: number) => (ms % 86_400_000 === 0 ? `${ms / 86_400_000}d` : ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : ms % 60_000 === 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

const streamText = (s: StreamInfo) =>
  `${s.mode}${s.key ? ` keyed by (${s.key.join(', ')})` : ''}${s.eventTime ? `, event time ${s.eventTime}` : ''}` +
  (s.watermark ? `, ${s.watermark.slide === s.watermark.size ? 'tumbling' : `hopping every ${dur(s.watermark.slide)},`} ${dur(s.watermark.size)} windows on ${s.watermark.on}, watermark = max(${s.watermark.on}) - ${dur(s.watermark.lateness)}` : '');

function what(type: string, cfg: Record<string, unknown>): string {
  const bits = [type];
  for (const k of ['table', 'topic', 'path', 'cursor', 'connection', 'group']) if (cfg[k] !== undefined) bits.push(`${k}=${cfg[k]}`);
  if (cfg.key !== undefined) bits.push(`key=${[cfg.key].flat().join('+')}`);
  if (Array.isArray(cfg.partitionBy) && cfg.partitionBy.length) bits.push(`partitionBy=${cfg.partitionBy.join('/')}`);
  return bits.join(' ');
}

function stepText(key: string, cfg: unknown): string {
  if (key === 'filter') return `filter ${cfg}`;
  if (key === 'select') return `select ${(cfg as string[]).join(', ')}`;
  if (key === 'derive') return `derive ${Object.entries(cfg as object).map(([k, v]) => `${k} = ${v}`).join('; ')}`;
  if (key === 'assert') return `assert ${(cfg as { check: string }).check}`;
  if (key === 'aggregate') {
    const a = cfg as { groupBy: string[]; compute: Record<string, string> };
    return `aggregate by (${a.groupBy.join(', ')}): ${Object.entries(a.compute).map(([k, v]) => `${k} = ${v}`).join('; ')}`;
  }
  const table = (t: { table: string; refresh?: string; updatedAt?: string }) => `table ${t.table} (refreshed every ${t.refresh ?? '30s'}${t.updatedAt ? ` by ${t.updatedAt}` : ''})`;
  const on = (o: Record<string, string>) => Object.entries(o).map(([a, b]) => `${a} = ${b}`).join(' and ');
  if (key === 'join') {
    const j = cfg as { type?: string; table: { table: string }; on: Record<string, string> };
    return `${j.type ?? 'inner'} join ${table(j.table as never)} on ${on(j.on)}`;
  }
  if (key === 'balance') {
    const b = cfg as { table: { table: string }; on: Record<string, string>; opening: string; asOf: string; add?: string; subtract?: string; as?: string };
    return `balance ${b.as ?? 'balance'} = ${b.opening} ${b.add !== undefined ? `+ sum(${b.add})` : `- sum(${b.subtract})`} after ${b.asOf}, from ${table(b.table as never)} on ${on(b.on)}`;
  }
  if (key === 'threshold') {
    const t = cfg as { value: string; below?: unknown; above?: unknown };
    return `threshold alert while ${t.value} ${t.below !== undefined ? `< ${t.below}` : `> ${t.above}`}; resolved when it no longer holds`;
  }
  return key;
}

function flowText(f: FlowPlan): string[] {
  const lines = [`flow ${f.name}${f.upstream.length ? `  (downstream of ${f.upstream.join(', ')})` : ''}`];
  lines.push(`  [source] ${what(f.source.type, f.source.cfg)}`);
  lines.push(`      => ${streamText(f.source.out)}: ${schemaText(f.source.out)}`);
  f.steps.forEach((s, i) => {
    lines.push(`  [step ${i + 1}] ${stepText(s.key, s.cfg)}`);
    const same = schemaText(s.out) === schemaText(s.input) && streamText(s.out) === streamText(s.input);
    lines.push(`      => ${same ? 'same stream' : `${streamText(s.out)}: ${schemaText(s.out)}`}`);
  });
  for (const s of f.sinks) lines.push(`  [sink] ${what(s.type, s.cfg)}`);
  lines.push(`  [dead letters] ${f.deadLetter ? what(f.deadLetter.type, f.deadLetter.cfg) : 'file in the state directory (default)'}`);
  if (f.late) lines.push(`  [late records] ${what(f.late.type, f.late.cfg)}`);
  return lines;
}

export function explainText(plan: Plan): string {
  const conns = Object.entries(plan.connections).map(([n, c]) => `  ${n}: ${c.type} ${c.url ?? c.brokers ?? ''}`.trimEnd());
  return redact([
    `pipeline ${plan.pipeline} (${plan.file})`,
    `time zone ${plan.timeZone}; checkpoint every ${plan.checkpointMs} ms`,
    ...(conns.length ? ['connections:', ...conns] : []),
    '',
    ...plan.flows.flatMap((f) => [...flowText(f), '']),
  ].join('\n'));
}
