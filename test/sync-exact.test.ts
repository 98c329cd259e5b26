import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recordedPath } from '../src/sync/import.js';
import { directSyncRemote, git } from './support/bare-remote.js';
import { CLI, rmrf, tempRoot } from './support/fixtures.js';

// Three kinds of fault found by review: a pull changing rows the merge did not decide (foreign-key
// actions), an edited clone refused on the manifest's row counts, and a database whose name is cut
// coming back from import at another file name.

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-sync-exact-');
  root = path.join(work, 'root');
  fs.mkdirSync(path.join(root, 'db'), { recursive: true });
});
afterEach(() => rmrf(work));

const wb = (r: string, ...args: string[]) => spawnSync(process.execPath, [CLI, '--root', r, ...args], { encoding: 'utf8' });

/** A bare remote, the root configured to push to it directly. */
const syncTo = (r: string): string => directSyncRemote(work, r);

function make(file: string, sql: string, fkOff = false): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  if (fkOff) db.pragma('foreign_keys = OFF');
  db.exec(sql);
  db.close();
}

/** Push `root`, clone the remote; returns the clone. */
function pushAndClone(): string {
  const bare = syncTo(root);
  const push = wb(root, 'sync', 'push');
  expect(push.status, push.stderr).toBe(0);
  const clone = path.join(work, 'clone');
  git(work, 'clone', '-q', bare, clone);
  return clone;
}

/** Rewrite a mirror file's lines in the clone and push the edit to the remote, as an edit on GitHub would. */
function editOnRemote(clone: string, file: string, edit: (lines: string[]) => string[]): void {
  const full = path.join(clone, file);
  const lines = fs.readFileSync(full, 'utf8').split('\n').filter(Boolean);
  fs.writeFileSync(full, edit(lines).map((l) => `${l}\n`).join(''));
  git(clone, 'commit', '-qam', `edit ${file} on the remote`);
  git(clone, 'push', '-q', 'origin', 'HEAD:main');
}

function query(file: string, sql: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).all();
  } finally {
    db.close();
  }
}

type PullJson = { status: string; applied: Record<string, { upserts: number; deletes: number }>; rejected: Array<{ path: string; reason: string }> };

