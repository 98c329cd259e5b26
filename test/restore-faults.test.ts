import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { recordOps, setFault, stopRecordingOps } from '../src/restore/fs-steps.js';
import { runRestore } from '../src/restore/restore.js';
import { journalPath } from '../src/restore/journal.js';
import { performSwap } from '../src/restore/swap.js';
import { recoverInterruptedSwap, type RecoveryOutcome } from '../src/restore/recovery.js';
import { runUndo } from '../src/restore/undo.js';
import { syncImport } from '../src/sync/import.js';
import { syncPush } from '../src/sync/push.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import {
  addRowsKeepingWal,
  captureState,
  expectAllOneState,
  expectPreRestoreCopiesIntact,
  leftovers,
  copyRoot,
  resetTo,
  type DbState,
} from './support/swap-fixtures.js';

/**
 * The systematic fault test of the swap: count the filesystem operations of a clean restore, undo,
 * import and recovery, then fail each one in turn with EPERM, EACCES, ENOSPC and EIO (and once
 * with every later operation failing too), and check after each: every live database is entirely
 * old or entirely new (bytes and rows), passes integrity_check, the pre-restore copies are intact,
 * and the next command (recovery) reports what really happened and leaves a consistent set.
 */
const ERRNOS = ['EPERM', 'EACCES', 'ENOSPC', 'EIO'] as const;
const isRoot = process.getuid?.() === 0;
const yes = async () => ({ granted: true as const });

let work: string;
let root: string;
const live = (name: string) => path.join(root, 'db', `${name}.db`);
let files = (): Record<string, string> => ({ a: live('a'), b: live('b') });

/** templates (copied back to `root`, the same path) */
let beforeRestore: string;
let staged: string;
let snapshotId: string;
let afterRestore: string;
let old: Record<string, DbState>;
let restored: Record<string, DbState>;

let mounted = false;
beforeAll(async () => {
  work = tempRoot('wb-faults-');
  // On a tmpfs when we may mount one: fsync is then free, and the loop runs hundreds of swaps.
  if (process.getuid?.() === 0) {
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', work]);
      mounted = true;
    } catch {
      /* a plain folder works too, only slower */
    }
  }
  root = path.join(work, 'root');
  makeNotesDb(live('a'), 30);
  makeNotesDb(live('b'), 20);
  await runBackup(loadConfig(root));
  addRowsKeepingWal(live('a'), 7, 'a-after');
  addRowsKeepingWal(live('b'), 5, 'b-after');
  expect(fs.existsSync(`${live('a')}-wal`)).toBe(true);
  old = { a: captureState(live('a')), b: captureState(live('b')) };
  beforeRestore = path.join(work, 'before-restore');
  copyRoot(root, beforeRestore);
  // A real restore, paused at its consent (everything unpacked and verified in staging): the loop
  // below swaps from a copy of that moment, as the restore does next.
  staged = path.join(work, 'staged');
  await runRestore(loadConfig(root), {
    snapshotId: 'latest',
    consent: async (plan) => {
      copyRoot(root, staged, { withoutSnapshots: true });
      snapshotId = plan.snapshotId;
      return { granted: true };
    },
  });
  restored = { a: captureState(live('a')), b: captureState(live('b')) };
  expect(restored.a!.key).not.toBe(old.a!.key);
  afterRestore = path.join(work, 'after-restore');
  copyRoot(root, afterRestore, { withoutSnapshots: true });
});
afterAll(() => {
  setFault(null);
  if (mounted) execFileSync('umount', ['-l', work]);
  rmrf(work);
});

/** The databases of the snapshot being restored, in the manifest's order (as runRestore swaps them). */
function manifestFiles(staging: string): Array<{ name: string; file: string }> {
  return (JSON.parse(fs.readFileSync(path.join(staging, 'MANIFEST.json'), 'utf8')) as { databases: Array<{ name: string; file: string }> }).databases;
}

let lastOps: string[] = [];

/** Count the operations of one clean run from `template`. */
async function countOps(template: string, act: () => Promise<unknown>): Promise<number> {
  resetTo(template, root);
  const ops = recordOps();
  try {
    await act();
  } finally {
    stopRecordingOps();
  }
  lastOps = ops.map((o) => o.op);
  return ops.length;
}

/** Every (n, errno) to try: each operation with each errno, and each operation with every later one failing too. */
function faultCases(total: number): Array<{ n: number; errno: string; sticky: boolean }> {
  const cases: Array<{ n: number; errno: string; sticky: boolean }> = [];
  const only = process.env.FAULT_ONLY; // debugging one case: "26:EIO+"
  if (only) {
    const [n, e] = only.split(':');
    return [{ n: Number(n), errno: e!.replace('+', ''), sticky: e!.endsWith('+') }];
  }
  for (let n = 1; n <= total; n++) {
    for (const errno of ERRNOS) cases.push({ n, errno, sticky: false });
    cases.push({ n, errno: 'EIO', sticky: true });
  }
  return cases;
}

