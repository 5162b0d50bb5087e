/**
 * @module The one registry from YAML key to operator. Adding an operator
 * means one file under src/operators/ and one line here.
 */
import type { SourceDef, StepDef, SinkDef } from './operator.js';
import { sqlSource } from './source_sql.js';
import { kafkaSource } from './source_kafka.js';
import { filterStep } from './step_filter.js';
import { deriveStep } from './step_derive.js';
import { assertStep } from './step_assert.js';
import { selectStep } from './step_select.js';
import { aggregateStep } from './step_aggregate.js';
import { joinStep } from './step_join.js';
import { balanceStep } from './step_balance.js';
import { thresholdStep } from './step_threshold.js';
import { kafkaSink } from './sink_kafka.js';
import { parquetSink } from './sink_parquet.js';
import { fileSink } from './sink_file.js';
import { consoleSink } from './sink_console.js';
import { sqlSink } from './sink_sql.js';

export const SOURCES: Record<string, SourceDef> = {
  sql: sqlSource,
  kafka: kafkaSource,
};

export const STEPS: Record<string, StepDef> = {
  filter: filterStep,
  derive: deriveStep,
  assert: assertStep,
  select: selectStep,
  aggregate: aggregateStep,
  join: joinStep,
  balance: balanceStep,
  threshold: thresholdStep,
};

export const SINKS: Record<string, SinkDef> = {
  kafka: kafkaSink,
  parquet: parquetSink,
  file: fileSink,
  console: consoleSink,
  sql: sqlSink,
};

/** Sinks that can take dead letters. */
export const DEAD_LETTER_SINKS = ['kafka', 'file'] as const;
