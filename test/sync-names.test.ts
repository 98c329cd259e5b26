import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { encodeSegment, mirrorTableFile } from '../src/root/names.js';
import { syncImport } from '../src/sync/import.js';
import { materialize } from '../src/sync/materialize.js';
import { syncPull } from '../src/sync/pull.js';
import { syncPush } from '../src/sync/push.js';
import { dumpTables } from './support/db-snapshot.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

let work: string;
let root: string;
let bare: string;
const ESCAPE = '../../../../escape';

beforeEach(() => {
  work = tempRoot('wb-sync-names-');
  root = path.join(work, 'root');
  bare = seededBareRemote(work);
  makeNotesDb(path.join(root, 'db', 'notes.db'), 5);
  const db = new Database(path.join(root, 'db', 'notes.db'));
  db.exec(`CREATE TABLE "${ESCAPE}" (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO "${ESCAPE}" VALUES (1, 'out'), (2, 'side');`);
  // SQLite folds only ASCII case in names, so these are two tables; a case-insensitive disk would merge their files.
  db.exec('CREATE TABLE "Émile" (id INTEGER PRIMARY KEY, n TEXT); CREATE TABLE "émile" (id INTEGER PRIMARY KEY, n TEXT);');
  db.exec("INSERT INTO \"Émile\" VALUES (1, 'upper'); INSERT INTO \"émile\" VALUES (1, 'lower');");
  db.close();
  writeConfigFile(root, { sync: { github: { remote_url: bare } } });
});
afterEach(() => rmrf(work));

/** Every file under `dir` except .git, relative. */
function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !path.relative(dir, path.join(e.parentPath, e.name)).startsWith('.git'))
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)).split(path.sep).join('/'))
    .sort();
}

