/** The tests' independent reader of the Prometheus text format (parse-prometheus-text-format, prom2json's output shape). */
import { createRequire } from 'node:module';

export interface Family {
  name: string;
  help: string;
  type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  metrics: { labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string; sum?: string }[];
}

const parse = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

export const parsePrometheus = (text: string): Family[] => parse(text);

/** The value of `name` for `flow` (a counter or gauge), or a histogram's count. */
export function sample(families: Family[], name: string, flow: string): number | undefined {
  const f = families.find((x) => x.name === name);
  const m = f?.metrics.find((x) => x.labels?.flow === flow);
  if (!m) return undefined;
  return Number(m.value ?? m.count);
}
