import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { readLastRun } from '../src/backup/last-run.js';
import { acquireRootLock } from '../src/root/lock.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import { fillToTheLastByte, makeNotesDb, REPO_ROOT, rmrf, tempRoot, waitFor } from './support/fixtures.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

describe('root lock', () => {
  it('answers a second caller with a clear busy error naming the holder', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 5);
    const held = await acquireRootLock(root, 'restore', 0);
    try {
      const err = await runBackup(loadConfig(root), { lockWaitMs: 200 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WbError);
      expect((err as WbError).code).toBe('busy');
      expect(describeError(err)).toMatch(/busy: restore \(pid \d+/);
      expect(describeError(err)).toMatch(/try again/);
    } finally {
      await held.release();
    }
    // Released: the next run goes through.
    await expect(runBackup(loadConfig(root))).resolves.toMatchObject({ databases: [{ name: 'a' }] });
  });

  it('takes over the lock of a process that was killed with SIGKILL', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 5);
    const holder = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'support', 'hold-lock.ts'), root], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let said = '';
    holder.stdout!.on('data', (d: Buffer) => (said += d.toString()));
    await waitFor(() => said.includes('locked'), 'the holder to take the lock');
    holder.kill('SIGKILL');
    await new Promise((r) => holder.on('exit', r));
    // Well inside the 10 s staleness window: the takeover comes from seeing the pid is gone.
    const result = await runBackup(loadConfig(root), { lockWaitMs: 1000 });
    expect(result.databases).toHaveLength(1);
  });
});


describe('faults mid-snapshot', () => {
  const canMount = process.getuid?.() === 0;

  it.runIf(canMount)('a destination that fills up leaves no snapshot and nothing partial, and the next run succeeds', async () => {
    // A 64 KiB database cannot fit, with its archive, in a 96 KiB tmpfs: the write fails mid-way.
    makeNotesDb(path.join(root, 'db', 'big.db'), 2000);
    const backups = path.join(root, 'backups');
    fs.mkdirSync(backups);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', backups]);
    try {
      const err = await runBackup(loadConfig(root)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WbError);
      expect((err as WbError).code).toBe('disk_full');
      expect(describeError(err)).toMatch(/full.*untouched.*Free some space/s);
      expect(listLocalSnapshots(root)).toEqual([]);
      const left = fs.readdirSync(backups).filter((n) => n !== 'last_run.json');
      expect(left).toEqual([]);
    } finally {
      execFileSync('umount', [backups]);
    }
    const ok = await runBackup(loadConfig(root));
    expect(listLocalSnapshots(root).map((s) => s.id)).toEqual([ok.snapshot_id]);
    expect(readLastRun(root)?.ok).toBe(true);
  });

  it.runIf(canMount)('at exactly 0 bytes free a snapshot fails as disk_full and last_run.json says it failed, not ok', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 20);
    const backups = path.join(root, 'backups');
    fs.mkdirSync(backups);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', backups]);
    try {
      const first = await runBackup(loadConfig(root));
      expect(readLastRun(root)).toMatchObject({ ok: true, snapshot_id: first.snapshot_id });
      fillToTheLastByte(path.join(backups, 'filler'));
      expect(fs.statfsSync(backups).bavail).toBe(0);

      const err = await runBackup(loadConfig(root)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WbError);
      expect((err as WbError).code).toBe('disk_full');
      expect(describeError(err)).toMatch(/The disk holding backups is full \(0 B free\).*untouched/);
      expect((err as WbError).hint).toMatch(/Free some space/);
      const last = readLastRun(root);
      expect(last).toMatchObject({ ok: false, snapshot_id: null });
      expect(last?.error).toMatch(/full/);
      expect(listLocalSnapshots(root).map((s) => s.id)).toEqual([first.snapshot_id]);
    } finally {
      execFileSync('umount', [backups]);
    }
  });

  it.runIf(canMount)('with the whole data root on a disk at 0 bytes free, the snapshot fails as disk_full, last_run.json says so, and no lock is left behind', async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', root]);
    try {
      makeNotesDb(path.join(root, 'db', 'a.db'), 20);
      await runBackup(loadConfig(root));
      expect(readLastRun(root)?.ok).toBe(true);
      const filler = path.join(root, 'filler');
      fillToTheLastByte(filler);
      expect(fs.statfsSync(root).bavail).toBe(0);

      const err = await runBackup(loadConfig(root)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WbError);
      expect((err as WbError).code).toBe('disk_full');
      expect(describeError(err)).toMatch(/is full \(0 B free\).*Free some space/s);
      expect(readLastRun(root)).toMatchObject({ ok: false, snapshot_id: null, error: expect.stringMatching(/full/) });

      // Space freed: the next run goes through at once (no lock was left held).
      fs.rmSync(filler);
      const ok = await runBackup(loadConfig(root), { lockWaitMs: 0 });
      expect(readLastRun(root)).toMatchObject({ ok: true, snapshot_id: ok.snapshot_id });
    } finally {
      execFileSync('umount', [root]);
    }
  });

  it('a run killed with SIGKILL mid-way leaves only leftovers that the next run removes', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 10);
    // What a killed run leaves: a .partial folder with a half-written archive and an orphan sidecar.
    const partial = path.join(root, 'backups', 'snap-2026-01-01T00-00-00Z.partial');
    fs.mkdirSync(path.join(partial, 'databases', 'a'), { recursive: true });
    fs.writeFileSync(path.join(partial, 'archive.tmp'), 'half');
    fs.writeFileSync(path.join(root, 'backups', 'snap-2026-01-01T00-00-00Z.manifest.json'), '{}');
    fs.writeFileSync(path.join(root, 'backups', 'snap-2026-01-01T00-00-00Z.pages'), 'half');
    const result = await runBackup(loadConfig(root));
    expect(fs.readdirSync(path.join(root, 'backups')).sort()).toEqual(
      [`${result.snapshot_id}.manifest.json`, `${result.snapshot_id}.sha256`, `${result.snapshot_id}.pages`, result.archive.file, 'last_run.json'].sort(),
    );
  });
});