/**
 * Run `act` with the fault; then check the error says what happened, run the next command's
 * recovery without the fault, and check it says what happened too. Returns the final state.
 */
async function runWithFault(
  label: string,
  c: { n: number; errno: string; sticky: boolean },
  act: () => Promise<unknown>,
  states: { before: Record<string, DbState>; after: Record<string, DbState> },
): Promise<{ error: unknown; final: 'old' | 'new'; outcome: RecoveryOutcome }> {
  setFault({ op: 'any', n: c.n, errno: c.errno, sticky: c.sticky });
  let error: unknown = null;
  try {
    await act();
  } catch (err) {
    error = err;
  } finally {
    setFault(null);
  }
  if (error !== null) {
    expect(error, `${label}: ${String(error)}`).toBeInstanceOf(WbError);
    const code = (error as WbError).code;
    expect(['swap_failed', 'recovery_needed'], `${label}: ${String(error)}`).toContain(code);
    expect(describeError(error)).toContain(c.errno);
    if (code === 'swap_failed') {
      // "nothing was changed" must be true right away, before any recovery.
      expect(describeError(error)).toMatch(/nothing was changed/);
      expect(expectAllOneState(files(), states.before, states.after, `${label} right after`, { bytesOnly: true })).toBe('old');
    } else {
      expect(describeError(error)).toMatch(/Nothing was deleted: .*db\/a\.db holds/);
      expect(fs.existsSync(journalPath(root)), `${label}: the journal stays for the next command`).toBe(true);
    }
  } else {
    expect(expectAllOneState(files(), states.before, states.after, `${label} right after success`, { bytesOnly: true })).toBe('new');
  }
  const hadJournal = fs.existsSync(journalPath(root));
  const outcome = recoverInterruptedSwap(root);
  const final = expectAllOneState(files(), states.before, states.after, `${label} after recovery`);
  if (hadJournal) expect(outcome.action, label).toBe(final === 'old' ? 'rolled_back' : 'rolled_forward');
  else expect(outcome.action, label).toBe('none');
  if (error !== null && (error as WbError).code === 'swap_failed') expect(final).toBe('old');
  if (error === null) expect(final).toBe('new');
  expect(leftovers(root), label).toEqual([]);
  expectPreRestoreCopiesIntact(root, label);
  // A second recovery has nothing left to do.
  expect(recoverInterruptedSwap(root)).toEqual({ action: 'none', notes: [] });
  return { error, final, outcome };
}

