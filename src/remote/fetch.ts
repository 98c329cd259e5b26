import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { WbError } from '../errors.js';
import { logger } from '../log.js';
import { rootLayout } from '../paths.js';
import { compareSnapshotIds } from '../snapshot-id.js';
import { findLocalSnapshot, listLocalSnapshots, type LocalSnapshot } from '../snapshot-store.js';
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
    const remoteIds = (await remote.list()).filter((r) => r.complete).map((r) => r.id);
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
  const tmp = path.join(backupsDir, `${wanted}.download`);
  fs.rmSync(tmp, { recursive: true, force: true });
  try {
    const files = await remote.download(wanted, tmp);
    fs.renameSync(files.manifestPath, path.join(backupsDir, path.basename(files.manifestPath)));
    fs.renameSync(files.checksumPath, path.join(backupsDir, path.basename(files.checksumPath)));
    fs.renameSync(files.archivePath, path.join(backupsDir, path.basename(files.archivePath)));
  } catch (err) {
    const detail = err instanceof RemoteError ? `${err.message} ${err.hint}` : (err as Error).message;
    throw new WbError('not_found', `Downloading snapshot ${wanted} from ${remote.label} failed: ${detail} Nothing was changed.`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  logger().info({ snapshot: wanted, remote: remote.label }, 'downloaded snapshot from the remote');
  return findLocalSnapshot(config.root, wanted);
}
