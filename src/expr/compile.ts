/**
 * @module Expression type-checking and compilation to closures.
 *
 * Rules:
 * - Every node is typed against the input schema before anything runs; a
 *   type error carries the offset of the node that caused it.
 * - Decimals stay scaled integers: `+`/`-` align scales, `*` adds them, `/`
 *   gives a float. A result outside the safe-integer range throws an
 *   EvalError, which the runtime turns into a dead-letter record.
 * - Null propagates through arithmetic and comparisons (SQL semantics); a
 *   filter keeps a row only when its condition is true.
 */
import { ColumnType, Row, Schema, Value, POW10, fieldOf, isNumeric, typeName, formatDecimal } from '../core/types.js';
import { parseTimestamp, dateIn } from '../core/time.js';
import { ExprError, Node, parseExpr } from './parse.js';

export type Eval = (row: Row) => Value;
export interface Compiled {
  type: ColumnType;
  fn: Eval;
}

/** Raised while evaluating one record (overflow, bad cast); the record is dead-lettered. */
export class RecordError extends Error {}

export interface CompileOptions {
  timeZone?: string;
}

const T = (kind: ColumnType['kind'], nullable = false, scale?: number): ColumnType =>
  kind === 'decimal' ? { kind, precision: 18, scale: scale ?? 0, nullable } : { kind, nullable };

/** A result past 2^53: the record is dead-lettered with the exact figure and the limit, at the value's scale. */
function overflow(exact: bigint, scale: number): never {
  throw new RecordError(
    `numeric overflow: ${formatDecimal(exact, scale)} is outside the exact range (at most ±${formatDecimal(BigInt(Number.MAX_SAFE_INTEGER), scale)})`,
  );
}

/** `v`, the double result of `a op b`, if exact; else an overflow naming the exact result. */
const checked = (v: number, a: number, b: number, op: '+' | '-' | '*', scale: number): number => {
  if (Number.isSafeInteger(v)) return v;
  const x = BigInt(a),
    y = BigInt(b);
  return overflow(op === '+' ? x + y : op === '-' ? x - y : x * y, scale);
};

/** Compiles expression text against a schema; throws ExprError. */
export function compileExpr(src: string, schema: Schema, opts: CompileOptions = {}): Compiled {
  return compileNode(parseExpr(src), schema, opts);
}

/** Converts a numeric value of type `from` to a float, for mixed arithmetic. */
function asFloat(t: ColumnType, f: Eval): Eval {
  if (t.kind !== 'decimal') return f;
  const div = POW10[t.scale ?? 0];
  return (r) => {
    const v = f(r);
    return v === null ? null : (v as number) / div;
  };
}

/** Rescales a numeric value of type `t` to decimal scale `s`. */
function toScale(t: ColumnType, f: Eval, s: number): Eval {
  const from = t.kind === 'decimal' ? (t.scale ?? 0) : 0;
  if (from === s) return f;
  const mul = POW10[s - from];
  return (r) => {
    const v = f(r);
    return v === null ? null : checked((v as number) * mul, v as number, mul, '*', s);
  };
}