describe('faults injected at every filesystem operation of the swap', () => {
  it('restore: each operation failing with EPERM, EACCES, ENOSPC, EIO leaves all old or all new, copies intact, recovery truthful', async () => {
    // The swap exactly as runRestore calls it, from the staged moment (unpacking and verifying each
    // time would take a second per case; test/restore-real-faults runs whole restores with faults).
    const restore = async () => {
      const [stagingDir] = fs.readdirSync(root).filter((n) => n.startsWith('db.staging_'));
      const staging = path.join(root, stagingDir!);
      performSwap({
        root,
        kind: 'restore',
        snapshotId,
        preRestoreDir: path.join(root, `db.pre_restore_${new Date().toISOString().replace(/[:.]/g, '-')}`),
        incomingDir: staging,
        items: manifestFiles(staging).map((d) => ({ name: d.name, target: live(d.name), incoming: path.join(staging, ...d.file.split('/')) })),
      });
    };
    expect(fs.readdirSync(staged).filter((n) => n.startsWith('db.staging_'))).toHaveLength(1);
    const total = await countOps(staged, restore);
    expect(total).toBeGreaterThan(15);
    const finals = { old: 0, new: 0 };
    for (const c of faultCases(total)) {
      resetTo(staged, root);
      const label = `restore, op ${c.n}/${total} ${c.errno}${c.sticky ? '+' : ''}`;
      const { final } = await runWithFault(label, c, restore, { before: old, after: restored });
      finals[final]++;
      const records = expectPreRestoreCopiesIntact(root, label);
      // A failed restore leaves no pre_restore folder; a completed one exactly one, holding the old files.
      expect(records.length, label).toBe(final === 'new' ? 1 : 0);
    }
    // Both outcomes happen: faults before the record roll back, faults after it complete.
    expect(finals.old).toBeGreaterThan(0);
    expect(finals.new).toBeGreaterThan(0);
  });

  it('undo: each operation failing leaves the restored set or the original set, never a mix; the restore\'s copies stay intact', async () => {
    // force: the in-use probe (not part of the swap) would open each database for every case
    const undo = () => runUndo(loadConfig(root), { consent: yes, force: true });
    const total = await countOps(afterRestore, undo);
    expect(total).toBeGreaterThan(15);
    for (const c of faultCases(total)) {
      resetTo(afterRestore, root);
      const label = `undo, op ${c.n}/${total} ${c.errno}${c.sticky ? '+' : ''}`;
      const { final } = await runWithFault(label, c, undo, { before: restored, after: old });
      const records = expectPreRestoreCopiesIntact(root, label);
      if (final === 'old') {
        // the undo did not happen: the restore's record still holds the original files; undo works now
        expect(records, label).toHaveLength(1);
        await runUndo(loadConfig(root), { consent: yes, force: true });
        expect(expectAllOneState(files(), restored, old, `${label}, undo again`, { bytesOnly: true })).toBe('new');
      } else {
        // the undo's own record; the restore's folder, emptied by the undo, is gone
        expect(records, label).toHaveLength(1);
        const again = await runUndo(loadConfig(root), { consent: yes, force: true }).catch((e: unknown) => e);
        expect(String(again), label).toMatch(/Nothing to undo: the last restore .* was already undone/);
      }
    }
  });

  it('recovery: a restore killed mid-swap, then a fault at each operation of the recovery, then recovery again', async () => {
    for (const [point, expected] of [
      ['after-move-aside', 'old'],
      ['between-moves', 'old'],
      ['after-record', 'new'],
    ] as const) {
      resetTo(beforeRestore, root);
      const child = spawn(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--yes'], {
        stdio: 'ignore',
        env: { ...process.env, WB_BACKUP_CRASH_POINT: point, WB_BACKUP_LOG_LEVEL: 'silent' },
      });
      expect(await new Promise((r) => child.on('exit', (_c, s) => r(s)))).toBe('SIGKILL');
      const crashed = path.join(work, `crashed-${point}`);
      rmrf(crashed);
      copyRoot(root, crashed, { withoutSnapshots: true });
      const total = await countOps(crashed, async () => recoverInterruptedSwap(root));
      expect(total).toBeGreaterThan(3);
      for (const c of faultCases(total)) {
        resetTo(crashed, root);
        const label = `recovery after ${point}, op ${c.n}/${total} ${c.errno}${c.sticky ? '+' : ''}`;
        setFault({ op: 'any', n: c.n, errno: c.errno, sticky: c.sticky });
        let error: unknown = null;
        try {
          recoverInterruptedSwap(root);
        } catch (err) {
          error = err;
        } finally {
          setFault(null);
        }
        if (error !== null) {
          expect(error, `${label}: ${String(error)}`).toBeInstanceOf(WbError);
          expect((error as WbError).code, label).toBe('recovery_needed');
          expect(describeError(error), label).toMatch(/every copy is kept: .*db\/a\.db holds|was (rolled back|completed) \(the live databases are .*\), but its journal could not be removed/);
        }
        const outcome = recoverInterruptedSwap(root);
        if (error !== null) expect(outcome.action, label).toBe(expected === 'old' ? 'rolled_back' : 'rolled_forward');
        expect(expectAllOneState(files(), old, restored, label), label).toBe(expected);
        expect(leftovers(root), label).toEqual([]);
        expect(expectPreRestoreCopiesIntact(root, label), label).toHaveLength(expected === 'new' ? 1 : 0);
      }
    }
  });
});

describe('faults injected at every filesystem operation of github_sync_import', () => {
  let clone: string;
  let target: string;
  let imported: Record<string, DbState>;
  let existing: Record<string, DbState>;

  beforeAll(async () => {
    // The mirror: pushed from another root holding a and b, then cloned.
    const source = path.join(work, 'sync-source');
    makeNotesDb(path.join(source, 'db', 'a.db'), 12);
    makeNotesDb(path.join(source, 'db', 'b.db'), 9);
    const bare = seededBareRemote(work);
    writeConfigFile(source, { sync: { github: { remote_url: bare } } });
    await syncPush(loadConfig(source));
    clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    // The root being imported into already has a.db and b.db, with rows the mirror does not hold.
    target = path.join(work, 'import-target');
    resetTo(beforeRestore, target);
    rmrf(path.join(target, 'backups'));
    existing = old;
    const scratch = path.join(work, 'import-scratch');
    resetTo(target, scratch);
    await syncImport(loadConfig(scratch), clone, { force: true, consent: async () => ({ granted: true }) });
    imported = { a: captureState(path.join(scratch, 'db', 'a.db')), b: captureState(path.join(scratch, 'db', 'b.db')) };
    rmrf(scratch);
  });

  it('import --force: each operation failing leaves the existing databases or the imported ones, and the safety copy intact', async () => {
    const doImport = () => syncImport(loadConfig(root), clone, { force: true, consent: async () => ({ granted: true }) });
    const total = await countOps(target, doImport);
    expect(total).toBeGreaterThan(15);
    for (const c of faultCases(total)) {
      resetTo(target, root);
      const label = `import, op ${c.n}/${total} ${c.errno}${c.sticky ? '+' : ''}`;
      const { final } = await runWithFault(label, c, doImport, { before: existing, after: imported });
      const records = expectPreRestoreCopiesIntact(root, label);
      expect(records, label).toHaveLength(final === 'new' ? 1 : 0);
      if (final === 'new') {
        // The import can be undone like a restore: the rows the mirror did not hold come back.
        await runUndo(loadConfig(root), { consent: yes, force: true });
        expect(expectAllOneState(files(), imported, existing, `${label}, undone`, { bytesOnly: true })).toBe('new');
      }
    }
  });
});

