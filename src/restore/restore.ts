import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { withRootLock } from '../root/lock.js';
import { logger } from '../core/log.js';
import type { Manifest } from '../snapshot/manifest.js';
import { parseSnapshotId } from '../snapshot/id.js';
import { configuredHost, isThisMachine } from '../root/host.js';
import { displayPath } from '../root/paths.js';
import type { LocalSnapshot } from '../snapshot/store.js';
import { ensureLocalSnapshot } from '../remote/fetch.js';
import { remoteFromConfig } from '../remote/registry.js';
import type { Remote } from '../remote/remote.js';
import { claimConfirmToken, fingerprintTargets, issueConfirmToken, liveChangedReason, type ConsentGrant, type TargetFingerprint } from '../root/consent.js';
import { whyInUse } from './in-use.js';
import { listMigrations, newestMigrationVersion, type Migration } from './migrations.js';
import { liveStateWarnings, probeLiveDatabase } from './live-probe.js';
import { planSafetyCopies, SafetyCopyPlanSchema, uniqueSafetyDir, type SafetyCopyPlan } from './safety-copies.js';
import { crashPoint, journalPath } from './journal.js';
import { performSwap } from './swap.js';
import { prunePreRestoreDirs } from './pre-restore.js';
import { leftoverStagingDirs, recoverInterruptedSwap } from './recovery.js';
import { selectDatabases, type Selected } from './targets.js';
import { stageAndVerify, verifyManifest, type StagedDatabase } from './stage.js';
import { chainBytes, resolveChains, type DatabaseChains } from './chain-stage.js';
import { formatBytes } from '../core/size-format.js';
import { ProgressReporter } from '../core/progress.js';
import { compareRows, describeLoss, formatAge, readRowsByCopy, RowComparisonSchema } from './compare.js';

export const RestoredDatabaseSchema = z.object({
  name: z.string(),
  target: z.string().describe('live file, relative to the data root when inside it'),
  live_exists: z.boolean(),
  from_user_version: z.number(),
  to_user_version: z.number(),
  migrations_applied: z.array(z.string()),
  rows: z.record(z.string(), z.number()).describe('rows per table after the restore (the snapshot, after any migrations)'),
  compared: RowComparisonSchema.describe('live rows now against the rows after the restore, per table: what the user loses'),
});

export const SnapshotOriginSchema = z.object({
  created_at: z.string(),
  age: z.string().describe('how long ago the snapshot was taken, e.g. "3 h 12 min ago"'),
  host: z.string().describe('the machine that took it: the host in its id (the manifest\'s host for ids older than hosts)'),
  this_machine: z
    .boolean()
    .describe("true when that is this machine (its configured host); false: restoring another machine's snapshot, allowed (e.g. moving to a new laptop)"),
});
export type SnapshotOrigin = z.infer<typeof SnapshotOriginSchema>;

export const RestoreResultSchema = z.object({
  snapshot_id: z.string(),
  dry_run: z.boolean(),
  confirm_token: z.string().optional().describe('dry run only: pass it back with the same snapshot_id, databases and force to perform exactly this plan; works once, while the live databases are unchanged'),
  databases: z.array(RestoredDatabaseSchema),
  snapshot: SnapshotOriginSchema.describe('when and where the snapshot was taken'),
  what_you_lose: z.string().describe('plainly: the rows and changes made since the snapshot that the restore throws away, and how to get them back'),
  data_root: z.string().describe('the data root, absolute'),
  pre_restore_dir: z.string().nullable().describe('where the replaced live files were moved (restore --undo puts them back)'),
  safety_copies: SafetyCopyPlanSchema.describe('how many safety copies are kept and which existing one this restore removes'),
  pruned: z.array(z.string()).describe('safety copies removed (only ever ones the plan named)'),
  warnings: z.array(z.string()),
});
export type RestoreResult = z.infer<typeof RestoreResultSchema>;
export type RestoredDatabase = z.infer<typeof RestoredDatabaseSchema>;

