/**
 * @module `salespipe dashboard [SPEC…]`: a live page over the outputs of
 * the given pipelines (their Kafka topics, read_committed, and Parquet
 * datasets), with pipeline health from their /metrics endpoints.
 *
 * Runs until SIGINT/SIGTERM. Without specs: every spec in ./pipelines
 * except the demo's.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { IO } from '../core/io.js';
import type { Logger } from '../core/log.js';
import { dateIn } from '../core/time.js';
import type { Plan } from '../plan/plan.js';
import { Model } from '../dashboard/model.js';
import { KafkaFeed, ParquetFeed, outputsOf, type Feed } from '../dashboard/feeds.js';
import { Health } from '../dashboard/health.js';
import { isLoopback, serveDashboard } from '../dashboard/server.js';
import { planOrPrint, portArg, specFiles, UsageError } from './common.js';

export interface DashboardFlags {
  port: string;
  host: string;
  metrics?: string[];
  currency: string;
  locale?: string;
}

export const TOKEN_VAR = 'SALESPIPE_DASHBOARD_TOKEN';

export default async function dashboard(files: string[], o: DashboardFlags, io: IO, log: Logger): Promise<number> {
  const port = portArg(o.port, '--port');
  const token = io.env[TOKEN_VAR] || undefined;
  if (!isLoopback(o.host) && !token)
    throw new UsageError(`--host ${o.host} is reachable from other machines: set ${TOKEN_VAR} to the token every request must carry`);
  if (!/^[A-Z]{3}$/.test(o.currency)) throw new UsageError(`--currency ${o.currency}: an ISO 4217 code such as USD or EUR`);
  const locale = o.locale ?? 'en-US';
  try {
    // What the page will do with them; a wrong one would leave it blank.
    new Intl.NumberFormat(locale, { style: 'currency', currency: o.currency });
  } catch {
    throw new UsageError(`--locale ${locale}: not a language tag this runtime knows (e.g. en-US, de-DE)`);
  }
  if (!files.length) {
    if (!fs.existsSync('pipelines')) throw new UsageError('name the specs whose outputs to show (no ./pipelines here)');
    files = specFiles(['pipelines']).filter((f) => path.basename(f) !== 'demo.yaml');
  }
  const plans: Plan[] = [];
  for (const f of specFiles(files)) {
    const plan = planOrPrint(f, io, { errorsOnly: true });
    if (!plan) return 2;
    plans.push(plan);
  }
  const timeZone = plans[0].timeZone;
  const model = new Model({ timeZone });
  const wanted = outputsOf(plans, log);
  if (!wanted.kafka.length && !wanted.parquet.length)
    throw new UsageError(
      `${files.join(', ')}: no output the dashboard shows (topics or Parquet datasets named aggregated_product_sales, windowed_product_sales, sales_history, …)`,
    );
  const feeds: Feed[] = [
    ...wanted.kafka.map((w) => new KafkaFeed(w, model, log)),
    ...wanted.parquet.map((w) => new ParquetFeed(w, model, log, () => dateIn(Date.now() - 60 * 86_400_000, timeZone))),
  ];
  let healthVersion = 0;
  const health = new Health(o.metrics ?? [], () => {
    healthVersion++;
    server.changed();
  });
  const server = await serveDashboard({
    host: o.host,
    port,
    token,
    settings: { currency: o.currency, locale, title: plans.map((p) => p.pipeline).join(', ') },
    version: () => model.version * 1000 + healthVersion,
    view: () => ({
      ...model.view(),
      health: health.view(),
      metricsEndpoints: (o.metrics ?? []).length,
      feeds: feeds.map((f) => f.status()),
    }),
    recommendations: (c) => model.recommendations(c),
  });
  // The model tells the server when it changes (at most twice a second, see server.ts).
  const poll = setInterval(() => server.changed(), 250);
  feeds.forEach((f) => f.start());
  health.start();
  log.info(
    `dashboard at ${server.url}/ over ${[...wanted.kafka.flatMap((w) => [...w.topics.keys()].map((t) => `topic ${t}`)), ...wanted.parquet.map((w) => `Parquet ${w.dir}`)].join(', ')}`,
  );
  io.stdout(`${server.url}/\n`);
  await new Promise<void>((resolve) => {
    if (!io.signal || io.signal.aborted) return resolve();
    io.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  clearInterval(poll);
  health.close();
  await server.close();
  await Promise.all(feeds.map((f) => f.close()));
  return 0;
}
