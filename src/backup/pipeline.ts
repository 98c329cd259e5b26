import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { restoreFriendlyOrder } from '../snapshot/archive-order.js';
import { ArchiveWriter, fsyncDir } from './archive-writer.js';
import { chooseCodec } from '../snapshot/codec.js';
import type { Config, VitalDatabase } from '../root/config.js';
import { WbError, describeError } from '../core/errors.js';
import { HotCopier, type CopiedDatabase, type HotCopyResult } from './hot-copy.js';
import { failedCopy } from './hot-copy-core.js';
import { RemoteOutcomeSchema, writeLastRun, type LastRun, type RemoteOutcome } from './last-run.js';
import { logger } from '../core/log.js';
import { CodecSchema, MANIFEST_VERSION, validateManifest, type Manifest, type ManifestDatabase } from '../snapshot/manifest.js';
import { displayPath, rootLayout } from '../root/paths.js';
import { toolProvenance } from './provenance.js';
import { decideRetentionByHost } from '../snapshot/retention.js';
import { configuredHost } from '../root/host.js';
import { formatSnapshotId } from '../snapshot/id.js';
import { deleteLocalSnapshot, listLocalSnapshots, removeLeftovers, snapshotFiles } from '../snapshot/store.js';
import { withRootLock, type RootLock } from '../root/lock.js';
import { recoverInterruptedSwap } from '../restore/recovery.js';
import { remoteFromConfig } from '../remote/registry.js';
import type { Remote } from '../remote/remote.js';
import { replicate } from './replicate.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { archiveEntry } from '../root/names.js';
import { byCodeUnit } from '../core/text-order.js';
import { formatBytes, freeSpaceNote } from '../core/size-format.js';
import { ProgressReporter } from '../core/progress.js';
import { planChain, type ChainPlan } from './chain-plan.js';
import { fileStamp } from '../snapshot/checksums.js';
import { protectChains } from '../snapshot/chain.js';
import { localChainSnapshots } from '../snapshot/chain-set.js';
import { writePageSet, type PageSetEntry } from '../pages/page-set.js';
import { decodePageIndex } from '../pages/page-index.js';

export const BackupResultSchema = z.object({
  snapshot_id: z.string(),
  manual: z.boolean(),
  created_at: z.string(),
  kind: z.enum(['full', 'delta']).describe('full: every database stored whole; delta: some stored as the pages that changed since `base`'),
  base: z.string().nullable().describe('the snapshot a delta builds on (a restore reads its chain); null for a full'),
  full_because: z.string().optional().describe('why this snapshot is a full one (first snapshot, the daily full, a damaged base, ...)'),
  archive: z.object({ file: z.string(), bytes: z.number(), sha256: z.string(), codec: CodecSchema }),
  databases: z.array(
    z.object({
      name: z.string(),
      file: z.string(),
      bytes: z.number(),
      sha256: z.string(),
      user_version: z.number(),
      rows: z.record(z.string(), z.number()),
      stored: z.enum(['image', 'delta']).describe('image: the whole database; delta: the pages that differ from the base'),
      stored_bytes: z.number().describe('bytes stored for it in the archive, before compression'),
      whole_because: z.string().optional().describe('why it was stored whole although the snapshot is a delta'),
      via_link: z.boolean().optional().describe('true when the configured or discovered path is a symbolic link: the file it leads to was backed up'),
    }),
  ),
  skipped: z.array(z.object({ name: z.string(), reason: z.string() })),
  pruned: z.array(z.string()),
  remote: RemoteOutcomeSchema,
  duration_ms: z.number(),
});
export type BackupResult = z.infer<typeof BackupResultSchema>;

/**
 * Progress in bytes: the databases copied plus the bytes read into the archive (plus the archive
 * once pushed), of an estimate from the sources' sizes that may grow. Strictly increasing and
 * rate-limited (src/core/progress.ts); `message` names the step ("copying notes.db").
 */
export interface BackupProgress {
  done: number;
  total?: number;
  message: string;
}

