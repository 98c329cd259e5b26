import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Config, VitalDatabase } from '../config.js';
import { WbError } from '../errors.js';
import { withRootLock } from '../lock.js';
import { logger } from '../log.js';
import { validateManifest, type Manifest, type ManifestDatabase } from '../manifest.js';
import { displayPath } from '../paths.js';
import type { LocalSnapshot } from '../snapshot-store.js';
import { ensureLocalSnapshot } from '../remote/fetch.js';
import { remoteFromConfig } from '../remote/index.js';
import type { Remote } from '../remote/remote.js';
import { verifyAgainstChecksums } from './checksums.js';
import { issueConfirmToken } from './consent.js';
import { extractArchive } from './extract.js';
import { whyInUse } from './in-use.js';
import { listMigrations, newestMigrationVersion, pendingMigrations } from './migrations.js';
import { crashPoint, performSwap, prunePreRestoreDirs, recoverInterruptedSwap } from './swap.js';
import { VerifyPool } from './verify-pool.js';
import type { VerifyResponse } from './verify-staged.js';
import Database from 'better-sqlite3';
import { syncFileDataAsync } from '../durable-file.js';

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
  confirm_token: z.string().optional().describe('dry run only: pass it back with the same snapshot_id and databases to perform this restore'),
  databases: z.array(RestoredDatabaseSchema),
  pre_restore_dir: z.string().nullable().describe('where the replaced live files were moved (restore --undo puts them back)'),
  warnings: z.array(z.string()),
});
export type RestoreResult = z.infer<typeof RestoreResultSchema>;
export type RestoredDatabase = z.infer<typeof RestoredDatabaseSchema>;

export interface RestorePlan {
  snapshotId: string;
  databases: RestoredDatabase[];
  preRestoreDir: string;
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
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, message: string) => void;
  lockWaitMs?: number;
  /** where to fetch snapshots this machine lacks; default: the configured remote */
  remote?: Remote | null;
}

const TOTAL_STEPS = 6;

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

interface Selected {
  entry: ManifestDatabase;
  target: string;
  vital: VitalDatabase | undefined;
}

/** Where each snapshot database goes: its configured path, else its place under the root. */
function targetFor(config: Config, entry: ManifestDatabase): { target: string; vital: VitalDatabase | undefined } {
  const vital = config.databases.find((d) => d.name === entry.name);
  if (vital) return { target: vital.path, vital };
  const rel = entry.relative_path;
  if (path.isAbsolute(rel) || rel.split(/[\\/]/).includes('..')) {
    throw new WbError('restore_refused', `The snapshot places database ${entry.name} at "${rel}", outside the data root.`, `Add ${entry.name} under databases: in wb-backup.yaml to say where it goes.`);
  }
  return { target: path.join(config.root, rel), vital: undefined };
}

/**
 * The live database's schema version, without changing a byte next to it: opening it read-write
 * would create -wal/-shm files (and leave them behind when the disk is full). With no -wal file the
 * header is authoritative (user_version is the big-endian integer at offset 60); with one, a
 * read-only connection sees the committed state without checkpointing it.
 */
function liveUserVersion(file: string): number | null {
  if (!fs.existsSync(file)) return null;
  try {
    if (!fs.existsSync(`${file}-wal`)) {
      const header = Buffer.alloc(64);
      const fd = fs.openSync(file, 'r');
      try {
        if (fs.readSync(fd, header, 0, 64, 0) < 64) return null;
      } finally {
        fs.closeSync(fd);
      }
      return header.subarray(0, 16).toString('latin1') === 'SQLite format 3\0' ? header.readInt32BE(60) : null;
    }
    const db = new Database(file, { fileMustExist: true, readonly: true, timeout: 1000 });
    try {
      return Number(db.pragma('user_version', { simple: true }));
    } finally {
      db.close();
    }
  } catch {
    return null; // an unreadable live file is exactly what a restore is for
  }
}

