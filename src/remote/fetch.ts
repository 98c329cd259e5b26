import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../root/config.js';
import { WbError, errorHint, type WbErrorCode } from '../core/errors.js';
import { syncDirectory } from '../core/durable-file.js';
import { logger } from '../core/log.js';
import { rootLayout } from '../root/paths.js';
import { compareSnapshotIds, parseSnapshotId, snapshotHost } from '../snapshot/id.js';
import { configuredHost } from '../root/host.js';
import { readLocalManifest } from '../snapshot/chain-set.js';
import type { Manifest } from '../snapshot/manifest.js';
import { findLocalSnapshot, listLocalSnapshots, type LocalSnapshot } from '../snapshot/store.js';
import { RemoteError, type Remote } from './remote.js';

/**
 * The snapshot to restore, made local first when only the remote has it (or when the remote's is
 * the newest, for "latest": this machine's newest, by its configured host; another machine's
 * snapshot is restored only when named). The download lands as an ordinary local snapshot: archive renamed in last.
 * A delta snapshot comes with the archives of its chain this machine lacks (and no others), bases
 * first, each one an ordinary local snapshot too: also when the snapshot itself is local but a link
 * of its chain is not (deleted here, still on the remote). Call holding the root lock.
 * @param onBytes while downloading: bytes received so far (a growing running total over the
 *   whole chain) and the archive sizes of the snapshots downloaded, as the remote lists them (the
 *   files' total is slightly more: each manifest and checksum file comes with its archive)
 * @param databases only the chains of these databases are made whole (default: every database)
 * @throws WbError `restore_refused` when a link is on neither side (nothing is downloaded then),
 *   not_found / remote_failed / interrupted / disk_full from the listing or a download
 */
export async function ensureLocalSnapshot(config: Config, id: string, remote: Remote | null, signal?: AbortSignal, onBytes?: (bytes: number, archiveBytes: number) => void, databases?: readonly string[]): Promise<LocalSnapshot> {
  const host = configuredHost(config);
  const mine = (s: string) => snapshotHost(s, host) === host;
  const local = listLocalSnapshots(config.root);
  const localHit = id === 'latest' ? local.find((s) => mine(s.id)) : local.find((s) => s.id === id);
  if (!remote) return findLocalSnapshot(config.root, id, host);
  // A named snapshot this machine has needs no remote unless a link of its chain is missing here;
  // only "latest" must ask which is newer.
  if (localHit && id !== 'latest' && !localChainGap(localById(config.root), localHit, databases)) return localHit;

  let wanted: string | undefined;
  const sizes = new Map<string, number>();
  try {
    // A remote's listing is untrusted: an id becomes a file name, so only canonical snapshot ids count.
    const listed = (await remote.list(signal ? { signal } : {})).filter((r) => r.complete && typeof r.id === 'string' && parseSnapshotId(r.id) !== null);
    for (const r of listed) sizes.set(r.id, typeof r.bytes === 'number' && Number.isFinite(r.bytes) && r.bytes >= 0 ? r.bytes : 0);
    const remoteIds = listed.map((r) => r.id);
    if (id === 'latest') {
      const newestRemote = remoteIds.filter(mine).sort((a, b) => compareSnapshotIds(b, a))[0];
      wanted = newestRemote && (!localHit || compareSnapshotIds(newestRemote, localHit.id) > 0) ? newestRemote : localHit?.id;
    } else if (localHit || remoteIds.includes(id)) wanted = id;
  } catch (err) {
    if (localHit && !(err instanceof RemoteError && err.kind === 'cancelled') && !localChainGap(localById(config.root), localHit, databases)) return localHit; // the local copy is enough
    // The remote was not asked successfully: whether it has the snapshot is unknown, so not 'not_found'.
    const what = localHit ? `A link of the chain of snapshot ${localHit.id} is not on this machine` : `Snapshot ${id} is not on this machine`;
    throw new WbError(codeFor(err), `${what} and the remote could not be listed: ${errorText(err)}`, errorHint(err));
  }
  if (!wanted) return findLocalSnapshot(config.root, id, host);

  // A delta restores with its whole chain: the archives of the chain this machine lacks, bases first.
  const needed = await chainToDownload(localById(config.root), remote, wanted, new Set(sizes.keys()), databases, signal);
  // Progress over the whole chain: one running total against the chain's archive bytes.
  const chainBytes = needed.reduce((n, link) => n + (sizes.get(link) ?? 0), 0);
  let before = 0;
  for (const link of needed) {
    let received = 0;
    const report = onBytes
      ? (b: number) => {
          received = b;
          onBytes(before + b, chainBytes);
        }
      : undefined;
    await downloadOne(config, remote, link, signal, report);
    before += received;
  }
  return findLocalSnapshot(config.root, wanted);
}

/** The local snapshots of the roots given, by id (the first root's copy wins). */
function localById(...roots: string[]): Map<string, LocalSnapshot> {
  const byId = new Map<string, LocalSnapshot>();
  for (const root of roots) for (const s of listLocalSnapshots(root)) if (!byId.has(s.id)) byId.set(s.id, s);
  return byId;
}

