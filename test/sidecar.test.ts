import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { writeConfigFile } from '../src/root/config.js';
import { loadJobs, type Job } from '../src/sidecar/jobs.js';
import { SidecarRunner, type JobOutcome, type RunnerDeps } from '../src/sidecar/runner.js';
import { runnerDeps } from '../src/sidecar/service.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import { CLI, makeNotesDb, REPO_ROOT, rmrf, tempRoot, waitFor } from './support/fixtures.js';

const hourly: Job = { name: 'data-backup', file: 'data-backup.md', description: '', schedule: '0 * * * *', capability: 'data_backup', args: {}, requires: null, enabled: true, catch_up: true };

function fakeDeps(over: Partial<RunnerDeps> = {}): RunnerDeps & { runs: string[] } {
  const runs: string[] = [];
  return {
    runs,
    run: async () => {
      runs.push(new Date().toISOString());
      return { kind: 'ran', detail: 'ok' } as JobOutcome;
    },
    blockedReason: async () => null,
    lastDoneAt: async () => new Date(Date.now() - 10 * 60_000),
    now: () => new Date(),
    ...over,
  };
}

describe('sidecar scheduling with controlled time', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-11-22T10:30:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires at the top of every hour', async () => {
    const deps = fakeDeps();
    const runner = new SidecarRunner([hourly], deps);
    runner.start();
    await runner.catchUpDone;
    await vi.advanceTimersByTimeAsync(3 * 3_600_000 + 1000);
    await runner.stop();
    expect(deps.runs).toEqual(['2026-11-22T11:00:00.000Z', '2026-11-22T12:00:00.000Z', '2026-11-22T13:00:00.000Z']);
  });

  it('never overlaps: a run still going when the next fires is skipped and recorded', async () => {
    const deps = fakeDeps({
      run: async () => {
        deps.runs.push(new Date().toISOString());
        await new Promise((r) => setTimeout(r, 90 * 60_000)); // a 90-minute run
        return { kind: 'ran', detail: 'slow' };
      },
    });
    const runner = new SidecarRunner([hourly], deps);
    runner.start();
    await vi.advanceTimersByTimeAsync(4 * 3_600_000 + 1000);
    await runner.stop();
    expect(deps.runs).toEqual(['2026-11-22T11:00:00.000Z', '2026-11-22T13:00:00.000Z']);
    expect(runner.history.map((h) => [h.at, h.outcome])).toEqual([
      ['2026-11-22T12:00:00.000Z', 'overlap'],
      ['2026-11-22T12:30:00.000Z', 'ran'],
      ['2026-11-22T14:00:00.000Z', 'overlap'],
      ['2026-11-22T14:30:00.000Z', 'ran'],
    ]);
  });

  it('catches up once at start when the newest automatic snapshot is older than the cadence', async () => {
    const stale = fakeDeps({ lastDoneAt: async () => new Date('2026-11-22T08:00:00Z') });
    const runner = new SidecarRunner([hourly], stale);
    runner.start();
    await runner.catchUpDone;
    expect(stale.runs).toEqual(['2026-11-22T10:30:00.000Z']);
    expect(runner.history[0]).toMatchObject({ reason: 'catch-up', outcome: 'ran' });
    await vi.advanceTimersByTimeAsync(20 * 60_000);
    await runner.stop();
    expect(stale.runs).toHaveLength(1); // once, then the normal schedule (11:00 is later)

    const never = fakeDeps({ lastDoneAt: async () => null });
    const r2 = new SidecarRunner([hourly], never);
    r2.start();
    await r2.catchUpDone;
    await r2.stop();
    expect(never.runs).toHaveLength(1);

    const fresh = fakeDeps();
    const r3 = new SidecarRunner([hourly], fresh);
    r3.start();
    await r3.catchUpDone;
    await r3.stop();
    expect(fresh.runs).toEqual([]);
  });

  it('skips quietly, and records it, when requirements are unmet', async () => {
    const deps = fakeDeps({ blockedReason: async () => 'Local snapshots: requirements not met: local_backups.databases-found (no databases)' });
    const runner = new SidecarRunner([hourly], deps);
    runner.start();
    await vi.advanceTimersByTimeAsync(3_600_000);
    await runner.stop();
    expect(deps.runs).toEqual([]);
    expect(runner.history).toEqual([expect.objectContaining({ outcome: 'skipped', detail: expect.stringMatching(/databases-found/) })]);
  });

  it('computes the cadence from the schedule', () => {
    const from = new Date('2026-11-22T10:30:00Z');
    expect(SidecarRunner.cadenceMs(hourly, from)).toBe(3_600_000);
    expect(SidecarRunner.cadenceMs({ ...hourly, schedule: '*/15 * * * *' }, from)).toBe(15 * 60_000);
    expect(SidecarRunner.cadenceMs({ ...hourly, schedule: '* * * * * *' }, from)).toBe(1000);
  });
});