/** data_restore: verify everything in a staging folder, then swap it in; the live set is never touched before that. */
export async function runRestore(config: Config, opts: RestoreOptions): Promise<RestoreResult> {
  return withRootLock(config.root, opts.dryRun ? 'restore dry run' : 'restore', opts.lockWaitMs ?? config.backup.lock_wait_ms, async () => {
    recoverInterruptedSwap(config.root);
    const progress = (done: number, message: string) => opts.onProgress?.(done, TOTAL_STEPS, message);
    const checkpoint = () => {
      if (opts.signal?.aborted) throw new WbError('interrupted', 'The restore was cancelled before anything changed.');
    };

    const remote = opts.remote !== undefined ? opts.remote : remoteFromConfig(config);
    const snapshot = await ensureLocalSnapshot(config, opts.snapshotId, remote);
    progress(1, `found ${snapshot.id}`);
    const manifest = await verifyManifest(snapshot);
    progress(2, 'manifest checksum and contents verified');
    checkpoint();

    const selected = selectDatabases(config, manifest, opts.databases);
    const warnings: string[] = [];
    const ladders = new Map(selected.map((s) => [s.entry.name, listMigrations(s.vital?.migrationsDir)]));
    for (const s of selected) refuseForwardTimeTravel(s, ladders.get(s.entry.name) ?? []);

    refuseWithoutRoomToStage(config.root, selected);
    const stagingDir = path.join(config.root, `db.staging_${stamp()}`);
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
            const pending = pendingMigrations(ladders.get(s.entry.name) ?? [], s.entry.user_version);
            const staged = path.join(stagingDir, ...file.split('/'));
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

      const inUse = selected.map((s) => ({ s, why: whyInUse(s.target) })).filter((x) => x.why !== null);
      for (const { s, why } of inUse) {
        const msg = `${s.entry.name} (${displayPath(config.root, s.target)}) is in use: ${why}`;
        if (opts.force) warnings.push(`${msg}; replaced anyway (force)`);
        else if (opts.dryRun) warnings.push(`${msg}; a real restore will refuse unless the program is stopped or force is given`);
        else {
          throw new WbError('in_use', `Refusing to restore: ${msg}. Nothing was changed.`, 'Stop the program using it and try again, or pass force: true to replace it anyway.');
        }
      }
      progress(5, inUse.length ? `${inUse.length} database(s) in use` : 'no database is in use');

      const preRestoreDir = path.join(config.root, `db.pre_restore_${stamp()}`);
      const plan: RestorePlan = { snapshotId: snapshot.id, databases: planned, preRestoreDir: displayPath(config.root, preRestoreDir), warnings };
      if (opts.dryRun) {
        const token = issueConfirmToken({ root: config.root, snapshotId: snapshot.id, databases: selected.map((s) => s.entry.name) });
        progress(TOTAL_STEPS, 'dry run: nothing changed');
        return { snapshot_id: snapshot.id, dry_run: true, confirm_token: token, databases: planned, pre_restore_dir: plan.preRestoreDir, warnings };
      }

      const decision = opts.consent ? await opts.consent(plan) : ({ granted: false, reason: 'no way to ask for consent was given' } as const);
      if (!decision.granted) throw new WbError('consent_required', `The restore was not performed: ${decision.reason}. Nothing was changed.`);
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
      try {
        const pruned = prunePreRestoreDirs(config.root, 3);
        if (pruned.length) logger().info({ pruned }, 'removed old pre_restore folders (keeping 3)');
      } catch (err) {
        warnings.push(`old pre_restore folders could not be pruned (${(err as Error).message})`);
      }
      progress(TOTAL_STEPS, `restored ${planned.length} database(s) from ${snapshot.id}`);
      logger().info({ snapshot: snapshot.id, databases: planned.map((d) => d.name) }, 'restore complete');
      return { snapshot_id: snapshot.id, dry_run: false, databases: planned, pre_restore_dir: plan.preRestoreDir, warnings };
    } finally {
      if (!stagingKept) fs.rmSync(stagingDir, { recursive: true, force: true });
    }
  });
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
  return manifest.databases.filter((d) => names.includes(d.name)).map((entry) => ({ entry, ...targetFor(config, entry) }));
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
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    throw new WbError(
      'disk_full',
      `Not enough free space to restore: staging needs ${mb(needed)} next to the live databases and the disk has ${mb(free)} free. Nothing was changed.`,
      'Free some space on the disk of the data root (old db.pre_restore_* folders can go once you no longer need --undo), or restore fewer databases (databases: [...]), then try again.',
    );
  }
}

function refuseForwardTimeTravel(s: Selected, ladder: ReturnType<typeof listMigrations>): void {
  const live = liveUserVersion(s.target);
  const known = Math.max(newestMigrationVersion(ladder), live ?? 0);
  if ((ladder.length || live !== null) && s.entry.user_version > known) {
    throw new WbError(
      'restore_refused',
      `Refusing to restore ${s.entry.name}: the snapshot's schema version ${s.entry.user_version} is newer than anything this setup knows (newest migration ${newestMigrationVersion(ladder)}, live database ${live ?? 'absent'}). It was written by newer code; restoring it under older code could corrupt it. Nothing was changed.`,
      'Upgrade the program that owns this database (and its migrations), then restore again.',
    );
  }
}
