import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import type { Config } from '../config.js';
import { WbError } from '../errors.js';
import { withRootLock } from '../lock.js';
import { countRows, quoteIdent } from '../sqlite-util.js';
import { createHash } from 'node:crypto';
import { claimConfirmToken, fingerprintTargets, issueConfirmToken, liveChangedReason } from '../consent.js';
import { unsafeDatabaseNameReason } from '../manifest.js';
import { displayPath } from '../paths.js';
import { liveStateWarnings, probeLiveDatabase } from '../restore/live-probe.js';
import type { ConsentDecision } from '../restore/restore.js';
import { planSafetyCopies, SafetyCopyPlanSchema, uniqueSafetyDir, type SafetyCopyPlan } from '../restore/safety-copies.js';
import { DocumentError, decodeUtf8, documentDir, documentShape, parseDocumentText } from './documents.js';
import { SYNC_SCHEMA_VERSION, isDocumentEntry, type DocumentTableEntry, type MirrorManifest, type MirrorTableEntry } from './materialize.js';
import { parseRows, type SqlValue } from './rows.js';

export const SyncImportResultSchema = z.object({
  dry_run: z.boolean(),
  databases: z.array(z.object({ name: z.string(), target: z.string(), rows: z.record(z.string(), z.number()), replaced: z.boolean() })),
  not_in_mirror: z.array(z.object({ path: z.string(), reason: z.string() })).describe("what the mirror's manifest lists as skipped (excluded, over a size cap, held back): those rows are not in the rebuilt databases"),
  confirm_token: z.string().optional().describe('dry run that would replace existing databases: pass it back with the same clone_dir to do exactly this (works once)'),
  safety_copies: SafetyCopyPlanSchema.nullable().describe('when existing databases are replaced: how many safety copies are kept and which one this would remove'),
  warnings: z.array(z.string()),
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

/** What the user consents to before an import replaces existing databases. */
export interface ImportPlan {
  databases: Array<{ name: string; target: string; replaced: boolean; rows: Record<string, number> }>;
  safety: SafetyCopyPlan;
  warnings: string[];
}

export interface SyncImportOptions {
  dryRun?: boolean;
  /** CLI: say that replacing existing databases is intended; it never replaces consent */
  force?: boolean;
  /** asked before existing databases are replaced (CLI prompt or --yes, MCP elicitation) */
  consent?: (plan: ImportPlan) => Promise<ConsentDecision>;
  /** a dry run's confirm token instead: checked and consumed before anything is built */
  confirmToken?: string;
}

/** What a confirm token records: executed only if the real run plans exactly the same. */
interface ImportTokenPlan {
  manifest_sha256: string;
  databases: Array<{ name: string; target: string }>;
  would_prune: string[];
}

/**
 * Where each mirrored database goes: its configured file, else <root>/db/<name>.db. The names come
 * from the clone (untrusted): each must be a safe logical name, and no two may share a file.
 */
function planTargets(config: Config, manifest: MirrorManifest): Array<{ name: string; entry: MirrorManifest['databases'][string]; target: string }> {
  const plan = Object.entries(manifest.databases ?? {}).map(([name, entry]) => {
    const why = unsafeDatabaseNameReason(name);
    if (why) throw new WbError('invalid_input', `The mirror's manifest.json names a database ${JSON.stringify(name)}, which is not a safe name (${why}). Nothing was changed.`, 'Fix manifest.json in the repository, or use a clone you trust.');
    const target = config.databases.find((d) => d.name === name)?.path ?? path.join(config.root, 'db', `${name}.db`);
    return { name, entry, target };
  });
  const seen = new Map<string, string>();
  for (const p of plan) {
    const key = process.platform === 'linux' ? path.resolve(p.target) : path.resolve(p.target).toLowerCase();
    const other = seen.get(key);
    if (other) throw new WbError('invalid_input', `The mirror's databases ${other} and ${p.name} would both go to ${displayPath(config.root, p.target)}. Nothing was changed.`, 'Fix manifest.json or the databases: section of wb-backup.yaml.');
    seen.set(key, p.name);
  }
  return plan;
}

/**
 * github_sync_import: rebuild databases from a clone of the mirror (schema.sql + rows), into a temp
 * file first; row counts must equal the manifest's before the file is moved into place.
 * Replacing an existing database needs consent, like a restore: a dry run's single-use confirm
 * token bound to this clone's manifest and the live files as they are, or `consent` (prompt, form).
 * The replaced files are kept in a safety copy; the plan names the old copy this would remove.
 */
export async function syncImport(config: Config, clone: string, opts: SyncImportOptions = {}): Promise<SyncImportResult> {
  const manifest = readManifest(clone);
  const manifestSha = createHash('sha256').update(fs.readFileSync(path.join(clone, 'manifest.json'))).digest('hex');
  const plan = planTargets(config, manifest);
  const request = { clone_dir: path.resolve(clone) };
  const existing = plan.filter((p) => fs.existsSync(p.target));
  const rowsOf = (p: (typeof plan)[number]) => Object.fromEntries(Object.entries(p.entry.tables).map(([t, i]) => [t, i.rows]));
  const notInMirror = manifest.skipped ?? [];
  const missingNote = notInMirror.length ? ` The mirror does not hold everything: ${notInMirror.map((x) => x.path).join(', ')} (see not_in_mirror).` : '';
  // Read by bytes only (a dry run changes nothing): states a reader would act on become warnings.
  const warnings = existing.flatMap((p) => liveStateWarnings(p.name, displayPath(config.root, p.target), probeLiveDatabase(p.target)));
  const preRestoreDir = uniqueSafetyDir(config.root);
  const safety = existing.length ? planSafetyCopies(config, { newCopy: preRestoreDir }) : null;
  const importPlan: ImportPlan = {
    databases: plan.map((p) => ({ name: p.name, target: displayPath(config.root, p.target), replaced: existing.includes(p), rows: rowsOf(p) })),
    safety: safety ?? planSafetyCopies(config, { newCopy: null }),
    warnings,
  };
  const tokenPlan: ImportTokenPlan = {
    manifest_sha256: manifestSha,
    databases: plan.map((p) => ({ name: p.name, target: p.target })),
    would_prune: (safety?.would_prune ?? []).map((x) => x.folder),
  };
  if (opts.dryRun) {
    const token = existing.length
      ? issueConfirmToken({ operation: 'import', root: config.root, request, plan: tokenPlan, targets: plan.map((p) => p.target) })
      : undefined;
    return {
      dry_run: true,
      databases: importPlan.databases,
      not_in_mirror: notInMirror,
      ...(token ? { confirm_token: token } : {}),
      safety_copies: safety,
      warnings,
      message: `Would rebuild ${plan.length} database(s)${existing.length ? `, replacing ${existing.length} (${existing.map((p) => p.name).join(', ')}): that needs consent (this dry run's confirm_token, or the user's answer). ${describeSafety(safety)}` : ''}; nothing was changed.${missingNote}`,
    };
  }
  return withRootLock(config.root, 'github-sync import', config.backup.lock_wait_ms, async () => {
    // Consent comes before anything is built. Pruning may only remove what the consented plan named.
    let named: string[] = [];
    if (opts.confirmToken !== undefined) {
      const claim = claimConfirmToken<ImportTokenPlan>(opts.confirmToken, { operation: 'import', root: config.root, request });
      if (!claim.ok) throw new WbError('consent_required', `The import was not performed: ${claim.reason}. Nothing was changed.`);
      const recorded = claim.grant.plan;
      if (recorded.manifest_sha256 !== manifestSha || JSON.stringify(recorded.databases) !== JSON.stringify(tokenPlan.databases)) {
        throw new WbError('consent_required', 'The import was not performed: the clone or the configuration changed since the dry run, so its plan no longer holds. Nothing was changed.', 'Run a new dry run and use its confirm_token.');
      }
      named = recorded.would_prune;
    } else if (existing.length) {
      if (!opts.consent) {
        throw new WbError(
          'consent_required',
          `Importing would replace existing databases (${existing.map((p) => p.name).join(', ')}), which needs the user's consent. Nothing was changed.`,
          'Run the import with dry_run: true, show the user the plan, and if they agree call it again with the same clone_dir plus the confirm_token it returned (CLI: --force, then answer y or pass --yes).',
        );
      }
      // Every target, also those absent now: a database appearing meanwhile changes the plan too.
      const shown = fingerprintTargets(plan.map((p) => p.target));
      const decision = await opts.consent(importPlan);
      if (!decision.granted) throw new WbError('consent_required', `The import was not performed: ${decision.reason}. Nothing was changed.`);
      const changed = liveChangedReason(shown, config.root, 'the plan was shown');
      if (changed) throw new WbError('consent_required', `The import was not performed: ${changed}. Nothing was changed.`);
      named = (safety?.would_prune ?? []).map((x) => x.folder);
    }
    // For the swap (branch `swap`): replaced files go to preRestoreDir; then prunePreRestoreDirs(root, keep, named).
    void named;
    const built: Array<{ tmp: string; target: string }> = [];
    try {
      for (const p of plan) {
        const tmp = `${p.target}.importing`;
        fs.mkdirSync(path.dirname(p.target), { recursive: true });
        fs.rmSync(tmp, { force: true });
        built.push({ tmp, target: p.target });
        buildDatabase(clone, p.name, p.entry, tmp);
      }
    } catch (err) {
      for (const b of built) fs.rmSync(b.tmp, { force: true });
      throw err instanceof WbError ? err : new WbError('invalid_input', `The mirror cannot be imported: ${(err as Error).message}. Nothing was changed.`, 'Fix that file in the repository (or check out an earlier commit), then import again.');
    }
    for (const b of built) {
      if (fs.existsSync(b.target)) {
        // Unique per import so no later import overwrites it (the journaled swap replaces this).
        const kept = `${b.target}.pre_import_${path.basename(preRestoreDir).slice('db.pre_restore_'.length)}`;
        for (const suffix of ['', '-wal', '-shm']) if (fs.existsSync(b.target + suffix)) fs.renameSync(b.target + suffix, `${kept}${suffix}`);
      }
      fs.renameSync(b.tmp, b.target);
    }
    return {
      dry_run: false,
      databases: importPlan.databases,
      not_in_mirror: notInMirror,
      safety_copies: safety,
      warnings,
      message: `Rebuilt ${plan.length} database(s) from the mirror.${missingNote}`,
    };
  });
}

function describeSafety(safety: SafetyCopyPlan | null): string {
  if (!safety) return '';
  return safety.would_prune.length
    ? `${safety.keep} safety copies are kept, so this would remove ${safety.would_prune.map((p) => `${p.folder} (made ${p.created_at ?? 'at an unknown time'})`).join(', ')}.`
    : `${safety.keep} safety copies are kept; this removes none.`;
}

function buildDatabase(clone: string, dbName: string, entry: MirrorManifest['databases'][string], file: string): void {
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
        const rows = isDocumentEntry(info) ? readDocuments(clone, db, dbName, table, info) : parseRows(fs.readFileSync(path.join(clone, info.file), 'utf8'), info.file, columns);
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
      if (counts[table] !== info.rows) throw new Error(`${where(info)} holds ${counts[table]} rows, the manifest says ${info.rows}`);
    }
  } finally {
    db.close();
  }
}

