import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { withRootLock } from '../root/lock.js';
import { displayPath } from '../root/paths.js';
import { performSwap, prunePreRestoreDirs, recoverInterruptedSwap } from '../restore/swap.js';
import { quoteIdent } from '../core/sqlite-util.js';
import { createHash } from 'node:crypto';
import { claimConfirmToken, fingerprintTargets, issueConfirmToken, liveChangedReason } from '../root/consent.js';
import { unsafeDatabaseNameReason } from '../snapshot/manifest.js';
import { liveStateWarnings, probeLiveDatabase } from '../restore/live-probe.js';
import type { ConsentDecision } from '../restore/restore.js';
import { planSafetyCopies, SafetyCopyPlanSchema, uniqueSafetyDir, type SafetyCopyPlan } from '../restore/safety-copies.js';
import { DocumentError, decodeUtf8, documentDir, documentShape, parseDocumentWithRowid } from './documents.js';
import {
  SYNC_SCHEMA_VERSION,
  isDocumentEntry,
  mirrorDigest,
  type DocumentTableEntry,
  type JsonlTableEntry,
  type MirrorDatabaseEntry,
  type MirrorManifest,
  type MirrorPragmas,
  type MirrorSource,
  type MirrorTableEntry,
} from './materialize.js';
import { dataColumnsOf } from './sqlite-objects.js';
import { ROWID_FIELD, TextBytes, fromJson, parseRowsWithRowids, type SqlValue } from './rows.js';
import { encodeSegment, logicalNameForPath, logicalNameProblem, mirrorSchemaFile, mirrorTableFile, pathForLogicalName } from '../root/names.js';

export const SyncImportResultSchema = z.object({
  dry_run: z.boolean(),
  databases: z.array(
    z.object({
      name: z.string(),
      target: z.string(),
      rows: z.record(z.string(), z.number()),
      replaced: z.boolean(),
      source: z
        .object({ snapshot_id: z.string().nullable(), content_sha256: z.string(), taken_at: z.string().nullable() })
        .nullable()
        .describe('the state the mirror was made from (manifest.json); null for mirrors written before it was recorded'),
      source_matches: z.boolean().nullable().describe("whether the clone's files are exactly that state (false: edited since, or tables held back by the per-push cap); null when not checked (dry run, no source)"),
      row_counts_differ: z
        .array(z.object({ table: z.string(), manifest: z.number(), imported: z.number() }))
        .optional()
        .describe('tables whose files hold another number of rows than the manifest records (rows added or deleted in the repository since push); the rows the files hold were imported. Absent when none'),
    }),
  ),
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
  databases: SyncImportResult['databases'];
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
    if (!mirrorPathAllowed(entry?.schema, mirrorSchemaFile(name), legacyMirrorPath(name, 'schema.sql'))) {
      return `it puts the schema of ${name} in ${JSON.stringify(entry?.schema)}, not ${mirrorSchemaFile(name)}`;
    }
    for (const [table, info] of Object.entries(entry.tables ?? {})) {
      const doc = isDocumentEntry(info);
      const expected = doc ? documentDir(name, table) : mirrorTableFile(name, table);
      const given = doc ? info.dir : info.file;
      if (!mirrorPathAllowed(given, expected, legacyMirrorPath(name, doc ? `${table}/` : `${table}.jsonl`, table))) {
        return `it puts the table ${name}.${JSON.stringify(table).slice(1, -1)} in ${JSON.stringify(given)}, not ${expected}`;
      }
    }
  }
  return null;
}

/** A mirror path is the one names.ts gives, or (mirrors pushed before names.ts) the plain legacy one. */
function mirrorPathAllowed(given: unknown, expected: string, legacy: string | null): boolean {
  return given === expected || (legacy !== null && given === legacy);
}

/**
 * Mirrors pushed before names.ts used the database and table names as they were
 * (`<db>/<table>.jsonl`, `<db>/<table>/`): still readable, but only where each name is a plain
 * single path segment (no separator, control character, "." or ".."), so a legacy path can never
 * lead outside its database folder. readCloneFile also refuses links and paths outside the clone.
 */
function legacyMirrorPath(db: string, rest: string, table?: string): string | null {
  const plain = (n: string) => n.length > 0 && n !== '.' && n !== '..' && !/[\\/\u0000-\u001f\u007f]/.test(n);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(db)) return null;
  if (table !== undefined && !plain(table)) return null;
  return `${db}/${rest}`;
}