/**
 * For a check, which never changes the data root: the links of a local snapshot's chain that
 * neither `config.root` nor `intoRoot` has are downloaded from the remote into `intoRoot` (a
 * folder of the check's own, laid out as a data root), bases first. Nothing is asked of the
 * remote when the chain is whole.
 * @returns the snapshots downloaded, as local snapshots of `intoRoot`
 * @throws WbError `restore_refused` (a link on neither side; nothing downloaded), not_found /
 *   remote_failed / interrupted / disk_full (listing or download)
 */
export async function fetchChainLinksInto(config: Config, snapshot: LocalSnapshot, remote: Remote, intoRoot: string, signal?: AbortSignal): Promise<LocalSnapshot[]> {
  const local = localById(config.root, intoRoot);
  if (!localChainGap(local, snapshot)) return [];
  let onRemote: Set<string>;
  try {
    onRemote = new Set((await remote.list(signal ? { signal } : {})).filter((r) => r.complete && typeof r.id === 'string' && parseSnapshotId(r.id) !== null).map((r) => r.id));
  } catch (err) {
    throw new WbError(codeFor(err), `A link of the chain of snapshot ${snapshot.id} is not on this machine and the remote could not be listed: ${errorText(err)}`, errorHint(err));
  }
  const needed = await chainToDownload(local, remote, snapshot.id, onRemote, undefined, signal);
  const into: Config = { ...config, root: intoRoot };
  for (const link of needed) await downloadOne(into, remote, link, signal);
  return needed.map((id) => findLocalSnapshot(intoRoot, id));
}

/**
 * The first snapshot a local snapshot's chain needs that this machine does not have (following
 * each local manifest's base, only for the databases stored as deltas), or null when the chain is
 * whole here or cannot be followed further (a damaged local manifest: the restore's own chain check
 * reports it). Reads manifest files only.
 */
function localChainGap(local: ReadonlyMap<string, LocalSnapshot>, snapshot: LocalSnapshot, databases?: readonly string[]): string | null {
  let manifest = readLocalManifest(snapshot);
  let names = deltaNames(manifest, databases);
  for (let hops = 0; manifest && names.size && manifest.base && hops <= MAX_CHAIN; hops++) {
    const base = local.get(manifest.base);
    if (!base) return manifest.base;
    const next = readLocalManifest(base);
    names = next ? new Set([...names].filter((n) => next.databases.find((d) => d.name === n)?.stored === 'delta')) : new Set();
    manifest = next;
  }
  return null;
}

/** The databases of `manifest` (among `only`, when given) stored as deltas: those whose chain goes on to its base. */
function deltaNames(manifest: Manifest | null, only?: readonly string[]): Set<string> {
  if (!manifest || manifest.kind !== 'delta') return new Set();
  return new Set(manifest.databases.filter((d) => d.stored === 'delta' && (!only || only.includes(d.name))).map((d) => d.name));
}

/**
 * The snapshots to download so that `wanted` restores: `wanted` when this machine lacks it and,
 * following each manifest's base (a local manifest where this machine has the snapshot, else
 * remote.manifest; no archive fetched), every base this machine does not have, down to a full.
 * Only the bases the chains of `databases` (default: all) need are followed. Full first, the
 * order they are downloaded and applied in.
 * @param onRemote the snapshots the remote lists as complete
 * @throws WbError `restore_refused` when a base is on neither side (nothing is downloaded then);
 *   not_found / remote_failed / interrupted when a manifest cannot be read
 */
async function chainToDownload(local: ReadonlyMap<string, LocalSnapshot>, remote: Remote, wanted: string, onRemote: ReadonlySet<string>, databases: readonly string[] | undefined, signal?: AbortSignal): Promise<string[]> {
  const chain: string[] = [];
  const seen = new Set<string>();
  let names = new Set<string>(); // the databases whose chain goes on (from the first manifest read)
  for (let id: string | null = wanted; id !== null; ) {
    if (seen.has(id) || seen.size > MAX_CHAIN) {
      throw new WbError('restore_refused', `Snapshot ${wanted} has a chain of bases that loops or is longer than ${MAX_CHAIN}. Nothing was changed.`, 'Restore a full snapshot instead (data_backup_list shows which are full).');
    }
    seen.add(id);
    let manifest: Manifest | null;
    const here = local.get(id);
    if (here) {
      manifest = readLocalManifest(here);
      if (!manifest) break; // damaged here: the restore's chain check says so, naming it
    } else {
      if (!onRemote.has(id)) {
        if (id === wanted) throw new WbError('not_found', `Snapshot ${wanted} is neither on this machine nor complete on ${remote.label}.`, 'List the snapshots with data_backup_list (or `wb-backup list`) and pick one that is.');
        throw new WbError('restore_refused', `Snapshot ${wanted} is a delta whose chain needs ${id}, which is neither on this machine nor on ${remote.label}. Nothing was changed.`, 'Restore an older snapshot whose chain is whole (data_backup_list shows each snapshot\'s kind and base).');
      }
      chain.push(id);
      try {
        manifest = await remote.manifest(id, signal ? { signal } : {});
      } catch (err) {
        if (err instanceof RemoteError && err.kind === 'not_found' && id !== wanted) {
          throw new WbError('restore_refused', `Snapshot ${wanted} is a delta whose chain needs ${id}, which is neither on this machine nor on ${remote.label}. Nothing was changed.`, 'Restore an older snapshot whose chain is whole (data_backup_list shows each snapshot\'s kind and base).');
        }
        // Reading the chain is the first step of downloading it: said as such.
        throw new WbError(codeFor(err), `Downloading snapshot ${id} from ${remote.label} failed: ${errorText(err)} Nothing was changed.`, errorHint(err));
      }
    }
    const m: Manifest = manifest;
    names = id === wanted ? deltaNames(m, databases) : new Set([...names].filter((n) => m.databases.find((d) => d.name === n)?.stored === 'delta'));
    id = names.size && manifest.kind === 'delta' && manifest.base ? manifest.base : null;
  }
  return chain.reverse();
}