describe.runIf(isRoot)('faults injected at every filesystem operation, with a database on another disk (its moves are copies)', () => {
  let other: string;
  let otherTemplate: string;
  let stagedX: string;
  let oldX: Record<string, DbState>;
  let newX: Record<string, DbState>;
  let snapshotX: string;

  /** The other disk's files back as in the template (its mount point itself stays). */
  function resetOther(): void {
    for (const n of fs.readdirSync(other)) rmrf(path.join(other, n));
    for (const n of fs.readdirSync(otherTemplate)) fs.cpSync(path.join(otherTemplate, n), path.join(other, n), { recursive: true, preserveTimestamps: true });
  }

  beforeAll(async () => {
    other = path.join(work, 'other-disk');
    fs.mkdirSync(other);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=32m', 'tmpfs', other]);
    root = path.join(work, 'root-x');
    makeNotesDb(live('a'), 25);
    makeNotesDb(path.join(other, 'b.db'), 15);
    writeConfigFile(root, { databases: { a: { path: 'db/a.db' }, b: { path: path.join(other, 'b.db') } } });
    await runBackup(loadConfig(root));
    addRowsKeepingWal(live('a'), 3, 'a-after');
    addRowsKeepingWal(path.join(other, 'b.db'), 4, 'b-after');
    files = () => ({ a: live('a'), b: path.join(other, 'b.db') });
    oldX = { a: captureState(live('a')), b: captureState(path.join(other, 'b.db')) };
    stagedX = path.join(work, 'staged-x');
    otherTemplate = path.join(work, 'other-template');
    await runRestore(loadConfig(root), {
      snapshotId: 'latest',
      consent: async (plan) => {
        copyRoot(root, stagedX, { withoutSnapshots: true });
        fs.cpSync(other, otherTemplate, { recursive: true, preserveTimestamps: true });
        snapshotX = plan.snapshotId;
        return { granted: true };
      },
    });
    newX = { a: captureState(live('a')), b: captureState(path.join(other, 'b.db')) };
  });
  afterAll(() => {
    files = () => ({ a: live('a'), b: live('b') });
    execFileSync('umount', ['-l', other]);
  });

  it('restore: each operation failing (the cross-disk copy, its flush, the rename of the copy, the removal of the source) leaves all old or all new', async () => {
    const targets = Object.fromEntries(loadConfig(stagedX).databases.map((d) => [d.name, d.path]));
    const swap = async () => {
      const [stagingDir] = fs.readdirSync(root).filter((n) => n.startsWith('db.staging_'));
      const staging = path.join(root, stagingDir!);
      performSwap({
        root,
        kind: 'restore',
        snapshotId: snapshotX,
        preRestoreDir: path.join(root, `db.pre_restore_${new Date().toISOString().replace(/[:.]/g, '-')}`),
        incomingDir: staging,
        items: manifestFiles(staging).map((d) => ({ name: d.name, target: targets[d.name]!.replace(stagedX, root), incoming: path.join(staging, ...d.file.split('/')) })),
      });
    };
    resetOther();
    const total = await countOps(stagedX, swap);
    resetOther();
    expect(total).toBeGreaterThan(25);
    expect(lastOps).toContain('copy');
    for (const c of faultCases(total)) {
      resetTo(stagedX, root);
      resetOther();
      const label = `cross-disk restore, op ${c.n}/${total} ${c.errno}${c.sticky ? '+' : ''}`;
      const { final } = await runWithFault(label, c, swap, { before: oldX, after: newX });
      expect(expectPreRestoreCopiesIntact(root, label).length, label).toBe(final === 'new' ? 1 : 0);
      // no partial copy is left on either disk
      expect(fs.readdirSync(other).filter((n) => n.includes('wb-move-')), label).toEqual([]);
    }
  });
});