export interface RestorePlan {
  snapshotId: string;
  databases: RestoredDatabase[];
  /** when and where the snapshot was taken */
  origin: SnapshotOrigin;
  /** the rows and changes lost, stated plainly (see lossSummary) */
  whatYouLose: string;
  /** the data root, absolute (messages name real paths) */
  root: string;
  preRestoreDir: string;
  /** the safety-copy rotation: kept count, and the copy this restore would remove */
  safety: SafetyCopyPlan;
  warnings: string[];
}

export type ConsentDecision = { granted: true } | { granted: false; reason: string };

export interface RestoreOptions {
  snapshotId: string;
  databases?: string[] | undefined;
  dryRun?: boolean;
  force?: boolean;
  /** asked after everything is verified, right before the swap; never for a dry run */
  consent?: (plan: RestorePlan) => Promise<ConsentDecision>;
  /**
   * A dry run's confirm token: checked (and consumed) before anything else is done; the restore then
   * executes the plan recorded with it. Takes the place of `consent`.
   */
  confirmToken?: string;
  signal?: AbortSignal;
  /**
   * Progress in bytes: the snapshot downloaded from the remote (when this machine lacks it), then
   * the databases unpacked into staging, verified, swapped in, of their sizes in the manifest
   * (the download's size only, or undefined, until the snapshot is read). Strictly increasing,
   * rate-limited; `message` names the step.
   */
  onProgress?: (done: number, total: number | undefined, message: string) => void;
  lockWaitMs?: number;
  /** where to fetch snapshots this machine lacks; default: the configured remote */
  remote?: Remote | null;
}


/** What a confirm token records of a dry run's plan: executed as is, compared with the real run's planning. */
interface RestoreTokenPlan {
  snapshot_id: string;
  databases: Array<{ name: string; target: string; sha256: string }>;
  would_prune: string[];
}

/** The caller's request a token is bound to (the plan it resolved to is recorded beside it). */
function restoreRequest(opts: RestoreOptions): unknown {
  return { snapshot_id: opts.snapshotId, databases: opts.databases?.length ? [...new Set(opts.databases)].sort() : null, force: opts.force ?? false };
}

/** One restore under the root lock: what was asked, the warnings gathered so far, and the dry run's plan it executes. */
interface RestoreRun {
  config: Config;
  opts: RestoreOptions;
  /** for the result (and the consent question): every step may add one */
  warnings: string[];
  /** the dry run's plan this run executes (a confirm token was given), else null */
  grant: ConsentGrant<RestoreTokenPlan> | null;
  meter: ProgressReporter;
  bytes: RestoreBytes;
}

/** What the progress of a restore counts, in bytes. */
interface RestoreBytes {
  /** bytes of the snapshot downloaded from the remote (0 when this machine had it) */
  downloaded: number;
  /** bytes written into staging so far */
  staged: number;
  /** bytes of the databases that passed their checks */
  verified: number;
  /** bytes of the databases swapped in */
  swapped: number;
  /** unpack + verify (+ swap) of the chosen databases; unknown before the snapshot is read */
  total: number | undefined;
}

function restoreBytes(run: RestoreRun): number {
  const b = run.bytes;
  return b.downloaded + b.staged + b.verified + b.swapped;
}

/** The plan shown for consent, with the absolute folder the replaced live files will go to. */
interface PlannedRestore {
  plan: RestorePlan;
  preRestoreDir: string;
}

/** data_restore: verify everything in a staging folder, then swap it in; the live set is never touched before that. */
export async function runRestore(config: Config, opts: RestoreOptions): Promise<RestoreResult> {
  return withRootLock(config.root, opts.dryRun ? 'restore dry run' : 'restore', opts.lockWaitMs ?? config.backup.lock_wait_ms, () => restoreLocked(config, opts));
}

/**
 * The restore's steps, in order, under the root lock. Everything before the swap leaves the live
 * databases untouched; the staging folder is removed unless the swap took it over.
 */