/** A restore never reads more archives than this (the chain rule's max_deltas is at most 1000). */
const MAX_CHAIN = 1001;

/**
 * Download snapshot `id` and publish it as an ordinary local snapshot (archive renamed in last).
 * @throws WbError with the code of what failed (codeFor); nothing of it is left in backups/
 */
async function downloadOne(config: Config, remote: Remote, wanted: string, signal?: AbortSignal, onBytes?: (bytes: number) => void): Promise<void> {
  const { backupsDir } = rootLayout(config.root);
  fs.mkdirSync(backupsDir, { recursive: true });
  // A folder of its own (never one a previous or concurrent download left), removed in any case.
  const tmp = fs.mkdtempSync(path.join(backupsDir, `${wanted}.download.tmp-`)); // ".tmp-": removeLeftovers clears it after a crash
  try {
    const files = await remote.download(wanted, tmp, { ...(signal ? { signal } : {}), ...(onBytes ? { onBytes } : {}) });
    // Only the three files this snapshot is made of, named after the id asked for.
    const expected = new Set(listLocalFileNames(wanted));
    const published: string[] = [];
    try {
      // The archive is published last: a snapshot counts as local once its archive is there.
      for (const from of [files.manifestPath, files.checksumPath, files.archivePath]) {
        const name = path.basename(from);
        if (path.dirname(path.resolve(from)) !== path.resolve(tmp) || !expected.has(name)) {
          throw new PublishRefused(`the remote delivered an unexpected file ${JSON.stringify(name)}`);
        }
        publishNoClobber(from, path.join(backupsDir, name));
        published.push(path.join(backupsDir, name));
      }
      syncDirectory(backupsDir);
    } catch (err) {
      for (const f of published) fs.rmSync(f, { force: true });
      throw err;
    }
  } catch (err) {
    throw new WbError(codeFor(err), `Downloading snapshot ${wanted} from ${remote.label} failed: ${errorText(err)} Nothing was changed.`, errorHint(err));
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  logger().info({ snapshot: wanted, remote: remote.label }, 'downloaded snapshot from the remote');
}

/** A downloaded file that may not be published (it would replace one, or is not the snapshot's). */
class PublishRefused extends Error {}

/** The message of the failure without its hint (the hint travels as the WbError's own hint). */
function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The error code for a failed list or download, from what failed, never from the text:
 * only the remote saying it has no (complete) copy is not_found; a remote that could not be
 * reached or read is remote_failed (the snapshot may well be there), a cancel is interrupted,
 * this machine's full disk is disk_full, a download that would replace a local file is restore_refused.
 */
function codeFor(err: unknown): WbErrorCode {
  if (err instanceof WbError) return err.code; // e.g. manifest_invalid: a damaged manifest on the remote
  if (err instanceof RemoteError) {
    if (err.kind === 'not_found' || err.kind === 'incomplete') return 'not_found';
    if (err.kind === 'cancelled') return 'interrupted';
    return 'remote_failed';
  }
  if (err instanceof PublishRefused) return 'restore_refused';
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'disk_full';
  return 'remote_failed';
}

/** The file names a local snapshot may have (either codec). */
function listLocalFileNames(id: string): string[] {
  return [`${id}.manifest.json`, `${id}.sha256`, `${id}.tar.zst`, `${id}.tar.gz`];
}

/**
 * Move a downloaded file into place without ever replacing an existing file: a hard link fails
 * with EEXIST when the name is taken (atomic), then the temporary name goes. Where links are not
 * possible, an exclusive copy does the same.
 */
function publishNoClobber(from: string, to: string): void {
  try {
    fs.linkSync(from, to);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new PublishRefused(`${path.basename(to)} already exists in backups/ and is kept as it is; move it away to download this snapshot again`);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV' && code !== 'EMLINK' && code !== 'ENOSYS') throw err;
    fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL);
  }
  fs.rmSync(from, { force: true });
}
