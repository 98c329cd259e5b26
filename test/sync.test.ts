import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { WbError } from '../src/core/errors.js';
import { syncImport } from '../src/sync/import.js';
import { materialize } from '../src/sync/materialize.js';
import { syncPush } from '../src/sync/push.js';
import { fromJson, parseRows, rowLine, toJson } from '../src/sync/rows.js';
import { dumpTables, fileState } from './support/db-snapshot.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';


let work: string;
let root: string;
let bare: string;
beforeEach(() => {
  work = tempRoot('wb-sync-');
  root = path.join(work, 'root');
  bare = seededBareRemote(work);
  makeNotesDb(path.join(root, 'db', 'notes.db'), 30);
  const blobs = new Database(path.join(root, 'db', 'misc.db'));
  blobs.exec("CREATE TABLE kv (k TEXT PRIMARY KEY, v BLOB, n INTEGER) WITHOUT ROWID; INSERT INTO kv VALUES ('a', x'00ff10', 9007199254740993), ('b', NULL, -1);");
  blobs.exec('CREATE TABLE log (msg TEXT); CREATE TABLE audit (n INTEGER); CREATE TRIGGER log_audit AFTER INSERT ON log BEGIN INSERT INTO audit VALUES (1); END;');
  blobs.exec("INSERT INTO log VALUES ('x'), ('y');");
  blobs.close();
  writeConfigFile(root, { sync: { github: { remote_url: bare } } });
});
afterEach(() => rmrf(work));

const commits = () => Number(git(work, '--git-dir', bare, 'rev-list', '--count', 'trunk'));

