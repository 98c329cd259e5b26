import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { dumpTables } from './db-snapshot.js';
import { integrityCheck } from './fixtures.js';

/**
 * Add rows to a WAL database and leave them in its -wal file (as a live database that a program
 * is using looks): the pair is copied while the writer is open, since closing checkpoints it.
 */
export function addRowsKeepingWal(file: string, rows: number, tag: string): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  const insert = db.prepare('INSERT INTO notes(folder_id, title, body) VALUES (1, ?, ?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run(`${tag} ${i}`, `added after the snapshot ${i}`);
  })();
  const tmp = `${file}.copy`;
  fs.copyFileSync(file, tmp);
  fs.copyFileSync(`${file}-wal`, `${tmp}-wal`);
  db.close();
  fs.renameSync(tmp, file);
  fs.renameSync(`${tmp}-wal`, `${file}-wal`);
  fs.rmSync(`${file}-shm`, { force: true });
}

const sha = (file: string) => (fs.existsSync(file) ? createHash('sha256').update(fs.readFileSync(file)).digest('hex') : '-');

/** The bytes of a database's main file, -wal and -journal (the -shm is scratch; an empty -wal or -journal is the same as none). */
export function contentKey(file: string): string {
  return ['', '-wal', '-journal'].map((s) => (s && fs.existsSync(file + s) && fs.statSync(file + s).size === 0 ? '-' : sha(file + s))).join('|');
}

export interface DbState {
  key: string;
  /**
   * The same database after it was opened and closed, which checkpoints its WAL into the main file
   * (restore's in-use probe does, before the swap): the same content, other bytes.
   */
  probedKey: string;
  dump: Record<string, unknown[]>;
}

/**
 * Run `fn` on a copy of the database (main, -wal, -journal): opening the live file, even read-only,
 * may checkpoint its WAL and change its bytes, which the checks compare.
 */
function onCopy<T>(file: string, fn: (copy: string) => T): T {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-state-'));
  try {
    const copy = path.join(dir, 'x.db');
    for (const s of ['', '-wal', '-journal']) if (fs.existsSync(file + s)) fs.copyFileSync(file + s, copy + s);
    return fn(copy);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function captureState(file: string): DbState {
  const probedKey = onCopy(file, (copy) => {
    const db = new Database(copy, { fileMustExist: true });
    db.exec('BEGIN IMMEDIATE; ROLLBACK');
    db.close();
    return contentKey(copy);
  });
  return { key: contentKey(file), probedKey, dump: onCopy(file, dumpTables) };
}

const verified = new Set<string>();

const isState = (key: string, s: DbState) => key === s.key || key === s.probedKey;

/**
 * Every live database is entirely in one of the two states (by bytes, then by rows), all in the
 * same one, and passes integrity_check. Returns which.
 */
export function expectAllOneState(
  files: Record<string, string>,
  old: Record<string, DbState>,
  neu: Record<string, DbState>,
  label: string,
  opts: { bytesOnly?: boolean } = {},
): 'old' | 'new' {
  const which: Record<string, string> = {};
  for (const [name, file] of Object.entries(files)) {
    expect(fs.existsSync(file), `${label}: ${name} exists`).toBe(true);
    const key = contentKey(file);
    which[name] = isState(key, old[name]!) ? 'old' : isState(key, neu[name]!) ? 'new' : `unknown (${key.slice(0, 20)})`;
  }
  const states = [...new Set(Object.values(which))];
  expect(states.length === 1 && (states[0] === 'old' || states[0] === 'new'), `${label}: ${JSON.stringify(which)}`).toBe(true);
  const state = states[0] as 'old' | 'new';
  // Same bytes as a state whose rows and integrity were checked: a cheaper check between steps.
  if (opts.bytesOnly) return state;
  for (const [name, file] of Object.entries(files)) {
    // Identical bytes give identical rows and integrity: each distinct file set is opened once.
    const key = `${name}:${state}:${contentKey(file)}`;
    if (verified.has(key)) continue;
    verified.add(key);
    expect(onCopy(file, integrityCheck), `${label}: ${name} integrity`).toBe('ok');
    expect(onCopy(file, dumpTables), `${label}: ${name} rows`).toEqual((state === 'old' ? old : neu)[name]!.dump);
  }
  return state;
}

/** Every completed pre-restore record's files are there with their recorded sha256; no incomplete record is left. */
export function expectPreRestoreCopiesIntact(root: string, label: string): string[] {
  const completed: string[] = [];
  for (const n of fs.readdirSync(root).filter((x) => x.startsWith('db.pre_restore_')).sort()) {
    const dir = path.join(root, n);
    const recordFile = path.join(dir, 'pre-restore.json');
    expect(fs.existsSync(recordFile), `${label}: ${n} has a record`).toBe(true);
    const info = JSON.parse(fs.readFileSync(recordFile, 'utf8')) as {
      completed?: boolean;
      databases: Array<{ name: string; file: string; existed: boolean; files?: Record<string, { sha256: string | null }> }>;
    };
    expect(info.completed, `${label}: ${n} is completed`).toBe(true);
    for (const d of info.databases) {
      for (const [role, rec] of Object.entries(d.files ?? {})) {
        if (rec.sha256 === null) continue;
        expect(sha(path.join(dir, d.name, d.file + role)), `${label}: ${n}/${d.name}/${d.file}${role}`).toBe(rec.sha256);
      }
    }
    completed.push(n);
  }
  return completed;
}

export function leftovers(root: string): string[] {
  return fs.readdirSync(root).filter((n) => n.startsWith('db.staging_') || n.startsWith('restore-journal'));
}

/** Replace `dir` with a copy of `template` (same path, so a journal's paths stay right). */
export function resetTo(template: string, dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
  copyRoot(template, dir);
}

/** A copy of a data root, without the lock a running command holds. */
export function copyRoot(from: string, to: string, opts: { withoutSnapshots?: boolean } = {}): void {
  const skip = new Set([path.join(from, '.wb-backup.lock'), ...(opts.withoutSnapshots ? [path.join(from, 'backups')] : [])]);
  fs.cpSync(from, to, { recursive: true, preserveTimestamps: true, filter: (src) => !skip.has(src) });
}