describe('sync pull applies exactly the rows the merge decided', () => {
  const schema = (action: string) =>
    `CREATE TABLE p(id INTEGER PRIMARY KEY, n); CREATE TABLE c(id INTEGER PRIMARY KEY, pid REFERENCES p(id) ${action}, v);
     INSERT INTO p VALUES (1, 'a'), (2, 'b'); INSERT INTO c VALUES (10, 1, 'x'), (11, 2, 'y');`;

  it('a parent deleted on GitHub under ON DELETE SET NULL: its children keep their parent id and the change is rejected', () => {
    const file = path.join(root, 'db', 'data.db');
    make(file, schema('ON DELETE SET NULL'));
    const clone = pushAndClone();
    editOnRemote(clone, 'data/p.jsonl', (l) => l.filter((x) => !x.startsWith('{"id":1,')));
    const pull = JSON.parse(wb(root, 'sync', 'pull', '--json').stdout) as PullJson;
    expect(pull.rejected).toEqual([{ path: 'data', reason: expect.stringMatching(/FOREIGN KEY constraint failed.*nothing from data was applied/) }]);
    expect(pull.applied).toEqual({});
    expect(query(file, 'SELECT id, pid FROM c ORDER BY id')).toEqual([{ id: 10, pid: 1 }, { id: 11, pid: 2 }]);
    expect(query(file, 'SELECT id FROM p ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('a parent deleted on GitHub together with its children is applied, as exactly those rows', () => {
    const file = path.join(root, 'db', 'data.db');
    make(file, schema('ON DELETE CASCADE'));
    const clone = pushAndClone();
    editOnRemote(clone, 'data/p.jsonl', (l) => l.filter((x) => !x.startsWith('{"id":1,')));
    editOnRemote(clone, 'data/c.jsonl', (l) => l.filter((x) => !x.startsWith('{"id":10,')));
    const pull = JSON.parse(wb(root, 'sync', 'pull', '--json').stdout) as PullJson;
    expect(pull.rejected).toEqual([]);
    expect(pull.applied).toEqual({ 'data.p': { upserts: 0, deletes: 1 }, 'data.c': { upserts: 0, deletes: 1 } });
    expect(query(file, 'SELECT id FROM c ORDER BY id')).toEqual([{ id: 11 }]);
  });

  it('a new child that comes before its new parent is applied; a new child without a parent is rejected', () => {
    const file = path.join(root, 'db', 'data.db');
    make(file, schema('ON DELETE CASCADE'));
    const clone = pushAndClone();
    editOnRemote(clone, 'data/c.jsonl', (l) => [...l, '{"id":12,"pid":3,"v":"z"}']);
    editOnRemote(clone, 'data/p.jsonl', (l) => [...l, '{"id":3,"n":"c"}']);
    const ok = JSON.parse(wb(root, 'sync', 'pull', '--json').stdout) as PullJson;
    expect(ok.rejected).toEqual([]);
    expect(query(file, 'SELECT id, pid FROM c WHERE id = 12')).toEqual([{ id: 12, pid: 3 }]);
    editOnRemote(clone, 'data/c.jsonl', (l) => [...l, '{"id":13,"pid":99,"v":"w"}']);
    const bad = JSON.parse(wb(root, 'sync', 'pull', '--json').stdout) as PullJson;
    expect(bad.rejected).toEqual([{ path: 'data', reason: expect.stringMatching(/FOREIGN KEY constraint failed/) }]);
    expect(query(file, 'SELECT count(*) AS n FROM c WHERE id = 13')).toEqual([{ n: 0 }]);
  });

  it('a database that already held a dangling reference still takes an unrelated edit from GitHub', () => {
    const file = path.join(root, 'db', 'data.db');
    // Written with foreign keys off (SQLite's default): child 11 points at a parent that never existed.
    make(file, `${schema('ON DELETE CASCADE')} INSERT INTO c VALUES (12, 77, 'dangling');`, true);
    const clone = pushAndClone();
    editOnRemote(clone, 'data/c.jsonl', (l) => l.map((x) => (x.startsWith('{"id":10,') ? '{"id":10,"pid":1,"v":"edited"}' : x)));
    const pull = JSON.parse(wb(root, 'sync', 'pull', '--json').stdout) as PullJson;
    expect(pull.rejected).toEqual([]);
    expect(pull.status).toBe('applied');
    expect(query(file, 'SELECT id, pid, v FROM c ORDER BY id')).toEqual([
      { id: 10, pid: 1, v: 'edited' },
      { id: 11, pid: 2, v: 'y' },
      { id: 12, pid: 77, v: 'dangling' },
    ]);
  });

  it('a parent code changed on GitHub under ON UPDATE CASCADE: the children, which the remote did not change, are not rewritten', () => {
    const file = path.join(root, 'db', 'data.db');
    make(file, `CREATE TABLE p(id INTEGER PRIMARY KEY, code TEXT UNIQUE); CREATE TABLE c(k TEXT PRIMARY KEY, code REFERENCES p(code) ON UPDATE CASCADE) WITHOUT ROWID;
      INSERT INTO p VALUES (1, 'a'); INSERT INTO c VALUES ('x', 'a');`);
    const clone = pushAndClone();
    editOnRemote(clone, 'data/p.jsonl', () => ['{"id":1,"code":"b"}']);
    const pull = JSON.parse(wb(root, 'sync', 'pull', '--json').stdout) as PullJson;
    expect(pull.rejected).toEqual([{ path: 'data', reason: expect.stringMatching(/FOREIGN KEY constraint failed/) }]);
    expect(query(file, 'SELECT k, code FROM c')).toEqual([{ k: 'x', code: 'a' }]);
    expect(query(file, 'SELECT code FROM p')).toEqual([{ code: 'a' }]);
  });

  it('a WITHOUT ROWID child table that already held a dangling reference: a second one from GitHub is still refused', () => {
    const file = path.join(root, 'db', 'data.db');
    make(file, `CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(k TEXT PRIMARY KEY, pid REFERENCES p(id)) WITHOUT ROWID;
      INSERT INTO p VALUES (1); INSERT INTO c VALUES ('ok', 1), ('old', 50);`, true);
    const clone = pushAndClone();
    editOnRemote(clone, 'data/c.jsonl', (l) => [...l, '{"k":"new","pid":60}']);
    const pull = JSON.parse(wb(root, 'sync', 'pull', '--json').stdout) as PullJson;
    expect(pull.rejected).toEqual([{ path: 'data', reason: expect.stringMatching(/FOREIGN KEY constraint failed/) }]);
    expect(query(file, 'SELECT k FROM c ORDER BY k')).toEqual([{ k: 'ok' }, { k: 'old' }]);
  });

  it("a note edited on GitHub is found by the database's own full-text index (its triggers fire, as for any write)", () => {
    const file = path.join(root, 'db', 'notes.db');
    make(
      file,
      `CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
       CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='notes', content_rowid='id');
       CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN INSERT INTO notes_fts(rowid, body) VALUES (new.id, new.body); END;
       CREATE TRIGGER notes_au AFTER UPDATE ON notes BEGIN
         INSERT INTO notes_fts(notes_fts, rowid, body) VALUES ('delete', old.id, old.body);
         INSERT INTO notes_fts(rowid, body) VALUES (new.id, new.body); END;
       INSERT INTO notes VALUES (1, 'buy milk'), (2, 'call bob');`,
    );
    const clone = pushAndClone();
    editOnRemote(clone, 'notes/notes.jsonl', (l) => l.map((x) => (x.startsWith('{"id":1,') ? '{"id":1,"body":"buy oat milk"}' : x)));
    const pull = JSON.parse(wb(root, 'sync', 'pull', '--json').stdout) as PullJson;
    expect(pull.applied).toEqual({ 'notes.notes': { upserts: 1, deletes: 0 } });
    expect(query(file, "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'oat'")).toEqual([{ rowid: 1 }]);
  });
});

describe('sync import of a clone edited since push: the rows the files hold, with the differences said', () => {
  type ImportJson = { databases: Array<{ name: string; rows: Record<string, number>; source_matches: boolean | null; row_counts_differ?: Array<{ table: string; manifest: number; imported: number }> }>; message: string };

  it('a row deleted on GitHub: import gives the remaining rows and says the manifest counted one more', () => {
    make(path.join(root, 'db', 'data.db'), "CREATE TABLE t(id INTEGER PRIMARY KEY, x); INSERT INTO t VALUES (1, 'a'), (2, 'b');");
    const clone = pushAndClone();
    editOnRemote(clone, 'data/t.jsonl', (l) => l.slice(1));
    const fresh = path.join(work, 'fresh');
    const imp = wb(fresh, 'sync', 'import', clone, '--json');
    expect(imp.status, imp.stderr).toBe(0);
    const out = JSON.parse(imp.stdout) as ImportJson;
    expect(out.databases[0]).toMatchObject({ name: 'data', rows: { t: 1 }, source_matches: false, row_counts_differ: [{ table: 't', manifest: 2, imported: 1 }] });
    expect(out.message).toMatch(/t 1 \(manifest 2\)/);
    expect(query(path.join(fresh, 'db', 'data.db'), 'SELECT x FROM t')).toEqual([{ x: 'b' }]);
  });

  it('a document added on GitHub comes back with the others', () => {
    make(path.join(root, 'db', 'data.db'), "CREATE TABLE p(id INTEGER PRIMARY KEY, content TEXT); INSERT INTO p VALUES (1, 'one');");
    syncTo(root);
    fs.appendFileSync(path.join(root, 'wb-backup.yaml'), '    documents:\n      data.p: { body: content }\n');
    const bare = path.join(work, 'remote.git');
    expect(wb(root, 'sync', 'push').status).toBe(0);
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    fs.writeFileSync(path.join(clone, 'data', 'p', '2.md'), '---\n---\ntwo');
    const fresh = path.join(work, 'fresh');
    const imp = wb(fresh, 'sync', 'import', clone, '--json');
    expect(imp.status, imp.stderr).toBe(0);
    expect((JSON.parse(imp.stdout) as ImportJson).databases[0]!.row_counts_differ).toEqual([{ table: 'p', manifest: 1, imported: 2 }]);
    expect(query(path.join(fresh, 'db', 'data.db'), 'SELECT id, content FROM p ORDER BY id')).toEqual([{ id: 1, content: 'one' }, { id: 2, content: 'two' }]);
  });

  it('a mirror written before source was recorded, with a row added since, imports the rows it holds', () => {
    make(path.join(root, 'db', 'data.db'), "CREATE TABLE t(id INTEGER PRIMARY KEY, x); INSERT INTO t VALUES (1, 'a');");
    const clone = pushAndClone();
    const manifestFile = path.join(clone, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { databases: Record<string, Record<string, unknown>> };
    delete manifest.databases.data!.source;
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    fs.appendFileSync(path.join(clone, 'data', 't.jsonl'), '{"id":2,"x":"b"}\n');
    const fresh = path.join(work, 'fresh');
    const imp = wb(fresh, 'sync', 'import', clone, '--json');
    expect(imp.status, imp.stderr).toBe(0);
    expect((JSON.parse(imp.stdout) as ImportJson).databases[0]).toMatchObject({ source_matches: null, row_counts_differ: [{ table: 't', manifest: 1, imported: 2 }] });
  });

  it('a table file cut in the middle of a line is still refused, naming the line, and nothing is imported', () => {
    make(path.join(root, 'db', 'data.db'), "CREATE TABLE t(id INTEGER PRIMARY KEY, x); INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c');");
    const clone = pushAndClone();
    const file = path.join(clone, 'data', 't.jsonl');
    const text = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, text.slice(0, text.length - 8));
    const fresh = path.join(work, 'fresh');
    const imp = wb(fresh, 'sync', 'import', clone);
    expect(imp.status).not.toBe(0);
    expect(imp.stderr).toMatch(/data\/t\.jsonl line 3 is not valid JSON/);
    expect(fs.existsSync(path.join(fresh, 'db', 'data.db'))).toBe(false);
  });

  it('a clone exactly as pushed whose manifest counts another number of rows is refused', () => {
    make(path.join(root, 'db', 'data.db'), "CREATE TABLE t(id INTEGER PRIMARY KEY, x); INSERT INTO t VALUES (1, 'a');");
    const clone = pushAndClone();
    const manifestFile = path.join(clone, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { databases: Record<string, { tables: Record<string, { rows: number }> }> };
    manifest.databases.data!.tables.t!.rows = 5;
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    const imp = wb(path.join(work, 'fresh'), 'sync', 'import', clone);
    expect(imp.status).not.toBe(0);
    expect(imp.stderr).toMatch(/data\/t\.jsonl holds 1 rows, the manifest says 5/);
  });
});

describe('sync import puts a database back at the file it lived in (db_path)', () => {
  it('a long non-Latin name in a sub-folder comes back at its own path, and the next push keeps its name', () => {
    const rel = ['研究', 'ノート', '家計簿データベース二〇二六年の記録.db'];
    make(path.join(root, 'db', ...rel), "CREATE TABLE t(x); INSERT INTO t VALUES ('kept');");
    const clone = pushAndClone();
    const manifest = JSON.parse(fs.readFileSync(path.join(clone, 'manifest.json'), 'utf8')) as { databases: Record<string, { db_path?: string[] }> };
    const [name] = Object.keys(manifest.databases);
    expect(name).toMatch(/~[0-9a-f]{16}$/);
    expect(manifest.databases[name!]!.db_path).toEqual(rel);
    const listing = () => fs.readdirSync(clone).filter((f) => !f.startsWith('.')).sort();
    const before = listing();
    const fresh = path.join(work, 'fresh');
    const imp = wb(fresh, 'sync', 'import', clone);
    expect(imp.status, imp.stderr).toBe(0);
    expect(query(path.join(fresh, 'db', ...rel), 'SELECT x FROM t')).toEqual([{ x: 'kept' }]);
    // The rebuilt machine pushes to the same mirror: nothing changes, no second copy of the database.
    fs.copyFileSync(path.join(root, 'wb-backup.yaml'), path.join(fresh, 'wb-backup.yaml'));
    const again = wb(fresh, 'sync', 'push', '--json');
    expect(again.status, again.stderr).toBe(0);
    git(clone, 'pull', '-q');
    expect(listing()).toEqual(before);
    expect(before).toHaveLength(3);
  });

  it('a hand-edited db_path that is unsafe or names another file is not used: the database goes where its name says', () => {
    make(path.join(root, 'db', 'sub', 'beta.db'), "CREATE TABLE t(x); INSERT INTO t VALUES ('kept');");
    const clone = pushAndClone();
    const manifestFile = path.join(clone, 'manifest.json');
    const original = fs.readFileSync(manifestFile, 'utf8');
    const hostile: unknown[] = [['..', '..', 'escape.db'], ['sub/../../escape.db'], ['sub', 'other.db'], ['sub', 'beta'], ['sub', 'be\nta.db'], ['.', 'sub', 'beta.db'], [], 'sub/beta.db', [1]];
    hostile.forEach((dbPath, i) => {
      const manifest = JSON.parse(original) as { databases: Record<string, { db_path?: unknown }> };
      manifest.databases['sub.beta']!.db_path = dbPath;
      fs.writeFileSync(manifestFile, JSON.stringify(manifest));
      const fresh = path.join(work, `fresh${i}`);
      const imp = wb(fresh, 'sync', 'import', clone);
      expect(imp.status, imp.stderr).toBe(0);
      expect(query(path.join(fresh, 'db', 'sub', 'beta.db'), 'SELECT x FROM t')).toEqual([{ x: 'kept' }]);
      expect(fs.readdirSync(fresh).filter((f) => f !== 'db' && f !== 'sync' && !f.startsWith('.'))).not.toContain('escape.db');
      expect(fs.existsSync(path.join(work, 'escape.db'))).toBe(false);
    });
  });

  it('a mirror written before db_path still imports where discovery would name the database', () => {
    make(path.join(root, 'db', 'sub', 'beta.db'), "CREATE TABLE t(x); INSERT INTO t VALUES ('kept');");
    const clone = pushAndClone();
    const manifestFile = path.join(clone, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { databases: Record<string, { db_path?: unknown }> };
    delete manifest.databases['sub.beta']!.db_path;
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    const fresh = path.join(work, 'fresh');
    expect(wb(fresh, 'sync', 'import', clone).status).toBe(0);
    expect(query(path.join(fresh, 'db', 'sub', 'beta.db'), 'SELECT x FROM t')).toEqual([{ x: 'kept' }]);
  });

  it('recordedPath takes a path only when discovery gives it exactly the manifest name', () => {
    expect(recordedPath('sub.beta', ['sub', 'beta.db'])).toEqual(['sub', 'beta.db']);
    expect(recordedPath('beta', ['sub', 'beta.db'])).toBeNull();
    expect(recordedPath('sub.beta', ['sub\\x', 'beta.db'])).toBeNull();
    expect(recordedPath('sub.beta', ['sub', 'beta.db', ''])).toBeNull();
    expect(recordedPath('%2Edb', ['.db'])).toBeNull();
    expect(recordedPath('sub.beta', null)).toBeNull();
  });
});
