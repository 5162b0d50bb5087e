/**
 * @module The groups of an aggregate (or of one window) and their exact
 * accumulators.
 *
 * Rules: sums of int and decimal stay JS numbers while safe and move to
 * BigInt past 2^53; nulls are ignored, as in SQL; a row whose arguments
 * cannot all be evaluated changes nothing and becomes a dead letter.
 */
import type { DeadLetter } from '../../operator.js';
import { RecordError, Eval } from '../../../expr/compile.js';
import { ColumnType, Row, Value, POW10 } from '../../../core/types.js';
import { entryId } from '../../keyed-state.js';

export type Fn = 'sum' | 'count' | 'min' | 'max' | 'avg';

/** One output column: its aggregate, its argument compiled (null: count(*)), and the types. */
export interface AggSpec {
  name: string;
  fn: Fn;
  arg: Eval | null;
  argType: ColumnType | null;
  out: ColumnType;
}

/** Exact sum: a number while safe, a BigInt past 2^53. */
function addExact(a: number | bigint, b: number): number | bigint {
  if (typeof a === 'number') {
    const s = a + b;
    if (Number.isSafeInteger(s)) return s;
    return BigInt(a) + BigInt(b);
  }
  return a + BigInt(b);
}

export type Acc = Value | [number | bigint, number];
interface Group {
  key: Value[];
  acc: Acc[];
  /** Changed since the last epoch's output. */
  dirty: boolean;
  /** Changed since it last went to the changelog. */
  unlogged: boolean;
  /** In the changelog (a removal then needs a tombstone). */
  logged: boolean;
}

/** Groups are found through one Map per group-by column: no key strings are built per row. */
type Level = Map<Value, Level | Group>;

/** The groups of one aggregate (or of one window), with the accumulators' arithmetic. */
export class Groups {
  private root: Level = new Map();
  all: Group[] = [];
  changed: Group[] = [];
  private unlogged: Group[] = [];

  constructor(
    private by: string[],
    private specs: AggSpec[],
  ) {}

  find(key: Value[] | null, r: Row | null): Group {
    const by = this.by;
    let level = this.root;
    for (let i = 0; i < by.length - 1; i++) {
      const v = (r ? r[by[i]] : key![i]) ?? null;
      let next = level.get(v) as Level | undefined;
      if (!next) level.set(v, (next = new Map()));
      level = next;
    }
    const v = by.length ? ((r ? r[by[by.length - 1]] : key![by.length - 1]) ?? null) : null;
    let g = level.get(v) as Group | undefined;
    if (!g) {
      g = {
        key: key ?? by.map((c) => r![c] ?? null),
        acc: this.specs.map((s) => (s.fn === 'avg' ? ([0, 0] as [number, number]) : s.fn === 'count' ? 0 : null)),
        dirty: false,
        unlogged: false,
        logged: false,
      };
      level.set(v, g);
      this.all.push(g);
    }
    return g;
  }

  /** Adds one row's evaluated arguments to its group. */
  add(r: Row, args: Value[]): void {
    const specs = this.specs;
    const g = this.find(null, r);
    const acc = g.acc;
    for (let i = 0; i < specs.length; i++) {
      const v = args[i];
      if (v === null) continue;
      switch (specs[i].fn) {
        case 'sum':
          acc[i] =
            specs[i].out.kind === 'float'
              ? ((acc[i] as number | null) ?? 0) + (v as number)
              : addExact((acc[i] as number | bigint | null) ?? 0, v as number);
          break;
        case 'count':
          acc[i] = (acc[i] as number) + 1;
          break;
        case 'min':
          if (acc[i] === null || (v as number) < (acc[i] as number)) acc[i] = v;
          break;
        case 'max':
          if (acc[i] === null || (v as number) > (acc[i] as number)) acc[i] = v;
          break;
        case 'avg': {
          const a = acc[i] as [number | bigint, number];
          a[0] = addExact(a[0], v as number);
          a[1]++;
          break;
        }
      }
    }
    if (!g.dirty) {
      g.dirty = true;
      this.changed.push(g);
    }
    if (!g.unlogged) {
      g.unlogged = true;
      this.unlogged.push(g);
    }
  }

  row(g: Group, o: Row = {}): Row {
    this.by.forEach((c, i) => {
      o[c] = g.key[i];
    });
    this.specs.forEach((s, i) => {
      const a = g.acc[i];
      if (s.fn === 'avg') {
        const [sum, n] = a as [number | bigint, number];
        const div = s.argType?.kind === 'decimal' ? POW10[s.argType.scale ?? 0] : 1;
        o[s.name] = n === 0 ? null : Number(sum) / div / n;
      } else o[s.name] = a as Value;
    });
    return o;
  }

  /** Marks every group unchanged; returns the ones that had changed. */
  takeChanged(): Group[] {
    const c = this.changed;
    for (const g of c) g.dirty = false;
    this.changed = [];
    return c;
  }

  snapshot(): [Value[], Acc[]][] {
    return this.all.map((g) => [g.key, g.acc]);
  }

  /** Restores groups; those from the changelog (`logged`) need a tombstone when removed. */
  restore(state: Iterable<[Value[], Acc[]]>, logged = false): void {
    for (const [key, acc] of state) {
      const g = this.find(key, null);
      g.acc = acc;
      g.logged = logged;
    }
  }

  /**
   * Changelog entries `[prefix + id, [key, accumulators]]` of the groups
   * changed since the last call (all: of every group); they count as logged.
   */
  takeUnlogged(all: boolean, prefix = ''): [string, unknown][] {
    const gs = all ? this.all : this.unlogged;
    this.unlogged = [];
    return gs.map((g) => {
      g.unlogged = false;
      g.logged = true;
      return [prefix + entryId(g.key), [g.key, g.acc]];
    });
  }

  /** Tombstones for the groups that are in the changelog (the groups are being dropped). */
  tombstones(prefix = ''): [string, null][] {
    return this.all.filter((g) => g.logged).map((g) => [prefix + entryId(g.key), null]);
  }
}

/**
 * Evaluates every aggregate argument of a row into `args` first, so that a
 * failing row changes nothing: it becomes a dead letter and false is returned.
 */
export function evalArgs(
  specs: AggSpec[],
  args: Value[],
  r: Row,
  dead: DeadLetter[],
  toDead: (r: Row, reason: string) => DeadLetter,
): boolean {
  try {
    for (let i = 0; i < specs.length; i++) args[i] = specs[i].arg ? specs[i].arg!(r) : 1;
    return true;
  } catch (e) {
    if (!(e instanceof RecordError)) throw e;
    dead.push(toDead(r, `aggregate: ${e.message}`));
    return false;
  }
}
