/**
 * @module Running aggregates per group key (no window): `update` emits at
 * each epoch end the groups that changed in it, `complete` every group.
 * State (every group's accumulators) is snapshotted into the checkpoint,
 * or kept as a changelog of one entry per group.
 */
import type { DeadLetter, Step } from '../../operator.js';
import type { Row, Value } from '../../../core/types.js';
import { AggSpec, Acc, Groups, evalArgs } from './groups.js';

export class Aggregate implements Step {
  private groups: Groups;
  private args: Value[];

  constructor(
    private groupBy: string[],
    private specs: AggSpec[],
    private mode: 'update' | 'complete',
    private toDead: (r: Row, reason: string) => DeadLetter,
  ) {
    this.args = new Array(specs.length);
    this.groups = new Groups(groupBy, specs);
  }

  process(rows: Row[], dead: DeadLetter[]): Row[] {
    const { specs, args, groups } = this;
    for (const r of rows) {
      if (!evalArgs(specs, args, r, dead, this.toDead)) continue;
      groups.add(r, args);
    }
    return [];
  }

  flush(): Row[] {
    const changed = this.groups.takeChanged();
    return (this.mode === 'complete' ? this.groups.all : changed).map((g) => this.groups.row(g));
  }

  snapshot(): unknown {
    return this.groups.snapshot();
  }

  restore(state: unknown): void {
    this.groups = new Groups(this.groupBy, this.specs);
    this.groups.restore(state as [Value[], Acc[]][]);
  }

  /** One changelog entry per group. */
  stateChanges(all: boolean): [string, unknown][] {
    return this.groups.takeUnlogged(all);
  }

  stateMeta(): unknown {
    return null;
  }

  loadState(_meta: unknown, entries: Map<string, unknown>): void {
    this.groups = new Groups(this.groupBy, this.specs);
    this.groups.restore(entries.values() as Iterable<[Value[], Acc[]]>, true);
  }
}
