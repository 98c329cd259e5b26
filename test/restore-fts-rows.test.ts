// "The restore says I lose 1,200 rows; I added 10 notes": a full-text index's shadow tables
// (<fts>_data, _idx, _content, _docsize, _config) are its storage, not rows of the user's. A
// restore's comparison and what_you_lose count the index once, by its documents.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { compareRows, foldFtsShadowTables } from '../src/restore/compare.js';
import { describeRestorePlan } from '../src/restore/plan-text.js';
import { runRestore } from '../src/restore/restore.js';
import { rmrf, tempRoot } from './support/fixtures.js';

let root: string;
const file = () => path.join(root, 'db', 'notes.db');
beforeEach(() => {
  root = tempRoot('wb-fts-rows-');
});
afterEach(() => rmrf(root));

function addNotes(db: Database.Database, from: number, count: number): void {
  const insert = db.prepare('INSERT INTO notes(body) VALUES (?)');
  for (let i = from; i < from + count; i++) insert.run(`note ${i} ${'lorem ipsum dolor sit amet '.repeat(20)} word${i}`);
}

describe('full-text indexes in the rows a restore says are lost', () => {
  it('a dry run after adding 10 indexed notes says 20 rows are lost (10 notes, 10 in the index), never the shadow tables', async () => {
    fs.mkdirSync(path.dirname(file()), { recursive: true });
    const db = new Database(file());
    db.exec(`
      CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
      CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='', columnsize=0);
      CREATE VIRTUAL TABLE pages_fts USING fts5(title, body);
      CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN INSERT INTO pages_fts(title, body) VALUES ('t' || new.id, new.body); END;
    `);
    addNotes(db, 0, 40);
    db.close();
    await runBackup(loadConfig(root), { remote: null });
    const live = new Database(file());
    addNotes(live, 40, 10);
    live.close();

    const plan = await runRestore(loadConfig(root), { snapshotId: 'latest', remote: null, dryRun: true });
    const [notes] = plan.databases;
    const tables = notes!.compared.tables.map((t) => t.table);
    expect(tables.filter((t) => /_(data|idx|content|docsize|config)$/.test(t))).toEqual([]);
    expect(notes!.compared.tables.find((t) => t.table === 'notes')).toMatchObject({ live: 50, after: 40, difference: -10 });
    expect(notes!.compared.tables.find((t) => t.table === 'pages_fts')).toMatchObject({ live: 50, after: 40, difference: -10 });
    expect(notes!.compared.rows_lost).toBe(20);
    expect(notes!.compared.live_total).toBe(100);
    expect(notes!.compared.after_total).toBe(80);
    expect(plan.what_you_lose).toMatch(/^notes: 20 rows added since the snapshot/);
    // A contentless index without column sizes keeps no per-document table to count: left out, not guessed.
    expect(tables).not.toContain('notes_fts');
    // The text shown for consent says the same.
    const text = describeRestorePlan({ snapshotId: plan.snapshot_id, databases: plan.databases, origin: plan.snapshot, whatYouLose: plan.what_you_lose, root: plan.data_root, safety: plan.safety_copies, warnings: plan.warnings } as Parameters<typeof describeRestorePlan>[0]);
    expect(text).toMatch(/\(80 rows in the snapshot, 100 live now;/);
    expect(text).not.toMatch(/_data|_idx|_docsize|_config/);
  });

  it('FTS3/4 shadow tables fold the same way; a user table that merely ends in _data is kept', () => {
    expect(foldFtsShadowTables({ docs: 5, docs_fts_segments: 3, docs_fts_segdir: 2, docs_fts_content: 5, docs_fts_docsize: 5, docs_fts_stat: 1, sensor_data: 7 })).toEqual({ docs: 5, docs_fts: 5, sensor_data: 7 });
    expect(foldFtsShadowTables({ a_data: 4, a_idx: 1, a_config: 1, a_content: 9 })).toEqual({ a: 9 });
    const c = compareRows({ state: 'read', rows: { t: 3, x_data: 900, x_idx: 40, x_config: 1, x_docsize: 3 } }, { t: 3, x_data: 12, x_idx: 2, x_config: 1, x_docsize: 3 });
    expect(c).toMatchObject({ rows_lost: 0, rows_gained: 0, live_total: 6, after_total: 6 });
  });
});
