import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { directSyncRemote, git } from './support/bare-remote.js';
import { CLI, rmrf, tempRoot } from './support/fixtures.js';

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-odd-sync-');
  root = path.join(work, 'root');
  fs.mkdirSync(path.join(root, 'db'), { recursive: true });
});
afterEach(() => rmrf(work));

const wb = (r: string, ...args: string[]) => spawnSync(process.execPath, [CLI, '--root', r, ...args], { encoding: 'utf8' });

/** A bare remote, the root configured to push to it directly. */
const syncTo = (r: string): string => directSyncRemote(work, r);

describe('names taken from data (odd inputs)', () => {
  it('a table whose name is over 1000 characters: the snapshot that says it succeeded can be restored', () => {
    const db = new Database(path.join(root, 'db', 'long.db'));
    const name = 't'.repeat(1100);
    db.exec(`CREATE TABLE "${name}"(x); INSERT INTO "${name}" VALUES (1);`);
    db.close();
    const now = wb(root, 'now');
    expect(now.status, now.stderr).toBe(0);
    // Today: "MANIFEST.json is malformed (databases.0.rows.tttt…)": every snapshot of this root is unrestorable.
    const plan = wb(root, 'restore', 'latest', '--dry-run');
    expect(plan.stderr).not.toMatch(/malformed/);
    expect(plan.status, plan.stderr).toBe(0);
  });

  it('file names that are not valid UTF-8 are each backed up, or skipped with a true reason', () => {
    const dbDir = Buffer.from(path.join(root, 'db'));
    for (const byte of [0xff, 0xfe]) {
      const file = Buffer.concat([dbDir, Buffer.from([0x2f, byte]), Buffer.from('.db')]);
      // better-sqlite3 takes only strings: make it elsewhere, then rename by bytes.
      const tmp = path.join(work, `tmp${byte}.db`);
      const db = new Database(tmp);
      db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1);');
      db.close();
      fs.renameSync(tmp, file);
    }
    const keep = new Database(path.join(root, 'db', 'keep.db'));
    keep.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    keep.close();
    const now = wb(root, 'now');
    expect(now.status, now.stderr).toBe(0);
    const lastRun = JSON.parse(fs.readFileSync(path.join(root, 'backups', 'last_run.json'), 'utf8')) as { databases: number; skipped: Array<{ name: string; reason: string }> };
    // Today: both become the one name "%EF%BF%BD"; one is skipped as "the file does not exist"
    // (it does), the other as taken by "another database". Neither is backed up.
    for (const s of lastRun.skipped) expect(s.reason).not.toMatch(/does not exist|another database already takes/);
    expect(new Set(lastRun.skipped.map((s) => s.name)).size).toBe(lastRun.skipped.length);
    expect(lastRun.databases + lastRun.skipped.length).toBe(3);
  });

  it('a symbolic link under db/ to another database there: the snapshot can be restored as a whole', () => {
    const db = new Database(path.join(root, 'db', 'good.db'));
    db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    db.close();
    fs.symlinkSync('good.db', path.join(root, 'db', 'alias.db'));
    expect(wb(root, 'now').status).toBe(0);
    // Today: "The snapshot puts databases alias and good on the same file, db/good.db": every
    // snapshot is taken without a word, and `restore latest` refuses each one.
    const r = wb(root, 'restore', 'latest', '--dry-run');
    expect(r.status, r.stderr).toBe(0);
  });
});

