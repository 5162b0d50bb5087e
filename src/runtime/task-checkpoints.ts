/**
 * @module The checkpoints of a flow that runs as tasks (tasks.ts): what a
 * task takes over from the flow's checkpoint, why a flow that ran as tasks
 * cannot run as one, and the tasks' checkpoints seen as one (`status`).
 */
import type { FlowPlan } from '../plan/plan.js';
import type { Checkpoint } from './checkpoint.js';
import { ZERO_TOTALS } from './checkpoint.js';

interface KafkaPosition {
  topic?: string;
  topicId?: string | null;
  offsets?: Record<string, string>;
  eventTimes?: Record<string, number>;
}

/**
 * The checkpoint a task starts from the first time, out of the flow's from
 * when it ran as one task: the same epoch, its partition's position, and,
 * for task 0 alone, the staged outputs to finish and the counts. Steps of
 * a flow that runs as tasks keep no state.
 */
export function taskCheckpoint(flow: Checkpoint, task: number): Checkpoint {
  const src = flow.source as KafkaPosition | undefined;
  const p = String(task);
  const pick = <T>(r: Record<string, T> | undefined) => (r ? (p in r ? { [p]: r[p] } : {}) : undefined);
  const first = task === 0;
  return {
    ...flow,
    source: src && { ...src, offsets: pick(src.offsets), eventTimes: pick(src.eventTimes) },
    steps: flow.steps.map(() => null),
    sinks: first ? flow.sinks : flow.sinks.map(() => undefined),
    // Default dead-letter files are per task now; a dead-letter topic keeps no state.
    deadLetter: undefined,
    late: undefined,
    totals: first ? flow.totals : { ...ZERO_TOTALS },
  };
}

/**
 * The checkpoint a task starts from when its partition was added to the
 * topic after the flow's other tasks had started (`sibling` is one of
 * theirs): a position in no partition, which the source reads as a new
 * partition, from its start (whatever `startFrom` says, as for a partition
 * added to the topic of a flow that runs as one task); the sibling's epoch;
 * nothing else.
 */
export function newTaskCheckpoint(sibling: Checkpoint): Checkpoint {
  const src = sibling.source as KafkaPosition | undefined;
  return {
    version: 1,
    epoch: sibling.epoch,
    source: src && { topic: src.topic, topicId: src.topicId, offsets: {}, eventTimes: {} },
    steps: sibling.steps.map(() => null),
    sinks: sibling.sinks.map(() => undefined),
    deadLetter: undefined,
    at: sibling.at,
    totals: { ...ZERO_TOTALS },
  };
}

/** Why a flow that ran as tasks cannot run as one. */
export function oneTaskAfterTasks(flow: FlowPlan, file: string, tasks: number, where = 'the checkpoint topic'): string {
  const because = flow.tasks.perPartition ? '' : ` (${flow.tasks.because})`;
  return (
    `flow ${flow.name} ran as ${tasks} task(s), one per partition (their checkpoints are in ${where}), but now runs as one task${because}: ` +
    `this version cannot merge its tasks' checkpoints into one. Run it with the spec it ran as tasks with, or start it over with \`salespipe reset ${file} --flow ${flow.name}\` (its outputs are kept)`
  );
}

/**
 * A flow's checkpoints seen as one, for `salespipe status`: the flow's own
 * if it never ran as tasks, else its tasks' (where a task has none yet,
 * its partition as the flow's own holds it): the latest epoch, every
 * partition's position, the counts summed.
 */
export function combinedCheckpoint(own: Checkpoint | undefined, tasks: Map<number, Checkpoint>): Checkpoint | undefined {
  if (!tasks.size) return own;
  const list = [...tasks.entries()].sort((a, b) => a[0] - b[0]);
  const base = own?.source as KafkaPosition | undefined;
  const offsets: Record<string, string> = { ...base?.offsets };
  const eventTimes: Record<string, number> = { ...base?.eventTimes };
  let src: KafkaPosition | undefined = base && { ...base };
  const totals = { ...ZERO_TOTALS };
  if (!tasks.has(0) && own?.totals) for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += own.totals[k];
  let latest = list[0][1];
  for (const [, cp] of list) {
    const s = cp.source as KafkaPosition | undefined;
    if (s) {
      src = { ...src, topic: s.topic, topicId: s.topicId };
      Object.assign(offsets, s.offsets);
      Object.assign(eventTimes, s.eventTimes);
    }
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += cp.totals?.[k] ?? 0;
    if (cp.epoch > latest.epoch || (cp.epoch === latest.epoch && cp.at > latest.at)) latest = cp;
  }
  return { ...latest, source: src && { ...src, offsets, eventTimes }, totals };
}
