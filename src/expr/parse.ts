/**
 * @module Expression syntax: a small SQL-like language for filters, derived
 * columns and aggregate arguments.
 *
 * Rules: a hand-written lexer and precedence-climbing parser produce an AST
 * with character offsets; nothing here is ever evaluated as JavaScript.
 *
 * Grammar (lowest precedence first):
 *   or  -> and ('or' and)*
 *   and -> not ('and' not)*
 *   not -> 'not' not | cmp
 *   cmp -> add (('='|'=='|'!='|'<>'|'<'|'<='|'>'|'>=') add)? | add 'is' 'not'? 'null'
 *   add -> mul (('+'|'-') mul)*
 *   mul -> unary (('*'|'/'|'%') unary)*
 *   unary -> '-' unary | atom
 *   atom -> number | 'string' | true | false | null | name | name '(' args ')' | '(' or ')'
 */
import type { ProblemCode } from '../core/problems.js';

/** Where a node's text is: [start, end) offsets, parentheses around it included. */
export interface Span {
  start: number;
  end: number;
}

/** `pos` is the node's own token (an operator's, a function's name); the span covers its operands too. */
export type Node = Span &
  (
    | { t: 'num'; text: string; pos: number }
    | { t: 'str'; value: string; pos: number }
    | { t: 'bool'; value: boolean; pos: number }
    | { t: 'null'; pos: number }
    | { t: 'col'; name: string; pos: number }
    | { t: 'bin'; op: string; l: Node; r: Node; pos: number }
    | { t: 'un'; op: '-' | 'not'; e: Node; pos: number }
    | { t: 'isnull'; e: Node; negate: boolean; pos: number }
    | { t: 'call'; name: string; args: Node[]; star: boolean; pos: number }
  );

/** A problem in an expression: its code, and where in the text it is (offset, length). */
export class ExprError extends Error {
  constructor(
    message: string,
    readonly offset: number,
    readonly code: ProblemCode = 'expr.syntax',
    readonly length = 1,
  ) {
    super(message);
  }

  /** A problem with the text of `n` (all of it). */
  static at(n: Span, message: string, code: ProblemCode): ExprError {
    return new ExprError(message, n.start, code, Math.max(1, n.end - n.start));
  }
}

interface Tok {
  k: 'num' | 'str' | 'id' | 'op' | 'end';
  v: string;
  pos: number;
  end: number;
}

/** Characters of a token (the end of the expression: one, for the caret). */
const width = (t: Tok) => Math.max(1, t.end - t.pos);

const OPS = ['<=', '>=', '!=', '<>', '==', '=', '<', '>', '+', '-', '*', '/', '%', '(', ')', ','];

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^\d*\.?\d+(?:[eE][+-]?\d+)?|^\d+\.?/.exec(src.slice(i))!;
      out.push({ k: 'num', v: m[0], pos: i, end: i + m[0].length });
      i += m[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1,
        s = '';
      for (;;) {
        if (j >= src.length) throw new ExprError('unterminated string', i, 'expr.syntax', src.length - i);
        if (src[j] === c) {
          if (src[j + 1] === c) {
            s += c;
            j += 2;
            continue;
          }
          break;
        }
        s += src[j++];
      }
      // Double quotes name a column (SQL style); single quotes are text.
      out.push({ k: c === "'" ? 'str' : 'id', v: s, pos: i, end: j + 1 });
      i = j + 1;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ k: 'id', v: m[0], pos: i, end: i + m[0].length });
      i += m[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExprError(`unexpected character ${JSON.stringify(c)}`, i);
    out.push({ k: 'op', v: op, pos: i, end: i + op.length });
    i += op.length;
  }
  out.push({ k: 'end', v: '', pos: src.length, end: src.length });
  return out;
}

/**
 * Parses an expression into an AST, or throws ExprError with an offset.
 * @example parseExpr('quantity_sold * price_per_unit')
 */
