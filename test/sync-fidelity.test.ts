/**
 * A wiped machine must come back exactly from github-sync (issue 13, part 4): every table, index,
 * view and trigger; virtual tables from their declarations; sqlite_sequence; rowids; values down to
 * their storage class. What the mirror cannot carry is refused at push time with the reason.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { syncImport } from '../src/sync/import.js';
import { materialize } from '../src/sync/materialize.js';
import type { MirrorManifest } from '../src/sync/mirror-manifest.js';
import { syncPush } from '../src/sync/push.js';
import { parseRows, rowLine, rowLineWriter, TextBytes } from '../src/sync/rows.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { rmrf, tempRoot } from './support/fixtures.js';
import { describeDatabase, generateDatabase, tableRows } from './support/sqlite-gen.js';

let work: string;
let root: string;
let bare: string;
beforeEach(() => {
  work = tempRoot('wb-syncfid-');
  root = path.join(work, 'root');
  fs.mkdirSync(path.join(root, 'db'), { recursive: true });
  bare = seededBareRemote(work);
  writeConfigFile(root, { sync: { github: { remote_url: bare } } });
});
afterEach(() => rmrf(work));

const dbFile = (name: string, r = root) => path.join(r, 'db', `${name}.db`);

function makeDb(name: string, sql: string): void {
  const db = new Database(dbFile(name));
  db.exec(sql);
  db.close();
}

/** Push to the bare remote, clone it, import into a fresh root: the whole path a wiped machine takes. */
async function pushCloneImport(label = 'fresh') {
  const pushed = await syncPush(loadConfig(root));
  const clone = path.join(work, `clone-${label}`);
  git(work, 'clone', '-q', bare, clone);
  const fresh = path.join(work, label);
  const imported = await syncImport(loadConfig(fresh), clone);
  return { pushed, clone, fresh, imported };
}

function open(file: string): Database.Database {
  const db = new Database(file);
  db.defaultSafeIntegers(true);
  return db;
}

