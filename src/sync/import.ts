import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import type { Config } from '../config.js';
import { WbError } from '../errors.js';
import { withRootLock } from '../lock.js';
import { countRows, quoteIdent } from '../sqlite-util.js';
import type { MirrorManifest } from './materialize.js';
import { SYNC_SCHEMA_VERSION } from './materialize.js';
import { parseRows } from './rows.js';

export const SyncImportResultSchema = z.object({
  dry_run: z.boolean(),
  databases: z.array(z.object({ name: z.string(), target: z.string(), rows: z.record(z.string(), z.number()), replaced: z.boolean() })),
  message: z.string(),
});
export type SyncImportResult = z.infer<typeof SyncImportResultSchema>;

function readManifest(clone: string): MirrorManifest {
  let raw: MirrorManifest;
  try {
    raw = JSON.parse(fs.readFileSync(path.join(clone, 'manifest.json'), 'utf8')) as MirrorManifest;
  } catch {
    throw new WbError('invalid_input', `${clone} has no readable manifest.json: it is not a wb-backup mirror.`, 'Pass the folder of a `git clone` of your sync repository.');
  }
  if (raw.schema_version !== SYNC_SCHEMA_VERSION) {
    throw new WbError('manifest_invalid', `The mirror's schema_version is ${raw.schema_version}; this wb-backup reads ${SYNC_SCHEMA_VERSION}.`, 'Upgrade wb-backup.');
  }
  return raw;
}

/**
 * github_sync_import: rebuild databases from a clone of the mirror (schema.sql + rows), into a temp
 * file first; row counts must equal the manifest's before the file is moved into place. Existing
 * databases are never overwritten without force (and then kept as <file>.pre_import).
 */
export async function syncImport(config: Config, clone: string, opts: { dryRun?: boolean; force?: boolean } = {}): Promise<SyncImportResult> {
  const manifest = readManifest(clone);
  const plan = Object.entries(manifest.databases).map(([name, entry]) => {
    const target = config.databases.find((d) => d.name === name)?.path ?? path.join(config.root, 'db', `${name}.db`);
    return { name, entry, target };
  });
  const existing = plan.filter((p) => fs.existsSync(p.target));
  if (existing.length && !opts.force && !opts.dryRun) {
    throw new WbError('invalid_input', `Refusing to overwrite existing databases: ${existing.map((p) => p.name).join(', ')}. Nothing was changed.`, 'Pass force to replace them (the old files are kept as <file>.pre_import).');
  }
  const rowsOf = (p: (typeof plan)[number]) => Object.fromEntries(Object.entries(p.entry.tables).map(([t, i]) => [t, i.rows]));
  if (opts.dryRun) {
    return {
      dry_run: true,
      databases: plan.map((p) => ({ name: p.name, target: path.relative(config.root, p.target), rows: rowsOf(p), replaced: fs.existsSync(p.target) })),
      message: `Would rebuild ${plan.length} database(s)${existing.length ? `, replacing ${existing.length} (needs force)` : ''}; nothing was changed.`,
    };
  }
  return withRootLock(config.root, 'github-sync import', config.backup.lock_wait_ms, async () => {
    const built: Array<{ tmp: string; target: string }> = [];
    try {
      for (const p of plan) {
        const tmp = `${p.target}.importing`;
        fs.mkdirSync(path.dirname(p.target), { recursive: true });
        fs.rmSync(tmp, { force: true });
        built.push({ tmp, target: p.target });
        buildDatabase(clone, p.entry, tmp);
      }
    } catch (err) {
      for (const b of built) fs.rmSync(b.tmp, { force: true });
      throw err instanceof WbError ? err : new WbError('invalid_input', `The mirror cannot be imported: ${(err as Error).message}. Nothing was changed.`, 'Fix that file in the repository (or check out an earlier commit), then import again.');
    }
    for (const b of built) {
      if (fs.existsSync(b.target)) {
        for (const suffix of ['', '-wal', '-shm']) if (fs.existsSync(b.target + suffix)) fs.renameSync(b.target + suffix, `${b.target}.pre_import${suffix}`);
      }
      fs.renameSync(b.tmp, b.target);
    }
    return {
      dry_run: false,
      databases: plan.map((p) => ({ name: p.name, target: path.relative(config.root, p.target), rows: rowsOf(p), replaced: existing.includes(p) })),
      message: `Rebuilt ${plan.length} database(s) from the mirror.`,
    };
  });
}

function buildDatabase(clone: string, entry: MirrorManifest['databases'][string], file: string): void {
  const db = new Database(file);
  try {
    db.exec(fs.readFileSync(path.join(clone, entry.schema), 'utf8'));
    // Rows are loaded as they were: triggers must not fire (they would add rows) and parents may
    // come after children, so foreign keys are checked once at the end instead.
    const triggers = db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger'").all() as Array<{ name: string; sql: string }>;
    for (const t of triggers) db.exec(`DROP TRIGGER ${quoteIdent(t.name)}`);
    db.pragma('foreign_keys = OFF');
    db.transaction(() => {
      for (const [table, info] of Object.entries(entry.tables)) {
        const columns = (db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as Array<{ name: string }>).map((c) => c.name);
        const rows = parseRows(fs.readFileSync(path.join(clone, info.file), 'utf8'), info.file, columns);
        const insert = db.prepare(`INSERT INTO ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
        for (const row of rows) insert.run(...row);
      }
    })();
    for (const t of triggers) db.exec(t.sql);
    const fk = db.pragma('foreign_key_check') as unknown[];
    if (fk.length) throw new Error(`${entry.schema.split('/')[0]} has ${fk.length} foreign-key violation(s) after loading`);
    db.pragma(`user_version = ${entry.user_version}`);
    const counts = countRows(db);
    for (const [table, info] of Object.entries(entry.tables)) {
      if (counts[table] !== info.rows) throw new Error(`${info.file} holds ${counts[table]} rows, the manifest says ${info.rows}`);
    }
  } finally {
    db.close();
  }
}
