import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dumpTables } from './support/db-snapshot.js';
import { CLI, integrityCheck, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

const live = (name: string) => path.join(root, 'db', `${name}.db`);

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn', ...env } });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function dumps() {
  return { a: dumpTables(live('a')), b: dumpTables(live('b')) };
}

/** The real restore process, killed with SIGKILL by itself at a named point. */
function crashingRestore(point: string): Promise<NodeJS.Signals | null> {
  const child = spawn(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--yes'], {
    stdio: 'ignore',
    env: { ...process.env, WB_BACKUP_CRASH_POINT: point, WB_BACKUP_LOG_LEVEL: 'silent' },
  });
  return new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
}

describe('restore crash safety (kill -9 at several points)', () => {
  for (const [point, expected] of [
    ['after-staging', 'old'],
    ['between-moves', 'old'],
    ['after-journal', 'old'],
    ['after-move-aside', 'old'],
    ['after-last-move', 'old'],
    ['after-record', 'new'],
    ['after-retire', 'new'],
  ] as const) {
    it(`killed ${point}: the next command leaves the live set entirely ${expected}, and --undo works after`, async () => {
      makeNotesDb(live('a'), 30);
      makeNotesDb(live('b'), 20);
      expect(cli(['now']).code).toBe(0);
      const snapshotContent = dumps();
      for (const name of ['a', 'b']) {
        const db = new Database(live(name));
        db.exec("DELETE FROM notes WHERE id % 2 = 0; UPDATE folders SET name = 'renamed'");
        db.close();
      }
      const oldContent = dumps();

      expect(await crashingRestore(point)).toBe('SIGKILL');
      expect(fs.existsSync(path.join(root, point === 'after-staging' || point === 'after-retire' ? 'db' : 'restore-journal.json'))).toBe(true);

      // Any wb-backup command recovers first.
      const list = cli(['list']);
      expect(list.code).toBe(0);
      expect(fs.existsSync(path.join(root, 'restore-journal.json'))).toBe(false);
      expect(fs.readdirSync(root).filter((n) => n.startsWith('db.staging_'))).toEqual([]);
      expect(integrityCheck(live('a'))).toBe('ok');
      expect(integrityCheck(live('b'))).toBe('ok');
      expect(dumps()).toEqual(expected === 'old' ? oldContent : snapshotContent);

      if (expected === 'old') {
        // The killed restore never completed: --undo has nothing of it to act on, and moves nothing.
        const undoNothing = cli(['restore', '--undo', '--yes']);
        expect(undoNothing.code).toBe(1);
        expect(undoNothing.stderr).toMatch(/Nothing to undo/);
        expect(undoNothing.stdout + undoNothing.stderr).not.toMatch(/did not exist before/);
        expect(dumps()).toEqual(oldContent);
        expect(cli(['restore', 'latest', '--yes']).code).toBe(0);
        expect(dumps()).toEqual(snapshotContent);
      }
      const undo = cli(['restore', '--undo', '--yes']);
      expect(undo.code, undo.stderr).toBe(0);
      expect(dumps()).toEqual(oldContent);
      expect(integrityCheck(live('a'))).toBe('ok');
    });
  }

  for (const [point, expected] of [
    ['after-journal', 'restored'],
    ['after-move-aside', 'restored'],
    ['between-moves', 'restored'],
    ['after-record', 'undone'],
  ] as const) {
    it(`an undo killed ${point}: the next command leaves the live set entirely ${expected}, and a second undo never re-applies the restore`, async () => {
      makeNotesDb(live('a'), 30);
      makeNotesDb(live('b'), 20);
      expect(cli(['now']).code).toBe(0);
      const snapshotContent = dumps();
      for (const name of ['a', 'b']) {
        const db = new Database(live(name));
        db.exec('DELETE FROM notes WHERE id % 3 = 0');
        db.close();
      }
      const oldContent = dumps();
      expect(cli(['restore', 'latest', '--yes']).code).toBe(0);
      const child = spawn(process.execPath, [CLI, '--root', root, 'restore', '--undo', '--yes'], {
        stdio: 'ignore',
        env: { ...process.env, WB_BACKUP_CRASH_POINT: point, WB_BACKUP_LOG_LEVEL: 'silent' },
      });
      expect(await new Promise((r) => child.on('exit', (_c, signal) => r(signal)))).toBe('SIGKILL');
      const list = cli(['list']);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stderr).toMatch(expected === 'undone' ? /interrupted undo of a, b was completed/ : /interrupted undo of a, b was rolled back/);
      expect(integrityCheck(live('a'))).toBe('ok');
      expect(dumps()).toEqual(expected === 'undone' ? oldContent : snapshotContent);
      const undo = cli(['restore', '--undo', '--yes']);
      if (expected === 'undone') {
        expect(undo.code).toBe(1);
        expect(undo.stderr).toMatch(/Nothing to undo: the last restore \(snap-/);
      } else {
        expect(undo.code, undo.stderr).toBe(0);
      }
      expect(dumps()).toEqual(oldContent);
    });
  }

  it('the CLI refuses without a terminal unless --yes, and a dry run changes nothing', () => {
    makeNotesDb(live('a'), 5);
    makeNotesDb(live('b'), 5);
    expect(cli(['now']).code).toBe(0);
    const before = fs.readFileSync(live('a'));
    const refused = cli(['restore', 'latest']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not performed: there is no terminal to ask on; pass --yes/);
    const dry = cli(['restore', 'latest', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dry_run: true, databases: [{ name: 'a' }, { name: 'b' }] });
    expect(fs.readFileSync(live('a')).equals(before)).toBe(true);
    const missing = cli(['restore', 'snap-2000-01-01T00-00-00Z', '--yes']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/No snapshot with id "snap-2000-01-01T00-00-00Z"/);
  });
});