describe('a wiped machine comes back exactly from github-sync', () => {
  it('a database with an FTS5 table: push, clone, import work, and MATCH finds the same rows with the same ranks', async () => {
    makeDb(
      'notes',
      `CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
       CREATE VIRTUAL TABLE notes_fts USING fts5(title, body);
       INSERT INTO notes_fts (rowid, title, body) VALUES (3, 'groceries', 'milk and eggs'), (8, 'work', 'quarterly report eggs'), (12, 'misc', 1.0);
       INSERT INTO notes_fts (notes_fts, rank) VALUES ('rank', 'bm25(10.0, 1.0)');
       INSERT INTO notes VALUES (1, 'x');`,
    );
    const { pushed, clone, fresh, imported } = await pushCloneImport();
    expect(pushed.status).toBe('pushed');
    // The shadow tables are not in the mirror: the virtual table is rebuilt from its declaration.
    expect(fs.readdirSync(path.join(clone, 'notes')).sort()).toEqual(['notes.jsonl', 'notes_fts.jsonl', 'schema.sql']);
    expect(fs.readFileSync(path.join(clone, 'notes', 'schema.sql'), 'utf8')).not.toMatch(/notes_fts_(data|idx|content|docsize|config)/);
    expect(imported.databases[0]!.rows).toEqual({ notes: 1, notes_fts: 3 });
    const src = open(dbFile('notes'));
    const dst = open(dbFile('notes', fresh));
    const match = (db: Database.Database, q: string) => db.prepare('SELECT rowid, title, rank FROM notes_fts WHERE notes_fts MATCH ? ORDER BY rank').raw(true).all(q);
    expect(match(dst, 'eggs')).toEqual(match(src, 'eggs'));
    expect(match(dst, 'eggs')).toHaveLength(2);
    expect(dst.prepare("SELECT v FROM notes_fts_config WHERE k = 'rank'").pluck().get()).toBe('bm25(10.0, 1.0)');
    expect(dst.prepare('SELECT typeof(body) FROM notes_fts WHERE rowid = 12').pluck().get()).toBe('real');
    src.close();
    dst.close();
  });

  it('a table with AUTOINCREMENT whose highest row was deleted: after import the next id is not the deleted one', async () => {
    makeDb('tasks', "CREATE TABLE tasks (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT); INSERT INTO tasks (title) VALUES ('a'), ('b'), ('c'); DELETE FROM tasks WHERE id = 3;");
    const { fresh } = await pushCloneImport();
    const db = open(dbFile('tasks', fresh));
    expect(db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'tasks'").pluck().get()).toBe(3n);
    expect(db.prepare("INSERT INTO tasks (title) VALUES ('d') RETURNING id").pluck().get()).toBe(4n);
    db.close();
  });

  it('a table without an INTEGER PRIMARY KEY keeps its rowids 1, 5, 9 (and a text-keyed table its own)', async () => {
    makeDb(
      'plain',
      `CREATE TABLE events (what TEXT); INSERT INTO events (rowid, what) VALUES (1, 'one'), (5, 'five'), (9, 'nine');
       CREATE TABLE tags (name TEXT PRIMARY KEY, n INTEGER); INSERT INTO tags (rowid, name, n) VALUES (7, 'b', 1), (3, 'a', 2);`,
    );
    const { clone, fresh } = await pushCloneImport();
    expect(fs.readFileSync(path.join(clone, 'plain', 'events.jsonl'), 'utf8')).toBe('{"$rowid":1,"what":"one"}\n{"$rowid":5,"what":"five"}\n{"$rowid":9,"what":"nine"}\n');
    const db = open(dbFile('plain', fresh));
    expect(db.prepare('SELECT rowid, what FROM events ORDER BY rowid').raw(true).all()).toEqual([[1n, 'one'], [5n, 'five'], [9n, 'nine']]);
    expect(db.prepare('SELECT rowid, name FROM tags ORDER BY rowid').raw(true).all()).toEqual([[3n, 'a'], [7n, 'b']]);
    db.close();
  });

  it('values keep their storage class: whole REALs in typeless and ANY columns, -0.0, text that is not UTF-8, NULL vs empty, blobs', async () => {
    makeDb(
      'vals',
      `CREATE TABLE loose (id INTEGER PRIMARY KEY, v);
       CREATE TABLE strict_any (id INTEGER PRIMARY KEY, v ANY) STRICT;
       CREATE TABLE typed (id INTEGER PRIMARY KEY, r REAL, t TEXT NOT NULL, b BLOB);
       INSERT INTO loose VALUES (1, 1.0), (2, 1), (3, -0.0), (4, CAST(x'ff41' AS TEXT)), (5, ''), (6, NULL), (7, x''), (8, 1e20), (9, '1.0');
       INSERT INTO strict_any VALUES (1, 2.0), (2, 2), (3, CAST(x'c328' AS TEXT));
       INSERT INTO typed VALUES (1, 3.0, CAST(x'80' AS TEXT), x'00ff'), (2, NULL, '', NULL);`,
    );
    const { clone, fresh } = await pushCloneImport();
    const lines = fs.readFileSync(path.join(clone, 'vals', 'loose.jsonl'), 'utf8').split('\n');
    expect(lines.slice(0, 4)).toEqual(['{"id":1,"v":{"$real":"1.0"}}', '{"id":2,"v":1}', '{"id":3,"v":{"$real":"-0.0"}}', '{"id":4,"v":{"$text_base64":"/0E="}}']);
    // A REAL column turns 3 back into 3.0 by itself: its files stay as they were.
    expect(fs.readFileSync(path.join(clone, 'vals', 'typed.jsonl'), 'utf8')).toMatch(/^\{"id":1,"r":3,"t":\{"\$text_base64":"gA=="\},"b":\{"\$base64":"AP8="\}\}\n/);
    for (const t of ['loose', 'strict_any', 'typed']) {
      const src = new Database(dbFile('vals'), { readonly: true });
      const dst = new Database(dbFile('vals', fresh), { readonly: true });
      expect(tableRows(dst, t), t).toEqual(tableRows(src, t));
      src.close();
      dst.close();
    }
  });

  it('a UTF-16 database stays UTF-16: valid text (U+FFFD included) is plain JSON, text with a lone surrogate is kept as its bytes', async () => {
    const db = new Database(dbFile('wide'));
    db.pragma("encoding = 'UTF-16le'");
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, 'caf\u00e9 \ufffd'), (2, CAST(x'00d84100' AS TEXT));");
    db.close();
    const { clone, fresh } = await pushCloneImport();
    expect(fs.readFileSync(path.join(clone, 'wide', 't.jsonl'), 'utf8')).toBe('{"id":1,"v":"caf\u00e9 \ufffd"}\n{"id":2,"v":{"$text_base64":"ANhBAA=="}}\n');
    const src = new Database(dbFile('wide'), { readonly: true });
    const dst = new Database(dbFile('wide', fresh), { readonly: true });
    expect(dst.pragma('encoding', { simple: true })).toBe('UTF-16le');
    expect(tableRows(dst, 't')).toEqual(tableRows(src, 't'));
    src.close();
    dst.close();
  });

  it('generated columns are recomputed, WITHOUT ROWID and STRICT tables, indexes, views and triggers come back, and triggers do not fire while loading', async () => {
    makeDb(
      'shapes',
      `CREATE TABLE log (msg TEXT);
       CREATE TABLE items (k TEXT PRIMARY KEY, price REAL, qty INTEGER, total REAL GENERATED ALWAYS AS (price * qty) STORED, label TEXT AS (k || ':' || qty) VIRTUAL) WITHOUT ROWID;
       CREATE TABLE s (id INTEGER PRIMARY KEY, n INT, t TEXT) STRICT;
       CREATE INDEX items_by_price ON items (price);
       CREATE VIEW expensive AS SELECT k FROM items WHERE total > 10;
       CREATE TRIGGER items_log AFTER INSERT ON items BEGIN INSERT INTO log VALUES ('added ' || new.k); END;
       INSERT INTO items (k, price, qty) VALUES ('a', 2.5, 4), ('b', 20, 1);
       INSERT INTO s VALUES (1, 5, 'x');`,
    );
    const { fresh, clone } = await pushCloneImport();
    expect(fs.readFileSync(path.join(clone, 'shapes', 'items.jsonl'), 'utf8')).not.toMatch(/total|label/);
    const gen = { tables: ['log', 'items', 's'], fts: [], refused: [], documentable: {} };
    expect(describeDatabase(dbFile('shapes', fresh), gen)).toEqual(describeDatabase(dbFile('shapes'), gen));
  });

  it('what the mirror cannot carry is refused at push with the reason, per table; the other tables still go, and import says so', async () => {
    makeDb(
      'mixed',
      `CREATE TABLE kept (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO kept VALUES (1, 'here');
       CREATE VIRTUAL TABLE bare USING fts5(x, content=''); INSERT INTO bare (rowid, x) VALUES (1, 'only an index');`,
    );
    // A virtual table of a module this SQLite does not have (made as an extension would leave it).
    const db = new Database(dbFile('mixed'));
    db.unsafeMode(true);
    db.exec("PRAGMA writable_schema = ON; INSERT INTO sqlite_schema (type, name, tbl_name, rootpage, sql) VALUES ('table', 'geo', 'geo', 0, 'CREATE VIRTUAL TABLE geo USING spatial_index(a, b)'); PRAGMA writable_schema = OFF;");
    db.close();
    const { pushed, clone, fresh, imported } = await pushCloneImport();
    expect(pushed.status).toBe('pushed');
    expect(pushed.rows).toEqual({ 'mixed.kept': 1 });
    expect(pushed.skipped).toEqual([
      { path: 'mixed/bare', reason: expect.stringMatching(/^not carried: a contentless FTS5 table .* keeps only its index, not the text/) },
      { path: 'mixed/geo', reason: expect.stringMatching(/^not carried: its declaration cannot be re-created on another machine \(no such module: spatial_index\)/) },
    ]);
    const schema = fs.readFileSync(path.join(clone, 'mixed', 'schema.sql'), 'utf8');
    expect(schema).toContain("CREATE VIRTUAL TABLE bare USING fts5(x, content='')");
    expect(schema).not.toContain('spatial_index');
    expect(imported.not_in_mirror.map((x) => x.path)).toEqual(['mixed/bare', 'mixed/geo']);
    const dst = open(dbFile('mixed', fresh));
    expect(dst.prepare('SELECT v FROM kept').pluck().get()).toBe('here');
    expect(dst.prepare('SELECT count(*) FROM bare').pluck().get()).toBe(0n);
    dst.close();
  });

  it("the manifest records which state each database was read in; import reports it, and whether the clone still holds exactly that state", async () => {
    makeDb('a', "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'x');");
    const { clone, imported } = await pushCloneImport();
    const manifest = JSON.parse(fs.readFileSync(path.join(clone, 'manifest.json'), 'utf8')) as MirrorManifest;
    const source = manifest.databases.a!.source!;
    expect(source).toEqual({ snapshot_id: null, content_sha256: expect.stringMatching(/^[0-9a-f]{64}$/), taken_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) });
    expect(imported.databases[0]).toMatchObject({ name: 'a', source, source_matches: true });
    expect(imported.message).toMatch(/a: exactly the live database as read at /);

    // A push with nothing new keeps the record (no commit just for a new time).
    expect((await syncPush(loadConfig(root))).status).toBe('no_changes');
    // The same data gives the same content hash, whenever it is read.
    const again = materialize(path.join(work, 'again'), loadConfig(root).databases, { exclude: [], maxFileBytes: 1e9 });
    expect(again.databases.a!.source).toEqual({ snapshot_id: null, content_sha256: source.content_sha256, taken_at: null });

    // Edited in the repository after the push: the clone no longer holds exactly that state, and import says so.
    fs.appendFileSync(path.join(clone, 'a', 't.jsonl'), '{"id":2,"v":"edited on GitHub"}\n');
    const m = JSON.parse(fs.readFileSync(path.join(clone, 'manifest.json'), 'utf8')) as MirrorManifest;
    (m.databases.a!.tables.t as { rows: number }).rows = 2;
    fs.writeFileSync(path.join(clone, 'manifest.json'), JSON.stringify(m));
    const edited = await syncImport(loadConfig(path.join(work, 'edited')), clone);
    expect(edited.databases[0]).toMatchObject({ source_matches: false });
    expect(edited.message).toMatch(/a: the live database as read at .*changed since in the repository/);
    const dry = await syncImport(loadConfig(path.join(work, 'dry')), clone, { dryRun: true });
    expect(dry.databases[0]).toMatchObject({ source, source_matches: null });
  });

  it('a push that changes one database leaves the other databases\' source records as they were', async () => {
    makeDb('a', "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'x');");
    makeDb('b', "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'y');");
    expect((await syncPush(loadConfig(root))).status).toBe('pushed');
    const sources = () => {
      const clone = path.join(work, `look-${Math.random().toString(36).slice(2)}`);
      git(work, 'clone', '-q', bare, clone);
      const m = JSON.parse(fs.readFileSync(path.join(clone, 'manifest.json'), 'utf8')) as MirrorManifest;
      return { a: m.databases.a!.source!, b: m.databases.b!.source! };
    };
    const first = sources();
    const db = new Database(dbFile('a'));
    db.exec("UPDATE t SET v = 'changed' WHERE id = 1");
    db.close();
    const pushed = await syncPush(loadConfig(root));
    expect(pushed.files_changed).toEqual(['README.md', 'a/t.jsonl', 'manifest.json']);
    const second = sources();
    expect(second.b).toEqual(first.b);
    expect(second.a.content_sha256).not.toBe(first.a.content_sha256);
    expect(second.a.taken_at! > first.a.taken_at!).toBe(true);
  });

  it('settings from the manifest are checked before use: a made-up encoding or a non-number is refused and nothing is imported', async () => {
    makeDb('a', "CREATE TABLE t (id INTEGER PRIMARY KEY); PRAGMA application_id = 1234;");
    const mirror = path.join(work, 'mirror');
    const manifest = materialize(mirror, loadConfig(root).databases, { exclude: [], maxFileBytes: 1e9 });
    expect(manifest.databases.a!.pragmas).toEqual({ application_id: 1234 });
    const fresh = path.join(work, 'fresh');
    for (const pragmas of [{ encoding: "UTF-8'; ATTACH 'x' AS y; --" }, { application_id: '1; DROP TABLE t' }, { page_size: 1.5 }]) {
      const m = JSON.parse(fs.readFileSync(path.join(mirror, 'manifest.json'), 'utf8')) as MirrorManifest;
      (m.databases.a as { pragmas: unknown }).pragmas = pragmas;
      fs.writeFileSync(path.join(mirror, 'manifest.json'), JSON.stringify(m));
      await expect(syncImport(loadConfig(fresh), mirror)).rejects.toThrow(/The mirror cannot be imported: the manifest's (encoding|application_id|page_size) .* (is not one SQLite has \([^)]*\)|is not a whole number)\. Nothing was changed/);
      expect(fs.existsSync(dbFile('a', fresh))).toBe(false);
    }
  });

  it('a mirror written before these were carried (no $rowid, no source, FTS shadow tables dumped as tables) still imports', async () => {
    makeDb(
      'old',
      `CREATE TABLE t (v TEXT); INSERT INTO t (rowid, v) VALUES (1, 'a'), (2, 'b');
       CREATE VIRTUAL TABLE f USING fts5(body); INSERT INTO f (rowid, body) VALUES (4, 'hello world'), (6, 'hello there');`,
    );
    // The files an earlier wb-backup wrote: every CREATE statement (shadow tables too) and every
    // non-virtual table (shadow tables too) as JSONL, without rowids; no source in the manifest.
    const clone = path.join(work, 'legacy');
    fs.mkdirSync(path.join(clone, 'old'), { recursive: true });
    const src = open(dbFile('old'));
    const schema = src.prepare("SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END, name").pluck().all() as string[];
    fs.writeFileSync(path.join(clone, 'old', 'schema.sql'), schema.map((s) => `${s};\n`).join(''));
    const tables: Record<string, { file: string; rows: number }> = {};
    for (const name of src.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name").pluck().all() as string[]) {
      const cols = (src.prepare(`PRAGMA table_info("${name}")`).all() as Array<{ name: string }>).map((c) => c.name);
      const rows = src.prepare(`SELECT ${cols.map((c) => `"${c}"`).join(', ')} FROM "${name}"`).raw(true).all() as never[][];
      fs.writeFileSync(path.join(clone, 'old', `${name}.jsonl`), rows.map((r) => `${rowLine(cols, r)}\n`).join(''));
      tables[name] = { file: `old/${name}.jsonl`, rows: rows.length };
    }
    fs.writeFileSync(path.join(clone, 'manifest.json'), JSON.stringify({ schema_version: 1, databases: { old: { schema: 'old/schema.sql', user_version: 0, tables } }, skipped: [] }));
    const imported = await syncImport(loadConfig(path.join(work, 'fresh')), clone);
    expect(imported.databases[0]).toMatchObject({ source: null, source_matches: null });
    const dst = open(dbFile('old', path.join(work, 'fresh')));
    expect(dst.prepare('SELECT v FROM t ORDER BY rowid').pluck().all()).toEqual(['a', 'b']);
    // The index comes back as it was dumped, so MATCH works as before.
    expect(dst.prepare("SELECT rowid FROM f WHERE f MATCH 'hello' ORDER BY rowid").pluck().all()).toEqual([4n, 6n]);
    expect(dst.pragma('integrity_check', { simple: true })).toBe('ok');
    src.close();
    dst.close();
  });
  it('a mirror pushed before the shared name mapping (database Zeta, table Users, plain paths) still imports; a legacy path that leaves its folder is refused', async () => {
    const clone = path.join(work, 'legacy-names');
    fs.mkdirSync(path.join(clone, 'Zeta'), { recursive: true });
    fs.writeFileSync(path.join(clone, 'Zeta', 'schema.sql'), 'CREATE TABLE "Users" (id INTEGER PRIMARY KEY, name TEXT);\n');
    fs.writeFileSync(path.join(clone, 'Zeta', 'Users.jsonl'), '{"id":1,"name":"ada"}\n{"id":2,"name":"bob"}\n');
    const manifest = { schema_version: 1, databases: { Zeta: { schema: 'Zeta/schema.sql', user_version: 0, tables: { Users: { file: 'Zeta/Users.jsonl', rows: 2 } } } }, skipped: [] };
    fs.writeFileSync(path.join(clone, 'manifest.json'), JSON.stringify(manifest));
    const fresh = path.join(work, 'fresh-legacy');
    const imported = await syncImport(loadConfig(fresh), clone);
    expect(imported.databases.map((d) => d.name)).toEqual(['Zeta']);
    const dst = open(path.join(fresh, imported.databases[0]!.target));
    expect(dst.prepare('SELECT name FROM "Users" ORDER BY id').pluck().all()).toEqual(['ada', 'bob']);
    dst.close();

    const hostile = structuredClone(manifest) as { databases: { Zeta: { tables: Record<string, { file: string; rows: number }> } } };
    hostile.databases.Zeta.tables = { '../x': { file: 'Zeta/../x.jsonl', rows: 0 } };
    fs.writeFileSync(path.join(clone, 'manifest.json'), JSON.stringify(hostile));
    const other = path.join(work, 'fresh-hostile');
    await expect(syncImport(loadConfig(other), clone)).rejects.toThrow(/puts the table Zeta\.\.\.\/x in "Zeta\/\.\.\/x\.jsonl"/);
    expect(fs.existsSync(path.join(other, 'db'))).toBe(false);
  });
});