export function compileNode(n: Node, schema: Schema, opts: CompileOptions): Compiled {
  const zone = opts.timeZone ?? 'UTC';
  switch (n.t) {
    case 'num': {
      if (/[eE]/.test(n.text) || !n.text.includes('.')) {
        const v = Number(n.text);
        if (Number.isSafeInteger(v)) return { type: T('int'), fn: () => v };
        return { type: T('float'), fn: () => v };
      }
      const frac = n.text.split('.')[1] ?? '';
      const scaled = Number(n.text.replace('.', ''));
      return { type: T('decimal', false, frac.length), fn: () => scaled };
    }
    case 'str': {
      const v = n.value;
      return { type: T('string'), fn: () => v };
    }
    case 'bool': {
      const v = n.value;
      return { type: T('bool'), fn: () => v };
    }
    case 'null':
      return { type: { kind: 'int', nullable: true }, fn: () => null };
    case 'col': {
      const f = fieldOf(schema, n.name);
      if (!f) {
        const names = schema.map((x) => x.name);
        throw ExprError.at(n, `unknown column "${n.name}"${suggest(n.name, names)}; available: ${names.join(', ')}`, 'column.unknown');
      }
      const name = n.name;
      return { type: f.type, fn: (r) => r[name] ?? null };
    }
    case 'un': {
      const e = compileNode(n.e, schema, opts);
      if (n.op === 'not') {
        if (e.type.kind !== 'bool') throw ExprError.at(n.e, `"not" needs a bool, got ${typeName(e.type)}`, 'type.mismatch');
        return {
          type: e.type,
          fn: (r) => {
            const v = e.fn(r);
            return v === null ? null : !v;
          },
        };
      }
      if (!isNumeric(e.type)) throw ExprError.at(n.e, `unary "-" needs a number, got ${typeName(e.type)}`, 'type.mismatch');
      return {
        type: e.type,
        fn: (r) => {
          const v = e.fn(r);
          return v === null ? null : -(v as number);
        },
      };
    }
    case 'isnull': {
      const e = compileNode(n.e, schema, opts);
      return { type: T('bool'), fn: n.negate ? (r) => e.fn(r) !== null : (r) => e.fn(r) === null };
    }
    case 'bin':
      return compileBinary(n, schema, opts);
    case 'call':
      return compileCall(n, schema, opts, zone);
  }
}

function compileBinary(n: Extract<Node, { t: 'bin' }>, schema: Schema, opts: CompileOptions): Compiled {
  const l = compileNode(n.l, schema, opts);
  const r = compileNode(n.r, schema, opts);
  const nullable = l.type.nullable || r.type.nullable;
  const lf = l.fn,
    rf = r.fn;

  if (n.op === 'and' || n.op === 'or') {
    for (const [side, c] of [
      [n.l, l],
      [n.r, r],
    ] as const) {
      if (c.type.kind !== 'bool') throw ExprError.at(side, `"${n.op}" needs bool operands, got ${typeName(c.type)}`, 'type.mismatch');
    }
    const and = n.op === 'and';
    return {
      type: T('bool', nullable),
      fn: (row) => {
        const a = lf(row);
        if (and ? a === false : a === true) return a;
        const b = rf(row);
        if (and ? b === false : b === true) return b;
        return a === null || b === null ? null : b;
      },
    };
  }

  if (['+', '-', '*', '/', '%'].includes(n.op)) {
    if (!isNumeric(l.type) || !isNumeric(r.type)) {
      const bad = !isNumeric(l.type) ? l : r;
      throw ExprError.at(
        bad === l ? n.l : n.r,
        `"${n.op}" needs numbers, got ${typeName(l.type)} ${n.op} ${typeName(r.type)}`,
        'type.mismatch',
      );
    }
    const op = n.op;
    if (op === '/' || l.type.kind === 'float' || r.type.kind === 'float') {
      const a = asFloat(l.type, lf),
        b = asFloat(r.type, rf);
      const f = FLOAT_OPS[op];
      return {
        type: T('float', nullable || op === '/' || op === '%'),
        fn: (row) => {
          const x = a(row),
            y = b(row);
          return x === null || y === null ? null : f(x as number, y as number);
        },
      };
    }
    if (l.type.kind === 'int' && r.type.kind === 'int') {
      const f = intOps(0)[op];
      return {
        type: T('int', nullable || op === '%'),
        fn: (row) => {
          const x = lf(row),
            y = rf(row);
          return x === null || y === null ? null : f(x as number, y as number);
        },
      };
    }
    // decimal arithmetic on scaled integers
    const ls = l.type.kind === 'decimal' ? (l.type.scale ?? 0) : 0;
    const rs = r.type.kind === 'decimal' ? (r.type.scale ?? 0) : 0;
    if (op === '*') {
      if (ls + rs > 9)
        throw ExprError.at(n, `decimal product would have ${ls + rs} decimal places (at most 9 stay exact)`, 'type.mismatch');
      return {
        type: T('decimal', nullable, ls + rs),
        fn: (row) => {
          const x = lf(row),
            y = rf(row);
          return x === null || y === null ? null : checked((x as number) * (y as number), x as number, y as number, '*', ls + rs);
        },
      };
    }
    if (op === '%') throw ExprError.at(n, '"%" is defined for int operands only', 'type.mismatch');
    const s = Math.max(ls, rs);
    const a = toScale(l.type, lf, s),
      b = toScale(r.type, rf, s);
    const f = intOps(s)[op];
    return {
      type: T('decimal', nullable, s),
      fn: (row) => {
        const x = a(row),
          y = b(row);
        return x === null || y === null ? null : f(x as number, y as number);
      },
    };
  }

  // comparison
  let a = lf,
    b = rf;
  const lk = l.type.kind,
    rk = r.type.kind;
  if (isNumeric(l.type) && isNumeric(r.type)) {
    if (lk === 'float' || rk === 'float') {
      a = asFloat(l.type, lf);
      b = asFloat(r.type, rf);
    } else {
      const s = Math.max(lk === 'decimal' ? (l.type.scale ?? 0) : 0, rk === 'decimal' ? (r.type.scale ?? 0) : 0);
      a = toScale(l.type, lf, s);
      b = toScale(r.type, rf, s);
    }
  } else if ((lk === 'timestamp' && n.r.t === 'str') || (rk === 'timestamp' && n.l.t === 'str')) {
    // A text literal beside a timestamp is a timestamp literal, checked now.
    const lit = (lk === 'timestamp' ? n.r : n.l) as Extract<Node, { t: 'str' }>;
    const ms = parseTimestamp(lit.value, opts.timeZone ?? 'UTC');
    if (typeof ms === 'string') throw ExprError.at(lit, ms, 'type.mismatch');
    if (lk === 'timestamp') b = () => ms;
    else a = () => ms;
  } else if (lk !== rk && !(n.l.t === 'null' || n.r.t === 'null')) {
    throw ExprError.at(n, `cannot compare ${typeName(l.type)} with ${typeName(r.type)}`, 'type.mismatch');
  } else if (lk === 'bool' && !['=', '!='].includes(n.op)) {
    throw ExprError.at(n, `"${n.op}" is not defined for bool`, 'type.mismatch');
  }
  const cmp = CMP_OPS[n.op];
  return {
    type: T('bool', nullable),
    fn: (row) => {
      const x = a(row),
        y = b(row);
      return x === null || y === null ? null : cmp(x, y);
    },
  };
}

