import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import type { Config } from '../config.js';
import { WbError } from '../errors.js';
import { withRootLock } from '../lock.js';
import { displayPath } from '../paths.js';
import { performSwap, prunePreRestoreDirs, recoverInterruptedSwap } from '../restore/swap.js';
import { countRows, quoteIdent } from '../sqlite-util.js';
import { createHash } from 'node:crypto';
import { claimConfirmToken, fingerprintTargets, issueConfirmToken, liveChangedReason } from '../consent.js';
import { unsafeDatabaseNameReason } from '../manifest.js';
import { liveStateWarnings, probeLiveDatabase } from '../restore/live-probe.js';
import type { ConsentDecision } from '../restore/restore.js';
import { planSafetyCopies, SafetyCopyPlanSchema, uniqueSafetyDir, type SafetyCopyPlan } from '../restore/safety-copies.js';
import { DocumentError, decodeUtf8, documentDir, documentShape, parseDocumentText } from './documents.js';
import { SYNC_SCHEMA_VERSION, isDocumentEntry, type DocumentTableEntry, type MirrorManifest, type MirrorTableEntry } from './materialize.js';
import { parseRows, type SqlValue } from './rows.js';
import { encodeSegment, logicalNameProblem, mirrorSchemaFile, mirrorTableFile, pathForLogicalName } from '../names.js';

