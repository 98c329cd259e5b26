import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-links-');
  root = path.join(work, 'root');
});
afterEach(() => rmrf(work));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('a database file under db/ that is a link leading nowhere', () => {
  it('is not restored through: nothing is written (and no folder created) outside db/', () => {
    makeNotesDb(path.join(root, 'db', 'ghost.db'), 5);
    expect(cli(['now']).code).toBe(0);
    // The file became a link to a place that does not exist (a disk not mounted, a folder not made yet):
    // discovery skips it, so at restore "ghost" is a name the setup does not know.
    fs.rmSync(path.join(root, 'db', 'ghost.db'));
    const outside = path.join(work, 'elsewhere', 'sub');
    fs.symlinkSync(path.join(outside, 'ghost.db'), path.join(root, 'db', 'ghost.db'));

    const dry = cli(['restore', 'latest', '--dry-run']);
    const real = cli(['restore', 'latest', '--yes']);
    // Today both succeed, the plan says "ghost -> db/ghost.db", and the restore creates
    // <work>/elsewhere/sub/ghost.db (docs/restore.md: "not through a link out of it").
    expect(dry.code).not.toBe(0);
    expect(real.code).not.toBe(0);
    expect(real.stderr).toMatch(/symbolic link that leads out of db\//);
    expect(fs.existsSync(path.join(work, 'elsewhere'))).toBe(false);
  });
});

describe('recovery messages say where a database outside the root is', () => {
  it('a configured database outside the root, changed after a killed restore: recovery_needed names its full path', () => {
    const outside = path.join(work, 'elsewhere');
    makeNotesDb(path.join(outside, 'a.db'), 5);
    makeNotesDb(path.join(root, 'db', 'b.db'), 5);
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), `databases:\n  a:\n    path: ${path.join(outside, 'a.db')}\n  b:\n    path: db/b.db\n`);
    expect(cli(['now']).code).toBe(0);
    const killed = spawnSync(process.execPath, [CLI, '--root', root, 'restore', 'latest', '--yes'], {
      env: { ...process.env, WB_BACKUP_CRASH_POINT: 'between-moves', WB_BACKUP_LOG_LEVEL: 'silent' },
    });
    expect(killed.signal).toBe('SIGKILL');
    fs.appendFileSync(path.join(outside, 'a.db'), 'changed by someone');
    const list = cli(['list']);
    expect(list.code).not.toBe(0);
    // Today: "a.db holds an unknown file", with no folder: the root holds no a.db.
    expect(list.stderr).toContain(`${path.join(outside, 'a.db')} holds an unknown file`);
  });
});

describe('a database on another disk with a long file name', () => {
  it.runIf(process.getuid?.() === 0)('a 247-byte file name (SQLite takes it) is restored across disks and undone', async () => {
    const { execFileSync } = await import('node:child_process');
    const other = path.join(work, 'other-disk');
    fs.mkdirSync(other);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', other]);
    try {
      const file = path.join(other, `${'L'.repeat(244)}.db`);
      makeNotesDb(file, 5);
      fs.mkdirSync(root, { recursive: true });
      fs.writeFileSync(path.join(root, 'wb-backup.yaml'), `databases:\n  a:\n    path: ${file}\n`);
      expect(cli(['now']).code).toBe(0);
      const { dumpTables } = await import('./support/db-snapshot.js');
      const before = dumpTables(file);
      const { default: Database } = await import('better-sqlite3');
      const db = new Database(file);
      db.exec("INSERT INTO folders(name) VALUES ('later')");
      db.close();
      // Today: ENAMETOOLONG on "<file>.wb-move-tmp" (the cross-disk copy's temporary), so it can never be restored.
      const r = cli(['restore', 'latest', '--yes']);
      expect(r.code, r.stderr).toBe(0);
      expect(dumpTables(file)).toEqual(before);
      expect(cli(['restore', '--undo', '--yes']).code).toBe(0);
      expect(fs.readdirSync(other).filter((n) => n.includes('wb-move'))).toEqual([]);
    } finally {
      execFileSync('umount', [other]);
    }
  });
});