/** Integer arithmetic on values of decimal scale `s` (0 for ints). */
const intOps = (s: number): Record<string, (a: number, b: number) => number | null> => ({
  '+': (a, b) => checked(a + b, a, b, '+', s),
  '-': (a, b) => checked(a - b, a, b, '-', s),
  '*': (a, b) => checked(a * b, a, b, '*', s),
  '%': (a, b) => (b === 0 ? null : a % b),
});
const FLOAT_OPS: Record<string, (a: number, b: number) => number | null> = {
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '*': (a, b) => a * b,
  '/': (a, b) => (b === 0 ? null : a / b),
  '%': (a, b) => (b === 0 ? null : a % b),
};
const CMP_OPS: Record<string, (a: Value, b: Value) => boolean> = {
  '=': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<': (a, b) => (a as number) < (b as number),
  '<=': (a, b) => (a as number) <= (b as number),
  '>': (a, b) => (a as number) > (b as number),
  '>=': (a, b) => (a as number) >= (b as number),
};

export const AGGREGATES = ['sum', 'count', 'min', 'max', 'avg'];

function compileCall(n: Extract<Node, { t: 'call' }>, schema: Schema, opts: CompileOptions, zone: string): Compiled {
  if (AGGREGATES.includes(n.name)) {
    throw new ExprError(`aggregate ${n.name}() is allowed only in an aggregate step's compute`, n.pos, 'expr.aggregate', n.name.length);
  }
  const args = n.args.map((a) => compileNode(a, schema, opts));
  const arity = (k: number) => {
    if (args.length !== k || n.star)
      throw new ExprError(
        `${n.name}() takes ${k} argument${k === 1 ? '' : 's'}, got ${n.star ? '*' : args.length}`,
        n.pos,
        'expr.function',
        n.name.length,
      );
  };
  const want = (i: number, ...kinds: ColumnType['kind'][]) => {
    if (!kinds.includes(args[i].type.kind))
      throw ExprError.at(n.args[i], `${n.name}() needs ${kinds.join(' or ')}, got ${typeName(args[i].type)}`, 'type.mismatch');
  };
  switch (n.name) {
    case 'lower':
    case 'upper': {
      arity(1);
      want(0, 'string');
      const f = args[0].fn,
        up = n.name === 'upper';
      return {
        type: args[0].type,
        fn: (r) => {
          const v = f(r) as string | null;
          return v === null ? null : up ? v.toUpperCase() : v.toLowerCase();
        },
      };
    }
    case 'length': {
      arity(1);
      want(0, 'string');
      const f = args[0].fn;
      return {
        type: T('int', args[0].type.nullable),
        fn: (r) => {
          const v = f(r) as string | null;
          return v === null ? null : v.length;
        },
      };
    }
    case 'abs': {
      arity(1);
      want(0, 'int', 'float', 'decimal');
      const f = args[0].fn;
      return {
        type: args[0].type,
        fn: (r) => {
          const v = f(r) as number | null;
          return v === null ? null : Math.abs(v);
        },
      };
    }
    case 'date': {
      arity(1);
      want(0, 'timestamp');
      const f = args[0].fn;
      return {
        type: T('string', args[0].type.nullable),
        fn: (r) => {
          const v = f(r) as number | null;
          return v === null ? null : dateIn(v, zone);
        },
      };
    }
    case 'hour': {
      arity(1);
      want(0, 'timestamp');
      const f = args[0].fn;
      return {
        type: T('int', args[0].type.nullable),
        fn: (r) => {
          const v = f(r) as number | null;
          return v === null ? null : Number(new Date(v).toISOString().slice(11, 13));
        },
      };
    }
    case 'coalesce': {
      if (args.length < 2) throw new ExprError('coalesce() takes at least 2 arguments', n.pos, 'expr.function', n.name.length);
      const typed = args.filter((_a, i) => n.args[i].t !== 'null');
      const nullable = args[args.length - 1].type.nullable;
      let type: ColumnType = { ...typed[0].type, nullable };
      let fs = args.map((a) => a.fn);
      if (typed.every((a) => isNumeric(a.type))) {
        // Numbers meet at a common type: float if any is, else decimal at the widest scale.
        if (typed.some((a) => a.type.kind === 'float')) {
          type = T('float', nullable);
          fs = args.map((a) => asFloat(a.type, a.fn));
        } else if (typed.some((a) => a.type.kind === 'decimal')) {
          const s = Math.max(...typed.map((a) => (a.type.kind === 'decimal' ? (a.type.scale ?? 0) : 0)));
          type = T('decimal', nullable, s);
          fs = args.map((a) => toScale(a.type, a.fn, s));
        }
      } else {
        args.forEach((a, i) => {
          if (a.type.kind !== type.kind && n.args[i].t !== 'null')
            throw ExprError.at(
              n.args[i],
              `coalesce() arguments must share a type: ${typeName(typed[0].type)} vs ${typeName(a.type)}`,
              'type.mismatch',
            );
        });
      }
      return {
        type,
        fn: (r) => {
          for (const f of fs) {
            const v = f(r);
            if (v !== null) return v;
          }
          return null;
        },
      };
    }
  }
  throw new ExprError(
    `unknown function ${n.name}(); known: lower, upper, length, abs, date, hour, coalesce`,
    n.pos,
    'expr.function',
    n.name.length,
  );
}

function suggest(name: string, names: string[]): string {
  const best = names.map((c) => ({ c, d: distance(name.toLowerCase(), c.toLowerCase()) })).sort((a, b) => a.d - b.d)[0];
  return best && best.d <= Math.max(2, name.length / 3) ? ` (did you mean "${best.c}"?)` : '';
}

export function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}