async function restoreLocked(config: Config, opts: RestoreOptions): Promise<RestoreResult> {
  const run = beginRestore(config, opts);
  try {
    return await restoreSteps(run);
  } finally {
    run.meter.stop();
  }
}

async function restoreSteps(run: RestoreRun): Promise<RestoreResult> {
  const { config, opts } = run;
  const { snapshot, manifest } = await resolveSnapshot(run);
  const selected = selectDatabases(config, manifest, opts.databases);
  // A database stored as a delta needs its base snapshots: a missing or mismatching one is
  // refused here, before anything is staged.
  const chains = resolveChains(config.root, snapshot, manifest, selected.map((s) => s.entry));
  const selectedBytes = selected.reduce((n, s) => n + s.entry.bytes, 0);
  // Staging writes each image, or a delta's whole chain (its image and every delta).
  const stagedBytes = selected.reduce((n, s) => n + (chains.has(s.entry.name) ? chainBytes(chains.get(s.entry.name)!) : s.entry.bytes), 0);
  run.bytes.total = run.bytes.downloaded + stagedBytes + selectedBytes * (opts.dryRun ? 1 : 2);
  refuseIfPlanChanged(run, snapshot, selected);
  const ladders = checkLiveDatabases(run, selected);
  refuseWithoutRoomToStage(config.root, selected, chains);
  const stagingDir = path.join(config.root, `db.staging_${new Date().toISOString().replace(/[:.]/g, '-')}`);
  let stagingKept = false;
  try {
    const databases = (await stageDatabases(run, snapshot, manifest, selected, ladders, stagingDir, chains)).map((d) => plannedDatabase(config.root, d, stagingDir));
    checkpoint(run);
    progress(run, 'staged databases pass integrity, foreign-key and row-count checks');
    crashPoint('after-staging');
    checkInUse(run, selected);
    const planned = planRestore(run, snapshot, manifest, databases);
    if (opts.dryRun) return dryRunResult(run, selected, planned.plan);
    const named = await obtainConsent(run, selected, planned.plan);
    checkpoint(run);
    // From here the swap owns staging: it is kept while a journal may need it, removed after.
    stagingKept = true;
    progress(run, 'swapping in');
    swapIn(run, selected, stagingDir, planned);
    run.bytes.swapped = selectedBytes;
    const pruned = pruneSafetyCopies(run, planned.plan.safety, named);
    progress(run, `restored ${databases.length} database(s) from ${snapshot.id}`);
    logger().info({ snapshot: snapshot.id, databases: databases.map((d) => d.name) }, 'restore complete');
    const { plan } = planned;
    return { ...planFields(plan), dry_run: false, pre_restore_dir: plan.preRestoreDir, pruned, warnings: run.warnings };
  } finally {
    if (!stagingKept) fs.rmSync(stagingDir, { recursive: true, force: true });
  }
}

/** A step begins or ends: its message goes with the bytes measured now (sent once they increase). */
function progress(run: RestoreRun, message: string): void {
  run.meter.flush();
  run.meter.report({ done: restoreBytes(run), ...(run.bytes.total !== undefined ? { total: run.bytes.total } : {}), message });
  run.meter.flush();
}

/** @throws WbError `interrupted` once the caller cancelled (before the swap only) */
function checkpoint(run: RestoreRun): void {
  if (run.opts.signal?.aborted) throw new WbError('interrupted', 'The restore was cancelled before anything changed.');
}

/**
 * Starts the run: an interrupted restore is finished first (a dry run, which changes nothing, only
 * warns about it), and a confirm token is checked and consumed before any work, so a replayed,
 * foreign or stale token costs nothing and changes nothing.
 * @throws WbError `consent_required` for a token that does not hold
 */