describe('table names that look like paths, in github-sync', () => {
  it('a table named ../../../../escape is pushed inside its database folder, and the manifest lists only what the commit holds', async () => {
    const before = filesUnder(work);
    const pushed = await syncPush(loadConfig(root));
    expect(pushed.status).toBe('pushed');
    // Nothing was written next to the data root or anywhere outside the sync folder.
    expect(fs.existsSync(path.join(work, 'escape.jsonl'))).toBe(false);
    expect(filesUnder(work).filter((f) => !f.startsWith('root/') && !f.startsWith('remote') && !before.includes(f)).filter((f) => f.endsWith('.jsonl'))).toEqual([]);

    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const manifest = JSON.parse(fs.readFileSync(path.join(clone, 'manifest.json'), 'utf8')) as { databases: Record<string, { tables: Record<string, { file: string }> }> };
    const committed = new Set(git(clone, 'ls-files').split('\n'));
    for (const [table, entry] of Object.entries(manifest.databases.notes!.tables)) {
      expect(committed.has(entry.file), `${table} -> ${entry.file}`).toBe(true);
      expect(entry.file).toBe(mirrorTableFile('notes', table));
    }
    expect(manifest.databases.notes!.tables[ESCAPE]!.file).toBe(`notes/${encodeSegment(ESCAPE)}.jsonl`);
    // Émile and émile are two files that a macOS or Windows clone keeps apart.
    const lower = [...committed].map((f) => f.toLowerCase());
    expect(new Set(lower).size).toBe(lower.length);

    // And it all comes back: the odd tables with their rows.
    const fresh = path.join(work, 'fresh');
    await syncImport(loadConfig(fresh), clone);
    expect(dumpTables(path.join(fresh, 'db', 'notes.db'))).toEqual(dumpTables(path.join(root, 'db', 'notes.db')));
  });

  it('sync import refuses a manifest entry that points outside the clone, and reads nothing there', async () => {
    await syncPush(loadConfig(root));
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    // A file outside the clone that a hostile manifest names.
    fs.writeFileSync(path.join(work, 'secret.jsonl'), '{"id":1,"v":"stolen"}\n');
    const manifestFile = path.join(clone, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { databases: Record<string, { schema: string; tables: Record<string, { file: string }> }> };
    manifest.databases.notes!.tables[ESCAPE]!.file = '../secret.jsonl';
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    const fresh = path.join(work, 'fresh');
    const err = await syncImport(loadConfig(fresh), clone).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WbError);
    expect((err as WbError).code).toBe('manifest_invalid');
    expect(describeError(err)).toMatch(/puts the table notes\.\.\.\/\.\.\/\.\.\/\.\.\/escape in "\.\.\/secret\.jsonl", not notes\/%2E.*Nothing was changed/);
    expect(fs.existsSync(path.join(fresh, 'db'))).toBe(false);

    // A database name that climbs, and a schema path elsewhere: refused the same way.
    manifest.databases.notes!.tables[ESCAPE]!.file = `notes/${encodeSegment(ESCAPE)}.jsonl`;
    manifest.databases['../../x'] = manifest.databases.notes!;
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    await expect(syncImport(loadConfig(fresh), clone)).rejects.toThrow(/"\.\.\/\.\.\/x" is not a database name/);
    delete manifest.databases['../../x'];
    manifest.databases.notes!.schema = '/etc/passwd';
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    await expect(syncImport(loadConfig(fresh), clone)).rejects.toThrow(/schema of notes in "\/etc\/passwd", not notes\/schema\.sql/);
  });

  it('sync import does not follow a symbolic link in the clone to a file outside it', async () => {
    await syncPush(loadConfig(root));
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    fs.writeFileSync(path.join(work, 'secret.jsonl'), '{"id":1,"v":"stolen"}\n{"id":2,"v":"x"}\n');
    const file = path.join(clone, 'notes', `${encodeSegment(ESCAPE)}.jsonl`);
    fs.rmSync(file);
    fs.symlinkSync(path.join(work, 'secret.jsonl'), file);
    await expect(syncImport(loadConfig(path.join(work, 'fresh')), clone)).rejects.toThrow(/not a regular file inside the clone/);
  });

  it('a remote edit to the escape table is pulled into that table, found by its encoded file name', async () => {
    await syncPush(loadConfig(root));
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const rel = mirrorTableFile('notes', ESCAPE);
    fs.appendFileSync(path.join(clone, ...rel.split('/')), '{"id":3,"v":"pulled"}\n');
    git(clone, 'add', '-A');
    git(clone, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'edit');
    git(clone, 'push', '-q', 'origin', 'HEAD');
    const pulled = await syncPull(loadConfig(root));
    expect(pulled.applied).toEqual({ [`notes.${ESCAPE}`]: { upserts: 1, deletes: 0 } });
    const db = new Database(path.join(root, 'db', 'notes.db'), { readonly: true });
    expect(db.prepare(`SELECT v FROM "${ESCAPE}" WHERE id = 3`).pluck().get()).toBe('pulled');
    db.close();
  });

  it('tables with generated awkward names each get their own file inside the mirror, and all come back on import', async () => {
    // A seeded generator (the same names every run): separators, dots, case pairs SQLite keeps
    // apart (non-ASCII), NFC/NFD, Windows device names, controls, very long names.
    let seed = 99;
    const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const pieces = ['..', '/', '\\', '.', ' ', '%', '~', 'CON', 'nul', 'lpt1', 'É', 'é', 'e\u0301', '\n', '\t', ':', '*', '?', '日本', '🙂', 'a', 'Z', '42', '.jsonl', 'schema.sql', 'manifest.json'];
    const file = path.join(root, 'db', 'odd.db');
    const db = new Database(file);
    const created: string[] = [];
    for (let i = 0; created.length < 40 && i < 400; i++) {
      let name = Array.from({ length: 1 + Math.floor(next() * 5) }, () => pieces[Math.floor(next() * pieces.length)]).join('');
      if (next() < 0.1) name = name.repeat(60);
      try {
        db.exec(`CREATE TABLE "${name.replace(/"/g, '""')}" (id INTEGER PRIMARY KEY, v TEXT)`);
      } catch {
        continue; // a name SQLite itself refuses or already has (ASCII case), or an sqlite_ name
      }
      db.prepare(`INSERT INTO "${name.replace(/"/g, '""')}" VALUES (1, ?)`).run(name);
      created.push(name);
    }
    db.close();
    expect(created.length).toBe(40);

    const mirror = path.join(work, 'mirror');
    fs.mkdirSync(mirror);
    const manifest = materialize(mirror, loadConfig(root).databases, { exclude: [], maxFileBytes: 1 << 20 });
    expect(manifest.skipped).toEqual([]);
    const tables = manifest.databases.odd!.tables;
    expect(Object.keys(tables).sort()).toEqual([...created].sort());
    // One file per table, directly in the database folder, no two equal once case-folded.
    const files = fs.readdirSync(path.join(mirror, 'odd')).filter((f) => f !== 'schema.sql');
    expect(files).toHaveLength(created.length);
    expect(new Set(files.map((f) => f.toLowerCase())).size).toBe(files.length);
    expect(fs.readdirSync(mirror).sort()).toEqual(['manifest.json', 'notes', 'odd']);

    const fresh = path.join(work, 'fresh');
    await syncImport(loadConfig(fresh), mirror);
    expect(dumpTables(path.join(fresh, 'db', 'odd.db'))).toEqual(dumpTables(file));
  });

  it('a database that cannot be read, or a dangling link under db/, is skipped with the reason; the other databases are pushed', async () => {
    fs.writeFileSync(path.join(root, 'db', 'broken.db'), 'SQLite format 3\0 this is not really a database');
    fs.symlinkSync(path.join(work, 'gone.db'), path.join(root, 'db', 'gone.db'));
    const pushed = await syncPush(loadConfig(root));
    expect(pushed.status).toBe('pushed');
    expect(pushed.skipped).toEqual([
      { path: 'db: gone', reason: 'it is a symbolic link to a file that does not exist' },
      expect.objectContaining({ path: 'broken', reason: expect.stringMatching(/could not be read/) }),
    ]);
    expect(pushed.rows).toMatchObject({ 'notes.notes': 5, [`notes.${ESCAPE}`]: 2 });
  });

  it('a table whose pages are corrupt is skipped with the reason; the other tables of its database are pushed', async () => {
    const file = path.join(root, 'db', 'two.db');
    const db = new Database(file);
    db.exec("CREATE TABLE good (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE bad (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO good VALUES (1, 'kept');");
    db.prepare('INSERT INTO bad VALUES (?, ?)').run(1, 'x'.repeat(100));
    const page = Number(db.pragma('page_size', { simple: true }));
    const rootpage = db.prepare("SELECT rootpage FROM sqlite_schema WHERE name = 'bad'").pluck().get() as number;
    db.close();
    // Overwrite the table's root page with garbage: the schema still reads, the table does not.
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(page, 0xa5), 0, page, (rootpage - 1) * page);
    fs.closeSync(fd);
    const pushed = await syncPush(loadConfig(root));
    expect(pushed.status).toBe('pushed');
    expect(pushed.skipped).toEqual([{ path: 'two/bad.jsonl', reason: expect.stringMatching(/the table could not be read: .*malformed/) }]);
    expect(pushed.rows).toMatchObject({ 'two.good': 1, 'notes.notes': 5 });
    expect(pushed.rows['two.bad']).toBeUndefined();
  });
});
