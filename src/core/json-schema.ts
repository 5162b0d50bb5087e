/** @module JSON Schema values, as the operators' config schemas are written. */
export type JsonSchema = Record<string, unknown>;

/**
 * A config with its schema's defaults filled in (a copy; the spec's own
 * object is left as it was): object properties with a `default` that the
 * config leaves out get it, and objects present are filled in recursively.
 * This is the one place defaults are applied.
 */
export function withDefaults<T>(schema: unknown, value: T): T {
  const s = schema as { properties?: Record<string, { default?: unknown }> } | undefined;
  if (!s?.properties || !value || typeof value !== 'object' || Array.isArray(value)) return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [k, ps] of Object.entries(s.properties)) {
    if (out[k] === undefined && ps && 'default' in ps) out[k] = structuredClone(ps.default);
    if (out[k] !== undefined) out[k] = withDefaults(ps, out[k]);
  }
  return out as T;
}