/** A mirror file's text, refusing anything that is not a regular file inside the clone (git can check out symbolic links). */
function readCloneFile(clone: string, rel: string): string {
  const full = path.join(clone, ...rel.split('/'));
  const real = fs.realpathSync(full);
  if (!real.startsWith(fs.realpathSync(clone) + path.sep) || !fs.lstatSync(full).isFile()) throw new Error(`${rel} is not a regular file inside the clone`);
  return fs.readFileSync(real, 'utf8');
}

/**
 * Where a database the configuration does not know is rebuilt: where it lived (the manifest's
 * `db_path`, when recordedPath accepts it), else the path discovery would name it by (names.ts),
 * else db/<segment>.db.
 */
function importTarget(root: string, name: string, entry: MirrorDatabaseEntry): string {
  const recorded = recordedPath(name, entry.db_path);
  if (recorded) return path.join(root, 'db', ...recorded);
  const components = pathForLogicalName(name);
  return components ? path.join(root, 'db', ...components.slice(0, -1), `${components.at(-1)!}.db`) : path.join(root, 'db', `${encodeSegment(name)}.db`);
}

/**
 * The manifest's `db_path` of database `name`, when it is safe to use: every component a single
 * safe file-name component (no separator, not `.`/`..`, no control character), the last one ending
 * in `.db`, and discovery would give that file exactly `name`, so a hand-edited or hostile
 * manifest cannot choose any other target than the one the name stands for. Null otherwise
 * (older mirrors have none): the caller falls back.
 */
export function recordedPath(name: string, dbPath: unknown): string[] | null {
  if (!Array.isArray(dbPath) || dbPath.length === 0) return null;
  const ok = (c: unknown): c is string =>
    typeof c === 'string' && c.length > 0 && Buffer.byteLength(c) <= 255 && c !== '.' && c !== '..' && !/[/\\\u0000-\u001f\u007f]/.test(c);
  if (!dbPath.every(ok)) return null;
  const last = dbPath.at(-1) as string;
  if (!last.endsWith('.db') || last === '.db') return null;
  const named = logicalNameForPath([...(dbPath.slice(0, -1) as string[]), last.slice(0, -'.db'.length)]);
  return 'name' in named && named.name === name ? (dbPath as string[]) : null;
}

/**
 * Where each mirrored database goes: its configured file, else where discovery would find it (importTarget). The names come
 * from the clone (untrusted): each must be a safe logical name, and no two may share a file.
 */
function planTargets(config: Config, manifest: MirrorManifest): Array<{ name: string; entry: MirrorManifest['databases'][string]; target: string }> {
  const plan = Object.entries(manifest.databases ?? {}).map(([name, entry]) => {
    const why = unsafeDatabaseNameReason(name);
    if (why) throw new WbError('invalid_input', `The mirror's manifest.json names a database ${JSON.stringify(name)}, which is not a safe name (${why}). Nothing was changed.`, 'Fix manifest.json in the repository, or use a clone you trust.');
    const target = config.databases.find((d) => d.name === name)?.path ?? importTarget(config.root, name, entry);
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
 * file first; row counts must equal the manifest's when the clone is exactly the state push recorded
 * (an edited clone imports the rows its files hold and reports the differences, row_counts_differ).
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
    databases: plan.map((p) => ({ name: p.name, target: displayPath(config.root, p.target), rows: rowsOf(p), replaced: existing.includes(p), source: sourceOf(p.entry), source_matches: null })),
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
    // The plan was made before the lock was ours: a database that came into being while this import
    // waited (a restore, a program, the recovery just above) would be replaced without the consent
    // its replacement needs. (A confirm token's fingerprints catch it too, with their own message.)
    const appeared = plan.filter((p) => !existing.includes(p) && fs.existsSync(p.target));
    if (appeared.length && opts.confirmToken === undefined) {
      throw new WbError(
        'consent_required',
        `The import was not performed: ${appeared.map((p) => `${p.name} (${displayPath(config.root, p.target)})`).join(', ')} came into being while the import waited for the data root, and replacing it needs the user's consent. Nothing was changed.`,
        'Run the import again: its plan then shows the database it would replace.',
      );
    }
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
    const states = new Map<string, BuiltDatabase>();
    try {
      fs.mkdirSync(staging, { recursive: true });
      for (const [index, p] of plan.entries()) {
        const tmp = path.join(staging, `${index}.db`);
        built.push({ name: p.name, tmp, target: p.target });
        states.set(p.name, buildDatabase(clone, p.name, p.entry, tmp));
      }
    } catch (err) {
      fs.rmSync(staging, { recursive: true, force: true });
      if (err instanceof WbError) throw err;
      // A full disk is not the repository's fault: "fix that file" would send the user the wrong way.
      if (/ENOSPC|SQLITE_FULL|disk is full/i.test(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)) {
        throw new WbError('disk_full', `The disk holding ${config.root} is full, so the mirror could not be built (${(err as Error).message}). Nothing was changed.`, 'Free some space, then import again.');
      }
      throw new WbError('invalid_input', `The mirror cannot be imported: ${(err as Error).message}. Nothing was changed.`, 'Fix that file in the repository (or check out an earlier commit), then import again.');
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
      databases: importPlan.databases.map((d) => {
        const st = states.get(d.name);
        const differ = st?.row_counts_differ ?? [];
        return { ...d, rows: st?.rows ?? d.rows, source_matches: st?.source_matches ?? null, ...(differ.length ? { row_counts_differ: differ } : {}) };
      }),
      not_in_mirror: notInMirror,
      pre_restore_dir: existing.length ? kept : undefined,
      safety_copies: safety,
      warnings,
      message: `Rebuilt ${plan.length} database(s) from the mirror.${existing.length ? ` The replaced files are kept in ${kept} (undo with: wb-backup restore --undo).` : ''}${sourceNote(plan.map((p) => ({ name: p.name, ...(states.get(p.name) ?? { source: null, source_matches: null }) })))}${missingNote}`,
    };
  });
}