export interface BackupOptions {
  manual?: boolean;
  /** injectable clock, for tests of ids and retention */
  now?: () => Date;
  signal?: AbortSignal;
  onProgress?: (p: BackupProgress) => void;
  lockWaitMs?: number;
  /** the remote to push to; default: the configured one (tests inject one pointed at an emulator) */
  remote?: Remote | null;
  /** store every database whole, whatever the chain rule says */
  full?: boolean;
}

/** data_backup: take the root lock, snapshot every vital database, sweep, record last_run.json. */
export async function runBackup(config: Config, opts: BackupOptions = {}): Promise<BackupResult> {
  const waitMs = opts.lockWaitMs ?? config.backup.lock_wait_ms;
  const started = new Date();
  let recorded = false;
  try {
    return await withRootLock(config.root, opts.manual ? 'manual backup' : 'backup', waitMs, (lock) => {
      recorded = true;
      return runLocked(config, opts, lock, started);
    });
  } catch (caught) {
    if (recorded || (caught instanceof WbError && caught.code === 'busy')) throw caught;
    // The lock itself could not be taken (a full disk refuses even its small owner file): the run
    // still failed, and last_run.json must say so rather than keep the previous "ok".
    const err = asDiskError(caught, rootLayout(config.root).backupsDir, config.root);
    writeLastRun(config.root, failedRun(opts, started, err));
    throw err;
  }
}

/**
 * data_backup for a caller that already holds the root lock (a row recovery takes its safety
 * snapshot under its own lock, so nothing can change the data root between the two). Records
 * last_run.json as runBackup does.
 * @throws as runBackup does (never `busy`: the lock is the caller's)
 */
export async function runBackupLocked(config: Config, opts: BackupOptions, lock: RootLock): Promise<BackupResult> {
  return runLocked(config, opts, lock, new Date());
}

function failedRun(opts: BackupOptions, started: Date, err: unknown): LastRun {
  return {
    ok: false,
    snapshot_id: null,
    manual: opts.manual ?? false,
    started_at: started.toISOString(),
    finished_at: new Date().toISOString(),
    duration_ms: Date.now() - started.getTime(),
    archive_bytes: null,
    databases_bytes: null,
    databases: 0,
    skipped: [],
    error: describeError(err),
    remote: null,
  };
}

async function runLocked(config: Config, opts: BackupOptions, lock: RootLock, started: Date): Promise<BackupResult> {
  try {
    const result = await takeSnapshot(config, opts, lock, started);
    writeLastRun(config.root, {
      ok: true,
      snapshot_id: result.snapshot_id,
      manual: result.manual,
      started_at: started.toISOString(),
      finished_at: new Date().toISOString(),
      duration_ms: result.duration_ms,
      archive_bytes: result.archive.bytes,
      databases_bytes: result.databases.reduce((n, d) => n + d.bytes, 0),
      databases: result.databases.length,
      skipped: result.skipped,
      error: null,
      remote: result.remote,
    });
    return result;
  } catch (caught) {
    // Whatever failed (even before the snapshot folder existed), the caller and last_run.json get one clear error.
    const err = asDiskError(caught, rootLayout(config.root).backupsDir, config.root);
    writeLastRun(config.root, failedRun(opts, started, err));
    throw err;
  }
}

/** The first free id for `time` on `host` in backups/ (seq counts up within the second). */
function uniqueSnapshotId(backupsDir: string, time: Date, manual: boolean, host: string): string {
  for (let seq = 0; ; seq++) {
    const id = formatSnapshotId(time, { manual, seq, host });
    const taken = (['zstd', 'gzip'] as const).some((codec) => {
      const f = snapshotFiles(backupsDir, id, codec);
      return fs.existsSync(f.archive) || fs.existsSync(f.manifest) || fs.existsSync(f.partialDir);
    });
    if (!taken) return id;
  }
}