describe('documents and pull carry the same values', () => {
  it('a table mirrored as documents keeps its rowids ($rowid in the front matter), text that is not UTF-8 and whole REALs', async () => {
    writeConfigFile(root, { sync: { github: { remote_url: bare, documents: { 'wiki.pages': { body: 'body' } } } } });
    makeDb('wiki', "CREATE TABLE pages (slug TEXT PRIMARY KEY, body TEXT, n); INSERT INTO pages (rowid, slug, body, n) VALUES (4, 'b', 'plain', 1.0), (2, 'a', CAST(x'41ff' AS TEXT), 2);");
    const { clone, fresh } = await pushCloneImport();
    expect(fs.readFileSync(path.join(clone, 'wiki', 'pages', 'b.md'), 'utf8')).toBe('---\n$rowid: 4\nn: 1.0\n---\nplain');
    expect(fs.readFileSync(path.join(clone, 'wiki', 'pages', 'a.md'), 'utf8')).toBe('---\n$rowid: 2\nbody: { $text_base64: "Qf8=" }\nn: 2\n---\n');
    const src = new Database(dbFile('wiki'), { readonly: true });
    const dst = new Database(dbFile('wiki', fresh), { readonly: true });
    expect(tableRows(dst, 'pages')).toEqual(tableRows(src, 'pages'));
    src.close();
    dst.close();
  });

  it('pull applies a remote row next to text that is not UTF-8, which stays byte for byte (and can itself be pulled)', async () => {
    makeDb('kv', "CREATE TABLE kv (k TEXT PRIMARY KEY, v); INSERT INTO kv VALUES ('a', CAST(x'c328' AS TEXT)), ('b', 'old');");
    expect((await syncPush(loadConfig(root))).status).toBe('pushed');
    const other = path.join(work, 'other');
    git(work, 'clone', '-q', bare, other);
    const file = path.join(other, 'kv', 'kv.jsonl');
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('{"$rowid":1,"k":"a","v":{"$text_base64":"wyg="}}');
    lines[1] = lines[1]!.replace('"old"', '"new"');
    lines.push('{"k":"c","v":{"$text_base64":"gIA="}}');
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    git(other, 'commit', '-qam', 'edit on GitHub');
    git(other, 'push', '-q', 'origin', 'HEAD:trunk');
    const { syncPull } = await import('../src/sync/pull.js');
    const pulled = await syncPull(loadConfig(root));
    expect(pulled).toMatchObject({ status: 'applied', conflicts: [], rejected: [], applied: { 'kv.kv': { upserts: 2, deletes: 0 } } });
    const db = new Database(dbFile('kv'), { readonly: true });
    expect(db.prepare('SELECT k, typeof(v), hex(v) FROM kv ORDER BY k').raw(true).all()).toEqual([['a', 'text', 'C328'], ['b', 'text', '6E6577'], ['c', 'text', '8080']]);
    db.close();
  });
});

