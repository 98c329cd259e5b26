import cron, { type ScheduledTask } from 'node-cron';
import { logger } from '../core/log.js';
import type { Job } from './jobs.js';
import { describeError } from '../core/errors.js';

export type JobOutcome = { kind: 'ran'; detail: string } | { kind: 'failed'; detail: string } | { kind: 'skipped'; detail: string };

export interface JobRecord {
  job: string;
  at: string;
  reason: 'scheduled' | 'catch-up';
  outcome: JobOutcome['kind'] | 'overlap';
  detail: string;
}

/** What the runner needs from the rest of wb-backup; injected so scheduling is tested on its own. */
export interface RunnerDeps {
  /** run the job's capability; throws or returns what happened */
  run(job: Job, signal: AbortSignal): Promise<JobOutcome>;
  /** null when the job may run; otherwise why it is skipped (component unwanted, requirement unmet) */
  blockedReason(job: Job): Promise<string | null>;
  /**
   * false when the job's capability keeps its own cadence and its work is not due at this tick
   * (ScheduledBehaviour.due): the tick is then neither run nor recorded. Absent: always due.
   */
  isDue?(job: Job): Promise<boolean>;
  /** when the job's work was last done (null if never), for the catch-up run at start */
  lastDoneAt(job: Job): Promise<Date | null>;
  now(): Date;
  record?(entry: JobRecord): void;
}

/**
 * Runs the sidecar jobs on their cron schedules: never two runs of one job at once (a run still
 * going when the next fires is skipped and logged), one catch-up run at start for every job (with
 * `catch_up`, the default) whose work was last done longer ago than its cadence, and quiet skips
 * when requirements are unmet.
 */
export class SidecarRunner {
  private readonly tasks: ScheduledTask[] = [];
  private readonly running = new Map<string, Promise<void>>();
  private readonly abort = new AbortController();
  readonly history: JobRecord[] = [];
  /** settles when the catch-up run (if any) is done; start() does not wait for it */
  catchUpDone: Promise<void> = Promise.resolve();

  constructor(
    private readonly jobs: readonly Job[],
    private readonly deps: RunnerDeps,
  ) {}

  /** Minutes between two consecutive fires of the job's schedule. */
  static cadenceMs(job: Job, from: Date): number {
    const task = cron.createTask(job.schedule, () => undefined);
    try {
      const [a, b] = nextRuns(task, from, 2);
      return a && b ? b.getTime() - a.getTime() : 60 * 60_000;
    } finally {
      void task.destroy();
    }
  }

  start(): void {
    for (const job of this.jobs.filter((j) => j.enabled)) {
      const task = cron.schedule(job.schedule, () => this.fire(job, 'scheduled'), { name: job.name, noOverlap: false });
      this.tasks.push(task);
    }
    this.catchUpDone = this.catchUp();
  }

  private async catchUp(): Promise<void> {
    const now = this.deps.now();
    for (const job of this.jobs.filter((j) => j.enabled && j.catch_up !== false)) {
      const last = await this.deps.lastDoneAt(job);
      const cadence = SidecarRunner.cadenceMs(job, now);
      if (!last || now.getTime() - last.getTime() > cadence) {
        logger().info({ job: job.name, last: last?.toISOString() ?? null }, 'last run is older than the cadence: catching up once');
        await this.fire(job, 'catch-up');
      }
    }
  }

  /** Fire one job now (the cron callback). Resolves when this firing is done or skipped. */
  fire(job: Job, reason: JobRecord['reason']): Promise<void> {
    if (this.abort.signal.aborted) return Promise.resolve();
    if (this.running.has(job.name)) {
      this.note(job, reason, 'overlap', 'the previous run is still going; this one is skipped');
      logger().warn({ job: job.name }, 'skipped: the previous run is still going');
      return Promise.resolve();
    }
    const run = this.execute(job, reason).finally(() => this.running.delete(job.name));
    this.running.set(job.name, run);
    return run;
  }

  private async execute(job: Job, reason: JobRecord['reason']): Promise<void> {
    try {
      if (this.deps.isDue && !(await this.deps.isDue(job))) return;
      const blocked = await this.deps.blockedReason(job);
      if (blocked) {
        logger().debug({ job: job.name, blocked }, 'skipped: requirements not met');
        this.note(job, reason, 'skipped', blocked);
        return;
      }
      const outcome = await this.deps.run(job, this.abort.signal);
      this.note(job, reason, outcome.kind, outcome.detail);
      logger().info({ job: job.name, outcome: outcome.kind }, outcome.detail);
    } catch (err) {
      const detail = describeError(err);
      this.note(job, reason, 'failed', detail);
      logger().error({ job: job.name, err: detail }, 'sidecar job failed');
    }
  }

  private note(job: Job, reason: JobRecord['reason'], outcome: JobRecord['outcome'], detail: string): void {
    const entry: JobRecord = { job: job.name, at: this.deps.now().toISOString(), reason, outcome, detail };
    this.history.push(entry);
    this.deps.record?.(entry);
  }

  /** Settles when every run going now has ended (tests drive the clock, then wait for the work it started). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  /** Stop scheduling, cancel what runs (it cleans up), and wait for it. */
  async stop(): Promise<void> {
    for (const task of this.tasks) await task.destroy();
    this.tasks.length = 0;
    this.abort.abort(new Error('sidecar stopping'));
    await Promise.allSettled([...this.running.values()]);
  }
}

function nextRuns(task: ScheduledTask, from: Date, count: number): Date[] {
  // getNextRuns counts from "now"; match() walks from `from` so tests with a fake clock agree.
  const out: Date[] = [];
  const t = new Date(Math.floor(from.getTime() / 1000) * 1000 + 1000);
  for (let i = 0; out.length < count && i < 366 * 24 * 3600; i++, t.setTime(t.getTime() + 1000)) {
    if (task.match(t)) out.push(new Date(t));
  }
  return out;
}
