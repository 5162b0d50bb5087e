/**
 * @module Progress: an ora spinner on a terminal, plain log lines otherwise.
 *
 * Rules: a TTY not under CI gets one live line (records in, records/s, lag,
 * watermark, dead letters per flow); anywhere else, a log line every 10 s.
 * Rates are over the last 10 s, so a steady flow shows a steady figure
 * (a Kafka flow's records arrive in bursts at commits). Both end with a
 * summary line per flow. NO_COLOR turns the spinner's colour off.
 */
import ora, { Ora } from 'ora';
import type { FlowStats } from './flow.js';
import { logHooks, Logger } from '../core/log.js';
import { formatTimestamp } from '../core/time.js';

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Window of the shown rate. */
export const RATE_WINDOW_MS = 10_000;

/** Records per second over the last RATE_WINDOW_MS, from samples of a growing count. */
export class Rate {
  private samples: [number, number][] = [];

  constructor(start: number) {
    this.samples.push([start, 0]);
  }

  add(at: number, n: number): number {
    this.samples.push([at, n]);
    while (this.samples.length > 2 && this.samples[1][0] <= at - RATE_WINDOW_MS) this.samples.shift();
    const [t0, n0] = this.samples[0];
    return ((n - n0) * 1000) / Math.max(1, at - t0);
  }
}

/** `12:03:05`, or the date too when it is not today's (UTC). */
const when = (ms: number) => {
  const iso = formatTimestamp(ms);
  return iso.slice(0, 10) === new Date().toISOString().slice(0, 10) ? iso.slice(11, 19) : iso.slice(0, 19).replace('T', ' ');
};

export class Progress {
  private spinner: Ora | null = null;
  private timer: NodeJS.Timeout | null = null;
  private rates = new Map<string, Rate>();

  constructor(
    private flows: FlowStats[],
    private log: Logger,
    private enabled: boolean,
  ) {}

  line(now = Date.now()): string {
    return this.flows
      .map((f) => {
        let r = this.rates.get(f.flow);
        if (!r) this.rates.set(f.flow, (r = new Rate(f.startedAt)));
        const rate = r.add(now, f.recordsIn);
        const wm =
          f.watermark !== undefined && Number.isFinite(f.watermark) ? `, ${f.watermarkKind ?? 'watermark'} ${when(f.watermark)}` : '';
        return `${f.flow}: ${fmt(f.recordsIn)} in, ${fmt(rate)}/s${f.lag !== undefined ? `, lag ${fmt(f.lag)}` : ''}${wm}${f.deadLetters ? `, ${fmt(f.deadLetters)} dead` : ''}${f.late ? `, ${fmt(f.late)} late` : ''}`;
      })
      .join(' | ');
  }

  start() {
    if (!this.enabled) return;
    // A terminal that reports no width (some pseudo-terminals) gets log lines: ora cannot lay out a line there.
    const width = process.stderr.columns ?? 0;
    const tty = process.stderr.isTTY && !process.env.CI && width >= 20;
    if (tty) {
      // discardStdin would put the terminal in raw mode, where Ctrl-C stops reaching us as SIGINT.
      const spinner = ora({
        text: 'starting',
        stream: process.stderr,
        discardStdin: false,
        color: process.env.NO_COLOR ? false : 'cyan',
      }).start();
      this.spinner = spinner;
      logHooks.around = (write) => {
        spinner.clear();
        write();
        spinner.render();
      };
      // One line only: a wrapped spinner line leaves copies of itself behind.
      const fit = (s: string) => {
        const w = (process.stderr.columns ?? width) - 3;
        return s.length > w ? s.slice(0, Math.max(0, w - 1)) + '…' : s;
      };
      this.timer = setInterval(() => {
        if (this.spinner) this.spinner.text = fit(this.line());
      }, 500);
    } else {
      this.timer = setInterval(() => this.log.info(this.line()), 10_000);
    }
    this.timer.unref();
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.spinner?.stop();
    this.spinner = null;
    logHooks.around = null;
    // The summary is printed with or without progress lines: cron logs want it.
    const use = process.resourceUsage();
    // CPU of every thread of the process (workers, fetch threads): beside the wall time, how busy the cores were.
    this.log.info(
      `peak RSS ${Math.round(use.maxRSS / 1024)} MB, CPU ${((use.userCPUTime + use.systemCPUTime) / 1e6).toFixed(1)} s (all threads)`,
    );
    for (const f of this.flows) {
      const secs = ((f.finishedAt ?? Date.now()) - f.startedAt) / 1000;
      this.log.info(
        `${f.flow}: ${fmt(f.recordsIn)} records in, ${fmt(f.recordsOut)} out, ${fmt(f.deadLetters)} dead letters${f.deadLetters && f.deadLettersTo ? ` (to ${f.deadLettersTo})` : ''}, ${f.late ? `${fmt(f.late)} late, ` : ''}${f.epochs} epoch(s) in ${secs.toFixed(2)} s (${fmt(f.recordsIn / Math.max(secs, 0.001))}/s)${Object.entries(
          f.counters,
        )
          .map(([k, v]) => `; ${k}: ${fmt(v)}`)
          .join('')}`,
      );
    }
  }
}