describe('the JSONL values of the mirror', () => {
  it('$real, $text_base64 and $rowid read back as the storage class they were written from', () => {
    const write = rowLineWriter(['a', 'b', 'c'], { tagReal: [true, false, true], rowidField: '$rowid' });
    const line = write([9n, 1, 2, new TextBytes(Buffer.from([0xff]))]);
    expect(line).toBe('{"$rowid":9,"a":{"$real":"1.0"},"b":2,"c":{"$text_base64":"/w=="}}');
    const [row] = parseRows(`${line}\n`, 't.jsonl', ['a', 'b', 'c']);
    expect(row![0]).toBe(1);
    expect(row![1]).toBe(2n);
    expect(row![2]).toBeInstanceOf(TextBytes);
    expect(() => parseRows('{"a":{"$real":"one"}}\n', 't.jsonl', ['a'])).toThrow(/t\.jsonl line 1, column a: .* is not a value this format writes/);
  });
});

describe('round trip over generated schemas and values (seeded)', () => {
  const SEEDS = Array.from({ length: 48 }, (_, i) => 1000 + i * 7919);

  it(`${SEEDS.length} generated databases (half with tables as documents): materialize + import give the same database, value by value and type by type`, async () => {
    let refusals = 0;
    let ftsCases = 0;
    let documentCases = 0;
    for (const seed of SEEDS) {
      const caseRoot = path.join(work, `case-${seed}`);
      fs.mkdirSync(path.join(caseRoot, 'db'), { recursive: true });
      const file = path.join(caseRoot, 'db', 'gen.db');
      const gen = generateDatabase(file, seed);
      const mirror = path.join(caseRoot, 'mirror');
      // Every other case mirrors its integer-keyed tables as Markdown documents instead of JSONL.
      const documents = seed % 2 ? {} : Object.fromEntries(Object.entries(gen.documentable).map(([t, body]) => [`gen.${t}`, { body }]));
      documentCases += Object.keys(documents).length ? 1 : 0;
      const manifest = materialize(mirror, [{ name: 'gen', path: file }], { exclude: [], maxFileBytes: 1e9, now: new Date(), documents });
      for (const key of Object.keys(documents)) expect((manifest.databases.gen!.tables[key.slice(4)] as { format?: string }).format, `seed ${seed} ${key}`).toBe('documents');
      const fresh = path.join(caseRoot, 'fresh');
      const imported = await syncImport(loadConfig(fresh), mirror);
      expect(imported.databases[0]!.source_matches, `seed ${seed}`).toBe(true);
      expect(describeDatabase(path.join(fresh, 'db', 'gen.db'), gen), `seed ${seed}`).toEqual(describeDatabase(file, gen));
      // Exactly the refused tables are listed, each with its reason; nothing else is left out.
      expect(manifest.skipped.map((s) => s.path), `seed ${seed}`).toEqual(gen.refused.map((t) => `gen/${t}`));
      refusals += gen.refused.length;
      ftsCases += gen.fts.length ? 1 : 0;
      rmrf(caseRoot);
    }
    // The generator reached what it is meant to cover.
    expect(refusals).toBeGreaterThan(3);
    expect(ftsCases).toBeGreaterThan(15);
    expect(documentCases).toBeGreaterThan(10);
  });

  it('through real git: push to a bare repository, clone, import, for a few generated databases', async () => {
    for (const seed of [11, 12, 13]) {
      rmrf(path.join(root, 'db'));
      fs.mkdirSync(path.join(root, 'db'), { recursive: true });
      const gen = generateDatabase(dbFile('gen'), seed);
      const { pushed, fresh } = await pushCloneImport(`fresh-${seed}`);
      expect(['pushed', 'no_changes']).toContain(pushed.status);
      expect(pushed.skipped.map((s) => s.path)).toEqual(gen.refused.map((t) => `gen/${t}`));
      expect(describeDatabase(dbFile('gen', fresh), gen), `seed ${seed}`).toEqual(describeDatabase(dbFile('gen'), gen));
    }
  });
});