function beginRestore(config: Config, opts: RestoreOptions): RestoreRun {
  const warnings: string[] = [];
  // A dry run changes nothing, so it does not recover an interrupted restore either: it says so.
  if (opts.dryRun) warnings.push(...interruptedRestoreWarnings(config.root));
  else recoverInterruptedSwap(config.root);
  // The restore then executes the plan recorded with the token.
  let grant: ConsentGrant<RestoreTokenPlan> | null = null;
  if (!opts.dryRun && opts.confirmToken !== undefined) {
    const claim = claimConfirmToken<RestoreTokenPlan>(opts.confirmToken, { operation: 'restore', root: config.root, request: restoreRequest(opts) });
    if (!claim.ok) throw new WbError('consent_required', `The restore was not performed: ${claim.reason}. Nothing was changed.`);
    grant = claim.grant;
  }
  const meter = new ProgressReporter((done, total, message) => opts.onProgress?.(done, total, message));
  return { config, opts, warnings, grant, meter, bytes: { downloaded: 0, staged: 0, verified: 0, swapped: 0, total: undefined } };
}

/**
 * The snapshot to restore (the token's, else the one asked for; fetched from the remote when this
 * machine lacks it) and its verified manifest.
 * @throws WbError from ensureLocalSnapshot (unknown id, fetch failures) and verifyManifest
 */
async function resolveSnapshot(run: RestoreRun): Promise<{ snapshot: LocalSnapshot; manifest: Manifest }> {
  const { config, opts, grant } = run;
  const remote = opts.remote !== undefined ? opts.remote : remoteFromConfig(config);
  // A download from the remote reports its bytes as they arrive (its size the only total known yet).
  const snapshot = await ensureLocalSnapshot(config, grant ? grant.plan.snapshot_id : opts.snapshotId, remote, opts.signal, (bytes, archiveBytes) => {
    run.bytes.downloaded = bytes;
    run.meter.report({ done: restoreBytes(run), total: archiveBytes, message: 'downloading the snapshot from the remote' });
  }, opts.databases?.length ? opts.databases : undefined);
  progress(run, `found ${snapshot.id}`);
  const manifest = await verifyManifest(snapshot);
  progress(run, 'manifest checksum and contents verified');
  checkpoint(run);
  return { snapshot, manifest };
}

/** @throws WbError `consent_required` when a token's plan no longer matches the snapshot or the configuration */
function refuseIfPlanChanged(run: RestoreRun, snapshot: LocalSnapshot, selected: readonly Selected[]): void {
  if (!run.grant) return;
  const now = selected.map((s) => ({ name: s.entry.name, target: s.target, sha256: s.entry.sha256 }));
  if (JSON.stringify(now) !== JSON.stringify(run.grant.plan.databases) || snapshot.id !== run.grant.plan.snapshot_id) {
    throw new WbError('consent_required', 'The restore was not performed: the snapshot or the configuration changed since the dry run, so its plan no longer holds. Nothing was changed.', 'Run a new dry run and use its confirm_token.');
  }
}

/**
 * Reads each live database by its bytes only (no SQLite connection: see live-probe.ts), adding
 * its warnings, and refuses a snapshot schema newer than anything this setup knows.
 * @returns each database's migration ladder, by name
 * @throws WbError `restore_refused` (see refuseForwardTimeTravel)
 */
function checkLiveDatabases(run: RestoreRun, selected: readonly Selected[]): Map<string, Migration[]> {
  const ladders = new Map(selected.map((s) => [s.entry.name, listMigrations(s.vital?.migrationsDir)]));
  for (const s of selected) {
    const probe = probeLiveDatabase(s.target);
    run.warnings.push(...liveStateWarnings(s.entry.name, displayPath(run.config.root, s.target), probe));
    refuseForwardTimeTravel(s, ladders.get(s.entry.name) ?? [], probe.userVersion);
  }
  return ladders;
}

