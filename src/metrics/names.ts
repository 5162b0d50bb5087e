/**
 * @module The names of a run's metrics (documented in the README), apart from
 * prom-client so that a reader of /metrics (the dashboard) does not load it.
 */

/** The metric names, documented in the README. */
export const METRIC_NAMES = {
  recordsIn: 'salespipe_records_in_total',
  recordsOut: 'salespipe_records_out_total',
  deadLetters: 'salespipe_dead_letters_total',
  late: 'salespipe_late_records_total',
  epochs: 'salespipe_epochs_total',
  lag: 'salespipe_lag_records',
  watermark: 'salespipe_watermark_seconds',
  lastCommit: 'salespipe_last_commit_timestamp_seconds',
  checkpointBytes: 'salespipe_checkpoint_bytes',
  checkpointBytesTotal: 'salespipe_checkpoint_bytes_total',
  ready: 'salespipe_flow_ready',
  epochDuration: 'salespipe_epoch_duration_seconds',
  commitDuration: 'salespipe_commit_duration_seconds',
} as const;
