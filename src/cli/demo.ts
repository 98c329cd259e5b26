import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

/**
 * Small example databases for `wb-backup demo`: WAL mode, foreign keys, an index, text bodies —
 * the shape of an agent's stores, in a folder of their own.
 */
export function createDemoDatabases(dbDir: string): string[] {
  fs.mkdirSync(path.join(dbDir, 'tasks'), { recursive: true });
  const made: string[] = [];

  const tasks = open(path.join(dbDir, 'tasks', 'task_metadata.db'), made);
  tasks.exec(`
    CREATE TABLE IF NOT EXISTS projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    CREATE TABLE IF NOT EXISTS tasks (
      id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id),
      title TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'open', created_at TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS tasks_by_state ON tasks(state);
    PRAGMA user_version = 3;`);
  const addProject = tasks.prepare('INSERT OR IGNORE INTO projects(name) VALUES (?)');
  const addTask = tasks.prepare("INSERT INTO tasks(project_id, title, state, created_at) VALUES (?, ?, ?, datetime('now'))");
  tasks.transaction(() => {
    for (const name of ['home', 'work', 'garden']) addProject.run(name);
    for (let i = 1; i <= 120; i++) addTask.run((i % 3) + 1, `Task number ${i}`, i % 4 === 0 ? 'done' : 'open');
  })();
  tasks.close();

  const messages = open(path.join(dbDir, 'messages.db'), made);
  messages.exec(`
    CREATE TABLE IF NOT EXISTS threads (id INTEGER PRIMARY KEY, subject TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS messages (
      id INTEGER PRIMARY KEY, thread_id INTEGER NOT NULL REFERENCES threads(id), body TEXT NOT NULL);`);
  const addThread = messages.prepare('INSERT INTO threads(subject) VALUES (?)');
  const addMessage = messages.prepare('INSERT INTO messages(thread_id, body) VALUES (?, ?)');
  messages.transaction(() => {
    for (let t = 1; t <= 10; t++) {
      const id = Number(addThread.run(`Thread ${t}`).lastInsertRowid);
      for (let m = 0; m < 20; m++) addMessage.run(id, `Message ${m} of thread ${t}: ${'lorem ipsum '.repeat(8)}`);
    }
  })();
  messages.close();

  const entities = open(path.join(dbDir, 'entities.db'), made);
  entities.exec('CREATE TABLE IF NOT EXISTS entities (id TEXT PRIMARY KEY, kind TEXT NOT NULL, data TEXT NOT NULL)');
  const addEntity = entities.prepare('INSERT OR REPLACE INTO entities VALUES (?, ?, ?)');
  entities.transaction(() => {
    for (let i = 0; i < 50; i++) addEntity.run(`e${i}`, i % 2 ? 'person' : 'place', JSON.stringify({ n: i }));
  })();
  entities.close();
  return made;
}

function open(file: string, made: string[]): Database.Database {
  made.push(file);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  return db;
}