/** Unpacks and verifies the chosen databases in staging (see stage.ts), reporting progress. */
async function stageDatabases(run: RestoreRun, snapshot: LocalSnapshot, manifest: Manifest, selected: readonly Selected[], ladders: ReadonlyMap<string, Migration[]>, stagingDir: string, chains: DatabaseChains): Promise<StagedDatabase[]> {
  let message = `unpacking ${selected.length} database(s) into staging`;
  const measured = () => ({ done: restoreBytes(run), ...(run.bytes.total !== undefined ? { total: run.bytes.total } : {}), message });
  progress(run, message);
  // The heartbeat: what is written into staging as it unpacks, then each database as it passes its checks.
  run.meter.measure(measured);
  try {
    return await stageAndVerify({
      snapshot,
      manifest,
      selected,
      ladders,
      stagingDir,
      chains,
      durable: !run.opts.dryRun,
      onBytes: (bytes) => {
        run.bytes.staged += bytes;
        run.meter.report(measured());
      },
      onUnpacked: () => {
        progress(run, `unpacked ${selected.length} database(s) into staging`);
        message = 'verifying staged databases';
      },
      onVerified: (bytes) => {
        run.bytes.verified += bytes;
        run.meter.report(measured());
      },
    });
  } finally {
    run.meter.stopMeasuring();
  }
}

/**
 * One database's line of the plan and the result: where it goes, how its schema and rows come out,
 * and its live rows now (counted on a copy made in `scratchDir`: the live file is never opened).
 */
function plannedDatabase(root: string, staged: StagedDatabase, scratchDir: string): RestoredDatabase {
  const { entry, target } = staged.selected;
  return {
    name: entry.name,
    target: displayPath(root, target),
    live_exists: fs.existsSync(target),
    from_user_version: entry.user_version,
    to_user_version: staged.toVersion,
    migrations_applied: staged.applied,
    rows: staged.rows,
    compared: compareRows(readRowsByCopy(target, scratchDir), staged.rows),
  };
}

/**
 * When and where the snapshot was taken, and whether that is this machine: the host its id
 * carries, compared with this machine's configured `host`; for an id without a host (written
 * before hosts existed), its manifest's `host`, which then holds the raw hostname (root/host.ts
 * isThisMachine).
 */
function snapshotOrigin(manifest: Manifest, thisHost: string, now = Date.now()): SnapshotOrigin {
  const idHost = parseSnapshotId(manifest.snapshot_id)?.host;
  const host = idHost ?? manifest.host;
  const thisMachine = idHost !== undefined ? idHost === thisHost : isThisMachine(manifest.host, thisHost);
  return { created_at: manifest.created_at, age: formatAge(now - Date.parse(manifest.created_at)), host, this_machine: thisMachine };
}

/** The plan's loss, all databases together, plainly: what is thrown away and how to get it back. */
function lossSummary(databases: readonly RestoredDatabase[], origin: SnapshotOrigin, safetyDir: string): string {
  const since = `since the snapshot (${origin.age})`;
  const per = databases.map((d) => `${d.name}: ${describeLoss(d.compared, since)}`);
  return `${per.join('. ')}. The current files are kept in ${safetyDir}; \`wb-backup restore --undo\` (data_restore_undo) puts them back.`;
}

/** The result fields every plan shares (dry run or done). */
function planFields(plan: RestorePlan): Pick<RestoreResult, 'snapshot_id' | 'databases' | 'snapshot' | 'what_you_lose' | 'data_root' | 'safety_copies'> {
  return { snapshot_id: plan.snapshotId, databases: plan.databases, snapshot: plan.origin, what_you_lose: plan.whatYouLose, data_root: plan.root, safety_copies: plan.safety };
}

/**
 * Refuses to replace a database another process has open, unless forced (a dry run warns). With a
 * token, the live files must first still be what the dry run saw: checked before the in-use
 * probe, which opens them (and may fold a -wal into its file).
 * @throws WbError `in_use`, or `consent_required` when the live files changed since the dry run
 */