describe('github-sync with odd inputs', () => {
  it('a database that already holds a foreign-key violation comes back from its mirror', () => {
    const db = new Database(path.join(root, 'db', 'data.db'));
    // SQLite leaves foreign keys off by default: many applications hold dangling references.
    db.pragma('foreign_keys = OFF');
    db.exec('CREATE TABLE p(id INTEGER PRIMARY KEY); CREATE TABLE c(id INTEGER PRIMARY KEY, pid REFERENCES p(id) ON DELETE CASCADE); INSERT INTO c VALUES (1, 99);');
    db.close();
    const bare = syncTo(root);
    const push = wb(root, 'sync', 'push');
    expect(push.status, push.stderr).toBe(0);
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const fresh = path.join(work, 'fresh');
    const imp = wb(fresh, 'sync', 'import', clone);
    // Today: push succeeds, import refuses ("data has 1 foreign-key violation(s) after loading").
    expect(imp.status, imp.stderr).toBe(0);
    const back = new Database(path.join(fresh, 'db', 'data.db'), { readonly: true });
    expect(back.prepare('SELECT * FROM c').all()).toEqual([{ id: 1, pid: 99 }]);
    back.close();
    // A dangling reference added in the repository since is still refused.
    fs.appendFileSync(path.join(clone, 'data', 'c.jsonl'), '{"id":2,"pid":77}\n');
    const manifestFile = path.join(clone, 'manifest.json');
    const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { databases: Record<string, { tables: Record<string, { rows: number }> }> };
    manifest.databases.data!.tables.c!.rows = 2;
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    const edited = wb(path.join(work, 'fresh2'), 'sync', 'import', clone);
    expect(edited.stderr).toMatch(/foreign-key violation/);
  });

  it('a pulled $base64 or $text_base64 that is not base64 is rejected, not written as other bytes', () => {
    const db = new Database(path.join(root, 'db', 'data.db'));
    db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB, s TEXT); INSERT INTO t VALUES (1, x'0102', 'a'), (2, NULL, 'b');");
    db.close();
    const bare = syncTo(root);
    expect(wb(root, 'sync', 'push').status).toBe(0);
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const file = path.join(clone, 'data', 't.jsonl');
    const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    rows[0]!.b = { $base64: '!!!not base64###' };
    rows[1]!.s = { $text_base64: '////' + '%%' };
    fs.writeFileSync(file, rows.map((r) => JSON.stringify(r) + '\n').join(''));
    git(clone, 'commit', '-qam', 'edit on the remote');
    git(clone, 'push', '-q', 'origin', 'HEAD:main');
    const pull = wb(root, 'sync', 'pull', '--json');
    const after = new Database(path.join(root, 'db', 'data.db'), { readonly: true });
    const now = after.prepare('SELECT id, hex(b) AS b, hex(s) AS s FROM t ORDER BY id').all();
    after.close();
    // Today: applied, b becomes 9E8B5B6AC7BA and s becomes FFFFFF.
    expect(now).toEqual([{ id: 1, b: '0102', s: '61' }, { id: 2, b: '', s: '62' }]);
    expect(pull.stdout).toMatch(/not a value this format writes|base64/);
  });

  it('a row added on GitHub (the pull workflow) does not make the mirror un-importable', () => {
    const db = new Database(path.join(root, 'db', 'data.db'));
    db.exec("CREATE TABLE ai(id INTEGER PRIMARY KEY AUTOINCREMENT, x); INSERT INTO ai(x) VALUES ('p'), ('q');");
    db.close();
    const bare = syncTo(root);
    expect(wb(root, 'sync', 'push').status).toBe(0);
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    fs.appendFileSync(path.join(clone, 'data', 'ai.jsonl'), '{"id":10,"x":"r"}\n');
    git(clone, 'commit', '-qam', 'a row added on GitHub');
    // The machine is wiped before the next push: the clone is all there is.
    const fresh = path.join(work, 'fresh');
    const imp = wb(fresh, 'sync', 'import', clone);
    // Today: "data/ai.jsonl holds 3 rows, the manifest says 2 ... check out an earlier commit" (which loses the row).
    expect(imp.status, imp.stderr).toBe(0);
    const back = new Database(path.join(fresh, 'db', 'data.db'), { readonly: true });
    expect(back.prepare('SELECT x FROM ai ORDER BY id').pluck().all()).toEqual(['p', 'q', 'r']);
    back.close();
  });

  it('a table named __proto__ (and an FTS5 one with settings) comes back with its rows', () => {
    const db = new Database(path.join(root, 'db', 'data.db'));
    db.exec(`CREATE TABLE "__proto__"(id INTEGER PRIMARY KEY, x); INSERT INTO "__proto__" VALUES (1, 'kept');
      CREATE TABLE "constructor"(a); INSERT INTO "constructor" VALUES (2);
      CREATE VIRTUAL TABLE "toString" USING fts5(a); INSERT INTO "toString"("toString", rank) VALUES ('automerge', 8); INSERT INTO "toString"(rowid, a) VALUES (5, 'hello');`);
    db.close();
    const bare = syncTo(root);
    expect(wb(root, 'sync', 'push').status).toBe(0);
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const fresh = path.join(work, 'fresh');
    const imp = wb(fresh, 'sync', 'import', clone);
    expect(imp.status, imp.stderr).toBe(0);
    const back = new Database(path.join(fresh, 'db', 'data.db'), { readonly: true });
    // Before the fix: the manifest left __proto__ out (entry.tables[name] = … set the prototype),
    // so the import said "exactly the live database" and the table was empty.
    expect(back.prepare('SELECT * FROM "__proto__"').all()).toEqual([{ id: 1, x: 'kept' }]);
    expect(back.prepare('SELECT a FROM "constructor"').pluck().all()).toEqual([2]);
    expect(back.prepare('SELECT rowid, a FROM "toString"').all()).toEqual([{ rowid: 5, a: 'hello' }]);
    back.close();
  });

  it('a database whose name is cut (a long or non-Latin file name) comes back from the mirror at its own path', () => {
    // 14 CJK characters: 126 escaped characters, past MAX_LOGICAL_NAME, so the logical name is cut with a hash.
    const file = '家計簿データベース二〇二六年.db';
    const db = new Database(path.join(root, 'db', file));
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES ('kept');");
    db.close();
    const bare = syncTo(root);
    expect(wb(root, 'sync', 'push').status).toBe(0);
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const fresh = path.join(work, 'fresh');
    const imp = wb(fresh, 'sync', 'import', clone);
    expect(imp.status, imp.stderr).toBe(0);
    // Today: it comes back as db/%E5%AE%B6…~<hash>.db, where the application does not look, and
    // the next push from the rebuilt machine mirrors it under yet another name.
    expect(fs.readdirSync(path.join(fresh, 'db'))).toEqual([file]);
  });

  it('sync push on the command line says which databases it left out', () => {
    const db = new Database(path.join(root, 'db', 'good.db'));
    db.exec('CREATE TABLE t(x); INSERT INTO t VALUES (1);');
    db.close();
    fs.writeFileSync(path.join(root, 'db', 'bad.db'), Buffer.alloc(4096, 7));
    syncTo(root);
    const push = wb(root, 'sync', 'push');
    expect(push.status).toBe(0);
    // Before: "pushed: Pushed 4 changed file(s)" and the files, not a word about bad.db.
    expect(push.stdout).toMatch(/skipped bad: .*not a database/);
  });

  it('documents: a pulled $text_base64 that is not base64 is rejected; a non-UTF-8 text key is skipped with a true reason', () => {
    const db = new Database(path.join(root, 'db', 'data.db'));
    db.exec("CREATE TABLE p(k PRIMARY KEY, content, n); INSERT INTO p VALUES (1, 'a', 'x'), (2, 'b', 'y'), (CAST(x'ff41' AS TEXT), 'c', 'z');");
    db.close();
    const bare = syncTo(root);
    fs.appendFileSync(path.join(root, 'wb-backup.yaml'), '    documents:\n      data.p: { body: content }\n');
    const push = wb(root, 'sync', 'push', '--json');
    expect(push.status, push.stderr).toBe(0);
    const skipped = (JSON.parse(push.stdout) as { skipped: Array<{ reason: string }> }).skipped;
    // Before: "a real key cannot be a file name" for a TEXT key.
    expect(skipped.map((s) => s.reason)).toEqual([expect.stringMatching(/text key that is not valid UTF-8/)]);
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const doc = path.join(clone, 'data', 'p', '2.md');
    fs.writeFileSync(doc, fs.readFileSync(doc, 'utf8').replace(/n: .*/, 'n: { $text_base64: "A" }'));
    git(clone, 'commit', '-qam', 'edit on the remote');
    git(clone, 'push', '-q', 'origin', 'HEAD:main');
    const pull = wb(root, 'sync', 'pull', '--json');
    const after = new Database(path.join(root, 'db', 'data.db'), { readonly: true });
    // Before: applied, n became '' ("A" decodes to no bytes).
    expect(after.prepare('SELECT n FROM p WHERE k = 2').pluck().get()).toBe('y');
    after.close();
    expect((JSON.parse(pull.stdout) as { rejected: unknown[] }).rejected).toHaveLength(1);
  });

  it.runIf(process.getuid?.() === 0)('an import that fills the disk says the disk is full, not "fix that file in the repository"', () => {
    const db = new Database(path.join(root, 'db', 'data.db'));
    db.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, b); WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300) INSERT INTO t(b) SELECT randomblob(2000) FROM c;");
    db.close();
    const bare = syncTo(root);
    expect(wb(root, 'sync', 'push').status).toBe(0);
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const small = path.join(work, 'small');
    fs.mkdirSync(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', small]);
    try {
      const imp = wb(small, 'sync', 'import', clone);
      expect(imp.status).not.toBe(0);
      // Before: "The mirror cannot be imported: database or disk is full. ... Fix that file in the repository (or check out an earlier commit)".
      expect(imp.stderr).toMatch(/disk .*is full/);
      expect(imp.stderr).not.toMatch(/Fix that file in the repository/);
      // At 0 bytes free the lock cannot even be written: before, a bare "ENOSPC: no space left on device, write".
      const filler = path.join(small, 'filler');
      spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k']);
      const full = wb(small, 'sync', 'import', clone);
      expect(full.stderr).toMatch(/disk .*is full.*Free some space/);
    } finally {
      execFileSync('umount', [small]);
    }
  });

  it('a parent deleted on GitHub whose children are still there: the pull does not delete the children by cascade', () => {
    const db = new Database(path.join(root, 'db', 'data.db'));
    db.exec("CREATE TABLE p(id INTEGER PRIMARY KEY, n); CREATE TABLE c(id INTEGER PRIMARY KEY, pid REFERENCES p(id) ON DELETE CASCADE, v); INSERT INTO p VALUES (1, 'a'), (2, 'b'); INSERT INTO c VALUES (10, 1, 'x'), (11, 1, 'y'), (12, 2, 'z');");
    db.close();
    const bare = syncTo(root);
    expect(wb(root, 'sync', 'push').status).toBe(0);
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const pFile = path.join(clone, 'data', 'p.jsonl');
    fs.writeFileSync(pFile, fs.readFileSync(pFile, 'utf8').split('\n').filter((l) => !l.startsWith('{"id":1,')).join('\n'));
    git(clone, 'commit', '-qam', 'parent 1 deleted on GitHub, its children left');
    git(clone, 'push', '-q', 'origin', 'HEAD:main');
    const pull = wb(root, 'sync', 'pull', '--json');
    const after = new Database(path.join(root, 'db', 'data.db'), { readonly: true });
    const children = after.prepare('SELECT id FROM c ORDER BY id').pluck().all();
    after.close();
    // Today: "Applied 1 row change(s)", and children 10 and 11, which the remote still holds, are
    // gone locally (the next push deletes them from the remote too). The remote's rows break the
    // foreign key, so per docs/github-sync.md the database's changes are rejected, not cascaded.
    expect(children).toEqual([10, 11, 12]);
    expect((JSON.parse(pull.stdout) as { rejected: unknown[] }).rejected).toHaveLength(1);
  });
});
