import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { withRootLock } from '../root/lock.js';
import { displayPath } from '../root/paths.js';
import { performSwap } from '../restore/swap.js';
import { prunePreRestoreDirs } from '../restore/pre-restore.js';
import { recoverInterruptedSwap } from '../restore/recovery.js';
import { createHash } from 'node:crypto';
import { claimConfirmToken, fingerprintTargets, issueConfirmToken, liveChangedReason } from '../root/consent.js';
import { unsafeDatabaseNameReason } from '../snapshot/manifest.js';
import { liveStateWarnings, probeLiveDatabase } from '../restore/live-probe.js';
import type { ConsentDecision } from '../restore/restore.js';
import { planSafetyCopies, SafetyCopyPlanSchema, uniqueSafetyDir, type SafetyCopyPlan } from '../restore/safety-copies.js';
import { buildDatabase, type BuiltDatabase } from './import-build.js';
import { readMirrorManifestIn, type MirrorDatabaseEntry, type MirrorManifest, type MirrorSource } from './mirror-manifest.js';
import { encodeSegment, logicalNameForPath, pathForLogicalName } from '../root/names.js';
import { rootLayout } from '../root/paths.js';

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

/** The clone's manifest.json, validated (mirror-manifest.ts); a folder without one is not a mirror. */
function readManifest(clone: string): MirrorManifest {
  const manifest = readMirrorManifestIn(clone, {
    where: `in ${clone}`,
    hint: 'Check out a commit the sync wrote (or push again from the machine that has the databases), then import again.',
  });
  if (!manifest) throw new WbError('invalid_input', `${clone} has no readable manifest.json: it is not a wb-backup mirror.`, 'Pass the folder of a `git clone` of your sync repository.');
  return manifest;
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
 * Where a database the configuration does not know is rebuilt: where it lived (the manifest's
 * `db_path`, when recordedPath accepts it), else the path discovery would name it by (names.ts),
 * else db/<segment>.db.
 */
function importTarget(root: string, name: string, entry: MirrorDatabaseEntry): string {
  const recorded = recordedPath(name, entry.db_path);
  const { dbDir } = rootLayout(root);
  if (recorded) return path.join(dbDir, ...recorded);
  const components = pathForLogicalName(name);
  return components ? path.join(dbDir, ...components.slice(0, -1), `${components.at(-1)!}.db`) : path.join(dbDir, `${encodeSegment(name)}.db`);
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
/** One database of the mirror and the file it is rebuilt into. */
interface PlannedTarget {
  name: string;
  entry: MirrorDatabaseEntry;
  target: string;
}

function planTargets(config: Config, manifest: MirrorManifest): PlannedTarget[] {
  const plan = Object.entries(manifest.databases).map(([name, entry]) => {
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

/** Everything an import decides before it touches anything: read once, used by the dry run and the real run alike. */
interface PreparedImport {
  manifest: MirrorManifest;
  manifestSha: string;
  plan: PlannedTarget[];
  /** the planned databases whose target exists now (replacing them needs consent) */
  existing: PlannedTarget[];
  request: { clone_dir: string };
  preRestoreDir: string;
  safety: SafetyCopyPlan | null;
  importPlan: ImportPlan;
  tokenPlan: ImportTokenPlan;
  /** " The mirror does not hold everything: …" or '' */
  missingNote: string;
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
  const prepared = prepareImport(config, clone);
  if (opts.dryRun) return dryRunResult(config, prepared);
  return withRootLock(config.root, 'github-sync import', config.backup.lock_wait_ms, async () => {
    recoverInterruptedSwap(config.root);
    const named = await obtainConsent(config, prepared, opts);
    const { staging, built, states } = buildAll(config, clone, prepared);
    return swapIn(config, prepared, staging, built, states, named);
  });
}

/** Read and validate the manifest, plan each database's target and the safety copies: reads only. */
function prepareImport(config: Config, clone: string): PreparedImport {
  const manifest = readManifest(clone);
  const manifestSha = createHash('sha256').update(fs.readFileSync(path.join(clone, 'manifest.json'))).digest('hex');
  const plan = planTargets(config, manifest);
  const existing = plan.filter((p) => fs.existsSync(p.target));
  const rowsOf = (p: PlannedTarget) => Object.fromEntries(Object.entries(p.entry.tables).map(([t, i]) => [t, i.rows]));
  const notInMirror = manifest.skipped;
  // Read by bytes only (a dry run changes nothing): states a reader would act on become warnings.
  const warnings = existing.flatMap((p) => liveStateWarnings(p.name, displayPath(config.root, p.target), probeLiveDatabase(p.target)));
  const preRestoreDir = uniqueSafetyDir(config.root);
  const safety = existing.length ? planSafetyCopies(config, { newCopy: preRestoreDir }) : null;
  return {
    manifest,
    manifestSha,
    plan,
    existing,
    request: { clone_dir: path.resolve(clone) },
    preRestoreDir,
    safety,
    importPlan: {
      databases: plan.map((p) => ({ name: p.name, target: displayPath(config.root, p.target), rows: rowsOf(p), replaced: existing.includes(p), source: sourceOf(p.entry), source_matches: null })),
      safety: safety ?? planSafetyCopies(config, { newCopy: null }),
      warnings,
    },
    tokenPlan: {
      manifest_sha256: manifestSha,
      databases: plan.map((p) => ({ name: p.name, target: p.target })),
      would_prune: (safety?.would_prune ?? []).map((x) => x.folder),
    },
    missingNote: notInMirror.length ? ` The mirror does not hold everything: ${notInMirror.map((x) => x.path).join(', ')} (see not_in_mirror).` : '',
  };
}

/** The dry run's answer: the plan, and a confirm token when it would replace existing databases. */
function dryRunResult(config: Config, p: PreparedImport): SyncImportResult {
  const { existing, plan, safety } = p;
  const token = existing.length
    ? issueConfirmToken({ operation: 'import', root: config.root, request: p.request, plan: p.tokenPlan, targets: plan.map((x) => x.target) })
    : undefined;
  return {
    dry_run: true,
    databases: p.importPlan.databases,
    not_in_mirror: p.manifest.skipped,
    ...(token ? { confirm_token: token } : {}),
    safety_copies: safety,
    warnings: p.importPlan.warnings,
    message: `Would rebuild ${plan.length} database(s)${existing.length ? `, replacing ${existing.length} (${existing.map((x) => x.name).join(', ')}): that needs consent (this dry run's confirm_token, or the user's answer). ${describeSafety(safety)}` : ''}; nothing was changed.${p.missingNote}`,
  };
}

/**
 * Consent comes before anything is built (under the root lock): a confirm token, or the user's
 * answer when existing databases would be replaced. Returns the safety copies the consented plan
 * named for pruning (pruning may only remove those). Throws consent_required otherwise.
 */
async function obtainConsent(config: Config, p: PreparedImport, opts: SyncImportOptions): Promise<string[]> {
  const { plan, existing, safety } = p;
  // The plan was made before the lock was ours: a database that came into being while this import
  // waited (a restore, a program, the recovery just before) would be replaced without the consent
  // its replacement needs. (A confirm token's fingerprints catch it too, with their own message.)
  const appeared = plan.filter((x) => !existing.includes(x) && fs.existsSync(x.target));
  if (appeared.length && opts.confirmToken === undefined) {
    throw new WbError(
      'consent_required',
      `The import was not performed: ${appeared.map((x) => `${x.name} (${displayPath(config.root, x.target)})`).join(', ')} came into being while the import waited for the data root, and replacing it needs the user's consent. Nothing was changed.`,
      'Run the import again: its plan then shows the database it would replace.',
    );
  }
  if (opts.confirmToken !== undefined) {
    const claim = claimConfirmToken<ImportTokenPlan>(opts.confirmToken, { operation: 'import', root: config.root, request: p.request });
    if (!claim.ok) throw new WbError('consent_required', `The import was not performed: ${claim.reason}. Nothing was changed.`);
    const recorded = claim.grant.plan;
    if (recorded.manifest_sha256 !== p.manifestSha || JSON.stringify(recorded.databases) !== JSON.stringify(p.tokenPlan.databases)) {
      throw new WbError('consent_required', 'The import was not performed: the clone or the configuration changed since the dry run, so its plan no longer holds. Nothing was changed.', 'Run a new dry run and use its confirm_token.');
    }
    return recorded.would_prune;
  }
  if (!existing.length) return [];
  if (!opts.consent) {
    throw new WbError(
      'consent_required',
      `Importing would replace existing databases (${existing.map((x) => x.name).join(', ')}), which needs the user's consent. Nothing was changed.`,
      'Run the import with dry_run: true, show the user the plan, and if they agree call it again with the same clone_dir plus the confirm_token it returned (CLI: --force, then answer y or pass --yes).',
    );
  }
  // Every target, also those absent now: a database appearing meanwhile changes the plan too.
  const shown = fingerprintTargets(plan.map((x) => x.target));
  const decision = await opts.consent(p.importPlan);
  if (!decision.granted) throw new WbError('consent_required', `The import was not performed: ${decision.reason}. Nothing was changed.`);
  const changed = liveChangedReason(shown, config.root, 'the plan was shown');
  if (changed) throw new WbError('consent_required', `The import was not performed: ${changed}. Nothing was changed.`);
  return (safety?.would_prune ?? []).map((x) => x.folder);
}

interface BuiltFile {
  name: string;
  tmp: string;
  target: string;
}

/**
 * Build every database in a staging folder (it then goes through the same journaled swap as a
 * restore). On any failure the staging folder is removed and a WbError says what to fix.
 */
function buildAll(config: Config, clone: string, p: PreparedImport): { staging: string; built: BuiltFile[]; states: Map<string, BuiltDatabase> } {
  const staging = path.join(config.root, `db.staging_${path.basename(p.preRestoreDir).slice('db.pre_restore_'.length)}`);
  const built: BuiltFile[] = [];
  const states = new Map<string, BuiltDatabase>();
  try {
    fs.mkdirSync(staging, { recursive: true });
    for (const [index, x] of p.plan.entries()) {
      const tmp = path.join(staging, `${index}.db`);
      built.push({ name: x.name, tmp, target: x.target });
      states.set(x.name, buildDatabase(clone, x.name, x.entry, tmp));
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
  return { staging, built, states };
}

/** Put the built databases in place (the replaced files go into a new db.pre_restore_<ts> folder), prune what consent named, and report. */
function swapIn(config: Config, p: PreparedImport, staging: string, built: BuiltFile[], states: Map<string, BuiltDatabase>, named: string[]): SyncImportResult {
  const { plan, existing, safety } = p;
  const warnings = [...p.importPlan.warnings];
  for (const b of built) fs.mkdirSync(path.dirname(b.target), { recursive: true });
  const swapped = performSwap({
    root: config.root,
    kind: 'import',
    snapshotId: null,
    preRestoreDir: p.preRestoreDir,
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
    databases: p.importPlan.databases.map((d) => {
      const st = states.get(d.name);
      const differ = st?.row_counts_differ ?? [];
      return { ...d, rows: st?.rows ?? d.rows, source_matches: st?.source_matches ?? null, ...(differ.length ? { row_counts_differ: differ } : {}) };
    }),
    not_in_mirror: p.manifest.skipped,
    pre_restore_dir: existing.length ? kept : undefined,
    safety_copies: safety,
    warnings,
    message: `Rebuilt ${plan.length} database(s) from the mirror.${existing.length ? ` The replaced files are kept in ${kept} (undo with: wb-backup restore --undo).` : ''}${sourceNote(plan.map((x) => ({ name: x.name, ...(states.get(x.name) ?? { source: null, source_matches: null }) })))}${p.missingNote}`,
  };
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

