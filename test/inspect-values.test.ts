// "The diff called a row deleted and added again": keys must compare exactly as SQLite orders them.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { compareValues } from '../src/inspect/values.js';

describe('key order of the diff merge', () => {
  it('sorts mixed values (integers, reals, text with characters beyond U+FFFF, blobs, NULL) exactly as ORDER BY ... COLLATE BINARY', () => {
    const db = new Database(':memory:');
    db.defaultSafeIntegers(true);
    db.exec('CREATE TABLE t (k)');
    const values: unknown[] = [null, 3, 2.5, -1, 9007199254740993n, 'a', 'B', 'é', '\uFF21', '😀', 'a😀', 'a\uFFFF', Buffer.from([0]), Buffer.from([1, 2]), ''];
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    for (const v of values) insert.run(v);
    const sqlite = db.prepare('SELECT k FROM t ORDER BY k COLLATE BINARY').pluck().all();
    const ours = [...(db.prepare('SELECT k FROM t').pluck().all())].sort(compareValues);
    expect(ours).toEqual(sqlite);
  });
});
