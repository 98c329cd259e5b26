import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { syncDirectory } from '../core/durable-file.js';
import { logger } from '../core/log.js';
import { rootLayout } from '../root/paths.js';
import { compareSnapshotIds, parseSnapshotId } from '../snapshot/id.js';
import { findLocalSnapshot, listLocalSnapshots, type LocalSnapshot } from '../snapshot/store.js';
import { RemoteError, type Remote } from './remote.js';

/**
 * The snapshot to restore, made local first when only the remote has it (or when the remote's is
 * the newest, for "latest"). The download lands as an ordinary local snapshot: archive renamed in last.
 * Call holding the root lock.
 */
export async function ensureLocalSnapshot(config: Config, id: string, remote: Remote | null): Promise<LocalSnapshot> {
  const local = listLocalSnapshots(config.root);
  const localHit = id === 'latest' ? local[0] : local.find((s) => s.id === id);
  // A named snapshot this machine has needs no remote; only "latest" must ask which is newer.
  if (!remote || (localHit && id !== 'latest')) return findLocalSnapshot(config.root, id);

  let wanted: string | undefined;
  try {
    // A remote's listing is untrusted: an id becomes a file name, so only canonical snapshot ids count.
    const remoteIds = (await remote.list()).filter((r) => r.complete && typeof r.id === 'string' && parseSnapshotId(r.id) !== null).map((r) => r.id);
    if (id === 'latest') {
      const newestRemote = [...remoteIds].sort((a, b) => compareSnapshotIds(b, a))[0];
      wanted = newestRemote && (!localHit || compareSnapshotIds(newestRemote, localHit.id) > 0) ? newestRemote : undefined;
    } else if (!localHit && remoteIds.includes(id)) wanted = id;
  } catch (err) {
    if (localHit) return localHit; // the local copy is enough
    const detail = err instanceof RemoteError ? `${err.message} ${err.hint}` : (err as Error).message;
    throw new WbError('not_found', `Snapshot ${id} is not on this machine and the remote could not be listed: ${detail}`);
  }
  if (!wanted) return findLocalSnapshot(config.root, id);

  const { backupsDir } = rootLayout(config.root);
  fs.mkdirSync(backupsDir, { recursive: true });
  // A folder of its own (never one a previous or concurrent download left), removed in any case.
  const tmp = fs.mkdtempSync(path.join(backupsDir, `${wanted}.download.tmp-`)); // ".tmp-": removeLeftovers clears it after a crash
  try {
    const files = await remote.download(wanted, tmp);
    // Only the three files this snapshot is made of, named after the id asked for.
    const expected = new Set(listLocalFileNames(wanted));
    const published: string[] = [];
    try {
      // The archive is published last: a snapshot counts as local once its archive is there.
      for (const from of [files.manifestPath, files.checksumPath, files.archivePath]) {
        const name = path.basename(from);
        if (path.dirname(path.resolve(from)) !== path.resolve(tmp) || !expected.has(name)) {
          throw new Error(`the remote delivered an unexpected file ${JSON.stringify(name)}`);
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
    const detail = err instanceof RemoteError ? `${err.message} ${err.hint}` : (err as Error).message;
    throw new WbError('not_found', `Downloading snapshot ${wanted} from ${remote.label} failed: ${detail} Nothing was changed.`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  logger().info({ snapshot: wanted, remote: remote.label }, 'downloaded snapshot from the remote');
  return findLocalSnapshot(config.root, wanted);
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
    if (code === 'EEXIST') throw new Error(`${path.basename(to)} already exists in backups/ and is kept as it is; move it away to download this snapshot again`);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV' && code !== 'EMLINK' && code !== 'ENOSYS') throw err;
    fs.copyFileSync(from, to, fs.constants.COPYFILE_EXCL);
  }
  fs.rmSync(from, { force: true });
}
