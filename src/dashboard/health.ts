/**
 * @module Pipeline health for the dashboard: the runs' /metrics endpoints
 * (`salespipe run … --metrics-port N`), scraped every 5 s.
 *
 * Rules:
 * - Only salespipe's own series are read (metrics.ts names them); records/s
 *   is the change of records in between two scrapes.
 * - An endpoint that does not answer keeps its last figures, marked with
 *   the time of the last good scrape.
 */
import { METRIC_NAMES } from '../metrics/names.js';

export interface FlowHealth {
  pipeline: string;
  flow: string;
  recordsIn: number;
  recordsPerSecond?: number;
  lag?: number;
  watermark?: string;
  lastCommit?: string;
  deadLetters: number;
  late: number;
  ready: boolean;
  /** When the endpoint last answered (Unix ms). */
  scrapedAt: number;
  endpoint: string;
  stale: boolean;
}

/** Samples of the Prometheus text format: `name{labels} value`, comments skipped. */
export function parseSamples(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

export class Health {
  private flows = new Map<string, FlowHealth>();
  private timer?: NodeJS.Timeout;

  constructor(
    private endpoints: string[],
    private onChange: () => void,
  ) {}

  start(): void {
    if (!this.endpoints.length) return;
    const tick = () => void this.scrapeAll().finally(() => (this.timer = setTimeout(tick, 5000)));
    tick();
  }

  close(): void {
    clearTimeout(this.timer);
  }

  view(): FlowHealth[] {
    return [...this.flows.values()].sort((a, b) => a.pipeline.localeCompare(b.pipeline) || a.flow.localeCompare(b.flow));
  }

  private async scrapeAll() {
    await Promise.all(this.endpoints.map((e) => this.scrape(e)));
    this.onChange();
  }

  private async scrape(endpoint: string) {
    const url = /\/metrics$/.test(endpoint) ? endpoint : `${endpoint.replace(/\/$/, '')}/metrics`;
    let text: string;
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      text = await r.text();
    } catch {
      for (const f of this.flows.values()) if (f.endpoint === endpoint) f.stale = true;
      return;
    }
    const now = Date.now();
    const N = METRIC_NAMES;
    const by = new Map<string, { pipeline: string; flow: string; v: Record<string, number> }>();
    for (const s of parseSamples(text)) {
      if (!s.labels.flow || !s.labels.pipeline) continue;
      const k = `${s.labels.pipeline}/${s.labels.flow}`;
      let x = by.get(k);
      if (!x) by.set(k, (x = { pipeline: s.labels.pipeline, flow: s.labels.flow, v: {} }));
      x.v[s.name] = s.value;
    }
    for (const [k, { pipeline, flow, v: e }] of by) {
      const prev = this.flows.get(k);
      const recordsIn = e[N.recordsIn] ?? 0;
      const iso = (v: number | undefined) => (v === undefined ? undefined : new Date(v * 1000).toISOString());
      this.flows.set(k, {
        pipeline,
        flow,
        recordsIn,
        recordsPerSecond:
          prev && !prev.stale && now > prev.scrapedAt
            ? Math.max(0, Math.round(((recordsIn - prev.recordsIn) * 1000) / (now - prev.scrapedAt)))
            : prev?.recordsPerSecond,
        lag: e[N.lag],
        watermark: iso(e[N.watermark]),
        lastCommit: iso(e[N.lastCommit]),
        deadLetters: e[N.deadLetters] ?? 0,
        late: e[N.late] ?? 0,
        ready: e[N.ready] === 1,
        scrapedAt: now,
        endpoint,
        stale: false,
      });
    }
  }
}
