/**
 * @module The one registry from YAML key to operator. Adding an operator
 * means one file under src/operators/sources|steps|sinks/ named after its
 * key, and one line here: `type: kafka` under `source:` is
 * sources/kafka.ts, the `aggregate:` step is steps/aggregate/, `type:
 * parquet` under `sinks:` is sinks/parquet/.
 */
import type { SourceDef, StepDef, SinkDef } from './operator.js';
import { sqlSource } from './sources/sql.js';
import { kafkaSource } from './sources/kafka.js';
import { parquetSource } from './sources/parquet.js';
import { filterStep } from './steps/filter.js';
import { deriveStep } from './steps/derive.js';
import { assertStep } from './steps/assert.js';
import { selectStep } from './steps/select.js';
import { aggregateStep } from './steps/aggregate/index.js';
import { joinStep } from './steps/join.js';
import { balanceStep } from './steps/balance.js';
import { thresholdStep } from './steps/threshold.js';
import { forecastStep } from './steps/forecast.js';
import { stockoutStep } from './steps/stockout.js';
import { recommendStep } from './steps/recommend.js';
import { kafkaSink } from './sinks/kafka.js';
import { parquetSink } from './sinks/parquet/index.js';
import { fileSink } from './sinks/file.js';
import { consoleSink } from './sinks/console.js';
import { sqlSink } from './sinks/sql.js';

// Each definition's config type is derived from its schema; here they are taken as the
// general contract (comparing the derived types structurally is beyond the compiler's depth).
const anySource = (d: unknown) => d as SourceDef;
const anyStep = (d: unknown) => d as StepDef;
const anySink = (d: unknown) => d as SinkDef;

export const SOURCES: Record<string, SourceDef> = {
  sql: anySource(sqlSource),
  kafka: anySource(kafkaSource),
  parquet: anySource(parquetSource),
};

export const STEPS: Record<string, StepDef> = {
  filter: anyStep(filterStep),
  derive: anyStep(deriveStep),
  assert: anyStep(assertStep),
  select: anyStep(selectStep),
  aggregate: anyStep(aggregateStep),
  join: anyStep(joinStep),
  balance: anyStep(balanceStep),
  threshold: anyStep(thresholdStep),
  forecast: anyStep(forecastStep),
  stockout: anyStep(stockoutStep),
  recommend: anyStep(recommendStep),
};

export const SINKS: Record<string, SinkDef> = {
  kafka: anySink(kafkaSink),
  parquet: anySink(parquetSink),
  file: anySink(fileSink),
  console: anySink(consoleSink),
  sql: anySink(sqlSink),
};

/** Sinks that can take dead letters (and late records). */
export const DEAD_LETTER_SINKS = Object.keys(SINKS).filter((t) => SINKS[t].deadLetters);
