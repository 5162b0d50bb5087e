import { test } from 'node:test';
import assert from 'node:assert/strict';
import { METRIC_NAMES as N, RunMetrics, serveMetrics } from '../../../src/metrics/metrics.js';
import type { Logger } from '../../../src/core/log.js';
import { parsePrometheus, sample } from '../../support/prometheus.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet };

test('/metrics: per-flow counts and gauges as the flows hold them, epoch histograms; /healthz and /readyz', async () => {
  const flows = [
    {
      flow: 'publish_sales',
      recordsIn: 1200,
      recordsOut: 1199,
      deadLetters: 1,
      late: 0,
      epochs: 3,
      lag: 0,
      openedAt: 1,
      lastCommitAt: 1_796_000_000_000,
      checkpointBytes: 812,
      checkpointBytesTotal: 9000,
    },
    { flow: 'aggregate_sales', recordsIn: 1199, recordsOut: 40, deadLetters: 0, late: 2, epochs: 2, watermark: 1_795_999_000_500 },
  ];
  const m = new RunMetrics('sales', () => flows);
  m.epoch({ flow: 'publish_sales', durationMs: 1200, commitMs: 30 });
  m.epoch({ flow: 'publish_sales', durationMs: 800, commitMs: 20 });
  const server = await serveMetrics(m, { port: 0, host: '127.0.0.1', log: quiet });
  try {
    const r = await fetch(`${server.url}/metrics`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    const fams = parsePrometheus(text);
    assert.equal(fams.find((f) => f.name === N.recordsIn)!.type, 'COUNTER');
    assert.equal(sample(fams, N.recordsIn, 'publish_sales'), 1200);
    assert.equal(sample(fams, N.recordsOut, 'aggregate_sales'), 40);
    assert.equal(sample(fams, N.deadLetters, 'publish_sales'), 1);
    assert.equal(sample(fams, N.late, 'aggregate_sales'), 2);
    assert.equal(sample(fams, N.epochs, 'publish_sales'), 3);
    assert.equal(sample(fams, N.lag, 'publish_sales'), 0);
    assert.equal(sample(fams, N.lag, 'aggregate_sales'), undefined, 'no lag known: no sample');
    assert.equal(sample(fams, N.watermark, 'aggregate_sales'), 1_795_999_000.5);
    assert.equal(sample(fams, N.lastCommit, 'publish_sales'), 1_796_000_000);
    assert.equal(sample(fams, N.checkpointBytes, 'publish_sales'), 812);
    assert.equal(sample(fams, N.checkpointBytesTotal, 'publish_sales'), 9000);
    assert.equal(sample(fams, N.ready, 'aggregate_sales'), 0);
    assert.equal(fams.find((f) => f.name === N.epochDuration)!.type, 'HISTOGRAM');
    // The parser flattens labelled histograms, so these are read from the lines themselves.
    const line = (name: string) => new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1];
    const labels = 'pipeline="sales",flow="publish_sales"';
    assert.equal(line(`${N.epochDuration}_count\\{${labels}\\}`), '2');
    assert.equal(line(`${N.epochDuration}_sum\\{${labels}\\}`), '2');
    assert.equal(line(`${N.epochDuration}_bucket\\{le="1",${labels}\\}`), '1');
    assert.equal(line(`${N.commitDuration}_bucket\\{le="0.025",${labels}\\}`), '1');
    assert.ok(fams.some((f) => f.name === 'salespipe_process_resident_memory_bytes'));
    // Not every flow has opened: not ready; healthy until a flow fails.
    assert.equal((await fetch(`${server.url}/readyz`)).status, 503);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    (flows[1] as { openedAt?: number }).openedAt = 2;
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    m.flowFailed('aggregate_sales');
    const bad = await fetch(`${server.url}/healthz`);
    assert.equal(bad.status, 503);
    assert.match(await bad.text(), /failed: aggregate_sales/);
    assert.equal((await fetch(`${server.url}/metrics`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${server.url}/other`)).status, 404);
    // Counts follow the flows (a restart from the last checkpoint rolls them back).
    flows[0].recordsIn = 1000;
    assert.equal(sample(parsePrometheus(await (await fetch(`${server.url}/metrics`)).text()), N.recordsIn, 'publish_sales'), 1000);
  } finally {
    await server.close();
  }
});

test('a port already taken is a clear error naming the flag', async () => {
  const m = new RunMetrics('sales', () => []);
  const a = await serveMetrics(m, { port: 0, host: '127.0.0.1', log: quiet });
  try {
    const port = Number(new URL(a.url).port);
    await assert.rejects(
      serveMetrics(m, { port, host: '127.0.0.1', log: quiet }),
      new RegExp(`--metrics-port ${port}: cannot listen on 127.0.0.1:${port} \\(EADDRINUSE\\)`),
    );
  } finally {
    await a.close();
  }
});
