import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { WbError } from '../src/core/errors.js';
import { runRecover, type RecoverOptions } from '../src/recover/recover.js';
import { rmrf, tempRoot } from './support/fixtures.js';

let root: string;
const live = () => path.join(root, 'db', 'odd.db');
const yes = async () => ({ granted: true as const });
const hour = (h: number) => () => new Date(Date.UTC(2026, 10, 29, h, 0, 0));

function withDb<T>(fn: (db: Database.Database) => T): T {
  const db = new Database(live());
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

async function snapshotOf(schema: string, fill: string): Promise<string> {
  fs.mkdirSync(path.dirname(live()), { recursive: true });
  withDb((db) => {
    db.pragma('journal_mode = WAL');
    db.exec(schema);
    db.exec(fill);
  });
  return (await runBackup(loadConfig(root), { now: hour(10) })).snapshot_id;
}

const recover = (snapshotId: string, o: Partial<RecoverOptions>) => runRecover(loadConfig(root), { snapshotId, database: 'odd', consent: yes, now: hour(11), ...o } as RecoverOptions);

async function failure(p: Promise<unknown>): Promise<WbError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WbError);
  return err as WbError;
}

beforeEach(() => {
  root = tempRoot('wb-adv18-');
});
afterEach(() => rmrf(root));

describe('recovering rows never silently removes or alters other live rows', () => {
  it('recovering a row whose UNIQUE ON CONFLICT REPLACE value is now used by another live row refuses instead of deleting that live row', async () => {
    const id = await snapshotOf(
      'CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT UNIQUE ON CONFLICT REPLACE, note TEXT);',
      "INSERT INTO tags VALUES (1, 'urgent', 'old'), (2, 'later', 'x');",
    );
    // The user deleted tag 1 by mistake, then created a new tag with the same name.
    withDb((db) => db.exec("DELETE FROM tags WHERE id = 1; INSERT INTO tags VALUES (7, 'urgent', 'new');"));
    const err = await failure(recover(id, { table: 'tags', keys: [1] }));
    expect(err.message).toMatch(/UNIQUE/);
    // The live row 7 is still there: nothing was replaced.
    expect(withDb((db) => db.prepare('SELECT id, name, note FROM tags ORDER BY id').all())).toEqual([
      { id: 2, name: 'later', note: 'x' },
      { id: 7, name: 'urgent', note: 'new' },
    ]);
  });

  it('a trigger on the live table that rewrites a recovered row makes the recovery refuse, not report the row back with other values', async () => {
    const id = await snapshotOf(
      'CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT, stamp TEXT);',
      "INSERT INTO items VALUES (1, 'keep me', 'from-snapshot'), (2, 'other', 's2');",
    );
    withDb((db) =>
      db.exec(`DELETE FROM items WHERE id = 1;
        CREATE TRIGGER items_stamp AFTER INSERT ON items BEGIN UPDATE items SET stamp = 'rewritten-by-trigger' WHERE id = NEW.id; END;`),
    );
    const err = await failure(recover(id, { table: 'items', keys: [1] }));
    expect(err.message).toMatch(/trigger/i);
    expect(err.message).toMatch(/items/);
    // Rolled back: row 1 is not there with other values.
    expect(withDb((db) => db.prepare('SELECT id, title, stamp FROM items ORDER BY id').all())).toEqual([{ id: 2, title: 'other', stamp: 's2' }]);
  });

  it('a trigger on the live table that deletes other live rows when a row is inserted makes the recovery refuse', async () => {
    const id = await snapshotOf(
      'CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT);',
      "INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c');",
    );
    withDb((db) => db.exec(`DELETE FROM items WHERE id = 1; CREATE TRIGGER only_one AFTER INSERT ON items BEGIN DELETE FROM items WHERE id <> NEW.id; END;`));
    const err = await failure(recover(id, { table: 'items', keys: [1] }));
    expect(err.message).toMatch(/trigger/i);
    expect(withDb((db) => db.prepare('SELECT id FROM items ORDER BY id').pluck().all())).toEqual([2, 3]);
  });

  it('a table kept in a full-text index by triggers still recovers: the row is back, searchable, and the extra index writes are said in the warnings', async () => {
    const id = await snapshotOf(
      `CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT);
       CREATE VIRTUAL TABLE docs_fts USING fts5(body, content='docs', content_rowid='id');
       CREATE TRIGGER docs_ai AFTER INSERT ON docs BEGIN INSERT INTO docs_fts(rowid, body) VALUES (new.id, new.body); END;
       CREATE TRIGGER docs_ad AFTER DELETE ON docs BEGIN INSERT INTO docs_fts(docs_fts, rowid, body) VALUES ('delete', old.id, old.body); END;`,
      "INSERT INTO docs VALUES (1, 'alpha bravo'), (2, 'charlie delta');",
    );
    withDb((db) => db.exec('DELETE FROM docs WHERE id = 1'));
    const r = await recover(id, { table: 'docs', keys: [1] });
    expect(r.applied).toBe(true);
    expect(r.warnings.join(' ')).toMatch(/docs_ai on docs/);
    expect(withDb((db) => db.prepare("SELECT rowid FROM docs_fts WHERE docs_fts MATCH 'bravo'").pluck().all())).toEqual([1]);
    expect(withDb((db) => db.prepare('SELECT id, body FROM docs ORDER BY id').all())).toEqual([
      { id: 1, body: 'alpha bravo' },
      { id: 2, body: 'charlie delta' },
    ]);
  });
});

