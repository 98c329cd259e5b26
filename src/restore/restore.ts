import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Config, VitalDatabase } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { withRootLock } from '../root/lock.js';
import { logger } from '../core/log.js';
import { unsafeRelativePathReason, validateManifest, type Manifest, type ManifestDatabase } from '../snapshot/manifest.js';
import { displayPath, rootLayout } from '../root/paths.js';
import type { LocalSnapshot } from '../snapshot/store.js';
import { ensureLocalSnapshot } from '../remote/fetch.js';
import { remoteFromConfig } from '../remote/registry.js';
import type { Remote } from '../remote/remote.js';
import { verifyAgainstChecksums } from '../snapshot/checksums.js';
import { claimConfirmToken, fingerprintTargets, issueConfirmToken, liveChangedReason, type ConsentGrant, type TargetFingerprint } from '../root/consent.js';
import { extractArchive } from './extract.js';
import { whyInUse } from './in-use.js';
import { listMigrations, newestMigrationVersion, pendingMigrations } from './migrations.js';
import { liveStateWarnings, probeLiveDatabase } from './live-probe.js';
import { planSafetyCopies, SafetyCopyPlanSchema, uniqueSafetyDir, type SafetyCopyPlan } from './safety-copies.js';
import { crashPoint, journalPath, leftoverStagingDirs, performSwap, prunePreRestoreDirs, realTarget, recoverInterruptedSwap } from './swap.js';
import { VerifyPool } from './verify-pool.js';
import type { VerifyResponse } from './verify-staged.js';
import { syncFileDataAsync } from '../core/durable-file.js';
import { formatBytes } from '../core/size-format.js';

export const RestoredDatabaseSchema = z.object({
  name: z.string(),
  target: z.string().describe('live file, relative to the data root when inside it'),
  live_exists: z.boolean(),
  from_user_version: z.number(),
  to_user_version: z.number(),
  migrations_applied: z.array(z.string()),
  rows: z.record(z.string(), z.number()),
});

