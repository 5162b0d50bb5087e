/**
 * @module Progress: an ora spinner on a terminal, plain log lines otherwise.
 *
 * Rules: a TTY not under CI gets one live line (records in, records/s, lag,
 * dead letters per flow); anywhere else, a log line every 10 s. Both end
 * with a summary line per flow.
 */
import ora, { Ora } from 'ora';
import type { FlowStats } from './flow.js';
import { logHooks, Logger } from './log.js';

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export class Progress {
  private spinner: Ora | null = null;
  private timer: NodeJS.Timeout | null = null;
  private last = new Map<string, { at: number; n: number }>();

  constructor(private flows: FlowStats[], private log: Logger, private enabled: boolean) {}

  private line(): string {
    const now = Date.now();
    return this.flows.map((f) => {
      const prev = this.last.get(f.flow) ?? { at: f.startedAt, n: 0 };
      const rate = ((f.recordsIn - prev.n) * 1000) / Math.max(1, now - prev.at);
      this.last.set(f.flow, { at: now, n: f.recordsIn });
      return `${f.flow}: ${fmt(f.recordsIn)} in, ${fmt(rate)}/s${f.lag !== undefined ? `, lag ${fmt(f.lag)}` : ''}${f.deadLetters ? `, ${fmt(f.deadLetters)} dead` : ''}${f.late ? `, ${fmt(f.late)} late` : ''}`;
    }).join(' | ');
  }

  start() {
    if (!this.enabled) return;
    // A terminal that reports no width (some pseudo-terminals) gets log lines: ora cannot lay out a line there.
    const width = process.stderr.columns ?? 0;
    const tty = process.stderr.isTTY && !process.env.CI && width >= 20;
    if (tty) {
      // discardStdin would put the terminal in raw mode, where Ctrl-C stops reaching us as SIGINT.
      const spinner = ora({ text: 'starting', stream: process.stderr, discardStdin: false }).start();
      this.spinner = spinner;
      logHooks.around = (write) => { spinner.clear(); write(); spinner.render(); };
      // One line only: a wrapped spinner line leaves copies of itself behind.
      const fit = (s: string) => { const w = (process.stderr.columns ?? width) - 3; return s.length > w ? s.slice(0, Math.max(0, w - 1)) + '…' : s; };
      this.timer = setInterval(() => { if (this.spinner) this.spinner.text = fit(this.line()); }, 500);
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
    this.log.info(`peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`);
    for (const f of this.flows) {
      const secs = ((f.finishedAt ?? Date.now()) - f.startedAt) / 1000;
      this.log.info(`${f.flow}: ${fmt(f.recordsIn)} records in, ${fmt(f.recordsOut)} out, ${fmt(f.deadLetters)} dead letters, ${f.late ? `${fmt(f.late)} late, ` : ''}${f.epochs} epoch(s) in ${secs.toFixed(2)} s (${fmt(f.recordsIn / Math.max(secs, 0.001))}/s)${Object.entries(f.counters).map(([k, v]) => `; ${k}: ${fmt(v)}`).join('')}`);
    }
  }
}
