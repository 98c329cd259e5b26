import { ProgressReporter, folderBytes, type ProgressSink } from '../core/progress.js';

/**
 * Progress of a sync (push, pull, import) in bytes: mirror files written or read, rows' files
 * applied, and what git adds to the clone's .git folder while it fetches, stages and commits
 * (polled every 500 ms: git runs in a child process and sends no events). The total is unknown.
 * A git push to the remote is not measured here: it adds nothing locally.
 */
export class SyncProgress {
  private readonly meter: ProgressReporter;
  /** bytes of the work counted so far (files written or read) */
  private counted = 0;
  private gitSize: (() => number) | null = null;
  private gitStart = 0;
  private message = 'starting';

  constructor(sink: ProgressSink | undefined) {
    this.meter = new ProgressReporter(sink ?? (() => undefined), { pollMs: 500 });
  }

  /** Start counting what git writes into `<repo>/.git` from now on, polled while the sync runs. */
  watchGit(repo: string): void {
    this.gitSize = folderBytes(repo, (n) => n === '.git');
    this.gitStart = this.gitSize();
    this.meter.measure(() => ({ done: this.done(), message: this.message }));
  }

  /** `bytes` more of the work are done (a mirror file written or read), in the step `message`. */
  add(bytes: number, message = this.message): void {
    this.counted += bytes;
    this.message = message;
    this.meter.report({ done: this.done(), message });
  }

  /** A step begins: its message goes with the bytes measured now (sent once they increase). */
  step(message: string): void {
    // What the step before measured goes out under its own name first.
    this.meter.flush();
    this.message = message;
    this.meter.report({ done: this.done(), message });
    this.meter.flush();
  }

  /** The sync is over: the last value goes out, polling stops. */
  stop(): void {
    this.meter.report({ done: this.done(), message: this.message });
    this.meter.stop();
  }

  private done(): number {
    const git = this.gitSize ? Math.max(0, this.gitSize() - this.gitStart) : 0;
    return this.counted + git;
  }
}