/** Total rows of each database in the newest local snapshot whose manifest reads; empty when there is none. */
function previousRowCounts(root: string): Map<string, number> {
  for (const snapshot of listLocalSnapshots(root).slice(0, 3)) {
    try {
      const manifest = validateManifest(JSON.parse(fs.readFileSync(snapshot.manifestPath, 'utf8')));
      return new Map(manifest.databases.map((d) => [d.name, Object.values(d.rows).reduce((a, b) => a + b, 0)]));
    } catch {
      // a damaged manifest only costs the ordering hint; the next one may read
    }
  }
  return new Map();
}

function archiveOrder(databases: readonly VitalDatabase[], rows: ReadonlyMap<string, number>): VitalDatabase[] {
  const sizeOf = (file: string) => {
    try {
      return fs.statSync(file).size;
    } catch {
      return 0;
    }
  };
  const byName = new Map(databases.map((d) => [d.name, d]));
  return restoreFriendlyOrder(databases.map((d) => ({ name: d.name, bytes: sizeOf(d.path), rows: rows.get(d.name) }))).map((n) => byName.get(n)!);
}

/** Where a database goes inside the archive: by logical name, keeping its file name, both through names.ts. */
function archiveEntryFor(db: VitalDatabase): string {
  return archiveEntry(db.name, path.basename(db.path));
}


function asDiskError(err: unknown, backupsDir: string, root: string): WbError {
  if (err instanceof WbError) return err;
  const msg = describeError(err);
  // Raw errors from outside (fs, the zstd child's stderr, tar) name a full disk only in their text.
  const errno = (err as NodeJS.ErrnoException | null)?.code;
  if (errno === 'ENOSPC' || errno === 'EDQUOT' || /ENOSPC|no space left|disk is full/i.test(msg)) return diskFullError(backupsDir, root);
  return new WbError('snapshot_failed', `The snapshot failed and was discarded: ${msg}.`, 'Earlier snapshots are untouched; fix the cause and run the backup again.');
}

function diskFullError(backupsDir: string, root: string): WbError {
  return new WbError(
    'disk_full',
    `The disk holding ${displayPath(root, backupsDir)} is full${freeSpaceNote(backupsDir)}, so the snapshot was abandoned; earlier snapshots and the live databases are untouched.`,
    'Free some space (or move the data root), then run the backup again.',
  );
}

/**
 * One snapshot being taken, under the root lock: its id, where its files go, and the writer and
 * copier that fill its .partial folder. `complete` turns true once the archive is published.
 */
interface SnapshotRun {
  config: Config;
  opts: BackupOptions;
  lock: RootLock;
  id: string;
  manual: boolean;
  /** the snapshot's time (opts.now), in its id and manifest */
  now: Date;
  codec: ReturnType<typeof chooseCodec>;
  files: ReturnType<typeof snapshotFiles>;
  archiveTmp: string;
  writer: ArchiveWriter;
  copier: HotCopier;
  log: ReturnType<typeof logger>;
  /** progress in bytes (see BackupProgress), polled every 250 ms while the snapshot is taken */
  meter: ProgressReporter;
  bytes: RunBytes;
  /** the step under way, for the progress message */
  step: string;
  complete: boolean;
  /** full or delta, and the bases (planChain) */
  chain: ChainPlan;
}

/** What the progress of a snapshot counts, in bytes. */
interface RunBytes {
  /** bytes of the databases whose copy is finished */
  copied: number;
  /** bytes of the image being read now, counted by the copy worker (shared memory) */
  reading: BigInt64Array | null;
  /** bytes pushed to the remote so far (as the remote reports them; at least the archive once its push is done) */
  pushed: number;
  /** the estimate: each source's size twice (copy, then archive), plus the archive once a push starts */
  total: number;
}

/** Bytes done so far: copies finished, the copy being written, tar bytes compressed, the push. */
function bytesDone(run: SnapshotRun): number {
  const b = run.bytes;
  // A copy in progress counts one byte short of its size: it is done only when the worker says so,
  // so the "copied <db>" step always carries a larger value than any poll of it (and is never dropped).
  const current = b.reading ? Math.max(0, Number(Atomics.load(b.reading, 0)) - 1) : 0;
  return b.copied + current + run.writer.packed + b.pushed;
}

