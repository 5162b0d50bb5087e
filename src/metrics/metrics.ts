/**
 * @module A run's metrics in the Prometheus text format, and the HTTP
 * endpoint a supervisor scrapes (`salespipe run … --metrics-port N`).
 *
 * Rules:
 * - Counts and gauges are read from the flows' live statistics when
 *   scraped (the figures the run summary prints), so the endpoint and the
 *   summary never disagree; histograms are fed once per committed epoch.
 * - Counters count this process's run: a flow that restarts from its last
 *   checkpoint (a lost transaction) rolls them back to the last commit, a
 *   reset Prometheus' rate() handles.
 * - `/healthz` answers 200 while no flow has failed; `/readyz` 200 once
 *   every flow has opened its source, sinks and checkpoint.
 * - The server binds to 127.0.0.1 unless told otherwise; it serves
 *   figures only (no names of connections, no secrets).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import client from 'prom-client';
import type { Logger } from '../core/log.js';
import { METRIC_NAMES } from './names.js';

export { METRIC_NAMES };

/** What the metrics read of a flow (the runtime's FlowStats extends it). */
export interface FlowFigures {
  flow: string;
  recordsIn: number;
  recordsOut: number;
  deadLetters: number;
  /** Records behind the watermark (also counted in deadLetters when they went there). */
  late: number;
  epochs: number;
  lag?: number;
  /** The flow's watermark (windowed flows), else the event time its source has reached. */
  watermark?: number;
  /** When the flow had opened its source, sinks and checkpoint (ready to process). */
  openedAt?: number;
  /** When its last epoch committed, and that checkpoint's size. */
  lastCommitAt?: number;
  checkpointBytes?: number;
  /** Checkpoint bytes written by the epochs of this run (state entries included). */
  checkpointBytesTotal?: number;
}

export interface EpochFigures {
  flow: string;
  durationMs: number;
  commitMs: number;
}

export class RunMetrics {
  readonly registry = new client.Registry();
  private epochDuration: client.Histogram<'pipeline' | 'flow'>;
  private commitDuration: client.Histogram<'pipeline' | 'flow'>;
  private failed: string[] = [];

  constructor(
    private pipeline: string,
    private flows: () => FlowFigures[],
  ) {
    const labelNames = ['pipeline', 'flow'] as const;
    const registers = [this.registry];
    const each = (fn: (f: FlowFigures) => number | undefined) =>
      function (this: client.Gauge<'pipeline' | 'flow'> | client.Counter<'pipeline' | 'flow'>) {
        this.reset();
        for (const f of flows()) {
          const v = fn(f);
          if (v === undefined || !Number.isFinite(v)) continue;
          if (this instanceof client.Counter) this.inc({ pipeline, flow: f.flow }, v);
          else this.set({ pipeline, flow: f.flow }, v);
        }
      };
    const counter = (name: string, help: string, fn: (f: FlowFigures) => number) =>
      new client.Counter({ name, help, labelNames, registers, collect: each(fn) });
    const gauge = (name: string, help: string, fn: (f: FlowFigures) => number | undefined) =>
      new client.Gauge({ name, help, labelNames, registers, collect: each(fn) });
    const N = METRIC_NAMES;
    counter(N.recordsIn, 'Records read by the flow (valid and dead-lettered) in this run.', (f) => f.recordsIn);
    counter(N.recordsOut, 'Rows the flow wrote to its sinks in this run.', (f) => f.recordsOut);
    counter(N.deadLetters, 'Records sent to the dead-letter output in this run.', (f) => f.deadLetters);
    counter(N.late, 'Records that arrived behind the watermark in this run.', (f) => f.late);
    counter(N.epochs, 'Epochs committed in this run.', (f) => f.epochs);
    gauge(N.lag, "Records in the flow's source not read yet (Kafka and table sources).", (f) => f.lag);
    gauge(N.watermark, "The flow's watermark (windowed flows), else the event time its source has reached, in Unix seconds.", (f) =>
      f.watermark === undefined ? undefined : f.watermark / 1000,
    );
    gauge(N.lastCommit, 'When the last epoch committed, in Unix seconds.', (f) =>
      f.lastCommitAt === undefined ? undefined : f.lastCommitAt / 1000,
    );
    gauge(
      N.checkpointBytes,
      "Bytes the flow's last checkpoint wrote (with a changelog: the state entries that changed).",
      (f) => f.checkpointBytes,
    );
    counter(N.checkpointBytesTotal, 'Checkpoint bytes written by the epochs of this run.', (f) => f.checkpointBytesTotal ?? 0);
    gauge(N.ready, '1 once the flow has opened its source, sinks and checkpoint.', (f) => (f.openedAt ? 1 : 0));
    this.epochDuration = new client.Histogram({
      name: N.epochDuration,
      help: 'Wall time of an epoch, from its start to its commit.',
      labelNames,
      registers,
      buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300],
    });
    this.commitDuration = new client.Histogram({
      name: N.commitDuration,
      help: "Time to commit an epoch: the checkpoint, the sinks' commits and the source's.",
      labelNames,
      registers,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    client.collectDefaultMetrics({ register: this.registry, prefix: 'salespipe_' });
  }

  epoch(e: EpochFigures): void {
    const labels = { pipeline: this.pipeline, flow: e.flow };
    this.epochDuration.observe(labels, e.durationMs / 1000);
    this.commitDuration.observe(labels, e.commitMs / 1000);
  }

  /** A flow failed: the run is unhealthy from now on. */
  flowFailed(flow: string): void {
    this.failed.push(flow);
  }

  health(): { ok: boolean; text: string } {
    return this.failed.length ? { ok: false, text: `failed: ${this.failed.join(', ')}\n` } : { ok: true, text: 'ok\n' };
  }

  readiness(): { ok: boolean; text: string } {
    const waiting = this.flows()
      .filter((f) => !f.openedAt)
      .map((f) => f.flow);
    return waiting.length ? { ok: false, text: `not ready: ${waiting.join(', ')}\n` } : { ok: true, text: 'ready\n' };
  }
}

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serves `/metrics`, `/healthz` and `/readyz` on host:port (port 0: any free one). */
export async function serveMetrics(metrics: RunMetrics, opts: { port: number; host: string; log: Logger }): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'read-only\n');
    if (url.pathname === '/metrics') {
      metrics.registry.metrics().then(
        (text) => send(200, metrics.registry.contentType, text),
        (e: Error) => send(500, 'text/plain', `${e.message}\n`),
      );
      return;
    }
    if (url.pathname === '/healthz' || url.pathname === '/readyz') {
      const r = url.pathname === '/healthz' ? metrics.health() : metrics.readiness();
      return send(r.ok ? 200 : 503, 'text/plain', r.text);
    }
    send(404, 'text/plain', 'not found: /metrics, /healthz and /readyz are served\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(new Error(`--metrics-port ${opts.port}: cannot listen on ${opts.host}:${opts.port} (${e.code ?? e.message})`)),
    );
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${host}:${port}`;
  opts.log.info(`metrics at ${url}/metrics (also /healthz, /readyz)`);
  return {
    url,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