function checkInUse(run: RestoreRun, selected: readonly Selected[]): void {
  const { config, opts, grant } = run;
  if (grant) refuseIfLiveChanged(grant.fingerprints, config.root, 'the dry run');
  const inUse = selected.map((s) => ({ s, why: whyInUse(s.target, 300, opts.dryRun ?? false) })).filter((x) => x.why !== null);
  for (const { s, why } of inUse) {
    const msg = `${s.entry.name} (${displayPath(config.root, s.target)}) is in use: ${why}`;
    if (opts.force) run.warnings.push(`${msg}; replaced anyway (force)`);
    else if (opts.dryRun) run.warnings.push(`${msg}; a real restore will refuse unless the program is stopped or force is given`);
    else {
      const again = grant ? ' (the confirm_token was used: run a new dry run first)' : '';
      throw new WbError('in_use', `Refusing to restore: ${msg}. Nothing was changed.`, `Stop the program using it and try again${again}, or pass force: true to replace it anyway.`);
    }
  }
  progress(run, inUse.length ? `${inUse.length} database(s) in use` : 'no database is in use');
}

/**
 * The plan: what a dry run returns and what consent is asked for. The databases (verified in
 * staging), where the replaced live files go, the safety-copy rotation, and the warnings.
 * Whatever a person should weigh before saying yes belongs here.
 */
function planRestore(run: RestoreRun, snapshot: LocalSnapshot, manifest: Manifest, databases: RestoredDatabase[]): PlannedRestore {
  const { root } = run.config;
  const preRestoreDir = uniqueSafetyDir(root);
  const safety = planSafetyCopies(run.config, { newCopy: preRestoreDir });
  const origin = snapshotOrigin(manifest, configuredHost(run.config));
  const whatYouLose = lossSummary(databases, origin, preRestoreDir);
  const plan: RestorePlan = { snapshotId: snapshot.id, databases, origin, whatYouLose, root, preRestoreDir: displayPath(root, preRestoreDir), safety, warnings: run.warnings };
  return { plan, preRestoreDir };
}

/** A dry run's result: the plan, and a confirm token that performs exactly it (once, while the live files are unchanged). */
function dryRunResult(run: RestoreRun, selected: readonly Selected[], plan: RestorePlan): RestoreResult {
  const { config, opts } = run;
  const tokenPlan: RestoreTokenPlan = {
    snapshot_id: plan.snapshotId,
    databases: selected.map((s) => ({ name: s.entry.name, target: s.target, sha256: s.entry.sha256 })),
    would_prune: plan.safety.would_prune.map((p) => p.folder),
  };
  const targets = selected.map((s) => s.target);
  const token = issueConfirmToken({ operation: 'restore', root: config.root, request: restoreRequest(opts), plan: tokenPlan, targets });
  progress(run, 'dry run: nothing changed');
  return { ...planFields(plan), dry_run: true, confirm_token: token, pre_restore_dir: plan.preRestoreDir, pruned: [], warnings: run.warnings };
}

/**
 * Consent for the plan: the token's (given for the dry run), or the caller's answer to the plan
 * shown now; the live files must not change while the question is open.
 * @returns the safety copies the consented plan names for pruning (only those are ever removed)
 * @throws WbError `consent_required` when refused, unaskable, or the live files changed meanwhile
 */
async function obtainConsent(run: RestoreRun, selected: readonly Selected[], plan: RestorePlan): Promise<string[]> {
  const { config, opts, grant } = run;
  if (grant) return grant.plan.would_prune;
  const shown = fingerprintTargets(selected.map((s) => s.target));
  const decision = opts.consent ? await opts.consent(plan) : ({ granted: false, reason: 'no way to ask for consent was given' } as const);
  if (!decision.granted) throw new WbError('consent_required', `The restore was not performed: ${decision.reason}. Nothing was changed.`);
  // The user may take minutes to answer: the plan must still describe the live files.
  refuseIfLiveChanged(shown, config.root, 'the plan was shown');
  return plan.safety.would_prune.map((p) => p.folder);
}

