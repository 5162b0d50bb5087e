/**
 * @module The pipeline JSON Schema, built from the operators' own config
 * schemas and the pipeline-level keys (pipeline.ts).
 * `schemas/pipeline.schema.json` is this function's output (a test pins the
 * two together), so editors, `validate` and the code never drift. Each
 * description says its field's default, taken from the schema's `default`.
 */
import { SOURCES, STEPS, SINKS, DEAD_LETTER_SINKS } from '../operators/registry.js';
import type { JsonSchema } from '../core/json-schema.js';
import { NAME, pipelineKeys, testsSchema } from './pipeline.js';

export { testsSchema };

function byType(kind: string, defs: Record<string, { doc: string; config: unknown }>, only?: readonly string[]): JsonSchema {
  const types = Object.keys(defs).filter((t) => !only || only.includes(t));
  return {
    type: 'object',
    required: ['type'],
    properties: { type: { enum: types, description: `${kind} type: ${types.join(', ')}.` } },
    allOf: types.map((t) => ({ if: { properties: { type: { const: t } }, required: ['type'] }, then: { $ref: `#/$defs/${kind}_${t}` } })),
  };
}

/** A copy of `schema` whose descriptions end with their field's default, for editors and readers. */
function documented(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(documented);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === 'default' || k === 'const' || k === 'enum' ? v : documented(v);
  const d = out as { default?: unknown; description?: string };
  if ('default' in d && typeof d.description === 'string' && !/\(default/.test(d.description)) {
    const shown = typeof d.default === 'string' ? d.default : JSON.stringify(d.default);
    if (shown !== '{}') d.description = d.description.replace(/\.?$/, ` (default ${shown}).`);
  }
  return out;
}

export function testsFileSchema(): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'salespipe tests',
    description: 'A sidecar test file (FILE.tests.yaml beside FILE.yaml).',
    type: 'object',
    additionalProperties: false,
    required: ['tests'],
    properties: { tests: testsSchema },
  };
}

export function pipelineSchema(): JsonSchema {
  const $defs: Record<string, unknown> = {};
  for (const [t, d] of Object.entries(SOURCES)) $defs[`source_${t}`] = { description: d.doc, ...d.config };
  for (const [t, d] of Object.entries(SINKS)) $defs[`sink_${t}`] = { description: d.doc, ...d.config };
  $defs.source = byType('source', SOURCES);
  $defs.sink = byType('sink', SINKS);
  $defs.deadLetter = {
    ...byType('sink', SINKS, DEAD_LETTER_SINKS),
    description:
      'Where records that cannot be parsed or processed go, with the reason (default: a JSON-lines file in the state directory).',
  };
  $defs.late = {
    ...byType('sink', SINKS, DEAD_LETTER_SINKS),
    description: 'Where records behind the watermark (too late for their window) go, with the reason (default: the dead-letter output).',
  };
  $defs.step = {
    type: 'object',
    description: 'One step, written as a single key naming it.',
    minProperties: 1,
    maxProperties: 1,
    additionalProperties: false,
    properties: Object.fromEntries(Object.entries(STEPS).map(([k, d]) => [k, { description: d.doc, ...d.config }])),
  };
  $defs.flow = {
    type: 'object',
    additionalProperties: false,
    required: ['source', 'sinks'],
    properties: {
      description: { type: 'string', description: 'What this flow does.' },
      source: { $ref: '#/$defs/source' },
      steps: { type: 'array', items: { $ref: '#/$defs/step' }, description: 'Steps applied in order.' },
      sinks: { type: 'array', minItems: 1, items: { $ref: '#/$defs/sink' }, description: "Where the flow's output goes." },
      deadLetter: { $ref: '#/$defs/deadLetter' },
      late: { $ref: '#/$defs/late' },
    },
  };
  return documented({
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://salespipe.dev/schemas/pipeline.schema.json',
    title: 'salespipe pipeline',
    description: 'A salespipe pipeline spec: named connections and one or more flows (source -> steps -> sinks).',
    type: 'object',
    additionalProperties: false,
    required: ['pipeline', 'flows'],
    properties: {
      ...pipelineKeys,
      flows: {
        type: 'object',
        minProperties: 1,
        propertyNames: { pattern: NAME },
        additionalProperties: { $ref: '#/$defs/flow' },
        description: 'Named flows. A flow whose source reads a topic another flow writes runs after it in a drain.',
      },
    },
    $defs,
  }) as JsonSchema;
}