function describeSafety(safety: SafetyCopyPlan | null): string {
  if (!safety) return '';
  return safety.would_prune.length
    ? `${safety.keep} safety copies are kept, so this would remove ${safety.would_prune.map((p) => `${p.folder} (made ${p.created_at ?? 'at an unknown time'})`).join(', ')}.`
    : `${safety.keep} safety copies are kept; this removes none.`;
}

function sourceOf(entry: MirrorDatabaseEntry): MirrorSource | null {
  const s = entry.source;
  return s ? { snapshot_id: s.snapshot_id ?? null, content_sha256: String(s.content_sha256), taken_at: typeof s.taken_at === 'string' ? s.taken_at : null } : null;
}

/** Which state each rebuilt database holds, in words. */
function sourceNote(built: Array<{ name: string } & BuiltDatabase>): string {
  const parts = built.map((b) => {
    if (!b.source) return `${b.name}: the mirror does not record which state it holds (written by an older wb-backup)`;
    const from = b.source.snapshot_id ? `snapshot ${b.source.snapshot_id}` : `the live database as read${b.source.taken_at ? ` at ${b.source.taken_at}` : ''} (content sha256 ${b.source.content_sha256.slice(0, 12)}…)`;
    return b.source_matches ? `${b.name}: exactly ${from}` : `${b.name}: ${from}, changed since in the repository (edited there, or tables held back by the per-push cap)`;
  });
  const counts = built.filter((b) => b.row_counts_differ?.length).map((b) => `${b.name}: ${b.row_counts_differ!.map((d) => `${d.table} ${d.imported} (manifest ${d.manifest})`).join(', ')}`);
  if (counts.length) parts.push(`rows the repository's files hold now, not the manifest's counts: ${counts.join('; ')}`);
  return parts.length ? ` State: ${parts.join('; ')}.` : '';
}

/** What buildDatabase learned about the state the mirror holds (reported by import). */
export interface BuiltDatabase {
  /** manifest.source (null in mirrors written before it was recorded) */
  source: MirrorSource | null;
  /** whether the clone's files still hash to source.content_sha256 (false: edited since, or tables held back by the per-push cap); null without a source */
  source_matches: boolean | null;
  /** rows loaded per table */
  rows?: Record<string, number>;
  /** tables whose files hold another number of rows than the manifest records (only when the clone was edited since push, or has no source) */
  row_counts_differ?: Array<{ table: string; manifest: number; imported: number }>;
}

/** The rows of one table as the mirror holds them, with the rowid each carries (null: none). */
interface LoadedRows {
  rows: SqlValue[][];
  rowids: Array<bigint | null>;
}

