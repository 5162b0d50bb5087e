/**
 * @module The spec validators (ajv), compiled once at build time.
 *
 * Rules: `npm run build` writes the validators of the pipeline and test-file
 * schemas as JavaScript (ajv's standalone code) beside this module, with a
 * hash of the schemas they were made from; a spec is then validated without
 * compiling the schema at each start (it took most of `salespipe validate`'s
 * time). When the generated module is missing or was made from other
 * schemas, the schemas are compiled at run time, as before.
 */
import crypto from 'node:crypto';
import { createRequire } from 'node:module';
import type { Ajv as AjvT, ValidateFunction } from 'ajv';
import { pipelineSchema, testsFileSchema } from './schema.js';

export type SpecKind = 'pipeline' | 'tests';

const options = { allErrors: true, strict: false, allowUnionTypes: true, verbose: true } as const;

const schemas = () => ({ pipeline: pipelineSchema(), tests: testsFileSchema() });

/** Identifies the schemas a generated module was made from. */
export const schemasHash = (s = schemas()) => crypto.createHash('sha256').update(JSON.stringify(s)).digest('hex').slice(0, 16);

/** The generated module's source (build time). */
export async function standaloneSource(): Promise<string> {
  const { default: standaloneCode } = await import('ajv/dist/standalone/index.js');
  const { Ajv } = await import('ajv');
  const s = schemas();
  // CommonJS: ajv's standalone code requires its runtime helpers.
  const ajv = new Ajv({ ...options, code: { source: true } });
  ajv.addSchema(s.pipeline, 'pipeline').addSchema(s.tests, 'tests');
  return `${(standaloneCode as unknown as (a: AjvT, m: Record<string, string>) => string)(ajv, { pipeline: 'pipeline', tests: 'tests' })}\nexports.hash = ${JSON.stringify(schemasHash(s))};\n`;
}

let generated: Record<string, ValidateFunction> | undefined;
// Generated at build time (validators.generated.cjs); absent when running unbuilt.
try {
  const m = createRequire(import.meta.url)('./validators.generated.cjs') as Record<string, ValidateFunction> & { hash: string };
  if (m.hash === schemasHash()) generated = m;
} catch {
  // not built: compiled on first use below
}

const compiled = new Map<SpecKind, ValidateFunction>();
const require = createRequire(import.meta.url);

export function validator(kind: SpecKind): ValidateFunction {
  const g = generated?.[kind];
  if (g) return g;
  let v = compiled.get(kind);
  if (!v) {
    const { Ajv } = require('ajv') as typeof import('ajv');
    v = new Ajv(options).compile(kind === 'pipeline' ? pipelineSchema() : testsFileSchema());
    compiled.set(kind, v);
  }
  return v;
}