describe('diffing tables a demanding user has', () => {
  it('a table whose text primary key holds NULLs (allowed in a rowid table) is diffed row by row: the one deleted row is reported, nothing else', async () => {
    const { snapshotDiff } = await import('../src/inspect/diff.js');
    const a = await snapshotOf('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT);', "INSERT INTO t VALUES (NULL, 'a'), (NULL, 'b'), (NULL, 'c'), ('x', 'kept');");
    withDb((db) => db.exec("DELETE FROM t WHERE v = 'a'"));
    const b = (await runBackup(loadConfig(root), { now: hour(12) })).snapshot_id;
    const d = await snapshotDiff(loadConfig(root), { from: a, to: b });
    const t = d.databases[0]!.tables.find((x) => x.table === 't')!;
    expect({ added: t.added, deleted: t.deleted, changed: t.changed }).toEqual({ added: 0, deleted: 1, changed: 0 });
    expect(t.sample[0]).toMatchObject({ change: 'deleted', before: { v: 'a' } });
  });

  it('a forged or mangled rows_cursor gets a clear invalid_input, not a crash', async () => {
    const { snapshotDiff } = await import('../src/inspect/diff.js');
    const a = await snapshotOf('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);', "INSERT INTO t VALUES (1, 'a');");
    const forged = (key: unknown) => Buffer.from(JSON.stringify({ v: 1, from: a, to: a, db: 'odd', table: 't', key }), 'utf8').toString('base64url');
    for (const key of [[{ i: 'not-a-number' }], [], [1, 2, 3], [{ b: 'zz' }], [{}], [true]]) {
      const err = await failure(snapshotDiff(loadConfig(root), { from: a, to: a, rowsCursor: forged(key) }));
      expect(err.code).toBe('invalid_input');
      expect(err.message).toMatch(/rows_cursor/);
    }
    const other = await failure(snapshotDiff(loadConfig(root), { from: a, to: a, rowsCursor: Buffer.from(JSON.stringify({ v: 1, from: a, to: a, db: 'odd', table: 'nope', key: [1] })).toString('base64url') }));
    expect(other.code).toBe('invalid_input');
  });
});

describe('recovering rows whose primary key holds NULL', () => {
  it('recovering a row with a NULL primary key (on_conflict use_snapshot) refuses instead of overwriting the other NULL-key live rows', async () => {
    const id = await snapshotOf('CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT);', "INSERT INTO t VALUES (NULL, 'a'), (NULL, 'b'), ('x', 'kept');");
    withDb((db) => db.exec("DELETE FROM t WHERE v = 'a'; UPDATE t SET v = 'B' WHERE v = 'b';"));
    const err = await failure(recover(id, { table: 't', where: "v = 'a'", onConflict: 'use_snapshot' }));
    expect(err.message).toMatch(/NULL/);
    expect(withDb((db) => db.prepare('SELECT k, v FROM t ORDER BY v').all())).toEqual([
      { k: null, v: 'B' },
      { k: 'x', v: 'kept' },
    ]);
  });
});

