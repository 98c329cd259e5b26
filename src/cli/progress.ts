import cliProgress from 'cli-progress';

export interface ProgressReporter {
  update(done: number, total: number, message: string): void;
  stop(): void;
}

/** A progress bar on a terminal (stderr), nothing otherwise: scripts and --json stay clean. */
export function progressReporter(enabled: boolean): ProgressReporter {
  if (!enabled || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: '{bar} {value}/{total} {message}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total, message) {
      if (!started) {
        bar.start(total, done, { message });
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done, { message });
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