/** `INSERT INTO t (rowid?, cols) VALUES (...)`; TEXT that is not valid UTF-8 is bound as bytes and cast back to TEXT, which keeps them. */
function inserter(db: Database.Database, table: string, columns: readonly string[], rowidName: string | null): (row: readonly SqlValue[], rowid: bigint | null) => void {
  const cache = new Map<string, Database.Statement>();
  return (row, rowid) => {
    const withRowid = rowid !== null && rowidName !== null;
    const shape = row.map((v) => (v instanceof TextBytes ? 't' : '?')).join('') + (withRowid ? 'r' : '');
    let stmt = cache.get(shape);
    if (!stmt) {
      const names = [...(withRowid ? [rowidName] : []), ...columns.map(quoteIdent)];
      const marks = [...(withRowid ? ['?'] : []), ...row.map((v) => (v instanceof TextBytes ? 'CAST(? AS TEXT)' : '?'))];
      stmt = db.prepare(`INSERT INTO ${quoteIdent(table)} (${names.join(', ')}) VALUES (${marks.join(', ')})`);
      cache.set(shape, stmt);
    }
    const values = row.map((v) => (v instanceof TextBytes ? v.bytes : v));
    stmt.run(...(withRowid ? [rowid, ...values] : values));
  };
}

/** The name this table's rowid can be set through: null when the table has none of its own (WITHOUT ROWID) or every name is a column. */
function rowidNameOf(db: Database.Database, table: string, virtual: boolean): string | null {
  if (!virtual) {
    const listed = db.prepare("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?").get(table) as { wr: number } | undefined;
    if (listed && Number(listed.wr) === 1) return null;
  }
  const taken = new Set((db.prepare(`PRAGMA table_xinfo(${quoteIdent(table)})`).all() as Array<{ name: string }>).map((c) => c.name.toLowerCase()));
  return ['rowid', '_rowid_', 'oid'].find((n) => !taken.has(n)) ?? null;
}

/** A mirror written before shadow tables were left out: they were dumped as tables (such a mirror could not be imported then). */
function legacyShadowTables(db: Database.Database, entry: MirrorDatabaseEntry): Set<string> {
  if (entry.source) return new Set();
  const shadow = (db.prepare("SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'shadow'").pluck().all() as string[]);
  return new Set(shadow.filter((n) => n in entry.tables));
}

/** Run schema.sql; an older mirror's CREATE TABLE of a virtual table's shadow table is skipped (the virtual table makes it). */
function createSchema(db: Database.Database, sql: string, legacy: boolean): void {
  if (!legacy) {
    db.exec(sql);
    return;
  }
  // Older mirrors wrote each statement as `<sql>;\n`, tables first: virtual tables go first so that
  // their shadow tables exist, and a CREATE TABLE of an existing name is then a shadow table.
  const statements = sql.split(/;\n(?=CREATE\s)/i).map((x) => x.replace(/;\n?$/, '')).filter((x) => x.trim());
  const isVirtual = (x: string) => /^\s*CREATE\s+VIRTUAL\s/i.test(x);
  for (const x of statements.filter(isVirtual)) db.exec(x);
  for (const x of statements.filter((y) => !isVirtual(y))) {
    try {
      db.exec(x);
    } catch (err) {
      if (!/already exists|reserved for internal use/.test((err as Error).message)) throw err;
    }
  }
}

const ENCODINGS = ['UTF-8', 'UTF-16le', 'UTF-16be'];

/** A whole number from the manifest, for a PRAGMA (32-bit: every setting the mirror carries fits). */
function intSetting(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || Math.abs(value) > 2 ** 31) throw new Error(`the manifest's ${name} ${JSON.stringify(value)} is not a whole number`);
  return value;
}

function applyPragmasBefore(db: Database.Database, pragmas: MirrorPragmas | undefined): void {
  // Encoding, page size and auto_vacuum only take effect on an empty database: set before the schema.
  // The manifest is input: each value is checked before it becomes part of a PRAGMA.
  if (pragmas?.encoding !== undefined) {
    if (!ENCODINGS.includes(pragmas.encoding)) throw new Error(`the manifest's encoding ${JSON.stringify(pragmas.encoding)} is not one SQLite has (${ENCODINGS.join(', ')})`);
    db.pragma(`encoding = '${pragmas.encoding}'`);
  }
  if (pragmas?.page_size !== undefined) db.pragma(`page_size = ${intSetting(pragmas.page_size, 'page_size')}`);
  db.pragma(`auto_vacuum = ${intSetting(pragmas?.auto_vacuum ?? 0, 'auto_vacuum')}`);
  if (pragmas?.application_id !== undefined) db.pragma(`application_id = ${intSetting(pragmas.application_id, 'application_id')}`);
}

