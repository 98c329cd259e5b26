import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseSnapshotId } from '../../snapshot/id.js';
import { describeStoredSnapshot, downloadableLayout, manifestTooLarge, MAX_MANIFEST_BYTES, parseRemoteManifest } from '../listing.js';
import type { Manifest } from '../../snapshot/manifest.js';
import { WbError } from '../../core/errors.js';
import { countingStream, joinFiles, splitFile } from '../parts.js';
import {
  cancelledError,
  DEFAULT_PART_BYTES,
  RemoteError,
  throwIfCancelled,
  type PushResult,
  type Remote,
  type RemoteCallOptions,
  type RemoteErrorKind,
  type RemoteSnapshot,
  type SnapshotFiles,
} from '../remote.js';
import { syncDirectory, syncFileData } from '../../core/durable-file.js';
import { gate } from '../../core/fault-gate.js';

/** A signal that never fires, for calls made without one. */
const NEVER = new AbortController().signal;

/**
 * A mounted folder (NAS, external disk): one sub-folder per snapshot, written under a temporary
 * name and renamed when complete, so a reader never sees half a snapshot. One attempt per call:
 * the registry wraps it in retry.ts.
 */
export class DirRemote implements Remote {
  readonly label: string;

  constructor(
    private readonly dir: string,
    private readonly partBytes = DEFAULT_PART_BYTES,
  ) {
    this.label = `dir:${path.basename(dir)}`;
  }

  private ensureReachable(): void {
    if (!fs.existsSync(this.dir)) {
      throw new RemoteError('transient', `The backup folder ${this.label} is not there (not mounted?).`, 'Mount or create the folder set as remote.dir.path in wb-backup.yaml.');
    }
  }

  /** A failed file operation on the backup folder as a RemoteError of the right kind (never 'not_found'). */
  private failure(err: unknown, what: string, signal?: AbortSignal): RemoteError {
    if (err instanceof RemoteError) return err;
    if (signal?.aborted) return cancelledError(this.label, what);
    const e = err as NodeJS.ErrnoException;
    const kind: RemoteErrorKind = e.code === 'ENOSPC' || e.code === 'EDQUOT' ? 'full' : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS' ? 'refused' : 'transient';
    const hint =
      kind === 'full'
        ? 'The backup folder is full: free space there.'
        : kind === 'refused'
          ? 'The backup folder (or a file in it) cannot be read or written by this user: fix its permissions.'
          : 'Check that the folder is mounted and readable; the next attempt tries again.';
    return new RemoteError(kind, `${what} ${this.label} failed: ${e.message}`, hint);
  }

  async list(opts: RemoteCallOptions = {}): Promise<RemoteSnapshot[]> {
    throwIfCancelled(opts.signal, this.label, 'Listing');
    this.ensureReachable();
    try {
      const found: RemoteSnapshot[] = [];
      const names = fs.readdirSync(this.dir);
      const present = new Set(names);
      for (const name of names) {
        const folder = path.join(this.dir, name);
        if (parseSnapshotId(name)) {
          found.push(describeStoredSnapshot(name, fs.readdirSync(folder), (f) => fs.statSync(path.join(folder, f)).size));
          continue;
        }
        // A delete cut short (see delete): listed as broken, never complete, so the next sweep finishes it.
        const id = name.startsWith(DELETING) ? name.slice(DELETING.length) : '';
        if (!parseSnapshotId(id) || present.has(id)) continue;
        found.push({ ...describeStoredSnapshot(id, fs.readdirSync(folder), (f) => fs.statSync(path.join(folder, f)).size, false), deleting: true });
      }
      return found;
    } catch (err) {
      throw this.failure(err, 'Listing', opts.signal);
    }
  }

  async push(snapshot: SnapshotFiles, opts: RemoteCallOptions = {}): Promise<PushResult> {
    const { signal } = opts;
    const what = `Copying ${snapshot.id} to`;
    throwIfCancelled(signal, this.label, what);
    this.ensureReachable();
    const final = path.join(this.dir, snapshot.id);
    const ours = fs.readFileSync(snapshot.checksumPath, 'utf8');
    const theirs = path.join(final, path.basename(snapshot.checksumPath));
    if (fs.existsSync(theirs) && fs.readFileSync(theirs, 'utf8') === ours) return { uploaded: false, attempts: 1 };

    // Written whole under a name list() ignores, renamed into place last: a cancelled or failed
    // push leaves nothing that counts, and the next push starts over.
    const tmp = path.join(this.dir, `.tmp-${snapshot.id}-${process.pid}`);
    try {
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.mkdirSync(tmp);
      // Bytes written into the backup folder so far (the running total onBytes reports).
      let sent = 0;
      const count = (n: number) => {
        sent += n;
        opts.onBytes?.(sent);
      };
      // An archive larger than a part is split straight into the folder; a smaller one is copied.
      const pieces = await splitFile(snapshot.archivePath, this.partBytes, tmp, signal, count);
      if (pieces.length === 1 && pieces[0] === snapshot.archivePath) await copyDurably(snapshot.archivePath, path.join(tmp, path.basename(snapshot.archivePath)), signal, count);
      else for (const piece of pieces) syncFileData(piece);
      await copyDurably(snapshot.manifestPath, path.join(tmp, path.basename(snapshot.manifestPath)), signal, count);
      await copyDurably(snapshot.checksumPath, path.join(tmp, path.basename(snapshot.checksumPath)), signal, count);
      syncDirectory(tmp); // the copied names, before the rename publishes them
      throwIfCancelled(signal, this.label, what); // the last moment the push can still not happen
      if (fs.existsSync(final)) fs.rmSync(final, { recursive: true, force: true }); // an incomplete earlier push
      fs.rmSync(path.join(this.dir, `${DELETING}${snapshot.id}`), { recursive: true, force: true }); // pushed again after a delete cut short
      fs.renameSync(tmp, final);
      syncDirectory(this.dir);
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw this.failure(err, what, signal);
    }
    return { uploaded: true, attempts: 1 };
  }

