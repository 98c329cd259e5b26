import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dumpTables } from './support/db-snapshot.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

let parent: string;
beforeEach(() => {
  parent = tempRoot('wb-undo-');
});
afterEach(() => rmrf(parent));

function cli(root: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function addRow(file: string): void {
  const db = new Database(file);
  db.exec("INSERT INTO folders(name) VALUES ('added after the snapshot')");
  db.close();
}

describe('undo acts on the databases of the root it runs in', () => {
  it('a data root moved (renamed) after a restore: --undo puts back its own databases, never files at the old path', () => {
    const before = path.join(parent, 'data');
    const after = path.join(parent, 'data-moved');
    makeNotesDb(path.join(before, 'db', 'a.db'), 20);
    expect(cli(before, ['now']).code).toBe(0);
    addRow(path.join(before, 'db', 'a.db'));
    const beforeRestore = dumpTables(path.join(before, 'db', 'a.db'));
    expect(cli(before, ['restore', 'latest', '--yes']).code).toBe(0);

    fs.renameSync(before, after);
    const undo = cli(after, ['restore', '--undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    // Today the record holds the absolute old path: the undo recreates <parent>/data/db/a.db, reports
    // "put back", and leaves the live database of the moved root restored.
    expect(fs.existsSync(before)).toBe(false);
    // What the undo replaced is kept, but a second --undo answers "nothing to undo": the plan must
    // not say "wb-backup restore --undo puts them back" (it did).
    expect(undo.stdout).not.toMatch(/restore --undo puts them back/);
    expect(cli(after, ['restore', '--undo', '--yes']).stderr).toMatch(/Nothing to undo/);
    expect(dumpTables(path.join(after, 'db', 'a.db'))).toEqual(beforeRestore);
  });
});

describe('undo picks the most recent operation, whatever the wall clock said', () => {
  // A restore made while the clock was a day ahead (then corrected, e.g. by NTP) names its safety
  // copy after that clock: --undo then picks it instead of the restore that really came last.
  const skew = (root: string) => {
    const file = path.join(root, '..', 'skew.cjs');
    fs.writeFileSync(
      file,
      `const off = 86400000; const R = Date;
class D extends R { constructor(...a) { if (a.length === 0) super(R.now() + off); else super(...a); } static now() { return R.now() + off; } }
globalThis.Date = D;`,
    );
    return { NODE_OPTIONS: `--require ${file}` };
  };

  it('restore a (clock ahead), restore b (clock corrected), --undo: b is put back, a is left alone', () => {
    const root = path.join(parent, 'data');
    makeNotesDb(path.join(root, 'db', 'a.db'), 20);
    makeNotesDb(path.join(root, 'db', 'b.db'), 20);
    expect(cli(root, ['now']).code).toBe(0);
    addRow(path.join(root, 'db', 'a.db'));
    addRow(path.join(root, 'db', 'b.db'));
    const bBefore = dumpTables(path.join(root, 'db', 'b.db'));

    expect(cli(root, ['restore', 'latest', '--db', 'a', '--yes'], skew(root)).code).toBe(0);
    const aRestored = dumpTables(path.join(root, 'db', 'a.db'));
    expect(cli(root, ['restore', 'latest', '--db', 'b', '--yes']).code).toBe(0);

    const undo = cli(root, ['restore', '--undo', '--yes']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(dumpTables(path.join(root, 'db', 'b.db'))).toEqual(bBefore);
    expect(dumpTables(path.join(root, 'db', 'a.db'))).toEqual(aRestored);
  });
});

describe('recovery acts on the root it runs in', () => {
  it('a root copied after a killed restore: the copy recovers its own files, and the original is left untouched', () => {
    const original = path.join(parent, 'data');
    const copy = path.join(parent, 'data-copy');
    makeNotesDb(path.join(original, 'db', 'a.db'), 20);
    makeNotesDb(path.join(original, 'db', 'b.db'), 20);
    expect(cli(original, ['now']).code).toBe(0);
    addRow(path.join(original, 'db', 'a.db'));
    addRow(path.join(original, 'db', 'b.db'));
    const old = { a: dumpTables(path.join(original, 'db', 'a.db')), b: dumpTables(path.join(original, 'db', 'b.db')) };
    const killed = spawnSync(process.execPath, [CLI, '--root', original, 'restore', 'latest', '--yes'], {
      env: { ...process.env, WB_BACKUP_CRASH_POINT: 'after-move-aside', WB_BACKUP_LOG_LEVEL: 'silent' },
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(fs.existsSync(path.join(original, 'db', 'a.db'))).toBe(false);
    fs.cpSync(original, copy, { recursive: true });
    const originalEntries = fs.readdirSync(original).sort();

    // Today the copy's journal is followed to the ORIGINAL's paths: the original's files are moved
    // (and its staging removed, its journal left), while the copy reports "rolled back ... as before"
    // with its a.db missing.
    const list = cli(copy, ['list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stderr).toMatch(/rolled back/);
    expect({ a: dumpTables(path.join(copy, 'db', 'a.db')), b: dumpTables(path.join(copy, 'db', 'b.db')) }).toEqual(old);
    expect(fs.readdirSync(original).sort()).toEqual(originalEntries);
    expect(fs.existsSync(path.join(original, 'db', 'a.db'))).toBe(false);

    // The original then recovers by itself.
    expect(cli(original, ['list']).code).toBe(0);
    expect({ a: dumpTables(path.join(original, 'db', 'a.db')), b: dumpTables(path.join(original, 'db', 'b.db')) }).toEqual(old);
  });
});
