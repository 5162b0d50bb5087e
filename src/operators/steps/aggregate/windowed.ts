/**
 * @module Aggregates per event-time window (tumbling, or hopping with
 * `slide`), aligned to the pipeline's time zone.
 *
 * Rules:
 * - The watermark is the event time reached minus `lateness`, where the
 *   event time reached is the source's progress (for Kafka: the smallest of
 *   the partitions' largest event times) or else the largest event time
 *   seen. It advances after each batch and never goes back; a window is
 *   final once the watermark reaches its end.
 * - A row for a final window is late: it goes to the flow's late output (or
 *   its dead-letter output) with the reason and counts nowhere; a hopping
 *   row still counts in its windows that are open.
 * - append emits each window once, when final; update emits changed windows
 *   each epoch; complete emits every open window each epoch. Final windows
 *   are released from state after their last emission.
 */
import type { DeadLetter, Step } from '../../operator.js';
import type { Row, Value } from '../../../core/types.js';
import { WindowAssigner, formatTimestamp } from '../../../core/time.js';
import { AggSpec, Acc, Groups, evalArgs } from './groups.js';

export const WINDOW_START = 'window_start';
export const WINDOW_END = 'window_end';

/** A window as planned: durations in ms, the event-time column. */
export interface WindowSpec {
  size: number;
  slide: number;
  on: string;
  lateness: number;
}

interface WindowState {
  start: number;
  end: number;
  groups: Groups;
}

interface WindowSnapshot {
  maxEventTime: number | null;
  windows: [number, [Value[], Acc[]][]][];
}

export class WindowedAggregate implements Step {
  private windows = new Map<number, WindowState>();
  private last: WindowState | null = null;
  private maxEventTime = -Infinity;
  private batchMax = -Infinity;
  private watermark_ = -Infinity;
  private args: Value[];
  private starts: number[] = [];
  private missed: number[] = [];
  private assign: WindowAssigner;
  private on: string;
  private lateness: number;
  /** Changelog tombstones of windows released since the last changelog call. */
  private released: [string, null][] = [];

  constructor(
    private groupBy: string[],
    private specs: AggSpec[],
    w: WindowSpec,
    timeZone: string,
    private mode: 'append' | 'update' | 'complete',
    private toDead: (r: Row, reason: string) => DeadLetter,
  ) {
    this.args = new Array(specs.length);
    this.assign = new WindowAssigner(w.size, w.slide, timeZone);
    this.on = w.on;
    this.lateness = w.lateness;
  }

  private window(start: number): WindowState {
    let w = this.windows.get(start);
    if (!w) {
      w = { start, end: this.assign.end(start), groups: new Groups(this.groupBy, this.specs) };
      this.windows.set(start, w);
    }
    return w;
  }

  process(rows: Row[], dead: DeadLetter[]): Row[] {
    const { specs, args, on, starts, missed } = this;
    const wm = this.watermark_;
    let max = this.batchMax;
    for (const r of rows) {
      const t = r[on] as number | null;
      if (t === null || t === undefined) {
        dead.push(this.toDead(r, `aggregate: event-time column ${on} is null`));
        continue;
      }
      if (!evalArgs(specs, args, r, dead, this.toDead)) continue;
      this.assign.starts(t, starts);
      missed.length = 0;
      for (const s of starts) {
        // Rows mostly fall in the window of the row before: no map lookup then.
        let w = this.last !== null && this.last.start === s ? this.last : this.windows.get(s);
        if (!w && this.assign.end(s) <= wm) {
          missed.push(s);
          continue;
        }
        if (!w) w = this.window(s);
        if (w.end <= wm) {
          missed.push(s);
          continue;
        }
        this.last = w;
        w.groups.add(r, args);
      }
      if (missed.length) dead.push(this.late(r, t, wm, missed));
      if (t > max) max = t;
    }
    this.batchMax = max;
    return [];
  }

  /** After a batch: the event time reached is the source's progress (null: not known yet), or else the largest seen. */
  advance(progress: number | null | undefined): void {
    const reached = progress === undefined ? this.batchMax : (progress ?? -Infinity);
    this.batchMax = -Infinity;
    if (reached > this.maxEventTime) this.maxEventTime = reached;
    // The watermark never goes back.
    if (this.maxEventTime - this.lateness > this.watermark_) this.watermark_ = this.maxEventTime - this.lateness;
  }

  watermark(): number | undefined {
    return Number.isFinite(this.watermark_) ? this.watermark_ : undefined;
  }

  private late(r: Row, t: number, wm: number, missed: number[]): DeadLetter {
    const ws = missed.map((s) => `[${formatTimestamp(s)}, ${formatTimestamp(this.assign.end(s))})`).join(', ');
    return {
      ...this.toDead(
        r,
        `late: event time ${formatTimestamp(t)} is behind the watermark ${formatTimestamp(wm)}; window ${ws} already final`,
      ),
      late: true,
    };
  }

  flush(): Row[] {
    const out: Row[] = [];
    const wm = this.watermark_;
    const ordered = [...this.windows.values()].sort((a, b) => a.start - b.start);
    for (const w of ordered) {
      const final = w.end <= wm;
      const changed = w.groups.takeChanged();
      const emit = this.mode === 'append' ? (final ? w.groups.all : []) : this.mode === 'complete' ? w.groups.all : changed;
      for (const g of emit) out.push(w.groups.row(g, { [WINDOW_START]: w.start, [WINDOW_END]: w.end }));
      if (final) {
        this.windows.delete(w.start); // released: a later row for it is late
        for (const t of w.groups.tombstones(`${w.start}/`)) this.released.push(t);
      }
      if (final && this.last === w) this.last = null;
    }
    return out;
  }

  /** Open windows held in state (for tests and progress). */
  openWindows(): number {
    return this.windows.size;
  }

  snapshot(): unknown {
    return {
      maxEventTime: Number.isFinite(this.maxEventTime) ? this.maxEventTime : null,
      windows: [...this.windows.values()].map((w) => [w.start, w.groups.snapshot()]),
    } satisfies WindowSnapshot;
  }

  restore(state: unknown): void {
    const s = state as WindowSnapshot;
    this.loadMeta(s);
    for (const [start, groups] of s.windows) this.window(start).groups.restore(groups);
  }

  private loadMeta(s: { maxEventTime: number | null }) {
    this.windows = new Map();
    this.last = null;
    this.released = [];
    this.maxEventTime = s.maxEventTime ?? -Infinity;
    this.watermark_ = this.maxEventTime - this.lateness;
  }

  /** One changelog entry per open window and group, `<window start>/<group>`; a released window's go as tombstones. */
  stateChanges(all: boolean): [string, unknown][] {
    const out: [string, unknown][] = this.released;
    this.released = [];
    for (const w of this.windows.values()) for (const e of w.groups.takeUnlogged(all, `${w.start}/`)) out.push(e);
    return out;
  }

  stateMeta(): unknown {
    return { maxEventTime: Number.isFinite(this.maxEventTime) ? this.maxEventTime : null };
  }

  loadState(meta: unknown, entries: Map<string, unknown>): void {
    this.loadMeta(meta as { maxEventTime: number | null });
    const byWindow = new Map<number, [Value[], Acc[]][]>();
    for (const [id, v] of entries) {
      const start = Number(id.slice(0, id.indexOf('/')));
      let l = byWindow.get(start);
      if (!l) byWindow.set(start, (l = []));
      l.push(v as [Value[], Acc[]]);
    }
    for (const [start, groups] of byWindow) this.window(start).groups.restore(groups, true);
  }
}
