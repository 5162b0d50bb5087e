/**
 * @module Spec loading: YAML with source positions -> `${VAR}` interpolation
 * -> JSON Schema validation.
 *
 * Rules:
 * - Every problem is collected, never thrown, each with a line and column
 *   in the file as written.
 * - `${VAR}` and `${VAR:-default}` are replaced in scalar values; `$${` is a
 *   literal `${`. An unset variable without a default is a problem naming it.
 *   A plain scalar that becomes a number or bool after interpolation is one.
 * - Values of variables whose names look secret (PASSWORD, SECRET, TOKEN,
 *   KEY, CREDENTIALS) are registered for redaction.
 */
import fs from 'node:fs';
import { parseDocument, LineCounter, Document, isMap, isSeq, isScalar, visit, Scalar, Node as YNode } from '#yaml';
import type { ErrorObject } from 'ajv';
import type { Problem, ProblemCode } from '../core/problems.js';
import { validator, SpecKind } from './validators.js';
import { distance } from '../expr/compile.js';
import { addSecret } from '../core/log.js';

/** Keys whose values are secrets: given only as ${VAR}. */
const SECRETS = new Set(['password', 'secretAccessKey', 'sessionToken']);
export type Path = (string | number)[];

export interface LoadedSpec {
  file: string;
  /** The spec's text as read (worker threads plan it again from this, not from the file). */
  text: string;
  spec: any;
  problems: Problem[];
  /** Paths where the JSON Schema failed; planning skips the flows they are in. */
  invalidPaths: Path[];
  /**
   * Line/col of the node at `path`, and where it ends; `key` points at the
   * key of a map entry; `offset` (and `length`) move inside a scalar.
   */
  locate(
    path: Path,
    opts?: { key?: boolean; offset?: number; length?: number },
  ): { line: number; col: number; endLine: number; endCol: number };
  problem(
    path: Path,
    message: string,
    code: ProblemCode,
    opts?: { key?: boolean; offset?: number; length?: number; severity?: Problem['severity'] },
  ): void;
  /** The environment variables whose values went into the scalar at `path` (for messages naming a setting). */
  varsAt(path: Path): string[];
}

/** What a file holds: a pipeline spec, or a sidecar of tests (FILE.tests.yaml). */
export type { SpecKind };

const SECRET_NAME = /PASS|SECRET|TOKEN|KEY|CREDENTIAL/i;