describe('github-sync with real git against a local bare repository', () => {
  it('push, clone, import: every table equals the source; the default branch is read, other files kept', async () => {
    const pushed = await syncPush(loadConfig(root));
    expect(pushed).toMatchObject({ status: 'pushed', branch: 'trunk' });
    expect(pushed.rows).toMatchObject({ 'notes.notes': 30, 'notes.folders': 3, 'misc.kv': 2, 'misc.log': 2, 'misc.audit': 2 });
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    expect(fs.readdirSync(clone).sort()).toEqual(['.git', 'LICENSE', 'README.md', 'manifest.json', 'misc', 'notes']);
    expect(fs.readFileSync(path.join(clone, 'notes', 'notes.jsonl'), 'utf8').split('\n')[0]).toMatch(/^\{"id":1,"folder_id":1,"title":"note 0",/);

    const fresh = path.join(work, 'fresh');
    const imported = await syncImport(loadConfig(fresh), clone);
    expect(imported.databases.map((d) => d.name)).toEqual(['misc', 'notes']);
    expect(dumpTables(path.join(fresh, 'db', 'notes.db'))).toEqual(dumpTables(path.join(root, 'db', 'notes.db')));
    const src = new Database(path.join(root, 'db', 'misc.db'), { readonly: true });
    const dst = new Database(path.join(fresh, 'db', 'misc.db'), { readonly: true });
    src.defaultSafeIntegers(true);
    dst.defaultSafeIntegers(true);
    for (const t of ['kv', 'log', 'audit']) expect(dst.prepare(`SELECT * FROM ${t}`).all()).toEqual(src.prepare(`SELECT * FROM ${t}`).all());
    // The trigger came back too, without firing during the import.
    expect(dst.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'").pluck().get()).toBe(1n);
    src.close();
    dst.close();

    // Replacing needs consent; force alone is not consent.
    await expect(syncImport(loadConfig(fresh), clone)).rejects.toThrow(/would replace existing databases \(misc, notes\), which needs the user's consent/);
    await expect(syncImport(loadConfig(fresh), clone, { force: true })).rejects.toThrow(/needs the user's consent/);
    await syncImport(loadConfig(fresh), clone, { force: true, consent: async () => ({ granted: true }) });
    expect(dumpTables(path.join(fresh, 'db', 'notes.db'))).toEqual(dumpTables(path.join(root, 'db', 'notes.db')));
    const dry = await syncImport(loadConfig(fresh), clone, { dryRun: true });
    expect(dry).toMatchObject({ dry_run: true, databases: [{ name: 'misc', replaced: true }, { name: 'notes', replaced: true }] });
  });

  it('a no-op push makes no commit; a deleted row leaves the remote in the same commit as the other changes', async () => {
    await syncPush(loadConfig(root));
    const after1 = commits();
    expect((await syncPush(loadConfig(root))).status).toBe('no_changes');
    expect(commits()).toBe(after1);
    const db = new Database(path.join(root, 'db', 'notes.db'));
    db.exec("DELETE FROM notes WHERE id = 7; UPDATE notes SET title = 'edited' WHERE id = 3;");
    db.close();
    const second = await syncPush(loadConfig(root));
    expect(second.status).toBe('pushed');
    expect(commits()).toBe(after1 + 1);
    const diff = git(work, '--git-dir', bare, 'show', '--format=', '-U0', 'trunk', '--', 'notes/notes.jsonl');
    expect(diff).toMatch(/^-\{"id":7,/m);
    expect(diff).toMatch(/^\+\{"id":3,"folder_id":3,"title":"edited"/m);
  });

  it('a table dropped from the database is pruned from the mirror', async () => {
    await syncPush(loadConfig(root));
    const db = new Database(path.join(root, 'db', 'misc.db'));
    db.exec('DROP TRIGGER log_audit; DROP TABLE audit;');
    db.close();
    const r = await syncPush(loadConfig(root));
    expect(r.files_changed).toEqual(expect.arrayContaining(['misc/audit.jsonl', 'misc/schema.sql', 'manifest.json']));
    expect(git(work, '--git-dir', bare, 'ls-tree', '-r', '--name-only', 'trunk')).not.toMatch(/misc\/audit\.jsonl/);
  });

  it('direct mode refuses to overwrite a remote that moved, and reports the paths', async () => {
    await syncPush(loadConfig(root));
    const other = path.join(work, 'other');
    git(work, 'clone', '-q', bare, other);
    fs.appendFileSync(path.join(other, 'notes', 'notes.jsonl'), '{"id":999,"folder_id":1,"title":"from github","body":"x"}\n');
    git(other, 'commit', '-q', '-am', 'edit on the remote');
    git(other, 'push', '-q', 'origin', 'HEAD:trunk');
    const head = git(work, '--git-dir', bare, 'rev-parse', 'trunk');
    const db = new Database(path.join(root, 'db', 'notes.db'));
    db.exec("UPDATE notes SET title = 'local' WHERE id = 1");
    db.close();
    const r = await syncPush(loadConfig(root));
    expect(r.status).toBe('remote_changed');
    expect(r.remote_changed_paths).toEqual(['notes/notes.jsonl']);
    expect(r.message).toMatch(/nothing was overwritten/);
    expect(git(work, '--git-dir', bare, 'rev-parse', 'trunk')).toBe(head);
  });

  it('a malformed JSONL line is rejected with its path and line, and nothing is imported', async () => {
    await syncPush(loadConfig(root));
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const file = path.join(clone, 'notes', 'notes.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    lines[4] = '{"id":5, "title": oops}';
    fs.writeFileSync(file, lines.join('\n'));
    const fresh = path.join(work, 'fresh');
    await expect(syncImport(loadConfig(fresh), clone)).rejects.toThrow(/notes\/notes\.jsonl line 5 is not valid JSON/);
    expect(fs.existsSync(path.join(fresh, 'db', 'notes.db'))).toBe(false);
    expect(fs.existsSync(path.join(fresh, 'db', 'misc.db'))).toBe(false);
  });
});

describe('mirror format (pure parts)', () => {
  it('materializing twice gives byte-identical files', () => {
    const a = path.join(work, 'a');
    const b = path.join(work, 'b');
    const dbs = loadConfig(root).databases;
    materialize(a, dbs, { exclude: [], maxFileBytes: 1e9 });
    materialize(b, dbs, { exclude: [], maxFileBytes: 1e9 });
    for (const f of ['manifest.json', 'notes/notes.jsonl', 'notes/schema.sql', 'misc/kv.jsonl']) {
      expect(fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f))), f).toBe(true);
    }
  });

  it('caps and exclusions are listed in the manifest', () => {
    const out = path.join(work, 'm');
    const m = materialize(out, loadConfig(root).databases, { exclude: ['misc.log'], maxFileBytes: 2000 });
    expect(m.skipped).toEqual(expect.arrayContaining([{ path: 'misc/log.jsonl', reason: 'excluded by sync.github.exclude_tables' }, { path: 'notes/notes.jsonl', reason: 'larger than the per-file cap of 2.0 KiB' }]));
    expect(fs.existsSync(path.join(out, 'notes', 'notes.jsonl'))).toBe(false);
  });

  it('values round-trip: blobs, big integers, nulls, text', () => {
    expect(toJson(Buffer.from([0, 255]))).toEqual({ $base64: 'AP8=' });
    expect(toJson(9007199254740993n)).toEqual({ $int: '9007199254740993' });
    expect(toJson(5n)).toBe(5);
    expect(fromJson({ $int: '-9007199254740993' }, 'x')).toBe(-9007199254740993n);
    const line = rowLine(['a', 'b', 'c'], [null, 'x', Buffer.from('hi')]);
    expect(line).toBe('{"a":null,"b":"x","c":{"$base64":"aGk="}}');
    expect(parseRows(`${line}\n`, 't.jsonl', ['a', 'b', 'c'])).toEqual([[null, 'x', Buffer.from('hi')]]);
    expect(() => parseRows('{"zzz":1}\n', 't.jsonl', ['a'])).toThrow(/t\.jsonl line 1 has columns the schema does not: zzz/);
    expect(() => fromJson({ weird: true }, 'w')).toThrow(/not a value this format writes/);
  });

  it('infinite reals survive (JSON.stringify would write them as null)', () => {
    const file = path.join(work, 'inf.db');
    const db = new Database(file);
    db.exec('CREATE TABLE m (id INTEGER PRIMARY KEY, v REAL NOT NULL); INSERT INTO m VALUES (1, 1e999), (2, -1e999), (3, 2.5)');
    const rows = db.prepare('SELECT id, v FROM m ORDER BY id').raw().safeIntegers().all() as Array<[bigint, number]>;
    db.close();
    const lines = rows.map((r) => rowLine(['id', 'v'], r));
    expect(lines).toEqual(['{"id":1,"v":1e999}', '{"id":2,"v":-1e999}', '{"id":3,"v":2.5}']);
    const back = parseRows(`${lines.join('\n')}\n`, 'm.jsonl', ['id', 'v']);
    expect(back).toEqual([[1n, Infinity], [2n, -Infinity], [3n, 2.5]]);
    const copy = new Database(path.join(work, 'inf-copy.db'));
    copy.exec('CREATE TABLE m (id INTEGER PRIMARY KEY, v REAL NOT NULL)');
    const insert = copy.prepare('INSERT INTO m VALUES (?, ?)');
    for (const r of back) insert.run(...r);
    expect(copy.prepare("SELECT group_concat(v, ',') FROM m ORDER BY id").pluck().get()).toBe('Inf,-Inf,2.5');
    copy.close();
  });
});

describe('wb-backup sync (CLI)', () => {
  it('push then import into a fresh root, as a person recovering a wiped machine would', async () => {
    const { spawnSync } = await import('node:child_process');
    const { CLI } = await import('./support/fixtures.js');
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' } });
    const push = run('--root', root, 'sync', 'push', '--json');
    expect(push.status, push.stderr).toBe(0);
    expect(JSON.parse(push.stdout)).toMatchObject({ status: 'pushed', branch: 'trunk' });
    const again = run('--root', root, 'sync', 'push');
    expect(again.stdout).toMatch(/^no_changes:/);
    const clone = path.join(work, 'restored-clone');
    git(work, 'clone', '-q', bare, clone);
    const fresh = path.join(work, 'fresh-machine');
    const imported = run('--root', fresh, 'sync', 'import', clone);
    expect(imported.status, imported.stderr).toBe(0);
    expect(dumpTables(path.join(fresh, 'db', 'notes.db'))).toEqual(dumpTables(path.join(root, 'db', 'notes.db')));
  });
});

describe('github-sync pull (three-way per row)', () => {
  const remoteEdit = async (edit: (lines: string[]) => string[], file = 'notes/notes.jsonl') => {
    const other = path.join(work, `other-${Math.random().toString(36).slice(2)}`);
    git(work, 'clone', '-q', bare, other);
    const full = path.join(other, file);
    fs.writeFileSync(full, `${edit(fs.readFileSync(full, 'utf8').trimEnd().split('\n')).join('\n')}\n`);
    git(other, 'commit', '-q', '-am', 'edit on the remote');
    git(other, 'push', '-q', 'origin', 'HEAD:trunk');
  };
  const note = (id: number) => new Database(path.join(root, 'db', 'notes.db'), { readonly: true }).prepare('SELECT title FROM notes WHERE id = ?').pluck().get(id);

  it('applies a remote edit, insert and delete made by plain git in another clone; then push has nothing to do', async () => {
    const { syncPull } = await import('../src/sync/pull.js');
    await syncPush(loadConfig(root));
    await remoteEdit((lines) => [
      ...lines.filter((l) => !l.startsWith('{"id":2,')).map((l) => (l.startsWith('{"id":4,') ? l.replace('"note 3"', '"edited on GitHub"') : l)),
      '{"id":100,"folder_id":1,"title":"new on GitHub","body":"hello"}',
    ]);
    const r = await syncPull(loadConfig(root));
    expect(r.status).toBe('applied');
    expect(r.applied).toEqual({ 'notes.notes': { upserts: 2, deletes: 1 } });
    expect(note(4)).toBe('edited on GitHub');
    expect(note(100)).toBe('new on GitHub');
    expect(note(2)).toBeUndefined();
    expect((await syncPush(loadConfig(root))).status).toBe('no_changes');
  });

  it('reports a row changed on both sides as a conflict and keeps both versions; push still refuses', async () => {
    const { syncPull } = await import('../src/sync/pull.js');
    await syncPush(loadConfig(root));
    await remoteEdit((lines) => lines.map((l) => (l.startsWith('{"id":5,') ? l.replace('"note 4"', '"theirs"') : l.startsWith('{"id":6,') ? l.replace('"note 5"', '"remote only"') : l)));
    const db = new Database(path.join(root, 'db', 'notes.db'));
    db.exec("UPDATE notes SET title = 'ours' WHERE id = 5");
    db.close();
    const r = await syncPull(loadConfig(root));
    expect(r.status).toBe('conflicts');
    expect(r.conflicts).toEqual([expect.objectContaining({ table: 'notes.notes', key: '{"id":5}', ours: expect.stringMatching(/"title":"ours"/), theirs: expect.stringMatching(/"title":"theirs"/) })]);
    expect(note(5)).toBe('ours');
    expect(note(6)).toBe('remote only'); // the non-conflicting change still came in
    const head = git(work, '--git-dir', bare, 'rev-parse', 'trunk');
    expect((await syncPush(loadConfig(root))).status).toBe('remote_changed');
    expect(git(work, '--git-dir', bare, 'show', `${head}:notes/notes.jsonl`)).toMatch(/"title":"theirs"/);
  });

  describe('with foreign keys (projects <- chores, ON DELETE CASCADE)', () => {
    const proj = () => path.join(root, 'db', 'proj.db');
    beforeEach(() => {
      const db = new Database(proj());
      db.exec(`CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE chores (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE, title TEXT);
        INSERT INTO projects VALUES (1, 'home'), (2, 'work');
        INSERT INTO chores VALUES (1, 1, 'dishes'), (2, 1, 'laundry'), (3, 2, 'report');`);
      db.close();
    });
    /** One commit on the remote editing several files. */
    const remoteEdits = (edits: Record<string, (lines: string[]) => string[]>) => {
      const other = path.join(work, `other-${Math.random().toString(36).slice(2)}`);
      git(work, 'clone', '-q', bare, other);
      for (const [file, edit] of Object.entries(edits)) {
        const full = path.join(other, file);
        fs.writeFileSync(full, `${edit(fs.readFileSync(full, 'utf8').trimEnd().split('\n')).join('\n')}\n`);
      }
      git(other, 'commit', '-q', '-am', 'edit on the remote');
      git(other, 'push', '-q', 'origin', 'HEAD:trunk');
    };
    const rows = (sql: string) => {
      const db = new Database(proj(), { readonly: true });
      try {
        return db.prepare(sql).raw(true).all();
      } finally {
        db.close();
      }
    };

    it('a parent row edited on the remote is updated in place: its children stay (no delete + insert cascading)', async () => {
      const { syncPull } = await import('../src/sync/pull.js');
      await syncPush(loadConfig(root));
      remoteEdits({ 'proj/projects.jsonl': (lines) => lines.map((l) => l.replace('"home"', '"house"')) });
      const r = await syncPull(loadConfig(root));
      expect(r).toMatchObject({ status: 'applied', applied: { 'proj.projects': { upserts: 1, deletes: 0 } } });
      expect(rows('SELECT id, name FROM projects ORDER BY id')).toEqual([[1, 'house'], [2, 'work']]);
      expect(rows('SELECT id, project_id FROM chores ORDER BY id')).toEqual([[1, 1], [2, 1], [3, 2]]);
    });

    it('a new parent and its child in one pull are applied even when the child table comes first (keys checked at commit)', async () => {
      const { syncPull } = await import('../src/sync/pull.js');
      await syncPush(loadConfig(root));
      remoteEdits({
        'proj/chores.jsonl': (lines) => [...lines, '{"id":4,"project_id":3,"title":"paint"}'],
        'proj/projects.jsonl': (lines) => [...lines, '{"id":3,"name":"garden"}'],
      });
      const r = await syncPull(loadConfig(root));
      expect(r.status).toBe('applied');
      expect(rows('SELECT id, project_id, title FROM chores WHERE id = 4')).toEqual([[4, 3, 'paint']]);
    });

    it('remote rows that break a foreign key: nothing from that database is applied, and the reason is given', async () => {
      const { syncPull } = await import('../src/sync/pull.js');
      await syncPush(loadConfig(root));
      const before = fileState(proj());
      remoteEdits({
        'proj/chores.jsonl': (lines) => [...lines, '{"id":5,"project_id":999,"title":"orphan"}'],
        'proj/projects.jsonl': (lines) => lines.map((l) => l.replace('"work"', '"job"')),
      });
      const r = await syncPull(loadConfig(root));
      expect(r.status).toBe('conflicts');
      expect(r.applied).toEqual({});
      expect(r.rejected).toEqual([{ path: 'proj', reason: expect.stringMatching(/FOREIGN KEY constraint failed.*nothing from proj was applied/) }]);
      expect(fileState(proj())).toEqual(before);
      // the base did not move: once the remote is fixed, the same pull applies cleanly
      remoteEdits({ 'proj/chores.jsonl': (lines) => lines.filter((l) => !l.includes('"orphan"')) });
      expect((await syncPull(loadConfig(root))).applied).toEqual({ 'proj.projects': { upserts: 1, deletes: 0 } });
    });
  });

  it('a remote that cannot be reached: the push fails with what git said and what to check, and no state is written', async () => {
    const gone = path.join(work, 'nowhere.git');
    for (const github of [{ remote_url: gone, branch: 'trunk' }, { remote_url: gone }]) {
      writeConfigFile(root, { sync: { github } });
      const err = await syncPush(loadConfig(root)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WbError);
      expect((err as WbError).code).toBe('sync_failed');
      expect((err as Error).message).toMatch(/git (fetch|ls-remote) failed: .*nowhere\.git.*Check the sync remote/s);
      expect(fs.existsSync(path.join(root, 'sync', 'state.json'))).toBe(false);
    }
  });

  it('a remote file that does not parse is rejected with its path and line, and nothing from that table is applied', async () => {
    const { syncPull } = await import('../src/sync/pull.js');
    await syncPush(loadConfig(root));
    await remoteEdit((lines) => [...lines.map((l) => (l.startsWith('{"id":1,') ? l.replace('"note 0"', '"changed"') : l)), '{"id": 101, broken']);
    const r = await syncPull(loadConfig(root));
    expect(r.rejected).toEqual([{ path: 'notes/notes.jsonl', reason: expect.stringMatching(/notes\/notes\.jsonl line 31 is not valid JSON/) }]);
    expect(note(1)).toBe('note 0');
  });
});

describe('github-sync status', () => {
  it('counts rows changed on each side since the last sync', async () => {
    const { syncStatus, changedRows } = await import('../src/sync/status.js');
    expect(changedRows('a\nb\nc\n', 'a\nB\nc\nd\n')).toBe(3);
    expect((await syncStatus(loadConfig(root))).message).toMatch(/Never synced/);
    await syncPush(loadConfig(root));
    const db = new Database(path.join(root, 'db', 'notes.db'));
    db.exec("UPDATE notes SET title = 'x' WHERE id = 1; DELETE FROM notes WHERE id = 2");
    db.close();
    const other = path.join(work, 'other');
    git(work, 'clone', '-q', bare, other);
    fs.appendFileSync(path.join(other, 'notes', 'folders.jsonl'), '{"id":9,"name":"remote folder"}\n');
    git(other, 'commit', '-q', '-am', 'remote');
    git(other, 'push', '-q', 'origin', 'HEAD:trunk');
    const s = await syncStatus(loadConfig(root));
    expect(s).toMatchObject({ configured: true, branch: 'trunk', behind: 1, local_changes: { 'notes/notes.jsonl': 2 }, remote_changes: { 'notes/folders.jsonl': 1 } }); // one row edited, one deleted (issue 15: rows, not diff lines)
  });
});

describe('github_sync health component', () => {
  it('reports configured, reachable and fresh after a push; a bad remote fails with the reason', async () => {
    const { healthStatus } = await import('../src/health/service.js');
    const report = async () => (await healthStatus({ root, cacheMs: 0 }, 'github_sync'))[0]!;
    const before = await report();
    expect(before.requirements.map((r) => r.status)).toEqual(['ok', 'ok']);
    expect(before.requirements[1]!.detail).toBe('default branch trunk');
    expect(before.checks[0]).toMatchObject({ status: 'warn', detail: expect.stringMatching(/never synced/) });
    await syncPush(loadConfig(root));
    expect((await report()).checks[0]!.status).toBe('ok');
    writeConfigFile(root, { sync: { github: { remote_url: path.join(work, 'nowhere.git') } } });
    const broken = await report();
    expect(broken.requirements[1]).toMatchObject({ status: 'fail', detail: expect.stringMatching(/git cannot reach it/) });
  });
});