function where(info: MirrorTableEntry): string {
  return isDocumentEntry(info) ? info.dir : info.file;
}

/** Every `<key>.md` of a document table, as rows in table order; the first bad file stops the import. */
function readDocuments(clone: string, db: Database.Database, dbName: string, table: string, info: DocumentTableEntry): SqlValue[][] {
  if (info.dir !== documentDir(dbName, table)) throw new Error(`the manifest puts ${dbName}.${table} in ${info.dir}, not ${documentDir(dbName, table)}`);
  const columns = db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as Array<{ name: string; pk: number }>;
  const pk = columns.filter((c) => c.pk > 0).sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name);
  const shape = documentShape({ name: table, columns: columns.map((c) => c.name), pk }, info.body);
  if ('reason' in shape) throw new Error(`${info.dir} cannot be read as documents: ${shape.reason}`);
  if (shape.key !== info.key) throw new Error(`${info.dir}: the manifest keys it by ${info.key}, the schema by ${shape.key}`);
  const dir = path.join(clone, info.dir);
  // An empty table may have no directory in git (git keeps no empty folders).
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.md')).sort() : [];
  return names.map((name) => {
    const file = `${info.dir}${name}`;
    const text = decodeUtf8(fs.readFileSync(path.join(dir, name)));
    if (text === null) throw new DocumentError(file, null, 'the file is not valid UTF-8');
    return parseDocumentText(shape, file, text);
  });
}