export function loadSpecText(file: string, text: string, env: NodeJS.ProcessEnv = process.env, kind: SpecKind = 'pipeline'): LoadedSpec {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, keepSourceTokens: false, uniqueKeys: true, prettyErrors: false });
  const problems: Problem[] = [];

  const pos = (offset: number) => {
    const p = lc.linePos(Math.max(0, Math.min(offset, text.length)));
    return { line: p.line, col: p.col };
  };
  /** The position of text [from, to) (at least one character). */
  const span = (from: number, to: number) => {
    const stop = pos(Math.max(to, from + 1));
    return { ...pos(from), endLine: stop.line, endCol: stop.col };
  };
  const find = (path: Path): { node: YNode | null; key: YNode | null; parentDepth: number } => {
    let node: unknown = doc.contents;
    let key: YNode | null = null;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
        if (!pair) return { node: node as YNode, key, parentDepth: i };
        key = pair.key as YNode;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
        key = null;
        node = node.items[seg];
      } else return { node: node as YNode, key, parentDepth: i };
    }
    return { node: (node as YNode) ?? null, key, parentDepth: path.length };
  };
  const locate: LoadedSpec['locate'] = (path, opts = {}) => {
    const f = find(path);
    // A block mapping or list starts on the line after its key: point at the key, where the reader looks.
    const block = f.node && (isMap(f.node) || isSeq(f.node)) && !(f.node as { flow?: boolean }).flow;
    const target = (opts.key || block) && f.key && f.parentDepth === path.length ? f.key : (f.node ?? f.key);
    let offset = target?.range?.[0] ?? 0;
    let end = target?.range?.[1] ?? offset + 1;
    if (opts.offset !== undefined && target && isScalar(target) && f.parentDepth === path.length) {
      const s = target as Scalar;
      if (s.type === 'PLAIN') offset += opts.offset;
      else if (s.type === 'QUOTE_DOUBLE' || s.type === 'QUOTE_SINGLE') offset += opts.offset + 1;
      end = offset + (opts.length ?? 1);
    }
    return span(offset, end);
  };
  const problem: LoadedSpec['problem'] = (path, message, code, opts = {}) => {
    problems.push({ file, ...locate(path, opts), code, message, severity: opts.severity ?? 'error' });
  };

  // One syntax error makes the parser trip over every token after it: report the
  // first errors (one per line) and say how many consequences were left out. The
  // parser finds the cause first (a tab), its consequences after (a key seen twice,
  // possibly at an earlier position): they are shown in that order.
  const lines = new Set<number>();
  let skipped = 0;
  let first: { line: number; col: number } | undefined;
  for (const e of doc.errors) {
    const at = pos(e.pos[0]);
    if (lines.has(at.line) || lines.size >= 3) {
      skipped++;
      continue;
    }
    lines.add(at.line);
    let message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    if (text.slice(Math.max(0, e.pos[0] - 2), e.pos[0] + 1).includes('${'))
      message += ' (a ${VAR} inside a { } flow mapping must be quoted: "${VAR}", or use block style)';
    if (first) message += ` (perhaps a consequence of the error at ${first.line}:${first.col})`;
    first ??= at;
    problems.push({
      file,
      ...span(e.pos[0], e.pos[1]),
      code: `yaml.${e.code.toLowerCase()}`,
      message,
      severity: 'error',
      seq: problems.length,
    });
  }
  if (skipped) problems[problems.length - 1].message += ` (and ${skipped} further syntax error(s), most likely consequences of the first)`;
  for (const w of doc.warnings) {
    problems.push({
      file,
      ...span(w.pos[0], w.pos[1]),
      code: `yaml.${w.code.toLowerCase()}`,
      message: w.message.split('\n')[0],
      severity: 'warning',
    });
  }
  const varsOf = new WeakMap<object, string[]>();
  const varsAt = (path: Path) => {
    const n = doc.getIn(path, true);
    return (n && typeof n === 'object' ? varsOf.get(n) : undefined) ?? [];
  };
  const loaded: LoadedSpec = { file, text, spec: undefined, problems, invalidPaths: [], locate, problem, varsAt };
  if (doc.errors.length) return loaded;

  // Passwords and secret keys come from the environment, never from the spec's text.
  visit(doc, {
    Pair(_k, pair) {
      if (
        isScalar(pair.key) &&
        SECRETS.has(pair.key.value as string) &&
        isScalar(pair.value) &&
        typeof pair.value.value === 'string' &&
        !pair.value.value.includes('${')
      ) {
        problems.push({
          file,
          ...span(pair.value.range?.[0] ?? 0, pair.value.range?.[1] ?? 0),
          code: 'secret.literal',
          message:
            pair.key.value === 'password'
              ? 'a password written in the spec ends up in version control: take it from the environment, e.g. password: ${KAFKA_PASSWORD}'
              : `a secret written in the spec ends up in version control: take it from the environment, e.g. ${pair.key.value}: \${AWS_${String(pair.key.value) === 'sessionToken' ? 'SESSION_TOKEN' : 'SECRET_ACCESS_KEY'}}`,
          severity: 'error',
        });
      }
    },
  });
  interpolate(
    doc,
    env,
    (node, offset, length, message) => {
      const at = (node.range?.[0] ?? 0) + offset + (node.type === 'PLAIN' ? 0 : 1);
      problems.push({ file, ...span(at, at + length), code: 'env.unset', message, severity: 'error' });
    },
    (node, name) => {
      const l = varsOf.get(node) ?? [];
      if (!l.includes(name)) l.push(name);
      varsOf.set(node, l);
    },
  );

  // An alias to an anchor that is not defined (before it) has no value: a problem, not a crash.
  let unresolved = false;
  visit(doc, {
    Alias(_k, node) {
      if (!node.resolve(doc)) {
        unresolved = true;
        problems.push({
          file,
          ...pos(node.range?.[0] ?? 0),
          code: 'yaml.alias',
          message: `unknown alias *${node.source}: no &${node.source} anchor before it`,
          severity: 'error',
        });
      }
    },
  });
  if (unresolved) return loaded;
  const spec = doc.toJS({ maxAliasCount: 100 });
  loaded.spec = spec;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    problem(
      [],
      kind === 'pipeline'
        ? 'a pipeline spec must be a YAML mapping with `pipeline:` and `flows:`'
        : 'a test file must be a YAML mapping with `tests:`',
      'schema.type',
    );
    return loaded;
  }
  // Whatever a password variable is called, its value is never printed.
  for (const c of Object.values<any>(spec.connections ?? {})) if (typeof c?.sasl?.password === 'string') addSecret(c.sasl.password);
  const v = validator(kind);
  if (!v(spec)) for (const e of relevant(v.errors ?? [])) reportAjv(e, loaded);
  return loaded;
}

export function loadSpec(file: string, env: NodeJS.ProcessEnv = process.env, kind: SpecKind = 'pipeline'): LoadedSpec {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const loaded = loadSpecText(file, '', env, kind);
    loaded.problems.length = 0;
    loaded.problems.push({
      file,
      line: 1,
      col: 1,
      code: 'file.read',
      message: err.code === 'ENOENT' ? 'no such file' : err.message,
      severity: 'error',
    });
    loaded.spec = undefined;
    return loaded;
  }
  return loadSpecText(file, text, env, kind);
}

