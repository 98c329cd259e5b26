import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { runRestore } from '../src/restore/restore.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import type { Manifest } from '../src/snapshot/manifest.js';
import { recoverInterruptedSwap } from '../src/restore/recovery.js';
import { runUndo } from '../src/restore/undo.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { addRowsKeepingWal, captureState, expectAllOneState, expectPreRestoreCopiesIntact, leftovers, type DbState } from './support/swap-fixtures.js';

/**
 * Real faults in real processes: an immutable file (chattr +i), a read-only folder for a user who
 * is not root, a full disk (tmpfs), a kill -9 at every rename, and the env-var fault seam in the
 * CLI. Also: mode and owner kept, databases reached through a symbolic link, undo twice.
 */
const isRoot = process.getuid?.() === 0;
const yes = async () => ({ granted: true as const });

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-real-faults-');
  root = path.join(work, 'root');
});
afterEach(() => rmrf(work));

const live = (name: string) => path.join(root, 'db', `${name}.db`);
const files = () => ({ a: live('a'), b: live('b') });

function cli(args: string[], opts: { env?: Record<string, string>; asNobody?: boolean; strace?: string[] } = {}) {
  let cmd = process.execPath;
  let argv = [CLI, '--root', root, ...args];
  if (opts.asNobody) [cmd, argv] = ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', cmd, ...argv]];
  if (opts.strace) [cmd, argv] = ['strace', ['-f', '-qq', '-o', '/dev/null', ...opts.strace, cmd, ...argv]];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn', ...opts.env } });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** The issue's input: a.db and b.db, a snapshot, then rows added after it (left in their -wal). */
async function issueInput(): Promise<{ old: Record<string, DbState>; snap: Record<string, DbState> }> {
  makeNotesDb(live('a'), 30);
  makeNotesDb(live('b'), 20);
  const snap = { a: captureState(live('a')), b: captureState(live('b')) };
  await runBackup(loadConfig(root));
  addRowsKeepingWal(live('a'), 6, 'a-after');
  addRowsKeepingWal(live('b'), 4, 'b-after');
  return { old: { a: captureState(live('a')), b: captureState(live('b')) }, snap };
}

/** The content a restore brings (the snapshot's rows; bytes as staged), taken from a clean restore of a copy. */
async function restoredStates(): Promise<Record<string, DbState>> {
  const copy = path.join(work, 'probe-root');
  fs.cpSync(root, copy, { recursive: true });
  await runRestore(loadConfig(copy), { snapshotId: 'latest', consent: yes, force: true });
  const states = { a: captureState(path.join(copy, 'db', 'a.db')), b: captureState(path.join(copy, 'db', 'b.db')) };
  rmrf(copy);
  return states;
}

function chattrWorks(dir: string): boolean {
  const probe = path.join(dir, '.chattr-probe');
  fs.writeFileSync(probe, '');
  try {
    execFileSync('chattr', ['+i', probe], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(probe, { force: true });
  }
}

describe('a swap that fails part-way, with real faults', () => {
  it.runIf(isRoot)('an immutable b.db (chattr +i): the restore fails with EPERM, puts a.db back, and `list` then reports the truth', async (ctx) => {
    const { old } = await issueInput();
    const neu = await restoredStates();
    if (!chattrWorks(path.join(root, 'db'))) ctx.skip('chattr +i is not supported on the filesystem of the test folder');
    execFileSync('chattr', ['+i', live('b')]);
    let failed;
    try {
      failed = cli(['restore', 'latest', '--yes']);
    } finally {
      execFileSync('chattr', ['-i', live('b')]);
    }
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/The restore failed while moving db\/b\.db .*EPERM/);
    expect(failed.stderr).toMatch(/Every database \(a, b\) is as it was before \(checked by sha256\): nothing was changed/);
    expect(failed.stderr).toMatch(/lsattr/);
    // Between the failure and the next command: all old already, no journal, no staging.
    expect(leftovers(root)).toEqual([]);
    expect(expectAllOneState(files(), old, neu, 'after the failed restore')).toBe('old');
    const list = cli(['list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stderr).not.toMatch(/rolled back|completed/);
    expect(expectAllOneState(files(), old, neu, 'after list')).toBe('old');
    expect(fs.readdirSync(root).filter((n) => n.startsWith('db.pre_restore_'))).toEqual([]);
    // With the flag gone, the same restore goes through.
    expect(cli(['restore', 'latest', '--yes']).code).toBe(0);
    expect(expectAllOneState(files(), old, neu, 'restored')).toBe('new');
  });

  it.runIf(isRoot)('as a user who is not root, against a read-only db folder: refused, rolled back, nothing changed', async () => {
    const { old } = await issueInput();
    const neu = await restoredStates();
    fs.chmodSync(work, 0o755);
    execFileSync('chown', ['-R', '65534:65534', root]);
    // The databases are nobody's, but their folder is root's and read-only to nobody.
    execFileSync('chown', ['0:0', path.join(root, 'db')]);
    fs.chmodSync(path.join(root, 'db'), 0o755);
    const failed = cli(['restore', 'latest', '--yes', '--force'], { asNobody: true });
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stderr).toMatch(/failed while moving db\/a\.db .*EACCES/);
    expect(failed.stderr).toMatch(/nothing was changed/);
    expect(leftovers(root)).toEqual([]);
    const list = cli(['list'], { asNobody: true });
    expect(list.code, list.stderr).toBe(0);
    expect(expectAllOneState(files(), old, neu, 'as nobody')).toBe('old');
    expect(fs.statSync(live('a')).uid).toBe(65534);
  });

  it('the fault seam in a real process (WB_BACKUP_FAULT): a full disk at the journal write leaves everything old, and the next command deletes nothing', async () => {
    const { old } = await issueInput();
    const neu = await restoredStates();
    const failed = cli(['restore', 'latest', '--yes'], { env: { WB_BACKUP_FAULT: 'write:1:ENOSPC' } });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/failed while writing the journal .*ENOSPC.*nothing was changed.*The disk is full/s);
    expect(leftovers(root)).toEqual([]);
    expect(expectAllOneState(files(), old, neu, 'after')).toBe('old');
    const list = cli(['list']);
    expect(list.code).toBe(0);
    expect(expectAllOneState(files(), old, neu, 'after list')).toBe('old');
    // Faults that keep failing (the disk stays full): rolled back as far as it can, then the next command finishes.
    for (const fault of ['rename:2+:EIO', 'rename:3:EPERM', 'fsync:4+:ENOSPC', 'unlink:1:EACCES']) {
      const r = cli(['restore', 'latest', '--yes'], { env: { WB_BACKUP_FAULT: fault } });
      const next = cli(['list']);
      expect(next.code, `${fault}: ${r.stderr} / ${next.stderr}`).toBe(0);
      const state = expectAllOneState(files(), old, neu, fault);
      if (r.code === 0) expect(state).toBe('new');
      if (/nothing was changed/.test(r.stderr)) expect(state).toBe('old');
      expect(leftovers(root)).toEqual([]);
      expectPreRestoreCopiesIntact(root, fault);
      if (state === 'new') {
        expect(cli(['restore', '--undo', '--yes']).code).toBe(0);
        expect(expectAllOneState(files(), old, neu, `${fault} undone`)).toBe('old');
      }
    }
  });

  it.runIf(isRoot)('a disk that fills up at every point (tmpfs sized just past what staging needs): all old or all new, and the next command deletes nothing', async () => {
    const disk = path.join(work, 'disk');
    fs.mkdirSync(disk);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', disk]);
    try {
      root = path.join(disk, 'root');
      await issueInput();
      // Checkpointed first: restore's in-use probe (before the swap) opens each database, and on a
      // full disk a checkpoint it triggers can stop half-way, changing bytes (not rows).
      for (const name of ['a', 'b']) new Database(live(name)).close();
      const old = { a: captureState(live('a')), b: captureState(live('b')) };
      const neu = await restoredStates();
      const filler = path.join(disk, 'filler');
      const free = () => {
        const st = fs.statfsSync(disk);
        return st.bavail * st.bsize;
      };
      // What staging holds: the images of the snapshot restored (page images keep the live file's layout, free pages included).
      const staged = (JSON.parse(fs.readFileSync(listLocalSnapshots(root)[0]!.manifestPath, 'utf8')) as Manifest).databases.reduce((n, d) => n + d.bytes, 0);
      const seen = new Set<string>();
      for (let slack = 0; slack <= 12; slack++) {
        rmrf(filler);
        // Leave `staged` bytes plus `slack` pages free.
        const fill = free() - staged - slack * 4096;
        if (fill > 0) fs.writeFileSync(filler, Buffer.alloc(fill));
        const r = cli(['restore', 'latest', '--yes', '--force']);
        const where = /failed while ([a-z ]+)/.exec(r.stderr)?.[1] ?? (r.code === 0 ? 'ok' : r.stderr.slice(0, 80));
        seen.add(where);
        const before = fs.readdirSync(path.join(root, 'db')).sort();
        const next = cli(['list']);
        expect(next.code, `${slack}: ${r.stderr} / ${next.stderr}`).toBe(0);
        expect(fs.readdirSync(path.join(root, 'db')).sort().filter((n) => n.endsWith('.db'))).toEqual(before.filter((n) => n.endsWith('.db')));
        const state = expectAllOneState(files(), old, neu, `slack ${slack} (${where})`);
        if (r.code !== 0) expect(state, r.stderr).toBe('old');
        expectPreRestoreCopiesIntact(root, `slack ${slack}`);
        if (state === 'new') {
          rmrf(filler);
          expect(cli(['restore', '--undo', '--yes']).code).toBe(0);
        }
      }
      // The journal write itself was among the points that hit the full disk.
      expect([...seen].some((w) => w.startsWith('writing the journal')), [...seen].join(' | ')).toBe(true);
    } finally {
      execFileSync('umount', ['-l', disk]);
    }
  });
});

describe('kill -9 windows', () => {
  it.runIf(isRoot)('a restore killed at each of its renames: `restore --undo` never moves live databases away for a restore that did not complete', async () => {
    const { old } = await issueInput();
    const neu = await restoredStates();
    for (let when = 1; when < 40; when++) {
      const r = cli(['restore', 'latest', '--yes'], { strace: ['-e', 'trace=rename,renameat,renameat2', '-e', `inject=rename,renameat,renameat2:signal=SIGKILL:when=${when}`] });
      const killed = r.code !== 0;
      const list = cli(['list']);
      expect(list.code, `${when}: ${list.stderr}`).toBe(0);
      const state = expectAllOneState(files(), old, neu, `killed at rename ${when}`);
      expect(leftovers(root)).toEqual([]);
      expectPreRestoreCopiesIntact(root, `rename ${when}`);
      const undo = cli(['restore', '--undo', '--yes']);
      expect(undo.stdout + undo.stderr).not.toMatch(/did not exist before/);
      if (state === 'new') {
        expect(undo.code, undo.stderr).toBe(0);
      } else {
        // The restore did not complete: nothing to undo for it.
        expect(undo.code).toBe(1);
        expect(undo.stderr).toMatch(/Nothing to undo/);
      }
      expect(expectAllOneState(files(), old, neu, `undo after rename ${when}`)).toBe('old');
      for (const n of fs.readdirSync(root).filter((x) => x.startsWith('db.pre_restore_'))) rmrf(path.join(root, n));
      if (!killed) return;
    }
    throw new Error('the restore was still killed at its 40th rename');
  });

  it('a record half-written by an older wb-backup (killed between its record and its journal) is removed, and --undo never acts on it', async () => {
    const { old } = await issueInput();
    expect(cli(['restore', 'latest', '--yes']).code).toBe(0);
    const restored = { a: captureState(live('a')), b: captureState(live('b')) };
    // What the older version left: a newer folder with a record (no `completed`) and no files.
    const stale = path.join(root, 'db.pre_restore_2099-01-01T00-00-00-000Z');
    fs.mkdirSync(stale);
    fs.writeFileSync(
      path.join(stale, 'pre-restore.json'),
      JSON.stringify({ snapshot_id: 'snap-x', kind: 'restore', created_at: '2099-01-01T00:00:00.000Z', databases: ['a', 'b'].map((n) => ({ name: n, target: live(n), file: `${n}.db`, existed: true })) }),
    );
    const undo = cli(['restore', '--undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(undo.stderr).toMatch(/removed db\.pre_restore_2099-01-01T00-00-00-000Z: the record of an operation that never completed/);
    expect(undo.stdout).toMatch(/a put back/);
    expect(undo.stdout).not.toMatch(/did not exist before/);
    expect(fs.existsSync(stale)).toBe(false);
    expect(expectAllOneState(files(), old, restored, 'undone')).toBe('old');
  });

  it('a folder with files but no completed record is kept and reported, never used by --undo', async () => {
    await issueInput();
    const odd = path.join(root, 'db.pre_restore_2099-01-01T00-00-00-000Z');
    fs.mkdirSync(path.join(odd, 'a'), { recursive: true });
    fs.copyFileSync(live('a'), path.join(odd, 'a', 'a.db'));
    const undo = cli(['restore', '--undo', '--yes']);
    expect(undo.code).toBe(1);
    expect(undo.stderr).toMatch(/kept db\.pre_restore_2099-01-01T00-00-00-000Z: it holds files but no record of a completed operation/);
    expect(undo.stderr).toMatch(/Nothing to undo/);
    expect(fs.existsSync(path.join(odd, 'a', 'a.db'))).toBe(true);
  });
});

describe('recovery that cannot put back a consistent set', () => {
  it('a kept file changed after a crash mid-swap: recovery moves nothing more, keeps every copy and says what is where', async () => {
    const { old } = await issueInput();
    const child = cli(['restore', 'latest', '--yes'], { env: { WB_BACKUP_CRASH_POINT: 'between-moves' } });
    expect(child.signal).toBe('SIGKILL');
    const [kept] = fs.readdirSync(root).filter((n) => n.startsWith('db.pre_restore_'));
    const keptA = path.join(root, kept!, 'a', 'a.db');
    // Someone touched the copy set aside (the old a.db).
    fs.appendFileSync(keptA, 'x');
    const entries = () => fs.readdirSync(root).filter((n) => n !== '.wb-backup.lock').sort();
    const before = entries();
    const list = cli(['list']);
    expect(list.code).toBe(1);
    expect(list.stderr).toMatch(/An interrupted restore of snap-\S+ could not be rolled back: the old file db\.pre_restore_[^/]+\/a\/a\.db is missing or changed/);
    expect(list.stderr).toMatch(/every copy is kept: .*db\/a\.db holds the new file, db\.pre_restore_[^/]+\/a\/a\.db holds an unknown file/);
    expect(list.stderr).toMatch(/db\/b\.db holds the old file/);
    // Nothing was moved or deleted: journal, staging, both copies of a, b untouched.
    expect(entries()).toEqual(before);
    expect(fs.existsSync(keptA) && fs.existsSync(live('a')) && fs.existsSync(live('b'))).toBe(true);
    expect([old.b!.key, old.b!.probedKey]).toContain(captureState(live('b')).key);
    // Put back by hand (the journal lists the sha256): the next command finishes.
    fs.truncateSync(keptA, fs.statSync(keptA).size - 1);
    const again = cli(['list']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/was rolled back: the live databases are as before it \(checked by sha256\)/);
    expect(leftovers(root)).toEqual([]);
  });
});

describe('journals recovery will not act on', () => {
  it('a journal from an older wb-backup, or one that is not JSON: recovery moves nothing and says what to do', async () => {
    await issueInput();
    const before = captureState(live('a')).key;
    const journal = path.join(root, 'restore-journal.json');
    fs.writeFileSync(journal, JSON.stringify({ version: 1, kind: 'restore', snapshot_id: 'snap-x', items: [{ name: 'a', target: live('a'), incoming: null }], moved: [] }));
    expect(() => recoverInterruptedSwap(root)).toThrow(/written by an older wb-backup .*Nothing was moved/);
    fs.writeFileSync(journal, '{"version": 2, "kind": "rest');
    expect(() => recoverInterruptedSwap(root)).toThrow(/restore-journal\.json cannot be read .*Nothing was moved/);
    const list = cli(['list']);
    expect(list.code).toBe(1);
    expect(list.stderr).toMatch(/cannot be read/);
    expect(fs.existsSync(journal)).toBe(true);
    expect(captureState(live('a')).key).toBe(before);
  });
});

describe('undo, modes, owners and links', () => {
  it('restore --undo twice: the second says nothing to undo and does not re-apply the restore', async () => {
    const { old } = await issueInput();
    const neu = await restoredStates();
    expect(cli(['restore', 'latest', '--yes']).code).toBe(0);
    const first = cli(['restore', '--undo', '--yes']);
    expect(first.code, first.stderr).toBe(0);
    expect(expectAllOneState(files(), old, neu, 'undone once')).toBe('old');
    const second = cli(['restore', '--undo', '--yes']);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/Nothing to undo: the last restore \(snap-[^)]+\) was already undone/);
    expect(expectAllOneState(files(), old, neu, 'undone twice')).toBe('old');
    // What the undo replaced is still kept (the restored files), in the undo's folder.
    expect(expectPreRestoreCopiesIntact(root, 'after two undos')).toHaveLength(1);
  });

  it.runIf(isRoot)('a live database with mode 0664 owned by uid 65534 keeps its mode and owner after a restore (and a new one gets the folder defaults)', async () => {
    await issueInput();
    for (const s of ['', '-wal']) {
      fs.chmodSync(live('a') + s, 0o664);
      fs.chownSync(live('a') + s, 65534, 65534);
    }
    await runRestore(loadConfig(root), { snapshotId: 'latest', consent: yes });
    const st = fs.statSync(live('a'));
    expect(st.mode & 0o7777).toBe(0o664);
    expect([st.uid, st.gid]).toEqual([65534, 65534]);
    // b.db did not exist: it gets what a program creating it would (0666 less the umask).
    fs.rmSync(live('b'));
    fs.rmSync(`${live('b')}-wal`, { force: true });
    await runRestore(loadConfig(root), { snapshotId: 'latest', databases: ['b'], consent: yes });
    const mask = process.umask();
    expect(fs.statSync(live('b')).mode & 0o777).toBe(0o666 & ~mask);
  });

  it('a database reached through a symbolic link: the link stays, its target file is restored, and undo goes through it too', async () => {
    const { old } = await issueInput();
    const neu = await restoredStates();
    const realDir = path.join(work, 'elsewhere');
    fs.mkdirSync(realDir);
    for (const s of ['', '-wal']) fs.renameSync(live('a') + s, path.join(realDir, `a.db${s}`));
    fs.symlinkSync(path.join(realDir, 'a.db'), live('a'));
    await runRestore(loadConfig(root), { snapshotId: 'latest', consent: yes });
    expect(fs.lstatSync(live('a')).isSymbolicLink()).toBe(true);
    expect(fs.readlinkSync(live('a'))).toBe(path.join(realDir, 'a.db'));
    expect(expectAllOneState(files(), old, neu, 'through the link')).toBe('new');
    // The file set aside is the real one, not the link; the new file sits where the link points.
    const [kept] = fs.readdirSync(root).filter((n) => n.startsWith('db.pre_restore_'));
    expect(fs.lstatSync(path.join(root, kept!, 'a', 'a.db')).isFile()).toBe(true);
    expect(fs.lstatSync(path.join(realDir, 'a.db')).isFile()).toBe(true);
    await runUndo(loadConfig(root), { consent: yes });
    expect(fs.lstatSync(live('a')).isSymbolicLink()).toBe(true);
    expect(expectAllOneState({ a: path.join(realDir, 'a.db'), b: live('b') }, old, neu, 'undone through the link')).toBe('old');
  });
});
