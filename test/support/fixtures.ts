import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/** A fresh data root in the OS temp dir; removed by the returned cleanup. */
export function tempRoot(prefix = 'wb-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function rmrf(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/** A WAL database with a few related tables and `rows` notes. */
export function makeNotesDb(file: string, rows = 100, userVersion = 0): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS folders (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, folder_id INTEGER REFERENCES folders(id), title TEXT, body TEXT);
    CREATE INDEX IF NOT EXISTS notes_by_folder ON notes(folder_id);`);
  const folder = db.prepare('INSERT INTO folders(name) VALUES (?)');
  const note = db.prepare('INSERT INTO notes(folder_id, title, body) VALUES (?, ?, ?)');
  db.transaction(() => {
    for (let f = 1; f <= 3; f++) folder.run(`folder ${f}`);
    for (let i = 0; i < rows; i++) note.run((i % 3) + 1, `note ${i}`, `body of note ${i} `.repeat(5));
  })();
  db.pragma(`user_version = ${userVersion}`);
  db.close();
}

export function tableCounts(file: string): Record<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    const names = db.prepare("SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all() as string[];
    return Object.fromEntries(names.map((n) => [n, Number(db.prepare(`SELECT count(*) FROM "${n}"`).pluck().get())]));
  } finally {
    db.close();
  }
}

export function integrityCheck(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return String(db.pragma('integrity_check', { simple: true }));
  } finally {
    db.close();
  }
}

/** Unpack an archive with the system's own tar (+ zstd/gzip), as a user without wb-backup would. */
export function extractWithSystemTar(archive: string, into: string): void {
  fs.mkdirSync(into, { recursive: true });
  const flag = archive.endsWith('.zst') ? ['-I', 'zstd'] : ['-z'];
  execFileSync('tar', [...flag, '-xf', archive, '-C', into]);
}

export interface WriterProcess {
  child: ChildProcess;
  stop(): Promise<{ commits: number; errors: number }>;
}

/** Start test/support/writer-process.mjs against `file`; resolves once it is committing. */
export async function startWriter(file: string): Promise<WriterProcess> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'test', 'support', 'writer-process.mjs'), file], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: REPO_ROOT,
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('ready\n')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`writer exited early (${code}): ${stderr}`)));
  });
  return {
    child,
    stop: () =>
      new Promise((resolve, reject) => {
        child.removeAllListeners('exit');
        child.on('exit', () => {
          const last = stdout.trim().split('\n').pop() ?? '';
          try {
            resolve(JSON.parse(last) as { commits: number; errors: number });
          } catch {
            reject(new Error(`writer gave no summary: ${stdout} ${stderr}`));
          }
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Wait until `predicate` holds, polling; throws with `what` after `ms`. */
export async function waitFor(predicate: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Fill the disk of `file` to the last byte: big writes, then single bytes until the file system refuses (ENOSPC). */
export function fillToTheLastByte(file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (const chunk of [Buffer.alloc(64 * 1024), Buffer.alloc(4096), Buffer.alloc(1)]) {
      try {
        for (;;) fs.writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}
