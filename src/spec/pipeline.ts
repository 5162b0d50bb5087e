/**
 * @module The pipeline-level keys of a spec (`pipeline`, `description`,
 * `timeZone`, `checkpoint`, `connections`, `tests`; `flows` holds the
 * operators): their schema, their documentation and their defaults, in one
 * place. Everything else reads them resolved, through `pipelineSettings`.
 */
import type { FromSchema } from 'json-schema-to-ts';
import { connectionsConfig } from '../connections/config.js';
import { withDefaults } from '../core/json-schema.js';

export const NAME = '^[A-Za-z_][A-Za-z0-9_-]*$';

const rows = (description: string) =>
  ({
    type: 'object',
    additionalProperties: { type: 'array', items: { type: 'object' } },
    description,
  }) as const;

/** `tests:` of a spec (or of its sidecar FILE.tests.yaml), run by `salespipe test` without any server. */
export const testsSchema = {
  type: 'array',
  description: 'Tests run by `salespipe test` in-process, without any server.',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'expect'],
    properties: {
      name: { type: 'string', minLength: 1, description: 'Shown in the test output.' },
      description: { type: 'string', description: 'What the test shows.' },
      input: rows(
        "Flow name -> records fed to its source, as the source would read them (a table row, a JSON message). A flow reading a topic that another flow writes gets that flow's output when no records are given.",
      ),
      tables: rows('Table name -> rows of the lookup tables that join and balance steps read.'),
      expect: rows(
        'Flow name -> the rows its sinks receive: for keyed streams the latest row per key, for append streams every row; in any order. Only the columns written are compared.',
      ),
      deadLetters: {
        type: 'object',
        additionalProperties: { type: 'array', items: { type: 'string' } },
        description: 'Flow name -> one reason (a substring) per dead letter expected; exactly these.',
      },
      late: {
        type: 'object',
        additionalProperties: { type: 'array', items: { type: 'string' } },
        description: 'Flow name -> one reason (a substring) per late record expected; exactly these.',
      },
    },
  },
} as const;

/** The top-level keys besides `flows`. */
export const pipelineKeys = {
  pipeline: { type: 'string', pattern: NAME, description: 'Pipeline name; names its state, consumer groups and transactional ids.' },
  description: { type: 'string', description: 'What the pipeline is for.' },
  timeZone: {
    type: 'string',
    default: 'UTC',
    description: 'IANA zone in which timestamps without a zone are read, and to whose hours and midnights windows align.',
  },
  checkpoint: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      interval: {
        type: 'string',
        default: 'auto',
        description:
          'Epoch length: outputs are flushed and positions committed this often; Kafka outputs become visible to read_committed consumers at each commit. auto: 100ms (a sale is in the totals within a quarter second), 5s for a flow with a Parquet output (a file per partition per epoch).',
      },
      topic: {
        type: 'string',
        pattern: '^[A-Za-z0-9._-]{1,249}$',
        default: '_salespipe_checkpoints',
        description:
          "Compacted topic holding the checkpoints of flows that read or write Kafka, committed in the same transaction as their outputs (the connection's topicPrefix applies).",
      },
      replicationFactor: {
        type: 'integer',
        minimum: 1,
        description:
          "Replication factor of a created checkpoint topic (default: the largest replicationFactor of the pipeline's Kafka sinks, else the brokers' default.replication.factor).",
      },
    },
    description:
      'Checkpointing: flows reading or writing Kafka commit their checkpoint in a Kafka transaction (with their outputs); other flows keep it in a local file in the state directory.',
  },
  connections: connectionsConfig,
  tests: testsSchema,
} as const;

const { connections: _c, tests: _t, ...settings } = pipelineKeys;
const settingsSchema = { type: 'object', properties: settings } as const;

/** The pipeline-level settings of a spec, defaults filled in. */
export type PipelineSettings = FromSchema<typeof settingsSchema>;

export function pipelineSettings(spec: Record<string, unknown>): PipelineSettings {
  return withDefaults(settingsSchema, spec) as PipelineSettings;
}