/** What the copy step kept: the copied databases (manifest entries) and the skipped ones with why. */
interface CopiedSet {
  databases: ManifestDatabase[];
  /** each copied database's page-hash index and file identity, for `<id>.pages` */
  pages: PageSetEntry[];
  /** databases stored whole in a delta snapshot, with why */
  whole: Map<string, string>;
  skipped: Array<{ name: string; reason: string }>;
  /** names skipped because another program holds their lock */
  locked: Set<string>;
}

/**
 * Takes one snapshot: the steps below, in order. Any failure discards everything partial (the
 * caller records it in last_run.json).
 * @throws WbError `no_databases`, `snapshot_failed`, `disk_full`, `interrupted`, `busy`
 */
async function takeSnapshot(config: Config, opts: BackupOptions, lock: RootLock, started: Date): Promise<BackupResult> {
  prepareRoot(config);
  const run = startSnapshot(config, opts, lock);
  try {
    run.chain = await planChain(config, run.now, { full: opts.full ?? false, ...(opts.signal ? { signal: opts.signal } : {}) });
    run.log.info({ kind: run.chain.kind, base: run.chain.base, reason: run.chain.reason, archives_reread: run.chain.reread }, 'chain decided');
    const copied = await copyDatabases(run);
    checkpoint(run);
    const { manifest, manifestText, archive } = await writeArchive(run, copied);
    await publishSnapshot(run, manifestText, archive, copied.pages);
    run.log.info({ bytes: archive.bytes, databases: copied.databases.length, skipped: copied.skipped.length }, 'snapshot written');
    const pruned = sweepLocal(config, run.id);
    progress(run, pruned.length ? `pruned ${pruned.length} old snapshot(s)` : 'retention: nothing to prune');
    const remote = await replicateSnapshot(run, archive.bytes);
    run.meter.stop();
    return snapshotResult(run, manifest, archive, copied, pruned, remote, started);
  } catch (err) {
    throw asDiskError(err, rootLayout(config.root).backupsDir, config.root);
  } finally {
    run.meter.stopMeasuring();
    await discardUnpublished(run);
  }
}

/**
 * Readies the data root: the backups folder exists, an interrupted restore is finished or rolled
 * back (never snapshot a half-swapped set) and leftovers of crashed runs are removed.
 * @throws WbError `no_databases` when there is nothing to back up (saying where it looked)
 */
function prepareRoot(config: Config): void {
  const { root } = config;
  fs.mkdirSync(rootLayout(root).backupsDir, { recursive: true });
  // Never snapshot a half-swapped set: finish or roll back an interrupted restore first.
  recoverInterruptedSwap(root);
  removeLeftovers(root);
  if (config.databases.length === 0) {
    throw new WbError(
      'no_databases',
      config.discovered
        ? `There is nothing to back up: no databases are configured and there is no *.db file under ${rootLayout(root).dbDir}.`
        : 'There is nothing to back up: the configuration lists no databases.',
      `List the vital databases under \`databases:\` in ${rootLayout(root).configYaml} (see docs/configuration.md), or put them under ${rootLayout(root).dbDir}.`,
    );
  }
}