describe('a new job file is a whole job: nothing else to edit', () => {
  let root: string;
  let jobsDir: string;
  beforeEach(() => {
    root = tempRoot();
    jobsDir = path.join(root, 'jobs');
    fs.mkdirSync(jobsDir);
  });
  afterEach(() => rmrf(root));

  it('a job on any capability catches up at start from its own run history, and not again once it ran', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 3);
    fs.writeFileSync(path.join(jobsDir, 'health-check.md'), '---\nschedule: "*/30 * * * *"\ncapability: health_status\n---\nReads the health graph every half hour.\n');
    const { jobs, problems } = loadJobs(jobsDir, ['health_status', 'data_backup']);
    expect(problems).toEqual([]);
    expect(jobs).toEqual([expect.objectContaining({ name: 'health-check', catch_up: true })]);

    const first = new SidecarRunner(jobs, runnerDeps(root));
    first.start();
    await first.catchUpDone;
    await first.stop();
    expect(first.history).toEqual([expect.objectContaining({ job: 'health-check', reason: 'catch-up', outcome: 'ran' })]);

    // The run is in sidecar-history.jsonl now: a restart within the cadence does not run it again.
    const second = new SidecarRunner(jobs, runnerDeps(root));
    second.start();
    await second.catchUpDone;
    await second.stop();
    expect(second.history).toEqual([]);
  });

  it('catch_up: false in the front matter turns the start-up run off', async () => {
    fs.writeFileSync(path.join(jobsDir, 'quiet.md'), '---\nschedule: "0 * * * *"\ncapability: health_status\ncatch_up: false\n---\nNo catch-up.\n');
    const { jobs } = loadJobs(jobsDir, ['health_status']);
    const runner = new SidecarRunner(jobs, runnerDeps(root));
    runner.start();
    await runner.catchUpDone;
    await runner.stop();
    expect(jobs[0]).toMatchObject({ catch_up: false });
    expect(runner.history).toEqual([]);
  });

  it('the backup job catches up by the age of the newest routine snapshot, which its capability reports', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 3);
    const job: Job = { ...hourly, requires: 'local_backups' };
    const runner = new SidecarRunner([job], runnerDeps(root));
    runner.start();
    await runner.catchUpDone;
    await runner.stop();
    expect(listLocalSnapshots(root).map((s) => s.manual)).toEqual([false]);
    const again = new SidecarRunner([job], runnerDeps(root));
    again.start();
    await again.catchUpDone;
    await again.stop();
    expect(listLocalSnapshots(root)).toHaveLength(1);
  });
});

describe('sidecar with the real data_backup', () => {
  let root: string;
  beforeEach(() => {
    root = tempRoot();
  });
  afterEach(() => rmrf(root));

  it('takes a local snapshot when only the remote is down, and says so', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 5);
    writeConfigFile(root, { remote: { dir: { path: path.join(root, 'nas-not-mounted') } } });
    const runner = new SidecarRunner([{ ...hourly, requires: 'local_backups' }], runnerDeps(root));
    await runner.fire({ ...hourly, requires: 'local_backups' }, 'scheduled');
    expect(listLocalSnapshots(root)).toHaveLength(1);
    expect(runner.history[0]).toMatchObject({ outcome: 'ran', detail: expect.stringMatching(/Remote: failed.*not mounted/s) });
    expect(fs.readFileSync(path.join(root, 'backups', 'sidecar-history.jsonl'), 'utf8')).toMatch(/"outcome":"ran"/);
  });

  it('skips when local_backups is unmet (no databases), without failing', async () => {
    const runner = new SidecarRunner([], runnerDeps(root));
    await runner.fire({ ...hourly, requires: 'local_backups' }, 'scheduled');
    expect(runner.history[0]).toMatchObject({ outcome: 'skipped', detail: expect.stringMatching(/databases-found/) });
    expect(listLocalSnapshots(root)).toEqual([]);
  });

  it('loads the shipped job, and reports a bad job file by name and field without stopping the others', () => {
    const dir = tempRoot('wb-jobs-');
    try {
      fs.copyFileSync(path.join(REPO_ROOT, 'sidecar-jobs', 'data-backup.md'), path.join(dir, 'data-backup.md'));
      fs.writeFileSync(path.join(dir, 'bad-cron.md'), '---\nschedule: "every hour"\ncapability: data_backup\n---\n');
      fs.writeFileSync(path.join(dir, 'bad-cap.md'), '---\nschedule: "0 * * * *"\ncapability: nope\n---\n');
      fs.writeFileSync(path.join(dir, 'typo.md'), '---\nschedule: "0 * * * *"\ncapability: data_backup\nenabeld: true\n---\n');
      const { jobs, problems } = loadJobs(dir, ['data_backup']);
      expect(jobs.map((j) => [j.name, j.schedule, j.capability, j.requires])).toEqual([['data-backup', '0 * * * *', 'data_backup', 'local_backups']]);
      expect(problems).toEqual([
        { file: 'bad-cap.md', field: 'capability', message: expect.stringMatching(/unknown capability "nope"/) },
        { file: 'bad-cron.md', field: 'schedule', message: expect.stringMatching(/not a valid cron expression/) },
        { file: 'typo.md', field: '(front matter)', message: expect.stringMatching(/enabeld/) },
      ]);
    } finally {
      rmrf(dir);
    }
  });

  it('`wb-backup sidecar` on a per-second schedule makes several snapshots, then stops cleanly on SIGTERM', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 50);
    const jobs = path.join(root, 'jobs');
    fs.mkdirSync(jobs);
    fs.writeFileSync(path.join(jobs, 'fast.md'), '---\nschedule: "* * * * * *"\ncapability: data_backup\nargs:\n  manual: true\nrequires: local_backups\n---\nEvery second, for the test.\n');
    const child = spawn(process.execPath, [CLI, '--root', root, 'sidecar', '--jobs', jobs], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' } });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor(() => listLocalSnapshots(root).filter((s) => s.manual).length >= 3, 'three snapshots from the sidecar', 60_000);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code, stderr).toBe(143);
    const names = fs.readdirSync(path.join(root, 'backups'));
    expect(names.filter((n) => n.endsWith('.partial') || n.includes('.tmp'))).toEqual([]);
    expect(fs.existsSync(path.join(root, '.wb-backup.lock'))).toBe(false);
    expect(listLocalSnapshots(root).length).toBeGreaterThanOrEqual(3);
  });
});
