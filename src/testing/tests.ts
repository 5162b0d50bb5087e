/**
 * @module `salespipe test`: a pipeline's own tests, run in-process without
 * any server.
 *
 * Rules:
 * - Tests live in the spec (`tests:`) or beside it in FILE.tests.yaml. Each
 *   gives records per flow (fed to its source), rows of lookup tables, and
 *   the rows expected per flow (what its sinks receive).
 * - The run is bounded (runtime/bounded.ts): flows run upstream first and
 *   connect through in-memory topics; at the end of the input every window
 *   is final.
 * - Keyed streams are compared as the latest row per key (what a compacted
 *   topic, a keyed Parquet dataset or an upserted table holds); append
 *   streams as the multiset of rows. Both ignore order. Only the columns an
 *   expected row names are compared; values are read with the column's type
 *   (100000 and "100000.00" are the same decimal).
 * - Dead letters and late records are checked when the test lists them:
 *   exactly one reason substring per record.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LoadedSpec, Path } from '../spec/load.js';
import { loadSpec } from '../spec/load.js';
import type { Problem } from '../spec/errors.js';
import type { Plan } from '../plan/plan.js';
import type { FlowOutput } from '../runtime/bounded.js';
import type { Logger } from '../core/log.js';
import { makeDecoder } from '../operators/record-schema.js';
import { ColumnType, Row, Schema, Value, fieldOf, formatDecimal } from '../core/types.js';
import { formatTimestamp } from '../core/time.js';

export interface SpecTest {
  name: string;
  input?: Record<string, Record<string, unknown>[]>;
  tables?: Record<string, Record<string, unknown>[]>;
  expect: Record<string, Record<string, unknown>[]>;
  deadLetters?: Record<string, string[]>;
  late?: Record<string, string[]>;
  /** Where the test is written, for messages. */
  file: string;
  line: number;
}

/** FILE.tests.yaml beside FILE.yaml. */
export const sidecarOf = (spec: string) => spec.replace(/\.ya?ml$/, '') + '.tests.yaml';
export const isSidecar = (file: string) => /\.tests\.ya?ml$/.test(file);

/**
 * The tests of a spec, from the spec and its sidecar, with problems (unknown
 * flow names, sidecar syntax) reported at their positions.
 */
export function collectTests(
  loaded: LoadedSpec,
  plan: Plan | undefined,
  env: NodeJS.ProcessEnv,
): { tests: SpecTest[]; problems: Problem[] } {
  const tests: SpecTest[] = [];
  const problems: Problem[] = [];
  const sources: LoadedSpec[] = [loaded];
  const side = sidecarOf(loaded.file);
  if (fs.existsSync(side)) {
    const l = loadSpec(side, env, 'tests');
    problems.push(...l.problems);
    sources.push(l);
  }
  const flows = new Set(plan?.flows.map((f) => f.name) ?? Object.keys(loaded.spec?.flows ?? {}));
  for (const src of sources) {
    const list = src.spec?.tests;
    if (!Array.isArray(list) || src.problems.some((p) => p.severity === 'error' && p.file === src.file && src !== loaded)) continue;
    list.forEach((t: Omit<SpecTest, 'file' | 'line'>, i: number) => {
      const at = (p: Path, key = false) => src.locate(['tests', i, ...p], { key });
      let ok = true;
      for (const part of ['input', 'expect', 'deadLetters', 'late'] as const) {
        for (const name of Object.keys(t[part] ?? {})) {
          if (!flows.has(name)) {
            ok = false;
            problems.push({
              file: src.file,
              ...at([part, name], true),
              code: 'test.flow',
              severity: 'error',
              message: `no flow "${name}" in ${path.basename(loaded.file)}; flows: ${[...flows].join(', ')}`,
            });
          }
        }
      }
      if (ok) tests.push({ ...t, file: src.file, line: at([]).line });
    });
  }
  return { tests, problems };
}

export interface TestResult {
  name: string;
  passed: boolean;
  diff: string[];
}

export async function runSpecTest(plan: Plan, t: SpecTest, log: Logger): Promise<TestResult> {
  let outputs: Map<string, FlowOutput>;
  try {
    // The runtime loads only when a test runs: validate collects tests without it.
    const { runBounded } = await import('../runtime/bounded.js');
    outputs = await runBounded(plan, { records: t.input ?? {}, tables: t.tables ?? {} }, log);
  } catch (e) {
    return { name: t.name, passed: false, diff: [`the pipeline failed: ${(e as Error).message}`] };
  }
  const diff: string[] = [];
  for (const [flow, expected] of Object.entries(t.expect)) diff.push(...compareRows(flow, outputs.get(flow)!, expected, plan.timeZone));
  for (const kind of ['deadLetters', 'late'] as const) {
    for (const [flow, reasons] of Object.entries(t[kind] ?? {})) {
      const o = outputs.get(flow)!;
      const got = (kind === 'late' ? o.late : o.dead).map((d) => String(d.reason));
      diff.push(...compareReasons(`${flow} ${kind === 'late' ? 'late records' : 'dead letters'}`, got, reasons));
    }
  }
  // Dead letters nobody expected are worth a failure too: they are records the test lost.
  for (const [flow, o] of outputs) {
    if (o.dead.length && !t.deadLetters?.[flow] && (t.input?.[flow] || t.expect[flow])) {
      diff.push(
        `${flow}: ${o.dead.length} unexpected dead letter(s), e.g. ${o.dead[0].reason} (list them under deadLetters: to expect them)`,
      );
    }
  }
  return { name: t.name, passed: diff.length === 0, diff };
}

