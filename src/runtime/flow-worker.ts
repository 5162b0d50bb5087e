/**
 * @module A worker thread running some of a plan's flows (workers.ts).
 *
 * It plans the spec text the main thread read, with the main thread's
 * environment, runs its flows with FlowRunner (a flow that runs as tasks:
 * its share of them, tasks.ts) and reports to the main thread; it stops
 * when told to.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { FromWorker, ToWorker, WorkerInit } from './workers.js';
import type { Level, Logger } from '../core/log.js';
import { loadSpecText } from '../spec/load.js';
import { planSpec } from '../plan/plan.js';
import { FlowRunner, type EpochReport } from './flow.js';
import { TaskedFlow } from './tasks.js';
import { waiting } from '../connections/retry.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (m: FromWorker) => port.postMessage(m);

function logger(scope: string): Logger {
  const emit = (level: Level) => (message: string) => post({ type: 'log', scope, level, message });
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (s) => logger(scope ? `${scope}/${s}` : s),
  };
}

const stop = new AbortController();
const done = new Map<string, () => void>();
const finished = new Map<string, Promise<void>>();

port.on('message', (m: ToWorker) => {
  if (m.type === 'stop') stop.abort();
  else if (m.type === 'flowDone') done.get(m.flow)?.();
});

const plan = planSpec(loadSpecText(init.file, init.text, init.env));
const flows = init.flows.map((name) => plan?.flows.find((f) => f.name === name));
if (!plan || flows.some((f) => !f)) {
  post({
    type: 'fatal',
    message: `${init.file} does not plan on a worker as it did on the main thread (did a file it refers to change?): flows ${init.flows.join(', ')} cannot start`,
  });
} else {
  for (const f of plan.flows) finished.set(f.name, new Promise<void>((r) => done.set(f.name, r)));
  const log = logger('');
  const runners = flows.map((f) => {
    const o = {
      stateDir: init.stateDir,
      drain: init.drain,
      signal: stop.signal,
      log,
      output: { write: (text: string) => post({ type: 'output', text }), isTTY: init.outputIsTTY },
      onEpoch: (report: EpochReport) => post({ type: 'epoch', report }),
      upstreamDone: Promise.all(f!.upstream.map((u) => finished.get(u)!)).then(() => undefined),
    };
    return f!.tasks.perPartition ? new TaskedFlow(plan, f!, o, init.member) : new FlowRunner(plan, f!, o);
  });
  let lastWaiting = '[]';
  const report = () => {
    post({ type: 'stats', stats: runners.map((r) => r.stats) });
    const w = JSON.stringify([...waiting]);
    if (w !== lastWaiting) post({ type: 'waiting', entries: [...waiting] });
    lastWaiting = w;
  };
  const timer = setInterval(report, 250);
  let left = runners.length;
  for (const r of runners) {
    r.run()
      .then(
        (stats) => post({ type: 'end', flow: stats.flow, stats }),
        (e) => post({ type: 'end', flow: r.stats.flow, stats: r.stats, error: (e as Error).message ?? String(e) }),
      )
      .finally(() => {
        if (--left === 0) clearInterval(timer);
      });
  }
}
