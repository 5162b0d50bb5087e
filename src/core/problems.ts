/**
 * @module Problems as values: what validation, planning and the expression
 * compiler report, each with a code, a place and a severity.
 *
 * Rules: a problem's code is set where it is raised, from this one list, so
 * a tool (or a test) can rely on it; positions are 1-based lines and
 * columns of the spec as written, with the end of the offending text.
 */

export type Severity = 'error' | 'warning';

/** Every code a problem can carry. */
export type ProblemCode =
  // the YAML parser's own codes (yaml.tab_as_indent, yaml.duplicate_key, ...) and unresolved aliases
  | `yaml.${string}`
  | 'file.read'
  | 'env.unset'
  | 'secret.literal'
  // JSON Schema: unknown keys, missing keys, wrong types, ... (other ajv keywords as schema.<keyword>)
  | 'schema.unknown-key'
  | 'schema.required'
  | 'schema.enum'
  | 'schema.type'
  | 'schema.pattern'
  | 'schema.name'
  | 'schema.step'
  | `schema.${string}`
  | 'type.unknown'
  | 'type.mismatch'
  | 'type.nullable'
  | 'column.unknown'
  | 'column.duplicate'
  | 'column.key'
  | 'expr.syntax'
  | 'expr.aggregate'
  | 'expr.function'
  | 'mode.invalid'
  | 'mode.append'
  | 'value.duration'
  | 'value.zone'
  | 'value.window'
  | 'value.key'
  | 'value.timestamp'
  | 'value.range'
  | 'window.eventTime'
  | 'ref.connection'
  | 'key.partial'
  | 'graph.unused'
  | 'graph.cycle'
  | 'checkpoint.connections'
  | 'option.unused'
  | 'option.requires'
  | 'test.flow';

export interface Problem {
  file: string;
  line: number;
  col: number;
  /** Where the offending text ends (exclusive column), when known. */
  endLine?: number;
  endCol?: number;
  code: ProblemCode;
  message: string;
  severity: Severity;
  /** Syntax errors: the order the parser found them in, cause before consequence; they sort by it. */
  seq?: number;
}