const VAR = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{([^}]*)\}?/g;

function interpolate(
  doc: Document,
  env: NodeJS.ProcessEnv,
  report: (n: Scalar, offset: number, length: number, msg: string) => void,
  used: (n: Scalar, name: string) => void,
) {
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const src = node.value;
      const out = src.replace(VAR, (m, name: string | undefined, def: string | undefined, bad: string | undefined, offset: number) => {
        if (m === '$${') return '${';
        if (name === undefined) {
          report(node, offset, m.length, `invalid variable reference "${m}" (expected \${NAME} or \${NAME:-default})`);
          return m;
        }
        used(node, name);
        const v = env[name];
        if (v === undefined || v === '') {
          if (def !== undefined) return def;
          report(node, offset, m.length, `environment variable ${name} is not set (use \${${name}:-default} for a default)`);
          return '';
        }
        if (SECRET_NAME.test(name)) addSecret(v);
        return v;
      });
      if (node.type === 'PLAIN' && out !== src) {
        if (/^-?\d+(\.\d+)?$/.test(out)) node.value = Number(out);
        else if (out === 'true' || out === 'false') node.value = out === 'true';
        else node.value = out;
      } else node.value = out;
    },
  });
}

/** Drops ajv's structural noise (if/then wrappers, anyOf summaries) and duplicates. */
function relevant(errors: ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    if (
      e.keyword === 'if' ||
      e.propertyName !== undefined ||
      (e.keyword === 'anyOf' &&
        errors.some((o) => o !== e && o.instancePath.startsWith(e.instancePath) && o.keyword !== 'anyOf' && o.keyword !== 'type'))
    )
      return false;
    const k = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function pointer(p: string): Path {
  if (!p) return [];
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function where(path: Path): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s ? `.${seg}` : String(seg);
  return s || 'spec';
}

function reportAjv(e: ErrorObject, spec: LoadedSpec) {
  const path = pointer(e.instancePath);
  spec.invalidPaths.push(path);
  const at = where(path);
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = (e.params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      const close = allowed.map((a) => ({ a, d: distance(extra.toLowerCase(), a.toLowerCase()) })).sort((x, y) => x.d - y.d)[0];
      const hint =
        close && close.d <= Math.max(2, extra.length / 3)
          ? ` (did you mean "${close.a}"?)`
          : allowed.length
            ? `; allowed: ${allowed.join(', ')}`
            : '';
      return spec.problem([...path, extra], `${at}: unknown key "${extra}"${hint}`, 'schema.unknown-key', { key: true });
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return spec.problem(path, `${at}: missing required key "${missing}"`, 'schema.required', { key: true });
    }
    case 'enum':
      return spec.problem(
        path,
        `${at}: must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`,
        'schema.enum',
      );
    case 'const':
      return spec.problem(path, `${at}: must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`, 'schema.enum');
    case 'type': {
      // `{ price: decimal(12,2) }` in a YAML flow mapping splits at the comma into a key "2)".
      const last = path[path.length - 1];
      const hint =
        typeof last === 'string' && /^\s*\d+\s*\)$/.test(last) ? ' (a type with a comma inside { } must be quoted: "decimal(12,2)")' : '';
      return spec.problem(path, `${at}: must be ${(e.params as { type: string }).type}${hint}`, 'schema.type');
    }
    case 'maxProperties':
      if (e.parentSchema && (e.parentSchema as { description?: string }).description?.startsWith('One step')) {
        return spec.problem(
          path,
          `${at}: a step is a single key naming it (e.g. "- filter: …"); split this into separate steps`,
          'schema.step',
        );
      }
      break;
    case 'minProperties':
      if (e.parentSchema && (e.parentSchema as { description?: string }).description?.startsWith('One step')) {
        return spec.problem(path, `${at}: empty step; expected one of its kinds`, 'schema.step');
      }
      break;
    case 'propertyNames':
      return spec.problem(
        [...path, (e.params as { propertyName: string }).propertyName],
        `${at}: invalid name "${(e.params as { propertyName: string }).propertyName}" (letters, digits, _ and -; not starting with a digit)`,
        'schema.name',
        { key: true },
      );
    case 'pattern':
      return spec.problem(path, `${at}: invalid value ${JSON.stringify(spec.spec && valueAt(spec.spec, path))}`, 'schema.pattern');
  }
  spec.problem(path, `${at}: ${e.message ?? 'invalid'}`, `schema.${e.keyword}`);
}

function valueAt(obj: any, path: Path): unknown {
  let v = obj;
  for (const s of path) v = v?.[s];
  return v;
}
