import fs from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { formatBytes, formatRate } from '../core/size-format.js';

export interface ProgressReporter {
  update(done: number, total: number, message: string): void;
  stop(): void;
}

/** What the bar measures between the core's coarse steps: bytes written so far, and of how many. */
export interface ByteSampler {
  /** bytes written so far (read from the files being written) */
  written(): number;
  /** bytes expected in all, when known */
  total?: number;
}

/** How often the bytes and the rate are refreshed (ms). */
const SAMPLE_MS = 250;
/** The rate is measured over this window (ms), so it follows the current speed. */
const RATE_WINDOW_MS = 2000;

/**
 * A progress bar on a terminal (stderr), nothing otherwise: scripts and --json stay clean.
 * The bar follows the core's steps (done/total); with a sampler it also shows the bytes written
 * ("12.0 MiB of 80.0 MiB") and the rate ("35.1 MiB/s"), refreshed every 250 ms, so a long copy
 * of one large database is seen moving.
 */
export function progressReporter(enabled: boolean, sampler?: ByteSampler): ProgressReporter {
  if (!enabled || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new cliProgress.SingleBar(
    { format: '{bar} {value}/{total} {bytes} {rate} {message}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  const samples: Array<{ at: number; bytes: number }> = [];
  const bytesPayload = (): { bytes: string; rate: string } => {
    if (!sampler) return { bytes: '', rate: '' };
    const now = Date.now();
    const bytes = sampler.written();
    samples.push({ at: now, bytes });
    while (samples.length > 2 && now - samples[0]!.at > RATE_WINDOW_MS) samples.shift();
    const first = samples[0]!;
    const rate = now > first.at ? ((bytes - first.bytes) * 1000) / (now - first.at) : 0;
    return {
      bytes: `| ${formatBytes(bytes)}${sampler.total ? ` of ${formatBytes(sampler.total)}` : ''}`,
      rate: `| ${formatRate(Math.max(0, rate))} |`,
    };
  };
  return {
    update(done, total, message) {
      if (!started) {
        bar.start(total, done, { message, ...bytesPayload() });
        started = true;
        if (sampler) {
          timer = setInterval(() => bar.update(bytesPayload()), SAMPLE_MS);
          timer.unref();
        }
      } else {
        bar.setTotal(total);
        bar.update(done, { message, ...bytesPayload() });
      }
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      if (started) bar.stop();
      started = false;
    },
  };
}

/**
 * Bytes of the regular files in the folders of `parent` whose names `match` (recursively), e.g. a
 * snapshot's `*.partial` folder or a restore's `db.staging_*` folder while they fill up. Files
 * that vanish while counted, and those `skipFile` names, are not counted; never throws.
 */
export function folderBytes(parent: string, match: (name: string) => boolean, skipFile: (name: string) => boolean = () => false): () => number {
  const sum = (dir: string): number => {
    let n = 0;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return 0;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) n += sum(full);
      else if (e.isFile() && !skipFile(e.name)) n += fs.statSync(full, { throwIfNoEntry: false })?.size ?? 0;
    }
    return n;
  };
  return () => {
    let entries: string[];
    try {
      entries = fs.readdirSync(parent).filter(match);
    } catch {
      return 0;
    }
    return entries.reduce((n, name) => n + sum(path.join(parent, name)), 0);
  };
}
