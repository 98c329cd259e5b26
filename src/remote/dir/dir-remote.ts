import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { codecFromFileName } from '../../snapshot/codec.js';
import { parseSnapshotId } from '../../snapshot/id.js';
import { joinFiles, partsOf, splitFile } from '../parts.js';
import { DEFAULT_PART_BYTES, RemoteError, type PushResult, type Remote, type RemoteSnapshot, type SnapshotFiles } from '../remote.js';
import { syncDirectory, syncFileData } from '../../core/durable-file.js';

/**
 * A mounted folder (NAS, external disk): one sub-folder per snapshot, written under a temporary
 * name and renamed when complete, so a reader never sees half a snapshot.
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
      throw new RemoteError(`The backup folder ${this.label} is not there (not mounted?).`, true, 'Mount or create the folder set as remote.dir.path in wb-backup.yaml.');
    }
  }

  async list(): Promise<RemoteSnapshot[]> {
    this.ensureReachable();
    const found: RemoteSnapshot[] = [];
    for (const name of fs.readdirSync(this.dir)) {
      if (!parseSnapshotId(name)) continue;
      const files = fs.readdirSync(path.join(this.dir, name));
      const archive = files.find((f) => codecFromFileName(f.replace(/\.part\d{3}$/, '')) !== null);
      const archiveName = archive?.replace(/\.part\d{3}$/, '');
      const pieces = archiveName ? (files.includes(archiveName) ? [archiveName] : partsOf(archiveName, files)) : null;
      const bytes = (pieces ?? []).reduce((n, f) => n + fs.statSync(path.join(this.dir, name, f)).size, 0);
      found.push({ id: name, bytes, complete: pieces !== null && files.includes(`${name}.sha256`) && files.includes(`${name}.manifest.json`) });
    }
    return found;
  }

  async push(snapshot: SnapshotFiles): Promise<PushResult> {
    this.ensureReachable();
    const final = path.join(this.dir, snapshot.id);
    const ours = fs.readFileSync(snapshot.checksumPath, 'utf8');
    const theirs = path.join(final, path.basename(snapshot.checksumPath));
    if (fs.existsSync(theirs) && fs.readFileSync(theirs, 'utf8') === ours) return { uploaded: false, attempts: 1 };

    const tmp = path.join(this.dir, `.tmp-${snapshot.id}-${process.pid}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    try {
      const pieces = await splitFile(snapshot.archivePath, this.partBytes, path.join(tmp, '.split'));
      for (const piece of pieces) await copyDurably(piece, path.join(tmp, path.basename(piece)));
      fs.rmSync(path.join(tmp, '.split'), { recursive: true, force: true });
      await copyDurably(snapshot.manifestPath, path.join(tmp, path.basename(snapshot.manifestPath)));
      await copyDurably(snapshot.checksumPath, path.join(tmp, path.basename(snapshot.checksumPath)));
      syncDirectory(tmp); // the copied names, before the rename publishes them
      if (fs.existsSync(final)) fs.rmSync(final, { recursive: true, force: true }); // an incomplete earlier push
      fs.renameSync(tmp, final);
      syncDirectory(this.dir);
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      const e = err as NodeJS.ErrnoException;
      const full = e.code === 'ENOSPC';
      throw new RemoteError(`Copying ${snapshot.id} to ${this.label} failed: ${e.message}`, !full, full ? 'The backup folder is full: free space there.' : 'Check that the folder is mounted and writable.');
    }
    return { uploaded: true, attempts: 1 };
  }

  async download(id: string, dir: string): Promise<SnapshotFiles> {
    this.ensureReachable();
    const src = path.join(this.dir, id);
    if (!fs.existsSync(src)) throw new RemoteError(`${this.label} has no snapshot ${id}.`, false, 'data_backup_list shows which snapshots exist.');
    const files = fs.readdirSync(src);
    const archiveName = files.map((f) => f.replace(/\.part\d{3}$/, '')).find((f) => codecFromFileName(f) !== null);
    if (!archiveName) throw new RemoteError(`${this.label} holds no archive for ${id}.`, false, 'Use another snapshot.');
    fs.mkdirSync(dir, { recursive: true });
    const archivePath = path.join(dir, archiveName);
    if (files.includes(archiveName)) await copyDurably(path.join(src, archiveName), archivePath);
    else {
      const parts = partsOf(archiveName, files);
      if (!parts) throw new RemoteError(`${this.label} holds an incomplete set of parts for ${id}.`, false, 'Use another snapshot.');
      await joinFiles(parts.map((p) => path.join(src, p)), archivePath);
    }
    const manifestPath = path.join(dir, `${id}.manifest.json`);
    const checksumPath = path.join(dir, `${id}.sha256`);
    await copyDurably(path.join(src, `${id}.manifest.json`), manifestPath);
    await copyDurably(path.join(src, `${id}.sha256`), checksumPath);
    return { id, archivePath, manifestPath, checksumPath };
  }

  async delete(id: string): Promise<void> {
    this.ensureReachable();
    fs.rmSync(path.join(this.dir, id), { recursive: true, force: true });
  }
}

async function copyDurably(from: string, to: string): Promise<void> {
  await pipeline(fs.createReadStream(from), fs.createWriteStream(to));
  syncFileData(to);
}