/** Canonical text of a value of a column, for comparison and display. */
function canonical(v: Value | undefined, t: ColumnType): string {
  if (v === null || v === undefined) return 'null';
  switch (t.kind) {
    case 'decimal':
      return formatDecimal(v as number | bigint, t.scale ?? 0);
    case 'timestamp':
      return formatTimestamp(v as number);
    case 'string':
      return JSON.stringify(v);
    default:
      return String(v);
  }
}

function compareRows(flow: string, out: FlowOutput, expected: Record<string, unknown>[], timeZone: string): string[] {
  const { schema, mode, key } = out.stream;
  const diff: string[] = [];
  const cols = [...new Set(expected.flatMap((r) => Object.keys(r)))];
  const unknown = cols.filter((c) => !fieldOf(schema, c));
  if (unknown.length)
    return [
      `${flow}: expected rows name unknown column(s) ${unknown.join(', ')}; the flow's output has ${schema.map((f) => f.name).join(', ')}`,
    ];
  const keyed = mode !== 'append' && !!key?.length;
  // Keyed rows are matched by the key columns every expected row names (all of them, usually).
  const by = keyed ? key!.filter((k) => expected.every((r) => k in r)) : [];
  if (keyed && !by.length)
    return [`${flow}: the output is keyed by (${key!.join(', ')}); expected rows need (some of) these columns to be matched`];
  const sub: Schema = schema.filter((f) => cols.includes(f.name)).map((f) => ({ ...f, type: { ...f.type, nullable: true } }));
  const decode = makeDecoder(sub, { timeZone, numericText: true, bigDecimals: true });
  const show = (r: Row, only: string[]) =>
    `{ ${only
      .filter((c) => c in r)
      .map((c) => `${c}: ${canonical(r[c], fieldOf(schema, c)!.type)}`)
      .join(', ')} }`;
  const all = schema.map((f) => f.name);
  const exp: Row[] = [];
  expected.forEach((e, i) => {
    const r = decode(e);
    if (typeof r === 'string') diff.push(`${flow}: expected row ${i + 1}: ${r}`);
    else {
      for (const c of Object.keys(r)) if (!(c in e)) delete r[c];
      exp.push(r);
    }
  });
  if (diff.length) return diff;
  const text = (r: Row, only: string[]) => only.map((c) => canonical(r[c], fieldOf(schema, c)!.type)).join('\u0000');
  if (keyed) {
    const latest = new Map<string, Row>();
    for (const r of out.rows) latest.set(text(r, key!), r);
    const byKey = new Map<string, Row[]>();
    for (const r of latest.values()) {
      const k = text(r, by);
      byKey.set(k, [...(byKey.get(k) ?? []), r]);
    }
    const seen = new Set<string>();
    for (const e of exp) {
      const k = text(e, by);
      seen.add(k);
      const found = byKey.get(k) ?? [];
      const only = Object.keys(e);
      if (!found.length) diff.push(`${flow}: missing ${show(e, only)}`);
      else if (found.length > 1) diff.push(`${flow}: ${found.length} rows match ${show(e, by)}; name more of the key (${key!.join(', ')})`);
      else if (text(found[0], only) !== text(e, only))
        diff.push(`${flow}: expected ${show(e, only)}`, `${' '.repeat(flow.length)}       got ${show(found[0], only)}`);
    }
    for (const [k, rows] of byKey) if (!seen.has(k)) for (const a of rows) diff.push(`${flow}: unexpected ${show(a, all)}`);
    return diff;
  }
  // Append: every expected row matches one actual row, on the columns it names.
  const left = [...out.rows];
  for (const e of exp) {
    const only = Object.keys(e);
    const t = text(e, only);
    const i = left.findIndex((a) => text(a, only) === t);
    if (i >= 0) left.splice(i, 1);
    else diff.push(`${flow}: missing ${show(e, only)}`);
  }
  for (const a of left) diff.push(`${flow}: unexpected ${show(a, all)}`);
  return diff;
}

function compareReasons(what: string, got: string[], expected: string[]): string[] {
  const left = [...got];
  const diff: string[] = [];
  for (const e of expected) {
    const i = left.findIndex((g) => g.includes(e));
    if (i >= 0) left.splice(i, 1);
    else diff.push(`${what}: none matches "${e}"`);
  }
  for (const g of left) diff.push(`${what}: unexpected "${g}"`);
  return diff;
}
