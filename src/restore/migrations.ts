import fs from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { WbError, describeError } from '../core/errors.js';

export interface Migration {
  version: number;
  name: string;
  file: string;
}

const MIGRATION_FILE = /^(\d+)_([A-Za-z0-9_.-]+)\.sql$/;

/** The ladder: `NNN_name.sql` files, ordered by NNN. Two files with one number is an error. */
export function listMigrations(dir: string | undefined): Migration[] {
  if (!dir) return [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    throw new WbError('config_invalid', `The migrations folder ${path.basename(dir)} configured for a database cannot be read.`, 'Fix `migrations:` in wb-backup.yaml.');
  }
  const ladder: Migration[] = [];
  for (const name of names) {
    const m = MIGRATION_FILE.exec(name);
    if (!m) continue;
    ladder.push({ version: Number(m[1]), name, file: path.join(dir, name) });
  }
  ladder.sort((a, b) => a.version - b.version);
  for (let i = 1; i < ladder.length; i++) {
    if (ladder[i]!.version === ladder[i - 1]!.version) {
      throw new WbError('config_invalid', `Two migrations share version ${ladder[i]!.version}: ${ladder[i - 1]!.name} and ${ladder[i]!.name}.`, 'Renumber one of them.');
    }
  }
  return ladder;
}

export function newestMigrationVersion(ladder: readonly Migration[]): number {
  return ladder.length ? ladder[ladder.length - 1]!.version : 0;
}

/** The migrations a database at `userVersion` still needs (pure). */
export function pendingMigrations(ladder: readonly Migration[], userVersion: number): Migration[] {
  return ladder.filter((m) => m.version > userVersion);
}

/** Apply each pending migration in its own transaction, raising user_version with it. */
export function applyMigrations(db: Database.Database, pending: readonly Migration[]): string[] {
  const applied: string[] = [];
  for (const migration of pending) {
    const sql = fs.readFileSync(migration.file, 'utf8');
    try {
      db.transaction(() => {
        db.exec(sql);
        db.pragma(`user_version = ${migration.version}`);
      })();
    } catch (err) {
      throw new WbError('restore_refused', `Migration ${migration.name} failed on the restored copy: ${describeError(err)}`, 'Fix the migration, then restore again.');
    }
    applied.push(migration.name);
  }
  return applied;
}
