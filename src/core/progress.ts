import fs from 'node:fs';
import path from 'node:path';

/**
 * One progress reporter for every long operation (backup, restore, sync): it takes byte counts and
 * hands a sink (MCP notifications/progress, the CLI bar) values that the MCP spec accepts.
 *
 * - `done` strictly increases from one sent value to the next; a value that does not is held (its
 *   message is kept for the next increase) and never sent;
 * - `total` is optional (unknown) and never below `done` (an estimate that proves low grows);
 * - at most one value per `minIntervalMs`, unless the work advanced by a sizeable share of the
 *   total (so a fast run still sends a count of values proportional to its bytes);
 * - while a sampler is set (`measure`), it is polled every `pollMs`: a long step with no events of
 *   its own (a VACUUM INTO in a worker, a git push) still reports what was measured at that moment
 *   (a growing file's size). Nothing measured, or nothing new, sends nothing: no made-up values.
 */
export type ProgressSink = (done: number, total: number | undefined, message: string) => void;

/** One measurement: bytes done so far in the whole operation, of how many (when known), and the step. */
export interface ProgressMeasure {
  done: number;
  total?: number;
  message: string;
}

export interface ProgressOptions {
  /** the fewest ms between two values sent (default 250: a few per second) */
  minIntervalMs?: number;
  /** how often the sampler is polled while set (default 250 ms; a heartbeat well under 1 s) */
  pollMs?: number;
  /** now(), injectable for tests */
  now?: () => number;
}

/** A share of the total whose growth sends a value even inside the rate limit (1/128 of it, at least 4 MiB). */
function stepOf(total: number | undefined): number {
  return total === undefined ? Infinity : Math.max(4 * 1024 * 1024, total / 128);
}

export class ProgressReporter {
  private readonly sink: ProgressSink;
  private readonly minIntervalMs: number;
  private readonly pollMs: number;
  private readonly now: () => number;
  /** the last value sent (undefined before the first) */
  private lastDone: number | undefined;
  private lastAt = -Infinity;
  /** the newest measurement not sent yet */
  private pending: ProgressMeasure | undefined;
  private sampler: (() => ProgressMeasure | undefined) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(sink: ProgressSink, opts: ProgressOptions = {}) {
    this.sink = sink;
    this.minIntervalMs = opts.minIntervalMs ?? 250;
    this.pollMs = opts.pollMs ?? 250;
    this.now = opts.now ?? Date.now;
  }

  /** The value last sent, or 0 before any: what a caller's next measurement must exceed. */
  get sent(): number {
    return this.lastDone ?? 0;
  }

  /**
   * A measurement: sent now when it increases and the rate limit allows, otherwise kept (the newest
   * message and the largest `done` win) for the next poll or `flush`.
   */
  report(m: ProgressMeasure): void {
    if (!Number.isFinite(m.done) || m.done < 0) return;
    const prev = this.pending;
    this.pending = {
      done: prev ? Math.max(prev.done, m.done) : m.done,
      ...(m.total !== undefined ? { total: m.total } : prev?.total !== undefined ? { total: prev.total } : {}),
      message: m.message,
    };
    this.trySend(false);
  }

  /**
   * Poll `sampler` every pollMs until `stop()` or the next `measure` (the heartbeat of a step with
   * no events of its own). The sampler returns what it measured, or undefined when it could not.
   */
  measure(sampler: () => ProgressMeasure | undefined): void {
    this.sampler = sampler;
    if (this.timer) return;
    this.timer = setInterval(() => this.poll(), this.pollMs);
    this.timer.unref();
  }

  /** Stop polling (the step is over); what is pending stays for the next report or flush. */
  stopMeasuring(): void {
    this.sampler = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Send what is pending now if it increases, whatever the rate limit (the end of a step). */
  flush(): void {
    this.trySend(true);
  }

  /** The work is over: flush and stop polling. */
  stop(): void {
    this.stopMeasuring();
    this.flush();
  }

  private poll(): void {
    let m: ProgressMeasure | undefined;
    try {
      m = this.sampler?.();
    } catch {
      m = undefined; // a file that vanished while measured: nothing measured this time
    }
    if (m) this.report(m);
    else this.trySend(false);
  }

  private trySend(force: boolean): void {
    const p = this.pending;
    if (!p) return;
    if (this.lastDone !== undefined && p.done <= this.lastDone) return;
    const at = this.now();
    const advanced = this.lastDone === undefined ? Infinity : p.done - this.lastDone;
    if (!force && at - this.lastAt < this.minIntervalMs && advanced < stepOf(p.total)) return;
    this.pending = undefined;
    this.lastDone = p.done;
    this.lastAt = at;
    this.sink(p.done, p.total === undefined ? undefined : Math.max(p.total, p.done), p.message);
  }
}

/**
 * A sink guard for the last hop (the MCP server): passes only strictly increasing `done`, with
 * `total` never below it, whatever the caller sends; a non-increasing value is dropped.
 */
export function monotonicSink(sink: ProgressSink): ProgressSink {
  let last: number | undefined;
  return (done, total, message) => {
    if (!Number.isFinite(done) || (last !== undefined && done <= last)) return;
    last = done;
    sink(done, total === undefined ? undefined : Math.max(total, done), message);
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