export const RestoreResultSchema = z.object({
  snapshot_id: z.string(),
  dry_run: z.boolean(),
  confirm_token: z.string().optional().describe('dry run only: pass it back with the same snapshot_id, databases and force to perform exactly this plan; works once, while the live databases are unchanged'),
  databases: z.array(RestoredDatabaseSchema),
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
  onProgress?: (done: number, total: number, message: string) => void;
  lockWaitMs?: number;
  /** where to fetch snapshots this machine lacks; default: the configured remote */
  remote?: Remote | null;
}

const TOTAL_STEPS = 6;

interface Selected {
  entry: ManifestDatabase;
  target: string;
  vital: VitalDatabase | undefined;
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

function refuse(message: string, hint = 'Use another snapshot, or restore by hand (docs/formats.md).'): never {
  throw new WbError('restore_refused', `${message} Nothing was changed.`, hint);
}

/** Data-root files and folders of wb-backup itself: never a restore target, whatever a manifest or configuration says. */
function rootOwnPathReason(root: string, target: string): string | null {
  const rel = path.relative(root, target);
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return null;
  const first = rel.split(path.sep)[0] ?? '';
  const layout = rootLayout(root);
  const own = [path.basename(layout.configYaml), path.basename(layout.configJson), path.basename(layout.backupsDir), path.basename(journalPath(root))];
  if (own.includes(first) || first.startsWith(path.basename(journalPath(root))) || first.startsWith(path.basename(layout.lockTarget))) return `it is wb-backup's own ${first}`;
  if (/^db\.(pre_restore|staging|discard)_/.test(first)) return `it is inside wb-backup's folder ${first}`;
  return null;
}

/** The nearest existing folder above `file`, resolved through links. */
function realParent(file: string): string {
  let dir = path.dirname(file);
  for (;;) {
    try {
      return fs.realpathSync(dir);
    } catch {
      const up = path.dirname(dir);
      if (up === dir) return dir;
      dir = up;
    }
  }
}

/**
 * Where a snapshot database goes. A configured (or discovered) database goes to its own file; any
 * other name only to a `.db` file under <root>/db/ (through no link out of it). The manifest's name
 * and relative_path are untrusted: anything else is refused with the reason.
 */
function targetFor(config: Config, entry: ManifestDatabase): { target: string; vital: VitalDatabase | undefined } {
  // No real snapshot ever says a database lived in one of wb-backup's own files: such a manifest is
  // hostile even when the name is known (and the configured file would be used).
  const claimed = rootOwnPathReason(config.root, path.join(config.root, ...entry.relative_path.split(/[\\/]/)));
  if (claimed) refuse(`The snapshot says database ${entry.name} lived at "${entry.relative_path}": ${claimed}. The manifest is damaged or hostile.`);
  const vital = config.databases.find((d) => d.name === entry.name);
  let target: string;
  if (vital) target = vital.path;
  else {
    const rel = entry.relative_path;
    const why = unsafeRelativePathReason(rel);
    const parts = rel.split(/[\\/]/);
    const hint = `Restore only the databases this setup knows (databases: [...]), or add ${entry.name} under databases: in wb-backup.yaml to say where it goes.`;
    if (why) refuse(`The snapshot places database ${entry.name} at "${rel}", which is unsafe: ${why}.`, hint);
    if (parts[0] !== 'db' || parts.length < 2 || !rel.endsWith('.db')) {
      refuse(`The snapshot places database ${entry.name}, which this setup does not know, at "${rel}": only a .db file under db/ can receive a database the configuration does not name.`, hint);
    }
    target = path.join(config.root, ...parts);
    const dbDir = rootLayout(config.root).dbDir;
    let realDb = dbDir;
    try {
      realDb = fs.realpathSync(dbDir);
    } catch {
      /* no db/ yet: nothing under it can be a link */
    }
    const parent = realParent(target);
    if (parent !== realDb && !parent.startsWith(realDb + path.sep) && fs.existsSync(dbDir)) {
      refuse(`The snapshot places database ${entry.name} at "${rel}", whose folder leads out of db/ through a link.`, hint);
    }
    // The file itself may be a link (discovery skips one that leads nowhere, so its name is unknown):
    // the swap would write where it leads, creating folders there.
    const real = realTarget(target);
    const realDir = realParent(real);
    if (real !== target && fs.existsSync(dbDir) && realDir !== realDb && !realDir.startsWith(realDb + path.sep)) {
      refuse(`The snapshot places database ${entry.name} at "${rel}", a symbolic link that leads out of db/ (to ${real}).`, hint);
    }
  }
  const own = rootOwnPathReason(config.root, target);
  if (own) refuse(`The snapshot would restore database ${entry.name} over ${displayPath(config.root, target)}: ${own}.`);
  return { target, vital };
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

/** The staged file's own header must agree with the manifest: the schema version is read from the data, not trusted. */
function stagedHeaderProblem(staged: string, entry: ManifestDatabase): string | null {
  const header = Buffer.alloc(100);
  let n = 0;
  try {
    const fd = fs.openSync(staged, 'r');
    try {
      n = fs.readSync(fd, header, 0, 100, 0);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    return `its staged file cannot be read (${(err as Error).message})`;
  }
  if (n < 100 || header.subarray(0, 16).toString('latin1') !== 'SQLite format 3\0') return 'it is not an SQLite database';
  const userVersion = header.readInt32BE(60);
  if (userVersion !== entry.user_version) return `its schema version (user_version in the file) is ${userVersion}, but the manifest says ${entry.user_version}`;
  const pageSize = header.readUInt16BE(16) === 1 ? 65536 : header.readUInt16BE(16);
  if (pageSize !== entry.page_size) return `its page size is ${pageSize}, but the manifest says ${entry.page_size}`;
  return null;
}

/** data_restore: verify everything in a staging folder, then swap it in; the live set is never touched before that. */
export async function runRestore(config: Config, opts: RestoreOptions): Promise<RestoreResult> {
  return withRootLock(config.root, opts.dryRun ? 'restore dry run' : 'restore', opts.lockWaitMs ?? config.backup.lock_wait_ms, async () => {
    const warnings: string[] = [];
    // A dry run changes nothing, so it does not recover an interrupted restore either: it says so.
    if (opts.dryRun) warnings.push(...interruptedRestoreWarnings(config.root));
    else recoverInterruptedSwap(config.root);
    const progress = (done: number, message: string) => opts.onProgress?.(done, TOTAL_STEPS, message);
    const checkpoint = () => {
      if (opts.signal?.aborted) throw new WbError('interrupted', 'The restore was cancelled before anything changed.');
    };

    // A confirm token is checked and consumed before any work: a replayed, foreign or stale token
    // costs nothing and changes nothing. The restore then executes the plan recorded with it.
    let grant: ConsentGrant<RestoreTokenPlan> | null = null;
    if (!opts.dryRun && opts.confirmToken !== undefined) {
      const claim = claimConfirmToken<RestoreTokenPlan>(opts.confirmToken, { operation: 'restore', root: config.root, request: restoreRequest(opts) });
      if (!claim.ok) throw new WbError('consent_required', `The restore was not performed: ${claim.reason}. Nothing was changed.`);
      grant = claim.grant;
    }

    const remote = opts.remote !== undefined ? opts.remote : remoteFromConfig(config);
    const snapshot = await ensureLocalSnapshot(config, grant ? grant.plan.snapshot_id : opts.snapshotId, remote, opts.signal);
    progress(1, `found ${snapshot.id}`);
    const manifest = await verifyManifest(snapshot);
    progress(2, 'manifest checksum and contents verified');
    checkpoint();

    const selected = selectDatabases(config, manifest, opts.databases);
    if (grant) {
      const now = selected.map((s) => ({ name: s.entry.name, target: s.target, sha256: s.entry.sha256 }));
      if (JSON.stringify(now) !== JSON.stringify(grant.plan.databases) || snapshot.id !== grant.plan.snapshot_id) {
        throw new WbError('consent_required', 'The restore was not performed: the snapshot or the configuration changed since the dry run, so its plan no longer holds. Nothing was changed.', 'Run a new dry run and use its confirm_token.');
      }
    }
    const ladders = new Map(selected.map((s) => [s.entry.name, listMigrations(s.vital?.migrationsDir)]));
    for (const s of selected) {
      // The live files are read by their bytes only (no SQLite connection): see live-probe.ts.
      const probe = probeLiveDatabase(s.target);
      warnings.push(...liveStateWarnings(s.entry.name, displayPath(config.root, s.target), probe));
      refuseForwardTimeTravel(s, ladders.get(s.entry.name) ?? [], probe.userVersion);
    }

    refuseWithoutRoomToStage(config.root, selected);
    const stagingDir = path.join(config.root, `db.staging_${new Date().toISOString().replace(/[:.]/g, '-')}`);
    let stagingKept = false;
    try {
      const expected = new Map([...manifest.databases.map((d) => [d.file, d.bytes] as const), ['MANIFEST.json', fs.statSync(snapshot.manifestPath).size] as const]);
      const wanted = new Set([...selected.map((s) => s.entry.file), 'MANIFEST.json']);
      // The archive's checksum is computed while it unpacks into staging (nothing is trusted before
      // both finish); a mismatch is reported as such even when the damage also broke the unpacking.
      const archiveChecked = verifyAgainstChecksums(snapshot.checksumPath, snapshot.archivePath).then(
        () => null,
        (err: unknown) => err,
      );
      // Each database is verified in a worker as soon as it is unpacked, while the rest unpacks.
      const pool = new VerifyPool();
      const checks = new Map<string, Promise<VerifyResponse>>();
      const byFile = new Map(selected.map((s) => [s.entry.file, s]));
      let planned: RestoredDatabase[];
      try {
        const unpackProblem = await extractArchive(snapshot.archivePath, snapshot.codec, stagingDir, {
          expected,
          wanted,
          onFile: (file, sha) => {
            const s = byFile.get(file);
            if (!s) return;
            if (sha !== s.entry.sha256) {
              checks.set(file, Promise.resolve({ ok: false, problem: 'its file does not match the checksum in the manifest' }));
              return;
            }
            const staged = path.join(stagingDir, ...file.split('/'));
            const headerProblem = stagedHeaderProblem(staged, s.entry);
            if (headerProblem) {
              checks.set(file, Promise.resolve({ ok: false, problem: headerProblem }));
              return;
            }
            const pending = pendingMigrations(ladders.get(s.entry.name) ?? [], s.entry.user_version);
            // A real restore makes staged files durable before the swap, so a power cut after it cannot
            // leave them unwritten. The flush runs on I/O threads while a worker checks the file.
            const flushed = opts.dryRun ? Promise.resolve(null) : flushToDisk(staged);
            const verdict = pool.verify({ staged, expectedRows: s.entry.rows, pending, durable: !opts.dryRun });
            checks.set(
              file,
              Promise.all([verdict, flushed]).then(([v, flushProblem]) => (v.ok && flushProblem ? { ok: false as const, problem: flushProblem } : v)),
            );
          },
        }).then(
          () => null,
          (err: unknown) => err,
        );
        const archiveProblem = await archiveChecked;
        if (archiveProblem) throw archiveProblem;
        if (unpackProblem) throw unpackProblem;
        const inner = fs.readFileSync(path.join(stagingDir, 'MANIFEST.json'), 'utf8');
        if (inner !== fs.readFileSync(snapshot.manifestPath, 'utf8')) {
          throw new WbError('archive_invalid', 'The manifest inside the archive differs from the one beside it. Nothing was restored.', 'Use another snapshot.');
        }
        progress(3, `unpacked ${selected.length} database(s) into staging`);
        planned = [];
        for (const s of selected) {
          const verdict = (await checks.get(s.entry.file)) ?? { ok: false as const, problem: 'it is missing from the archive' };
          if (!verdict.ok) {
            throw new WbError('restore_refused', `Refusing to restore ${s.entry.name}: ${verdict.problem}. Nothing was changed.`, 'Use another snapshot.');
          }
          planned.push({
            name: s.entry.name,
            target: displayPath(config.root, s.target),
            live_exists: fs.existsSync(s.target),
            from_user_version: s.entry.user_version,
            to_user_version: verdict.toVersion,
            migrations_applied: verdict.applied,
            rows: verdict.rows,
          });
        }
      } finally {
        // Workers may still hold staged files open: let them finish before staging is removed.
        await Promise.allSettled(checks.values());
        await pool.close();
      }
      checkpoint();
      progress(4, 'staged databases pass integrity, foreign-key and row-count checks');
      crashPoint('after-staging');

      const targets = selected.map((s) => s.target);
      // With a token, the live files must still be what the dry run saw; checked before the in-use
      // probe below, which opens them (and may fold a -wal into its file).
      if (grant) refuseIfLiveChanged(grant.fingerprints, config.root, 'the dry run');
      const inUse = selected.map((s) => ({ s, why: whyInUse(s.target, 300, opts.dryRun ?? false) })).filter((x) => x.why !== null);
      for (const { s, why } of inUse) {
        const msg = `${s.entry.name} (${displayPath(config.root, s.target)}) is in use: ${why}`;
        if (opts.force) warnings.push(`${msg}; replaced anyway (force)`);
        else if (opts.dryRun) warnings.push(`${msg}; a real restore will refuse unless the program is stopped or force is given`);
        else {
          const again = grant ? ' (the confirm_token was used: run a new dry run first)' : '';
          throw new WbError('in_use', `Refusing to restore: ${msg}. Nothing was changed.`, `Stop the program using it and try again${again}, or pass force: true to replace it anyway.`);
        }
      }
      progress(5, inUse.length ? `${inUse.length} database(s) in use` : 'no database is in use');

      const preRestoreDir = uniqueSafetyDir(config.root);
      const safety = planSafetyCopies(config, { newCopy: preRestoreDir });
      const plan: RestorePlan = { snapshotId: snapshot.id, databases: planned, preRestoreDir: displayPath(config.root, preRestoreDir), safety, warnings };
      if (opts.dryRun) {
        const tokenPlan: RestoreTokenPlan = {
          snapshot_id: snapshot.id,
          databases: selected.map((s) => ({ name: s.entry.name, target: s.target, sha256: s.entry.sha256 })),
          would_prune: safety.would_prune.map((p) => p.folder),
        };
        const token = issueConfirmToken({ operation: 'restore', root: config.root, request: restoreRequest(opts), plan: tokenPlan, targets });
        progress(TOTAL_STEPS, 'dry run: nothing changed');
        return { snapshot_id: snapshot.id, dry_run: true, confirm_token: token, databases: planned, pre_restore_dir: plan.preRestoreDir, safety_copies: safety, pruned: [], warnings };
      }

      // Pruning removes only copies the consented plan named: the token's, or the one just shown.
      let named: string[];
      if (grant) named = grant.plan.would_prune;
      else {
        const shown = fingerprintTargets(targets);
        const decision = opts.consent ? await opts.consent(plan) : ({ granted: false, reason: 'no way to ask for consent was given' } as const);
        if (!decision.granted) throw new WbError('consent_required', `The restore was not performed: ${decision.reason}. Nothing was changed.`);
        // The user may take minutes to answer: the plan must still describe the live files.
        refuseIfLiveChanged(shown, config.root, 'the plan was shown');
        named = safety.would_prune.map((p) => p.folder);
      }
      checkpoint();

      // From here the swap owns staging: it is kept while a journal may need it, removed after.
      stagingKept = true;
      const swapped = performSwap({
        root: config.root,
        kind: 'restore',
        snapshotId: snapshot.id,
        preRestoreDir,
        incomingDir: stagingDir,
        items: selected.map((s) => ({ name: s.entry.name, target: s.target, incoming: path.join(stagingDir, ...s.entry.file.split('/')) })),
      });
      warnings.push(...swapped.warnings);
      plan.preRestoreDir = displayPath(config.root, swapped.preRestoreDir);
      // The restore is done and recorded: a pruning failure is a warning, not a failed restore.
      // Pruning removes only the copies the consented plan named.
      let pruned: string[] = [];
      try {
        pruned = prunePreRestoreDirs(config.root, safety.keep, named);
        if (pruned.length) logger().info({ pruned, keep: safety.keep }, 'removed old safety copies the plan named');
      } catch (err) {
        warnings.push(`old pre_restore folders could not be pruned (${(err as Error).message})`);
      }
      progress(TOTAL_STEPS, `restored ${planned.length} database(s) from ${snapshot.id}`);
      logger().info({ snapshot: snapshot.id, databases: planned.map((d) => d.name) }, 'restore complete');
      return { snapshot_id: snapshot.id, dry_run: false, databases: planned, pre_restore_dir: plan.preRestoreDir, safety_copies: safety, pruned, warnings };
    } finally {
      if (!stagingKept) fs.rmSync(stagingDir, { recursive: true, force: true });
    }
  });
}

function refuseIfLiveChanged(fingerprints: readonly TargetFingerprint[], root: string, since: string): void {
  const reason = liveChangedReason(fingerprints, root, since);
  if (reason) throw new WbError('consent_required', `The restore was not performed: ${reason}. Nothing was changed.`, 'Run a new dry run (or answer the prompt again) on the databases as they are now.');
}

/** fdatasync a staged file; resolves to a problem to report, or null. */
async function flushToDisk(file: string): Promise<string | null> {
  try {
    await syncFileDataAsync(file);
    return null;
  } catch (err) {
    return `it could not be written to disk (${(err as Error).message})`;
  }
}

/** The manifest beside the archive: its checksum, then its contents. The archive's own checksum is checked while it unpacks. */
async function verifyManifest(snapshot: LocalSnapshot): Promise<Manifest> {
  await verifyAgainstChecksums(snapshot.checksumPath, snapshot.manifestPath);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(snapshot.manifestPath, 'utf8'));
  } catch (err) {
    throw new WbError('manifest_invalid', `The snapshot's manifest is not valid JSON (${(err as Error).message}). Nothing was restored.`, 'Use another snapshot.');
  }
  const manifest = validateManifest(raw);
  if (manifest.snapshot_id !== snapshot.id) {
    throw new WbError('manifest_invalid', `The manifest belongs to ${manifest.snapshot_id}, not ${snapshot.id}. Nothing was restored.`, 'Use another snapshot.');
  }
  if (manifest.codec !== snapshot.codec) {
    throw new WbError('manifest_invalid', `The manifest says ${manifest.codec} but the archive is ${snapshot.codec}. Nothing was restored.`, 'Use another snapshot.');
  }
  return manifest;
}

function selectDatabases(config: Config, manifest: Manifest, requested: string[] | undefined): Selected[] {
  const available = manifest.databases.map((d) => d.name);
  if (requested && requested.length) {
    const unknown = requested.filter((n) => !available.includes(n));
    if (unknown.length) {
      throw new WbError('invalid_input', `Snapshot ${manifest.snapshot_id} has no database named ${unknown.join(', ')}.`, `It holds: ${available.join(', ')}.`);
    }
  }
  const names = requested && requested.length ? [...new Set(requested)] : available;
  const selected = manifest.databases.filter((d) => names.includes(d.name)).map((entry) => ({ entry, ...targetFor(config, entry) }));
  // One live file receives one database: two entries on one target (also through a link, or under
  // case folding on macOS and Windows) would make the second swap over the first.
  const byTarget = new Map<string, string>();
  const fold = process.platform === 'darwin' || process.platform === 'win32';
  for (const s of selected) {
    let key = path.resolve(s.target);
    try {
      key = fs.realpathSync(key);
    } catch {
      key = path.join(realParent(key), path.basename(key));
    }
    if (fold) key = key.toLowerCase();
    const other = byTarget.get(key);
    if (other) refuse(`The snapshot puts databases ${other} and ${s.entry.name} on the same file, ${displayPath(config.root, s.target)}.`);
    byTarget.set(key, s.entry.name);
  }
  // A known database's file receives only that database.
  for (const s of selected) {
    const owner = config.databases.find((d) => d.name !== s.entry.name && path.resolve(d.path) === path.resolve(s.target));
    if (owner) refuse(`The snapshot puts database ${s.entry.name} on the file of database ${owner.name} (${displayPath(config.root, s.target)}).`);
  }
  return selected;
}

/** Staging needs room for every selected database; better to say so now than to fail half-way through unpacking. */
function refuseWithoutRoomToStage(root: string, selected: Selected[]): void {
  const needed = selected.reduce((n, s) => n + s.entry.bytes, 0);
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
      'Free some space on the disk of the data root (old db.pre_restore_* folders can go once you no longer need --undo), or restore fewer databases (databases: [...]), then try again.',
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