export const SyncImportResultSchema = z.object({
  dry_run: z.boolean(),
  databases: z.array(z.object({ name: z.string(), target: z.string(), rows: z.record(z.string(), z.number()), replaced: z.boolean() })),
  not_in_mirror: z.array(z.object({ path: z.string(), reason: z.string() })).describe("what the mirror's manifest lists as skipped (excluded, over a size cap, held back): those rows are not in the rebuilt databases"),
  pre_restore_dir: z.string().optional().describe('where the replaced live files were moved (restore --undo puts them back)'),
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
  const problem = manifestPathProblem(raw);
  if (problem) {
    throw new WbError(
      'manifest_invalid',
      `The mirror's manifest.json cannot be trusted: ${problem}. Nothing was changed.`,
      'Check out a commit the sync wrote (or push again from the machine that has the databases), then import again.',
    );
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
 * Every name in the manifest must be a database name and every path exactly the one names.ts
 * gives for its name: a path is never taken from the manifest and joined (a hand-edited or
 * hostile manifest could point outside the clone). Returns what is wrong, or null.
 */
function manifestPathProblem(manifest: MirrorManifest): string | null {
  if (typeof manifest.databases !== 'object' || manifest.databases === null) return 'it has no databases';
  for (const [name, entry] of Object.entries(manifest.databases)) {
    const bad = logicalNameProblem(name);
    if (bad) return bad;
    if (entry?.schema !== mirrorSchemaFile(name)) return `it puts the schema of ${name} in ${JSON.stringify(entry?.schema)}, not ${mirrorSchemaFile(name)}`;
    for (const [table, info] of Object.entries(entry.tables ?? {})) {
      const expected = isDocumentEntry(info) ? documentDir(name, table) : mirrorTableFile(name, table);
      const given = isDocumentEntry(info) ? info.dir : info.file;
      if (given !== expected) return `it puts the table ${name}.${JSON.stringify(table).slice(1, -1)} in ${JSON.stringify(given)}, not ${expected}`;
    }
  }
  return null;
}

/** A mirror file's text, refusing anything that is not a regular file inside the clone (git can check out symbolic links). */
function readCloneFile(clone: string, rel: string): string {
  const full = path.join(clone, ...rel.split('/'));
  const real = fs.realpathSync(full);
  if (!real.startsWith(fs.realpathSync(clone) + path.sep) || !fs.lstatSync(full).isFile()) throw new Error(`${rel} is not a regular file inside the clone`);
  return fs.readFileSync(real, 'utf8');
}

/** Where a database the configuration does not know is rebuilt: the path discovery would name it by (names.ts), else db/<segment>.db. */
function importTarget(root: string, name: string): string {
  const components = pathForLogicalName(name);
  return components ? path.join(root, 'db', ...components.slice(0, -1), `${components.at(-1)!}.db`) : path.join(root, 'db', `${encodeSegment(name)}.db`);
}

/**
 * Where each mirrored database goes: its configured file, else where discovery would find it (importTarget). The names come
 * from the clone (untrusted): each must be a safe logical name, and no two may share a file.
 */
function planTargets(config: Config, manifest: MirrorManifest): Array<{ name: string; entry: MirrorManifest['databases'][string]; target: string }> {
  const plan = Object.entries(manifest.databases ?? {}).map(([name, entry]) => {
    const why = unsafeDatabaseNameReason(name);
    if (why) throw new WbError('invalid_input', `The mirror's manifest.json names a database ${JSON.stringify(name)}, which is not a safe name (${why}). Nothing was changed.`, 'Fix manifest.json in the repository, or use a clone you trust.');
    const target = config.databases.find((d) => d.name === name)?.path ?? importTarget(config.root, name);
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
    recoverInterruptedSwap(config.root);
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
    // Built in a staging folder; it then goes through the same journaled swap as a restore, and the
    // replaced files into a new db.pre_restore_<ts> folder (`restore --undo` puts them back).
    const staging = path.join(config.root, `db.staging_${path.basename(preRestoreDir).slice('db.pre_restore_'.length)}`);
    const built: Array<{ name: string; tmp: string; target: string }> = [];
    try {
      fs.mkdirSync(staging, { recursive: true });
      for (const [index, p] of plan.entries()) {
        const tmp = path.join(staging, `${index}.db`);
        built.push({ name: p.name, tmp, target: p.target });
        buildDatabase(clone, p.name, p.entry, tmp);
      }
    } catch (err) {
      fs.rmSync(staging, { recursive: true, force: true });
      throw err instanceof WbError ? err : new WbError('invalid_input', `The mirror cannot be imported: ${(err as Error).message}. Nothing was changed.`, 'Fix that file in the repository (or check out an earlier commit), then import again.');
    }
    for (const b of built) fs.mkdirSync(path.dirname(b.target), { recursive: true });
    const swapped = performSwap({
      root: config.root,
      kind: 'import',
      snapshotId: null,
      preRestoreDir,
      incomingDir: staging,
      items: built.map((b) => ({ name: b.name, target: b.target, incoming: b.tmp })),
    });
    const kept = displayPath(config.root, swapped.preRestoreDir);
    warnings.push(...swapped.warnings);
    try {
      // Only the copies the consented plan named can go.
      if (safety) prunePreRestoreDirs(config.root, safety.keep, named);
    } catch (err) {
      warnings.push(`old pre_restore folders could not be pruned (${(err as Error).message})`);
    }
    return {
      dry_run: false,
      databases: importPlan.databases,
      not_in_mirror: notInMirror,
      pre_restore_dir: existing.length ? kept : undefined,
      safety_copies: safety,
      warnings,
      message: `Rebuilt ${plan.length} database(s) from the mirror.${existing.length ? ` The replaced files are kept in ${kept} (undo with: wb-backup restore --undo).` : ''}${missingNote}`,
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
    db.exec(readCloneFile(clone, entry.schema));
    // Rows are loaded as they were: triggers must not fire (they would add rows) and parents may
    // come after children, so foreign keys are checked once at the end instead.
    const triggers = db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger'").all() as Array<{ name: string; sql: string }>;
    for (const t of triggers) db.exec(`DROP TRIGGER ${quoteIdent(t.name)}`);
    db.pragma('foreign_keys = OFF');
    db.transaction(() => {
      for (const [table, info] of Object.entries(entry.tables)) {
        const columns = (db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as Array<{ name: string }>).map((c) => c.name);
        const rows = isDocumentEntry(info) ? readDocuments(clone, db, dbName, table, info) : parseRows(readCloneFile(clone, info.file), info.file, columns);
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
  if (fs.existsSync(dir) && !fs.realpathSync(dir).startsWith(fs.realpathSync(clone) + path.sep)) throw new Error(`${info.dir} is not a folder inside the clone`);
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.md')).sort() : [];
  return names.map((name) => {
    const file = `${info.dir}${name}`;
    if (!fs.lstatSync(path.join(dir, name)).isFile()) throw new DocumentError(file, null, 'not a regular file (a symbolic link is never followed)');
    const text = decodeUtf8(fs.readFileSync(path.join(dir, name)));
    if (text === null) throw new DocumentError(file, null, 'the file is not valid UTF-8');
    return parseDocumentText(shape, file, text);
  });
}