/** The journaled swap of the staged files over the live ones (see swap.ts); the plan records where the old files went. */
function swapIn(run: RestoreRun, selected: readonly Selected[], stagingDir: string, planned: PlannedRestore): void {
  const { root } = run.config;
  const swapped = performSwap({
    root,
    kind: 'restore',
    snapshotId: planned.plan.snapshotId,
    preRestoreDir: planned.preRestoreDir,
    incomingDir: stagingDir,
    items: selected.map((s) => ({ name: s.entry.name, target: s.target, incoming: path.join(stagingDir, ...s.entry.file.split('/')) })),
  });
  run.warnings.push(...swapped.warnings);
  planned.plan.preRestoreDir = displayPath(root, swapped.preRestoreDir);
}

/**
 * Removes the old safety copies the consented plan named, keeping `keep`. The restore is done and
 * recorded by then: a pruning failure is a warning, not a failed restore.
 */
function pruneSafetyCopies(run: RestoreRun, safety: SafetyCopyPlan, named: string[]): string[] {
  try {
    const pruned = prunePreRestoreDirs(run.config.root, safety.keep, named);
    if (pruned.length) logger().info({ pruned, keep: safety.keep }, 'removed old safety copies the plan named');
    return pruned;
  } catch (err) {
    run.warnings.push(`old pre_restore folders could not be pruned (${(err as Error).message})`);
    return [];
  }
}

/** Refusals and warnings about an interrupted restore, for a dry run (which must not recover it). */
function interruptedRestoreWarnings(root: string): string[] {
  const w: string[] = [];
  if (fs.existsSync(journalPath(root))) {
    w.push(
      'an interrupted restore left restore-journal.json: the next command that changes data completes or rolls it back first (this dry run did not), so the live databases may differ from this plan by then, and its confirm_token will then be refused',
    );
  }
  if (leftoverStagingDirs(root).length) w.push('a staging folder of an interrupted restore is left over; the next restore removes it');
  return w;
}

function refuseIfLiveChanged(fingerprints: readonly TargetFingerprint[], root: string, since: string): void {
  const reason = liveChangedReason(fingerprints, root, since);
  if (reason) throw new WbError('consent_required', `The restore was not performed: ${reason}. Nothing was changed.`, 'Run a new dry run (or answer the prompt again) on the databases as they are now.');
}

/** Staging needs room for every selected database; better to say so now than to fail half-way through unpacking. */
function refuseWithoutRoomToStage(root: string, selected: Selected[], chains: DatabaseChains): void {
  // A delta's chain needs room for its deltas too, and for its image at its largest along the chain.
  const needed = selected.reduce((n, s) => {
    const links = chains.get(s.entry.name);
    return n + (links ? Math.max(...links.map((l) => l.entry.bytes)) + chainBytes(links.slice(1)) : s.entry.bytes);
  }, 0);
  let free: number;
  try {
    const st = fs.statfsSync(root);
    free = st.bavail * st.bsize;
  } catch {
    return; // no statfs here: the write itself reports a full disk
  }
  if (free < needed) {
    throw new WbError(
      'disk_full',
      `Not enough free space to restore: staging needs ${formatBytes(needed)} next to the live databases and the disk has ${formatBytes(free)} free. Nothing was changed.`,
      `Free some space on the disk of the data root ${root} (old ${path.join(root, 'db.pre_restore_*')} folders can go once you no longer need --undo), or restore fewer databases (databases: [...]), then try again.`,
    );
  }
}

function refuseForwardTimeTravel(s: Selected, ladder: ReturnType<typeof listMigrations>, live: number | null): void {
  const known = Math.max(newestMigrationVersion(ladder), live ?? 0);
  if ((ladder.length || live !== null) && s.entry.user_version > known) {
    throw new WbError(
      'restore_refused',
      `Refusing to restore ${s.entry.name}: the snapshot's schema version ${s.entry.user_version} is newer than anything this setup knows (newest migration ${newestMigrationVersion(ladder)}, live database ${live ?? 'absent'}). It was written by newer code; restoring it under older code could corrupt it. Nothing was changed.`,
      'Upgrade the program that owns this database (and its migrations), then restore again.',
    );
  }
}
