import cliProgress from 'cli-progress';
import { formatBytes, formatRate } from '../core/size-format.js';

export interface ProgressBar {
  /** bytes done so far, of how many (undefined: unknown), and the step */
  update(done: number, total: number | undefined, message: string): void;
  stop(): void;
}

/** The rate is measured over this window (ms), so it follows the current speed. */
const RATE_WINDOW_MS = 2000;

/**
 * A progress bar on a terminal (stderr), nothing otherwise: scripts and --json stay clean.
 * It shows what the core's progress reporter (src/core/progress.ts) measures: bytes done of the
 * total ("12.0 MiB of 80.0 MiB"), the rate ("35.1 MiB/s") and the step. The reporter sends a
 * value at least every second while the bytes grow, so a long copy of one large database is seen
 * moving.
 */
export function progressBar(enabled: boolean): ProgressBar {
  if (!enabled || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: '{bar} {bytes} {rate} {message}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const samples: Array<{ at: number; bytes: number }> = [];
  const payload = (done: number, total: number | undefined, message: string) => {
    const now = Date.now();
    samples.push({ at: now, bytes: done });
    while (samples.length > 2 && now - samples[0]!.at > RATE_WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const rate = now > first.at ? ((done - first.bytes) * 1000) / (now - first.at) : 0;
    return { message, bytes: `| ${formatBytes(done)}${total ? ` of ${formatBytes(total)}` : ''}`, rate: `| ${formatRate(Math.max(0, rate))} |` };
  };
  return {
    update(done, total, message) {
      // Without a total the bar is drawn full-width of what is done so far.
      const barTotal = Math.max(total ?? done, done, 1);
      if (!started) {
        bar.start(barTotal, done, payload(done, total, message));
        started = true;
      } else {
        bar.setTotal(barTotal);
        bar.update(done, payload(done, total, message));
      }
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
