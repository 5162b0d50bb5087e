/**
 * @module The pipeline JSON Schema, built from the operators' own config
 * schemas. `schemas/pipeline.schema.json` is this function's output (a test
 * pins the two together), so editors, `validate` and the code never drift.
 */
import { SOURCES, STEPS, SINKS, DEAD_LETTER_SINKS } from '../operators/registry.js';
import { connectionsConfig } from '../operators/connections.js';
import type { JsonSchema } from '../operators/operator.js';

const NAME = '^[A-Za-z_][A-Za-z0-9_-]*$';

function byType(kind: string, defs: Record<string, { doc: string; config: JsonSchema }>, only?: readonly string[]): JsonSchema {
  const types = Object.keys(defs).filter((t) => !only || only.includes(t));
  return {
    type: 'object',
    required: ['type'],
    properties: { type: { enum: types, description: `${kind} type: ${types.join(', ')}.` } },
    allOf: types.map((t) => ({ if: { properties: { type: { const: t } }, required: ['type'] }, then: { $ref: `#/$defs/${kind}_${t}` } })),
  };
}

const rows = (description: string): JsonSchema => ({
  type: 'object',
  additionalProperties: { type: 'array', items: { type: 'object' } },
  description,
});

/** `tests:` of a spec (or of its sidecar FILE.tests.yaml), run by `salespipe test` without any server. */
export const testsSchema: JsonSchema = {
  type: 'array',
  description: 'Tests run by `salespipe test` in-process, without any server.',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'expect'],
    properties: {
      name: { type: 'string', minLength: 1, description: 'Shown in the test output.' },
      description: { type: 'string', description: 'What the test shows.' },
      input: rows('Flow name -> records fed to its source, as the source would read them (a table row, a JSON message). A flow reading a topic that another flow writes gets that flow\'s output when no records are given.'),
      tables: rows('Table name -> rows of the lookup tables that join and balance steps read.'),
      expect: rows('Flow name -> the rows its sinks receive: for keyed streams the latest row per key, for append streams every row; in any order. Only the columns written are compared.'),
      deadLetters: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } }, description: 'Flow name -> one reason (a substring) per dead letter expected; exactly these.' },
      late: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } }, description: 'Flow name -> one reason (a substring) per late record expected; exactly these.' },
    },
  },
};

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
  const $defs: Record<string, JsonSchema> = {};
  for (const [t, d] of Object.entries(SOURCES)) $defs[`source_${t}`] = { description: d.doc, ...d.config };
  for (const [t, d] of Object.entries(SINKS)) $defs[`sink_${t}`] = { description: d.doc, ...d.config };
  $defs.source = byType('source', SOURCES);
  $defs.sink = byType('sink', SINKS);
  $defs.deadLetter = { ...byType('sink', SINKS, DEAD_LETTER_SINKS), description: 'Where records that cannot be parsed or processed go, with the reason (default: a JSON-lines file in the state directory).' };
  $defs.late = { ...byType('sink', SINKS, DEAD_LETTER_SINKS), description: 'Where records behind the watermark (too late for their window) go, with the reason (default: the dead-letter output).' };
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
      sinks: { type: 'array', minItems: 1, items: { $ref: '#/$defs/sink' }, description: 'Where the flow\'s output goes.' },
      deadLetter: { $ref: '#/$defs/deadLetter' },
      late: { $ref: '#/$defs/late' },
    },
  };
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://salespipe.dev/schemas/pipeline.schema.json',
    title: 'salespipe pipeline',
    description: 'A salespipe pipeline spec: named connections and one or more flows (source -> steps -> sinks).',
    type: 'object',
    additionalProperties: false,
    required: ['pipeline', 'flows'],
    properties: {
      pipeline: { type: 'string', pattern: NAME, description: 'Pipeline name; names its state and consumer groups.' },
      description: { type: 'string', description: 'What the pipeline is for.' },
      timeZone: { type: 'string', description: 'IANA zone in which timestamps without a zone are read (default UTC).' },
      checkpoint: {
        type: 'object',
        additionalProperties: false,
        properties: {
          interval: { type: 'string', description: 'Epoch length: outputs are flushed and positions committed this often (default 5s). Kafka outputs become visible to read_committed consumers at each commit.' },
          topic: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$', description: 'Compacted topic holding the checkpoints of flows that write to Kafka, committed in the same transaction as their outputs (default _salespipe_checkpoints; the connection\'s topicPrefix applies).' },
          replicationFactor: { type: 'integer', minimum: 1, description: 'Replication factor of a created checkpoint topic (default: the largest replicationFactor of the pipeline\'s Kafka sinks, else the brokers\' default.replication.factor).' },
        },
        description: 'Checkpointing: flows writing to Kafka commit their checkpoint with their outputs in one Kafka transaction; other flows keep it in a local file under --state-dir.',
      },
      connections: connectionsConfig,
      tests: testsSchema,
      flows: {
        type: 'object',
        minProperties: 1,
        propertyNames: { pattern: NAME },
        additionalProperties: { $ref: '#/$defs/flow' },
        description: 'Named flows. A flow whose source reads a topic another flow writes runs after it in a drain.',
      },
    },
    $defs,
  };
}