describe('where expressions over columns with awkward names', () => {
  it('a where over quoted columns named like SQL words ("update", "values", "order") is accepted, and quoted names still cannot call functions', async () => {
    const id = await snapshotOf('CREATE TABLE "my items" ("update" TEXT, "values" INTEGER, "order" INTEGER, "größe" TEXT);', `INSERT INTO "my items" VALUES ('u1', 1, 10, 'gross'), ('u2', 2, 20, 'klein');`);
    withDb((db) => db.exec(`DELETE FROM "my items"`));
    const dry = await recover(id, { table: 'my items', where: `"update" = 'u1' AND "values" < 5 AND [order] = 10 AND "größe" = 'gross'`, dryRun: true });
    expect(dry.plan.chosen).toBe(1);
    expect(dry.plan.sample[0]!.row).toMatchObject({ update: 'u1', values: 1, order: 10 });
    const err = await failure(recover(id, { table: 'my items', where: `"load_extension"('x') IS NULL`, dryRun: true }));
    expect(err.code).toBe('invalid_input');
    expect(err.message).toMatch(/calls "load_extension"/);
    const err2 = await failure(recover(id, { table: 'my items', where: `"randomblob"(1000000000) IS NULL`, dryRun: true }));
    expect(err2.code).toBe('invalid_input');
  });
});

describe('a table without a primary key that has a column named rowid', () => {
  it('the key the diff shows (_rowid_) recovers the deleted row, with its own values and rowid', async () => {
    const { snapshotDiff } = await import('../src/inspect/diff.js');
    const id = await snapshotOf('CREATE TABLE log (rowid TEXT, msg TEXT);', "INSERT INTO log VALUES ('r-a', 'hello'), ('r-b', 'bye');");
    withDb((db) => db.exec("DELETE FROM log WHERE msg = 'hello'"));
    const d = await snapshotDiff(loadConfig(root), { from: id, to: 'live' });
    const t = d.databases[0]!.tables.find((x) => x.table === 'log')!;
    expect(t.key).toEqual(['_rowid_']);
    expect(t.sample[0]).toMatchObject({ change: 'deleted', key: { _rowid_: 1 } });
    const r = await recover(id, { table: 'log', keys: [1] });
    expect(r.applied).toBe(true);
    expect(r.plan.key_columns).toEqual(['_rowid_']);
    expect(withDb((db) => db.prepare('SELECT _rowid_ AS n, rowid, msg FROM log ORDER BY _rowid_').all())).toEqual([
      { n: 1, rowid: 'r-a', msg: 'hello' },
      { n: 2, rowid: 'r-b', msg: 'bye' },
    ]);
  });
});

describe('the snapshot cache is not trusted for a recovery', () => {
  it('a cached snapshot image someone edited in place (same size) does not make the recovery write the edited values', async () => {
    const { cachedSnapshotDatabase } = await import('../src/inspect/cache.js');
    const id = await snapshotOf('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);', "INSERT INTO notes VALUES (1, 'original'), (2, 'two');");
    const cached = await cachedSnapshotDatabase(loadConfig(root), id, 'odd');
    const size = fs.statSync(cached.file).size;
    // A user pokes at the cache with a SQLite shell and changes a value.
    const poke = new Database(cached.file);
    poke.exec("UPDATE notes SET body = 'TAMPERED' WHERE id = 1");
    poke.close();
    expect(fs.statSync(cached.file).size).toBe(size);
    withDb((db) => db.exec('DELETE FROM notes WHERE id = 1'));
    const r = await recover(id, { table: 'notes', keys: [1] });
    expect(r.applied).toBe(true);
    expect(withDb((db) => db.prepare('SELECT body FROM notes WHERE id = 1').pluck().get())).toBe('original');
  });
});

describe('diff filters', () => {
  it('tables ["Tasks"] diffs the table tasks (names are case-insensitive), and a table name no database has is an error, not "no differences"', async () => {
    const { snapshotDiff } = await import('../src/inspect/diff.js');
    const a = await snapshotOf('CREATE TABLE tasks (id INTEGER PRIMARY KEY, v TEXT);', "INSERT INTO tasks VALUES (1, 'a'), (2, 'b');");
    withDb((db) => db.exec('DELETE FROM tasks WHERE id = 1'));
    const d = await snapshotDiff(loadConfig(root), { from: a, to: 'live', tables: ['Tasks'] });
    expect(d.totals.rows_deleted).toBe(1);
    const err = await failure(snapshotDiff(loadConfig(root), { from: a, to: 'live', tables: ['taks'] }));
    expect(err.code).toBe('invalid_input');
    expect(err.message).toMatch(/taks/);
  });
});

describe('recover table names', () => {
  it('recovering from table "Notes" finds the table notes (names are case-insensitive in SQLite)', async () => {
    const id = await snapshotOf('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);', "INSERT INTO notes VALUES (1, 'one');");
    withDb((db) => db.exec('DELETE FROM notes'));
    const r = await recover(id, { table: 'Notes', keys: [1] });
    expect(r.applied).toBe(true);
    expect(withDb((db) => db.prepare('SELECT body FROM notes').pluck().all())).toEqual(['one']);
  });
});