  async download(id: string, dir: string, opts: RemoteCallOptions = {}): Promise<SnapshotFiles> {
    const { signal } = opts;
    const what = `Reading ${id} from`;
    throwIfCancelled(signal, this.label, what);
    this.ensureReachable();
    const src = path.join(this.dir, id);
    let files: string[];
    try {
      files = fs.readdirSync(src);
    } catch (err) {
      // Only a snapshot folder that is not there is 'not_found'; one that cannot be read is not.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new RemoteError('not_found', `${this.label} has no snapshot ${id}.`, 'data_backup_list shows which snapshots exist.');
      throw this.failure(err, what, signal);
    }
    const layout = downloadableLayout(this.label, id, files);
    fs.mkdirSync(dir, { recursive: true });
    const archivePath = path.join(dir, layout.archiveName);
    const manifestPath = path.join(dir, `${id}.manifest.json`);
    const checksumPath = path.join(dir, `${id}.sha256`);
    try {
      // Bytes read from the backup folder so far (the running total onBytes reports).
      let received = 0;
      const count = (n: number) => {
        received += n;
        opts.onBytes?.(received);
      };
      if (layout.pieces.length === 1 && layout.pieces[0] === layout.archiveName) await copyDurably(path.join(src, layout.archiveName), archivePath, signal, count);
      else await joinFiles(layout.pieces.map((p) => path.join(src, p)), archivePath, signal, count);
      await copyDurably(path.join(src, `${id}.manifest.json`), manifestPath, signal, count);
      await copyDurably(path.join(src, `${id}.sha256`), checksumPath, signal, count);
    } catch (err) {
      // Writing into `dir` (this machine's disk) failing is not the remote's fault: passed on as it is.
      if (!signal?.aborted && isLocalWriteFailure(err)) throw err;
      throw this.failure(err, what, signal);
    }
    return { id, archivePath, manifestPath, checksumPath };
  }

  async manifest(id: string, opts: RemoteCallOptions = {}): Promise<Manifest> {
    const what = `Reading the manifest of ${id} from`;
    throwIfCancelled(opts.signal, this.label, what);
    this.ensureReachable();
    const src = path.join(this.dir, id);
    let text: string;
    try {
      if (!fs.existsSync(src)) throw new RemoteError('not_found', `${this.label} has no snapshot ${id}.`, 'data_backup_list shows which snapshots exist.');
      const file = path.join(src, `${id}.manifest.json`);
      let size: number;
      try {
        size = fs.statSync(file).size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new RemoteError('incomplete', `${this.label} holds ${id} without its manifest.`, 'Use another snapshot; the next backup run re-pushes it if it is still kept locally.');
        throw err;
      }
      if (size > MAX_MANIFEST_BYTES) throw manifestTooLarge(this.label, id, size);
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      if (err instanceof WbError) throw err;
      throw this.failure(err, what, opts.signal);
    }
    return parseRemoteManifest(this.label, id, text);
  }

  /**
   * Deletes snapshot `id` in steps that each leave a state the next run understands: the folder is
   * first renamed to `.deleting-<id>` (one atomic step: from then on no reader takes it for a
   * snapshot, and list() shows it as broken, `deleting`), then its files are removed one by one,
   * then the folder. A delete cut short (a failing removal, a kill) is finished by the next delete of
   * `id`, which the next sweep makes. An absent snapshot is already deleted.
   */
  async delete(id: string, opts: RemoteCallOptions = {}): Promise<void> {
    throwIfCancelled(opts.signal, this.label, `Deleting ${id} from`);
    this.ensureReachable();
    const folder = path.join(this.dir, id);
    const doomed = path.join(this.dir, `${DELETING}${id}`);
    try {
      // An earlier delete cut short is finished first: the rename below needs the name free.
      removeFolderInSteps(doomed);
      if (fs.existsSync(folder)) {
        gate('rename', folder);
        fs.renameSync(folder, doomed);
        syncDirectory(this.dir);
        removeFolderInSteps(doomed);
      }
      syncDirectory(this.dir);
    } catch (err) {
      throw this.failure(err, `Deleting ${id} from`, opts.signal);
    }
  }
}

/** The name prefix of a snapshot folder being deleted: not a snapshot id, so never taken for one. */
const DELETING = '.deleting-';

/** Removes `dir` (absent: nothing to do): each file, then the folder, each step through the fault gate. */
function removeFolderInSteps(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    gate('unlink', file);
    fs.rmSync(file, { recursive: true, force: true });
  }
  gate('rmdir', dir);
  fs.rmdirSync(dir);
}

/** A failure writing this machine's copy (its disk full or read-only), as opposed to reading the remote. */
function isLocalWriteFailure(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'EROFS';
}

/** Copy `from` to `to` streaming, then flush it; `onChunk` gets each chunk's length (increments). */
async function copyDurably(from: string, to: string, signal?: AbortSignal, onChunk?: (bytes: number) => void): Promise<void> {
  if (onChunk) await pipeline(fs.createReadStream(from), countingStream(onChunk), fs.createWriteStream(to), { signal: signal ?? NEVER });
  else await pipeline(fs.createReadStream(from), fs.createWriteStream(to), { signal: signal ?? NEVER });
  syncFileData(to);
}