/**
 * Rebuild one database from the mirror into `file` (a new file): settings, schema.sql, FTS5
 * settings, the rows of every table (ordinary and virtual, with their rowids), external-content
 * indexes rebuilt, sqlite_sequence, then triggers (so they do not fire while loading). Foreign keys
 * and the row counts of the manifest (when the clone is the recorded state) are checked at the end;
 * returns the rows loaded and the counts that differ from the manifest. Throws on the first problem, with the
 * file (and line) that has it.
 */
export function buildDatabase(clone: string, dbName: string, entry: MirrorDatabaseEntry, file: string): BuiltDatabase {
  // Whether the clone is exactly the state push recorded: only then are the manifest's row counts
  // (and the database's own dangling references) authoritative. Edited since (a row added on
  // GitHub, the other side of pull) or written before `source`: the files are the data.
  const matches = entry.source ? sourceMatches(clone, entry) : null;
  const rows: Record<string, number> = {};
  const differ: NonNullable<BuiltDatabase['row_counts_differ']> = [];
  const db = new Database(file);
  try {
    applyPragmasBefore(db, entry.pragmas);
    const schemaText = readCloneFile(clone, entry.schema);
    const legacyFts = !entry.source && /CREATE\s+VIRTUAL\s+TABLE/i.test(schemaText);
    // Rows are loaded as they were: triggers must not fire (they would add rows) and parents may
    // come after children, so foreign keys are checked once at the end instead.
    db.pragma('foreign_keys = OFF');
    // One transaction for the whole build: the file is new, and one commit is one flush, not one per statement.
    db.exec('BEGIN');
    createSchema(db, schemaText, legacyFts);
    const legacyShadow = legacyShadowTables(db, entry);
    const triggers = db.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger'").all() as Array<{ name: string; sql: string }>;
    for (const t of triggers) db.exec(`DROP TRIGGER ${quoteIdent(t.name)}`);
    const virtual = new Set(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL%'").pluck().all() as string[]);
    // SQLite refuses writes to shadow tables (defensive mode) unless told otherwise: only an older mirror's dump needs them.
    if (legacyShadow.size) db.unsafeMode(true);
    for (const [table, settings] of Object.entries(entry.fts5_config ?? {})) {
      if (!virtual.has(table)) throw new Error(`the manifest has FTS5 settings for ${table}, which ${entry.schema} does not declare as a virtual table`);
      const set = db.prepare(`INSERT INTO ${quoteIdent(table)} (${quoteIdent(table)}, rank) VALUES (?, ?)`);
      for (const [k, v] of settings) set.run(k, fromJson(v, `${entry.schema.split('/')[0]} fts5_config of ${table}`));
    }
    for (const [table, info] of Object.entries(entry.tables)) {
      if (legacyShadow.has(table)) {
        // An older mirror's dump of a shadow table: the index exactly as it was, replacing the empty one the virtual table made.
        db.exec(`DELETE FROM ${quoteIdent(table)}`);
      }
      const isVirtual = virtual.has(table);
      const columns = dataColumnsOf(db, table);
      const loaded = isDocumentEntry(info) ? readDocuments(clone, db, dbName, table, info) : readJsonl(clone, info, columns);
      const insert = inserter(db, table, columns, rowidNameOf(db, table, isVirtual));
      loaded.rows.forEach((row, i) => insert(row, loaded.rowids[i] ?? null));
    }
    for (const table of entry.rebuild ?? []) {
      if (!virtual.has(table)) throw new Error(`the manifest asks to rebuild ${table}, which ${entry.schema} does not declare as a virtual table`);
      db.prepare(`INSERT INTO ${quoteIdent(table)} (${quoteIdent(table)}) VALUES ('rebuild')`).run();
    }
    if (entry.sqlite_sequence) {
      // Loading rows with their ids moved the counters to the highest id; the source's may be higher (deleted rows).
      const exists = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_sequence'").get() !== undefined;
      if (exists) {
        db.exec('DELETE FROM sqlite_sequence');
        const put = db.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)');
        for (const s of entry.sqlite_sequence) put.run(fromJson(s.name, 'sqlite_sequence name'), fromJson(s.seq, 'sqlite_sequence seq'));
      }
    }
    for (const t of triggers) db.exec(t.sql);
    db.pragma(`user_version = ${intSetting(entry.user_version, 'user_version')}`);
    db.exec('COMMIT');
    if (legacyShadow.size) db.unsafeMode(false);
    const fk = db.pragma('foreign_key_check') as unknown[];
    // SQLite leaves foreign keys off by default, so a database may hold dangling references of its
    // own: when the clone is exactly the state push read, they are the database's, and it comes back
    // as it was. Only rows changed in the repository since then are refused for breaking a key.
    if (fk.length && !matches) throw new Error(`${entry.schema.split('/')[0]} has ${fk.length} foreign-key violation(s) after loading`);
    for (const [table, info] of Object.entries(entry.tables)) {
      const count = Number(db.prepare(`SELECT count(*) FROM ${quoteIdent(table)}`).pluck().get());
      Object.defineProperty(rows, table, { value: count, enumerable: true, writable: true, configurable: true });
      if (count === info.rows) continue;
      // The files hash to what push wrote, yet the count differs: the manifest or the build is wrong.
      if (matches) throw new Error(`${where(info)} holds ${count} rows, the manifest says ${info.rows}`);
      differ.push({ table, manifest: Number(info.rows), imported: count });
    }
    if (entry.pragmas?.journal_mode === 'wal') db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
  return { source: entry.source ?? null, source_matches: matches, rows, row_counts_differ: differ };
}

/** Whether the clone's files for this database hash to the state push recorded (`source.content_sha256`). */
function sourceMatches(clone: string, entry: MirrorDatabaseEntry): boolean {
  const state = { user_version: entry.user_version, pragmas: entry.pragmas, sqlite_sequence: entry.sqlite_sequence, fts5_config: entry.fts5_config, rebuild: entry.rebuild };
  return !!entry.source && mirrorDigest(clone, entry, state) === entry.source.content_sha256;
}

function readJsonl(clone: string, info: JsonlTableEntry, columns: readonly string[]): LoadedRows {
  return parseRowsWithRowids(readCloneFile(clone, info.file), info.file, columns, info.rowid_field ?? ROWID_FIELD);
}

function where(info: MirrorTableEntry): string {
  return isDocumentEntry(info) ? info.dir : info.file;
}

/** Every `<key>.md` of a document table, as rows in table order; the first bad file stops the import. */
function readDocuments(clone: string, db: Database.Database, dbName: string, table: string, info: DocumentTableEntry): LoadedRows {
  if (!mirrorPathAllowed(info.dir, documentDir(dbName, table), legacyMirrorPath(dbName, `${table}/`, table))) throw new Error(`the manifest puts ${dbName}.${table} in ${info.dir}, not ${documentDir(dbName, table)}`);
  const columns = db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as Array<{ name: string; pk: number }>;
  const pk = columns.filter((c) => c.pk > 0).sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name);
  const shape = documentShape({ name: table, columns: columns.map((c) => c.name), pk }, info.body);
  if ('reason' in shape) throw new Error(`${info.dir} cannot be read as documents: ${shape.reason}`);
  if (shape.key !== info.key) throw new Error(`${info.dir}: the manifest keys it by ${info.key}, the schema by ${shape.key}`);
  const dir = path.join(clone, info.dir);
  // An empty table may have no directory in git (git keeps no empty folders).
  if (fs.existsSync(dir) && !fs.realpathSync(dir).startsWith(fs.realpathSync(clone) + path.sep)) throw new Error(`${info.dir} is not a folder inside the clone`);
  const names = fs.existsSync(dir) ? fs.readdirSync(dir).filter((n) => n.endsWith('.md')).sort() : [];
  const out: LoadedRows = { rows: [], rowids: [] };
  for (const name of names) {
    const file = `${info.dir}${name}`;
    if (!fs.lstatSync(path.join(dir, name)).isFile()) throw new DocumentError(file, null, 'not a regular file (a symbolic link is never followed)');
    const text = decodeUtf8(fs.readFileSync(path.join(dir, name)));
    if (text === null) throw new DocumentError(file, null, 'the file is not valid UTF-8');
    const { row, rowid } = parseDocumentWithRowid(shape, file, text, info.rowid_field ?? ROWID_FIELD);
    out.rows.push(row);
    out.rowids.push(rowid);
  }
  return out;
}
