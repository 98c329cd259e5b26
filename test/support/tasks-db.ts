import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

/**
 * A task tracker's database as an agent keeps one: projects, tasks (ON DELETE CASCADE from their
 * project) and task notes (ON DELETE CASCADE from their task), foreign keys on, WAL mode. Values of
 * every storage class (integers, reals, text, blobs, nulls), so a row put back can be compared
 * value for value.
 */
export function makeTasksDb(file: string, tasks = 5000, projects = 10): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE tasks (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE, title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0, score REAL, payload BLOB, due TEXT);
    CREATE TABLE task_notes (id INTEGER PRIMARY KEY, task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE, body TEXT);
    CREATE INDEX tasks_by_project ON tasks(project_id);
    CREATE INDEX notes_by_task ON task_notes(task_id);`);
  const p = db.prepare('INSERT INTO projects(id, name) VALUES (?, ?)');
  const t = db.prepare('INSERT INTO tasks(id, project_id, title, done, score, payload, due) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const n = db.prepare('INSERT INTO task_notes(task_id, body) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= projects; i++) p.run(i, `project ${i}`);
    for (let i = 1; i <= tasks; i++) {
      t.run(i, (i % projects) + 1, `task ${i}: ${'x'.repeat(i % 40)}`, i % 3 === 0 ? 1 : 0, i % 7 === 0 ? null : i / 7, i % 5 === 0 ? Buffer.from([i & 255, 0, 255, (i >> 8) & 255]) : null, i % 4 === 0 ? null : `2026-0${(i % 9) + 1}-1${i % 10}`);
      if (i % 2 === 0) {
        n.run(i, `first note of task ${i}`);
        n.run(i, `second note of task ${i}`);
      }
    }
  })();
  db.close();
}

/** Opens the database as its program does: foreign keys on (so a DELETE cascades). */
export function withTasksDb<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    db.pragma('foreign_keys = ON');
    return fn(db);
  } finally {
    db.close();
  }
}

/** A value's exact text: storage class and value (integers read as bigint, blobs as hex). */
function exact(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return `int:${v}`;
  if (typeof v === 'number') return `real:${v}`;
  if (typeof v === 'string') return `text:${v}`;
  return `blob:${(v as Buffer).toString('hex')}`;
}

/** Rows of `sql` with every value's storage class: equal lists mean the same rows byte for byte. */
export function exactRows(file: string, sql: string, ...params: unknown[]): string[][] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const stmt = db.prepare(sql).safeIntegers(true).raw(true);
    return (stmt.all(...params) as unknown[][]).map((r) => r.map(exact));
  } finally {
    db.close();
  }
}

/** The lost rows as the test compares them: project 3's tasks and their notes, in id order. */
export function project3Rows(file: string): { tasks: string[][]; notes: string[][] } {
  return {
    tasks: exactRows(file, 'SELECT * FROM tasks WHERE project_id = 3 ORDER BY id'),
    notes: exactRows(file, 'SELECT n.* FROM task_notes n JOIN tasks t ON t.id = n.task_id WHERE t.project_id = 3 ORDER BY n.id'),
  };
}

/** sha256 and mtime (ns) of the live file and each companion: a dry run leaves every one as it was. */
export function filesState(file: string): Record<string, { sha256: string; mtimeNs: string } | null> {
  const out: Record<string, { sha256: string; mtimeNs: string } | null> = {};
  for (const suffix of ['', '-wal', '-shm', '-journal']) {
    const f = file + suffix;
    out[suffix || 'db'] = fs.existsSync(f) ? { sha256: createHash('sha256').update(fs.readFileSync(f)).digest('hex'), mtimeNs: fs.statSync(f, { bigint: true }).mtimeNs.toString() } : null;
  }
  return out;
}
