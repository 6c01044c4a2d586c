import cliProgress from 'cli-progress';
import { formatBytes } from '../util/bytes.js';
import { terminalSafe } from '../util/text.js';
import { formatDuration } from './format.js';
import { writeJson } from './output.js';

export interface ReporterOptions {
  quiet: boolean;
  json: boolean;
  /** Bars only on a terminal; logs and CI get plain lines. */
  tty: boolean;
}

interface Phase {
  label: string;
  total: number;
  value: number;
  startedAt: number;
  bar?: cliProgress.SingleBar;
}

/** Plain-line progress is printed at most this often, so logs stay readable. */
const LINE_INTERVAL_MS = 5000;

/**
 * Everything a command says to a person goes through here, on stderr, so that
 * stdout carries only results (`--json`) and can be piped. Messages carry
 * bundle and registry strings: every line is escaped on its way out (the
 * callers also pass such strings through `printable`, which keeps each of them
 * on one line and bounded).
 */
export class Reporter {
  private multi: cliProgress.MultiBar | undefined;
  private readonly phases = new Map<string, Phase>();
  private lastLine = 0;

  constructor(readonly opts: ReporterOptions) {}

  get showsProgress(): boolean {
    return !this.opts.quiet && !this.opts.json;
  }

  info(message: string): void {
    if (this.showsProgress) this.write(message);
  }

  /** Warnings reach stderr in every mode: --quiet and --json silence progress, not problems. */
  warn(message: string): void {
    this.write(`warning: ${message}`);
  }

  /** Starts a byte-progress phase: a bar on a terminal, a line every few seconds elsewhere. */
  startBytes(key: string, label: string, total: number): void {
    if (!this.showsProgress) return;
    const phase: Phase = { label, total, value: 0, startedAt: Date.now() };
    if (this.opts.tty) {
      this.multi ??= new cliProgress.MultiBar(
        {
          format: '{label} |{bar}| {percentage}% {done}/{size} {rate} ETA {eta_formatted}',
          hideCursor: true,
          etaBuffer: 50,
          fps: 5,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      );
      phase.bar = this.multi.create(Math.max(total, 1), 0, {
        label: label.padEnd(28).slice(0, 28),
        done: formatBytes(0),
        size: formatBytes(total),
        rate: '',
      });
    } else {
      this.write(`${label}: ${formatBytes(total)}`);
      this.lastLine = phase.startedAt;
    }
    this.phases.set(key, phase);
  }

  advance(key: string, delta: number): void {
    const p = this.phases.get(key);
    if (!p) return;
    p.value += delta;
    const now = Date.now();
    const secs = (now - p.startedAt) / 1000;
    const rate = secs > 0 ? p.value / secs : 0;
    if (p.bar) {
      // Totals are estimates (tar headers, retried bytes): never show more than 100 %.
      const shown = Math.min(p.value, p.bar.getTotal());
      p.bar.update(shown, { done: formatBytes(shown), rate: rate > 0 ? `${formatBytes(rate)}/s` : '' });
    } else if (now - this.lastLine >= LINE_INTERVAL_MS) {
      this.lastLine = now;
      const eta = rate > 0 ? formatDuration((p.total - p.value) / rate) : '?';
      this.write(`${p.label}: ${formatBytes(p.value)} of ${formatBytes(p.total)} (${formatBytes(rate)}/s, ETA ${eta})`);
    }
  }

  stop(): void {
    this.multi?.stop();
    this.multi = undefined;
    this.phases.clear();
  }

  /** The `--json` result, alone on stdout, with terminal controls escaped. */
  result(value: unknown): void {
    if (this.opts.json) writeJson(value);
  }

  private write(message: string): void {
    const line = terminalSafe(message);
    if (this.multi) this.multi.log(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  }
}