/** Picks the snapshot's id (unique in backups/) and codec, and creates its .partial folder with an archive writer. */
function startSnapshot(config: Config, opts: BackupOptions, lock: RootLock): SnapshotRun {
  const { backupsDir } = rootLayout(config.root);
  const manual = opts.manual ?? false;
  const now = (opts.now ?? (() => new Date()))();
  const id = uniqueSnapshotId(backupsDir, now, manual, configuredHost(config));
  const codec = chooseCodec(config.compression.codec);
  const files = snapshotFiles(backupsDir, id, codec);
  fs.mkdirSync(files.partialDir);
  const archiveTmp = path.join(files.partialDir, 'archive.tmp');
  const writer = new ArchiveWriter(files.partialDir, archiveTmp, codec, config.compression.level);
  const sourceBytes = config.databases.reduce((n, d) => n + sourceSize(d.path), 0);
  const run: SnapshotRun = {
    config,
    opts,
    lock,
    id,
    manual,
    now,
    codec,
    files,
    archiveTmp,
    writer,
    copier: new HotCopier(),
    log: logger().child({ snapshot: id }),
    meter: new ProgressReporter((done, total, message) => opts.onProgress?.({ done, ...(total !== undefined ? { total } : {}), message })),
    bytes: { copied: 0, reading: null, pushed: 0, total: 2 * sourceBytes },
    step: 'starting',
    complete: false,
    chain: { kind: 'full', base: null, reason: 'forced', bases: new Map(), verified: [], reread: 0 },
  };
  // The heartbeat: what was measured at that moment (a growing copy, the archive's intake), never a made-up value.
  const measured = () => ({ done: bytesDone(run), total: run.bytes.total, message: run.step });
  run.meter.measure(measured);
  // Compression sends events of its own: a value per share of the total, however fast it runs.
  writer.onPacked = () => run.meter.report(measured());
  return run;
}

