import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { syncImport } from '../src/sync/import.js';
import { syncPull } from '../src/sync/pull.js';
import { tableOfPath, tablesOverBudget } from '../src/sync/push-budget.js';
import { syncPush } from '../src/sync/push.js';
import { readState } from '../src/sync/state.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { dumpTables } from './support/db-snapshot.js';
import { rmrf, tempRoot } from './support/fixtures.js';

describe('tablesOverBudget: which changed tables wait for a later push (pure)', () => {
  const golden: Array<[string, Array<[string, number]>, number, string[]]> = [
    ['everything fits', [['a/x', 10], ['a/y', 20]], 30, []],
    ['in name order; the one that does not fit waits', [['b/y', 20], ['a/x', 25]], 30, ['b/y']],
    ['a smaller table after a deferred one still goes', [['a/big', 25], ['a/huge', 40], ['a/small', 5]], 30, ['a/huge']],
    ['a table larger than the cap on its own always waits', [['a/x', 31]], 30, ['a/x']],
    ['nothing changed', [], 30, []],
  ];
  for (const [label, changes, budget, expected] of golden) {
    it(label, () => {
      expect(tablesOverBudget(changes.map(([table, bytes]) => ({ table, bytes })), budget).map((c) => c.table)).toEqual(expected);
    });
  }
  it('maps mirror paths to their table', () => {
    expect(tableOfPath('notes/notes.jsonl')).toBe('notes/notes');
    expect(tableOfPath('wiki/pages/%48ello.md')).toBe('wiki/pages');
    expect(tableOfPath('wiki/pages/.gitattributes')).toBe('wiki/pages');
    expect(tableOfPath('notes/schema.sql')).toBeNull();
    expect(tableOfPath('manifest.json')).toBeNull();
  });
});

describe('the per-push cap with real git: tables over it wait for a later sync, listed as skipped', () => {
  let work: string;
  let root: string;
  let bare: string;
  const big = () => path.join(root, 'db', 'big.db');
  const fill = (table: string, rows: number, from = 1) => {
    const db = new Database(big());
    db.exec(`CREATE TABLE IF NOT EXISTS ${table} (id INTEGER PRIMARY KEY, text TEXT)`);
    const ins = db.prepare(`INSERT INTO ${table} (id, text) VALUES (?, ?)`);
    db.transaction(() => {
      for (let i = from; i < from + rows; i++) ins.run(i, `row ${i} `.padEnd(90, 'x'));
    })();
    db.close();
  };
  const cap = (bytes: number) => writeConfigFile(root, { sync: { github: { remote_url: bare, max_push_bytes: bytes } } });
  const cloneOf = (name: string) => {
    const dir = path.join(work, name);
    git(work, 'clone', '-q', bare, dir);
    return dir;
  };

  beforeEach(() => {
    work = tempRoot('wb-sync-cap-');
    root = path.join(work, 'root');
    bare = seededBareRemote(work);
    fs.mkdirSync(path.join(root, 'db'), { recursive: true });
    fill('a_first', 200); // ~20 KB of JSONL each
    fill('b_second', 200);
    fill('c_small', 3);
  });
  afterEach(() => rmrf(work));

  it('a mirror larger than the cap arrives over two syncs; each commit is consistent, and the end result imports equal to the source', async () => {
    cap(25_000);
    const first = await syncPush(loadConfig(root));
    expect(first.status).toBe('pushed');
    expect(first.skipped).toEqual([{ path: 'big/b_second', reason: expect.stringMatching(/over the per-push cap of 24\.4 KiB.*a later sync pushes it/) }]);
    expect(first.files_changed).toEqual(['README.md', 'big/a_first.jsonl', 'big/c_small.jsonl', 'big/schema.sql', 'manifest.json']);
    const partial = cloneOf('partial');
    const manifest = JSON.parse(fs.readFileSync(path.join(partial, 'manifest.json'), 'utf8')) as { databases: { big: { tables: Record<string, unknown> } }; skipped: Array<{ path: string }> };
    expect(Object.keys(manifest.databases.big.tables)).toEqual(['a_first', 'c_small']);
    expect(manifest.skipped.map((s) => s.path)).toEqual(['big/b_second']);
    // The partial mirror imports: what it lists is complete, the deferred table comes in empty.
    const early = await syncImport(loadConfig(path.join(work, 'early')), partial);
    expect(early.databases[0]!.rows).toEqual({ a_first: 200, c_small: 3 });
    expect(early.not_in_mirror.map((x) => x.path)).toEqual(['big/b_second']);
    expect(early.message).toMatch(/does not hold everything: big\/b_second/);

    const second = await syncPush(loadConfig(root));
    expect(second).toMatchObject({ status: 'pushed', skipped: [], files_changed: ['README.md', 'big/b_second.jsonl', 'manifest.json'] });
    const full = cloneOf('full');
    await syncImport(loadConfig(path.join(work, 'fresh')), full);
    expect(dumpTables(path.join(work, 'fresh', 'db', 'big.db'))).toEqual(dumpTables(big()));
    expect((await syncPush(loadConfig(root))).status).toBe('no_changes');
  });

  it('a table whose changes are larger than the cap on their own is never pushed, says so, and the rest still goes', async () => {
    cap(10_000);
    const first = await syncPush(loadConfig(root));
    expect(first.status).toBe('pushed');
    expect(first.skipped.map((s) => s.path)).toEqual(['big/a_first', 'big/b_second']);
    expect(first.skipped[0]!.reason).toMatch(/larger than the per-push cap of 9\.8 KiB on their own.*raise sync\.github\.max_push_bytes or exclude/);
    const again = await syncPush(loadConfig(root));
    expect(again.status).toBe('no_changes');
    expect(again.message).toMatch(/Nothing could be pushed within the per-push cap.*big\/a_first, big\/b_second/);
  });

  it('held back by the cap, a table the remote edited does not let the sync base skip that edit: pull still brings it in', async () => {
    cap(1_000_000);
    const first = await syncPush(loadConfig(root));
    expect(first.status).toBe('pushed');
    // a_first grows here beyond what one push may carry: the next sync records it as held back.
    fill('a_first', 400, 1000);
    cap(20_000);
    const second = await syncPush(loadConfig(root));
    expect(second).toMatchObject({ status: 'pushed', files_changed: ['README.md', 'manifest.json'] });
    expect(second.skipped.map((s) => s.path)).toEqual(['big/a_first']);
    // On GitHub someone edits a row of a_first (the version the mirror still holds)...
    const other = cloneOf('other');
    const file = path.join(other, 'big', 'a_first.jsonl');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"row 7 ', '"edited on GitHub 7 '));
    git(other, 'commit', '-q', '-am', 'edit');
    git(other, 'push', '-q', 'origin', 'HEAD:trunk');
    // ...so the remote now equals what this machine would push, except for the held-back table.
    const held = await syncPush(loadConfig(root));
    expect(held.status).toBe('no_changes');
    expect(held.message).toMatch(/Nothing could be pushed within the per-push cap/);
    expect(readState(root).last_synced_sha).toBe(second.commit); // the base did not jump over the remote edit
    const pulled = await syncPull(loadConfig(root));
    expect(pulled.applied).toEqual({ 'big.a_first': { upserts: 1, deletes: 0 } });
    const db = new Database(big(), { readonly: true });
    expect(db.prepare('SELECT text FROM a_first WHERE id = 7').pluck().get()).toMatch(/^edited on GitHub 7 /);
    expect(db.prepare('SELECT count(*) FROM a_first').pluck().get()).toBe(600);
    db.close();
  });
});