export function parseExpr(src: string): Node {
  const toks = lex(src);
  let p = 0;
  const peek = () => toks[p];
  const kw = (w: string) => peek().k === 'id' && peek().v.toLowerCase() === w;
  const isOp = (o: string) => peek().k === 'op' && peek().v === o;
  /** End of the last token taken. */
  const last = () => toks[p - 1].end;
  const expect = (o: string) => {
    if (!isOp(o))
      throw new ExprError(
        `expected "${o}" but found ${peek().k === 'end' ? 'end of expression' : JSON.stringify(peek().v)}`,
        peek().pos,
        'expr.syntax',
        width(peek()),
      );
    p++;
  };

  const orE = (): Node => {
    let l = andE();
    while (kw('or')) {
      const pos = toks[p++].pos;
      const r = andE();
      l = { t: 'bin', op: 'or', l, r, pos, start: l.start, end: r.end };
    }
    return l;
  };
  const andE = (): Node => {
    let l = notE();
    while (kw('and')) {
      const pos = toks[p++].pos;
      const r = notE();
      l = { t: 'bin', op: 'and', l, r, pos, start: l.start, end: r.end };
    }
    return l;
  };
  const notE = (): Node => {
    if (kw('not')) {
      const pos = toks[p++].pos;
      const e = notE();
      return { t: 'un', op: 'not', e, pos, start: pos, end: e.end };
    }
    return cmpE();
  };
  const cmpE = (): Node => {
    const l = addE();
    if (kw('is')) {
      const pos = toks[p++].pos;
      const negate = kw('not');
      if (negate) p++;
      if (!kw('null')) throw new ExprError('expected "null" after "is"', peek().pos, 'expr.syntax', width(peek()));
      p++;
      return { t: 'isnull', e: l, negate, pos, start: l.start, end: last() };
    }
    const t = peek();
    if (t.k === 'op' && ['=', '==', '!=', '<>', '<', '<=', '>', '>='].includes(t.v)) {
      p++;
      const op = t.v === '==' ? '=' : t.v === '<>' ? '!=' : t.v;
      const r = addE();
      return { t: 'bin', op, l, r, pos: t.pos, start: l.start, end: r.end };
    }
    return l;
  };
  const addE = (): Node => {
    let l = mulE();
    while (isOp('+') || isOp('-')) {
      const t = toks[p++];
      const r = mulE();
      l = { t: 'bin', op: t.v, l, r, pos: t.pos, start: l.start, end: r.end };
    }
    return l;
  };
  const mulE = (): Node => {
    let l = unary();
    while (isOp('*') || isOp('/') || isOp('%')) {
      const t = toks[p++];
      const r = unary();
      l = { t: 'bin', op: t.v, l, r, pos: t.pos, start: l.start, end: r.end };
    }
    return l;
  };
  const unary = (): Node => {
    if (isOp('-')) {
      const pos = toks[p++].pos;
      const e = unary();
      return { t: 'un', op: '-', e, pos, start: pos, end: e.end };
    }
    return atom();
  };
  const atom = (): Node => {
    const t = peek();
    const at = { pos: t.pos, start: t.pos, end: t.end };
    if (t.k === 'num') {
      p++;
      return { t: 'num', text: t.v, ...at };
    }
    if (t.k === 'str') {
      p++;
      return { t: 'str', value: t.v, ...at };
    }
    if (isOp('(')) {
      p++;
      const e = orE();
      expect(')');
      return { ...e, start: t.pos, end: last() };
    }
    if (t.k === 'id') {
      p++;
      const lower = t.v.toLowerCase();
      if (isOp('(')) {
        p++;
        const args: Node[] = [];
        let star = false;
        if (isOp('*')) {
          p++;
          star = true;
        } else if (!isOp(')')) {
          args.push(orE());
          while (isOp(',')) {
            p++;
            args.push(orE());
          }
        }
        expect(')');
        return { t: 'call', name: lower, args, star, pos: t.pos, start: t.pos, end: last() };
      }
      if (lower === 'true' || lower === 'false') return { t: 'bool', value: lower === 'true', ...at };
      if (lower === 'null') return { t: 'null', ...at };
      return { t: 'col', name: t.v, ...at };
    }
    throw new ExprError(
      t.k === 'end' ? 'unexpected end of expression' : `unexpected ${JSON.stringify(t.v)}`,
      t.pos,
      'expr.syntax',
      width(t),
    );
  };

  const e = orE();
  if (peek().k !== 'end')
    throw new ExprError(`unexpected ${JSON.stringify(peek().v)} after a complete expression`, peek().pos, 'expr.syntax', width(peek()));
  return e;
}