/** A database file's size now (0 when it cannot be read: it will be skipped). */
function sourceSize(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

/** A step begins or ends: its message goes with the bytes measured now (sent as soon as they increase). */
function progress(run: SnapshotRun, message: string): void {
  // What the step before measured goes out under its own name first.
  run.meter.flush();
  run.step = message;
  run.meter.report({ done: bytesDone(run), total: run.bytes.total, message });
  run.meter.flush();
}

/** @throws WbError `interrupted` once cancelled, `busy` when another process took over the lock */
function checkpoint(run: SnapshotRun): void {
  if (run.opts.signal?.aborted) throw new WbError('interrupted', 'The backup was cancelled; nothing partial was kept.');
  if (run.lock.compromised) throw new WbError('busy', 'Another process took over the data root lock; this backup stopped.');
}

/**
 * Hot-copies each database into the .partial folder and adds it to the archive, in the order that
 * lets a restore check each database while the rest unpacks (see archive-order.ts). A database
 * that cannot be copied is skipped with the reason; the others are still taken.
 * @throws WbError `disk_full` (every later copy would fail too), `snapshot_failed` when none copied
 */
async function copyDatabases(run: SnapshotRun): Promise<CopiedSet> {
  const { config } = run;
  const databases: ManifestDatabase[] = [];
  // Files discovery could not use (a dangling or looping link) are reported like any other skip.
  const skipped: Array<{ name: string; reason: string }> = [...(config.skipped ?? [])];
  const locked = new Set<string>();
  const pages: PageSetEntry[] = [];
  const whole = new Map<string, string>();
  const entries = new Set<string>();
  const copyOrder = archiveOrder(config.databases, previousRowCounts(config.root));
  for (const [index, db] of copyOrder.entries()) {
    checkpoint(run);
    const entry = archiveEntryFor(db);
    if (entries.has(entry)) {
      // names.ts makes this impossible for distinct names; kept so one database can never overwrite another's copy.
      skipped.push({ name: db.name, reason: `another database already takes ${entry} in the archive` });
      continue;
    }
    entries.add(entry);
    const copied = await copyOne(run, db, entry);
    if (copied.kind === 'skipped') {
      // The result names the path it looked at; the log does not (no user paths in logs).
      skipped.push({ name: db.name, reason: copied.looked_at ? `${copied.reason}: ${copied.looked_at}` : copied.reason });
      if (copied.locked) locked.add(db.name);
      run.log.warn({ db: db.name, reason: copied.reason }, 'database skipped');
      run.bytes.total -= 2 * sourceSize(db.path);
      progress(run, `skipped ${db.name}: ${copied.reason}`);
      continue;
    }
    // The estimate becomes the real sizes: the image read, then what goes into the archive.
    const stored = copied.stored === 'delta' ? copied.delta!.bytes : copied.bytes;
    run.bytes.total += copied.bytes + stored - 2 * sourceSize(db.path);
    run.bytes.copied += copied.bytes;
    run.writer.add(copied.stored === 'delta' ? `${entry}.delta` : entry);
    databases.push(manifestEntry(db, entry, config.root, copied));
    pages.push({ name: db.name, index: decodePageIndex(Buffer.from(copied.index)), file: copied.file });
    if (copied.whole_because) whole.set(db.name, copied.whole_because);
    progress(run, `copied ${db.name} (${index + 1}/${config.databases.length})`);
  }
  if (databases.length === 0) throw noneCopied(config.databases.length, skipped, locked);
  return { databases, pages, whole, skipped, locked };
}

/**
 * Hot-copies one database to its archive entry in the .partial folder. A failed copy becomes a
 * skip with the reason (its partial file removed).
 * @throws WbError `disk_full` when the destination is full
 */
async function copyOne(run: SnapshotRun, db: VitalDatabase, entry: string): Promise<Exclude<HotCopyResult, { kind: 'failed' }>> {
  const dest = path.join(run.files.partialDir, ...entry.split('/'));
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  let copied: HotCopyResult;
  progress(run, `copying ${path.basename(db.path)}`);
  const shared = new SharedArrayBuffer(8);
  run.bytes.reading = new BigInt64Array(shared);
  const base = run.chain.bases.get(db.name);
  try {
    copied = await run.copier.copy({
      source: db.path,
      dest,
      busyTimeoutMs: 5000,
      codec: run.codec,
      ...(run.config.compression.level !== undefined ? { level: run.config.compression.level } : {}),
      ...(base ? { base } : {}),
      progress: shared,
    });
  } catch (err) {
    copied = failedCopy(err);
  } finally {
    run.bytes.reading = null;
  }
  // A full destination stops the snapshot (every later copy would fail too); any other failure
  // belongs to this one database: it is skipped with the reason and the others are still taken.
  if (copied.kind === 'failed' && copied.code === 'disk_full') throw diskFullError(rootLayout(run.config.root).backupsDir, run.config.root);
  if (copied.kind === 'failed') {
    fs.rmSync(dest, { force: true });
    fs.rmSync(`${dest}.delta`, { force: true });
    return { kind: 'skipped', reason: `copying it failed: ${copied.message}` };
  }
  return copied;
}

/** The error when not one database could be copied: every reason, and what to do about them. */
function noneCopied(count: number, skipped: CopiedSet['skipped'], locked: ReadonlySet<string>): WbError {
  return new WbError(
    'snapshot_failed',
    `None of the ${count} vital databases could be copied: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}.`,
    skipped.every((s) => locked.has(s.name))
      ? 'Each one is locked by another program: let it release the lock (or stop it), then try again.'
      : 'Each reason says what is wrong; paths are set under `databases:` in wb-backup.yaml (`~/` is the home folder, other relative paths start at the data root).',
  );
}

/**
 * Writes MANIFEST.json (databases and skips in configuration order, whatever order they were
 * copied in) into the .partial folder and finishes the archive (still archive.tmp).
 * @throws WbError `interrupted` or `busy` (see checkpoint) after the archive is written
 */
async function writeArchive(run: SnapshotRun, copied: CopiedSet): Promise<{ manifest: Manifest; manifestText: string; archive: Awaited<ReturnType<ArchiveWriter['finish']>> }> {
  const { config } = run;
  const { databases, skipped } = copied;
  const configOrder = new Map(config.databases.map((d, i) => [d.name, i]));
  databases.sort((a, b) => configOrder.get(a.name)! - configOrder.get(b.name)!);
  skipped.sort((a, b) => (configOrder.get(a.name) ?? Infinity) - (configOrder.get(b.name) ?? Infinity) || byCodeUnit(a.name, b.name));
  // A delta snapshot in which every database ended up whole is a full one: nothing depends on the base.
  // The step is named before anything is awaited, so no heartbeat reports the last copy's name again.
  run.step = 'writing the manifest';
  const delta = databases.some((d) => d.stored === 'delta');
  const manifest: Manifest = {
    manifest_version: MANIFEST_VERSION,
    kind: delta ? 'delta' : 'full',
    base: delta ? run.chain.base : null,
    snapshot_id: run.id,
    created_at: run.now.toISOString(),
    manual: run.manual,
    codec: run.codec,
    tool: await toolProvenance(),
    host: configuredHost(config),
    databases,
    skipped,
  };
  const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
  fs.writeFileSync(path.join(run.files.partialDir, 'MANIFEST.json'), manifestText);
  run.writer.add('MANIFEST.json');
  run.step = 'compressing the archive';
  const archive = await run.writer.finish();
  checkpoint(run);
  progress(run, `archived ${databases.length} database(s)`);
  return { manifest, manifestText, archive };
}

/**
 * Makes the snapshot exist: the manifest and checksums sidecars first, the archive's rename last
 * (its presence is what makes the snapshot exist), flushed; then the .partial folder goes.
 */
async function publishSnapshot(run: SnapshotRun, manifestText: string, archive: { sha256: string; bytes: number }, pages: readonly PageSetEntry[]): Promise<void> {
  const { files } = run;
  // The next snapshot's deltas are found with these; a snapshot without them is only no base.
  // With them, the archives of this snapshot's chain as found whole: its own was checksummed as
  // it was written (the rename below keeps its inode, size and mtime), its base's were checked
  // by planChain; the next snapshot reads again only those whose file changed.
  const own = fileStamp(run.archiveTmp);
  const verified = [...(run.chain.kind === 'delta' ? run.chain.verified : []), ...(own ? [{ id: run.id, sha256: archive.sha256, stamp: own }] : [])];
  writePageSet(files.pages, run.id, pages, verified);
  const manifestSha = createHash('sha256').update(manifestText).digest('hex');
  writeFileAtomic(files.manifest, manifestText);
  writeFileAtomic(
    files.checksums,
    `${archive.sha256}  ${path.basename(files.archive)}\n${manifestSha}  ${path.basename(files.manifest)}\n`,
  );
  fs.renameSync(run.archiveTmp, files.archive);
  await fsyncDir(rootLayout(run.config.root).backupsDir);
  run.complete = true;
  fs.rmSync(files.partialDir, { recursive: true, force: true });
}

/** Pushes the snapshot to the remote (the injected one, else the configured one); "skipped" without one. */
async function replicateSnapshot(run: SnapshotRun, archiveBytes: number): Promise<RemoteOutcome> {
  const { config, opts } = run;
  // GitHub copies turned off (`wb-backup health disable github_backups`) stop here; the remote
  // setting stays, and list and restore still read what is already there.
  const githubOff = config.remote !== null && 'github' in config.remote && config.health.disabled.includes('github_backups');
  const target = opts.remote !== undefined ? opts.remote : githubOff ? null : remoteFromConfig(config);
  if (!target) {
    return {
      status: 'skipped',
      reason: githubOff && opts.remote === undefined ? 'GitHub copies are turned off (health.disabled in wb-backup.yaml); the snapshot is local only.' : 'No remote is configured; the snapshot is local only.',
    };
  }
  run.bytes.total += archiveBytes;
  const step = `pushing to ${target.label}`;
  progress(run, step);
  // The bytes the remote has sent so far (backfilled snapshots too: the total grows past them),
  // one byte short while it sends, so the step's end always carries a larger value and is sent.
  let sent = 0;
  const remote = await replicate(config, target, run.id, opts.signal, (bytes) => {
    sent = bytes;
    run.bytes.pushed = bytes - 1;
    run.meter.report({ done: bytesDone(run), total: run.bytes.total, message: step });
  });
  // A remote that could not show its transfer as it went: the archive counts once the push is over.
  run.bytes.pushed = Math.max(sent, archiveBytes);
  progress(run, remote.status === 'pushed' ? `pushed to ${target.label}` : `remote: ${remote.status}`);
  return remote;
}

/** The result of data_backup for the snapshot taken. */
function snapshotResult(
  run: SnapshotRun,
  manifest: Manifest,
  archive: { sha256: string; bytes: number },
  copied: CopiedSet,
  pruned: string[],
  remote: RemoteOutcome,
  started: Date,
): BackupResult {
  return {
    snapshot_id: run.id,
    manual: run.manual,
    created_at: manifest.created_at,
    kind: manifest.kind ?? 'full',
    base: manifest.base ?? null,
    ...(manifest.kind === 'full' ? { full_because: fullBecause(run.chain, copied) } : {}),
    archive: { file: path.basename(run.files.archive), bytes: archive.bytes, sha256: archive.sha256, codec: run.codec },
    databases: copied.databases.map(({ name, file, bytes, sha256, user_version, rows, via_link, stored, delta }) => ({
      name,
      file,
      bytes,
      sha256,
      user_version,
      rows,
      stored: stored ?? 'image',
      stored_bytes: delta ? delta.bytes : bytes,
      ...(manifest.kind === 'delta' && copied.whole.has(name) ? { whole_because: copied.whole.get(name)! } : {}),
      ...(via_link ? { via_link } : {}),
    })),
    skipped: copied.skipped,
    pruned,
    remote,
    duration_ms: Date.now() - started.getTime(),
  };
}

/** Closes the copier; unless the snapshot was published, removes every file of it (nothing partial is kept). */
async function discardUnpublished(run: SnapshotRun): Promise<void> {
  await run.copier.close();
  if (run.complete) return;
  const { files } = run;
  await run.writer.abort();
  fs.rmSync(files.partialDir, { recursive: true, force: true });
  fs.rmSync(files.manifest, { force: true });
  fs.rmSync(files.checksums, { force: true });
  fs.rmSync(files.pages, { force: true });
  fs.rmSync(files.archive, { force: true });
}

/** Why a snapshot is a full one, in words: the chain rule's reason, or every database stored whole. */
function fullBecause(chain: ChainPlan, copied: CopiedSet): string {
  if (chain.kind === 'delta') return copied.whole.size ? `every database had to be stored whole (${[...copied.whole].map(([n, why]) => `${n}: ${why}`).join('; ')})` : 'no database could be stored as a delta';
  return chain.why ?? 'a full snapshot was taken';
}

function manifestEntry(db: VitalDatabase, entry: string, root: string, copied: CopiedDatabase): ManifestDatabase {
  return {
    name: db.name,
    file: entry,
    relative_path: displayPath(root, db.path),
    bytes: copied.bytes,
    sha256: copied.sha256,
    user_version: copied.user_version,
    page_size: copied.page_size,
    page_count: copied.page_count,
    journal_mode: copied.journal_mode,
    rows: copied.rows,
    ...(isLink(db.path) ? { via_link: true } : {}),
    stored: copied.stored,
    ...(copied.stored === 'delta' && copied.delta
      ? { delta: { file: `${entry}.delta`, bytes: copied.delta.bytes, base_sha256: copied.delta.base_sha256, changed_pages: copied.delta.changed_pages } }
      : {}),
  };
}

function isLink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * Delete local snapshots the retention policy does not keep, except those a kept snapshot's chain
 * needs (snapshot/chain.ts protectChains). Never the one just taken. The policy is applied to each
 * machine's snapshots on its own (decideRetentionByHost): snapshots of another machine, downloaded
 * here to be restored, never push this machine's out of a tier, nor the reverse.
 */
export function sweepLocal(config: Config, justTaken: string): string[] {
  const chains = localChainSnapshots(config.root);
  const ids = chains.map((s) => s.id);
  const decision = decideRetentionByHost(ids, config.retention, configuredHost(config));
  const prune = new Set(decision.prune);
  const { deletable } = protectChains(chains, ids.filter((id) => !prune.has(id)));
  const pruned = deletable.filter((id) => id !== justTaken);
  for (const id of pruned) deleteLocalSnapshot(config.root, id);
  if (pruned.length) logger().info({ pruned }, 'retention sweep pruned local snapshots');
  return pruned;
}
