import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { classifyGhFailure, runGh, type GhResult } from '../../core/gh.js';
import { logger } from '../../core/log.js';
import { folderBytes } from '../../core/progress.js';
import { watchReadBytes } from '../../core/read-position.js';
import { parseSnapshotId } from '../../snapshot/id.js';
import { describeStoredSnapshot, downloadableLayout, manifestTooLarge, MAX_MANIFEST_BYTES, parseRemoteManifest } from '../listing.js';
import type { Manifest } from '../../snapshot/manifest.js';
import { joinFiles, splitFile } from '../parts.js';
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

export interface GithubRemoteOptions {
  repo: string;
  partBytes?: number;
  /** environment for gh (tests point it at the GitHub emulator); default: this process's */
  env?: Record<string, string>;
}

interface ReleaseInfo {
  tag: string;
  draft: boolean;
  assets: Array<{ name: string; size: number }>;
}

/**
 * GitHub Releases of a private repository, through gh. One release per snapshot (tag = id); its
 * assets are the snapshot's files. A release is complete when it is published and holds the
 * manifest, the checksum file and the whole archive (or every part of it). One attempt per call:
 * the registry wraps it in retry.ts.
 */
export class GithubRemote implements Remote {
  readonly label: string;
  private readonly partBytes: number;

  constructor(private readonly opts: GithubRemoteOptions) {
    this.label = `github:${opts.repo}`;
    this.partBytes = opts.partBytes ?? DEFAULT_PART_BYTES;
  }

  /** Run gh; a cancelled run rejects with 'cancelled' so no caller mistakes the kill for a failure of GitHub. */
  private async gh(args: string[], what: string, signal?: AbortSignal, onSpawn?: (pid: number) => () => void): Promise<GhResult> {
    throwIfCancelled(signal, this.label, what);
    const r = await runGh(args, { ...(this.opts.env ? { env: this.opts.env } : {}), ...(signal ? { signal } : {}), ...(onSpawn ? { onSpawn } : {}) });
    if (r.cancelled || signal?.aborted) throw cancelledError(this.label, what);
    return r;
  }

  private error(r: GhResult, what: string): RemoteError {
    const f = classifyGhFailure(r, this.opts.repo);
    const kind: RemoteErrorKind = f.reason === 'transient' ? 'transient' : f.reason === 'auth' ? 'auth' : 'refused';
    return new RemoteError(kind, `${what}: ${f.message}`, f.hint);
  }

  private async releases(signal?: AbortSignal): Promise<ReleaseInfo[]> {
    const r = await this.gh(
      ['api', `repos/${this.opts.repo}/releases?per_page=100`, '--paginate', '--jq', '.[] | {tag: .tag_name, draft: .draft, assets: [.assets[] | {name: .name, size: .size}]}'],
      'Listing releases',
      signal,
    );
    if (!r.ok) throw this.error(r, 'Listing releases failed');
    return r.stdout
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as ReleaseInfo);
  }

  private describe(rel: ReleaseInfo): RemoteSnapshot {
    const sizes = new Map(rel.assets.map((a) => [a.name, a.size]));
    return describeStoredSnapshot(rel.tag, [...sizes.keys()], (name) => sizes.get(name) ?? 0, !rel.draft);
  }

  async list(opts: RemoteCallOptions = {}): Promise<RemoteSnapshot[]> {
    return (await this.releases(opts.signal)).filter((r) => parseSnapshotId(r.tag)).map((r) => this.describe(r));
  }

  private async release(tag: string, signal?: AbortSignal): Promise<ReleaseInfo | null> {
    return (await this.releases(signal)).find((r) => r.tag === tag) ?? null;
  }

  async push(snapshot: SnapshotFiles, opts: RemoteCallOptions = {}): Promise<PushResult> {
    const { signal } = opts;
    const what = `Pushing ${snapshot.id}`;
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-push-'));
    try {
      let pieces: string[];
      try {
        pieces = await splitFile(snapshot.archivePath, this.partBytes, work, signal);
      } catch (err) {
        if (signal?.aborted) throw cancelledError(this.label, what);
        throw err;
      }
      // The manifest and the checksum file go last: without them a release never counts as complete.
      const files = [...pieces, snapshot.manifestPath, snapshot.checksumPath];
      // gh says nothing while it sends: how far it has read each file (/proc, Linux) is what was sent.
      const watchUpload = opts.onBytes ? (pid: number) => watchReadBytes(pid, files, opts.onBytes!) : undefined;
      const localSha = fs.readFileSync(snapshot.checksumPath);
      const completeExisting = async (existing: ReleaseInfo): Promise<boolean> => {
        const shaAsset = existing.assets.find((a) => a.name === path.basename(snapshot.checksumPath));
        if (this.describe(existing).complete && shaAsset?.size === localSha.length) return false;
        // A half-done earlier push: put every file (again); --clobber replaces what is there.
        const up = await this.gh(['release', 'upload', snapshot.id, ...files, '--repo', this.opts.repo, '--clobber'], what, signal, watchUpload);
        if (!up.ok) throw this.error(up, `Uploading ${snapshot.id}`);
        if (existing.draft) {
          const pub = await this.gh(['release', 'edit', snapshot.id, '--repo', this.opts.repo, '--draft=false'], what, signal);
          if (!pub.ok) throw this.error(pub, `Publishing ${snapshot.id}`);
        }
        return true;
      };
      let uploaded: boolean;
      const existing = await this.release(snapshot.id, signal);
      if (existing) uploaded = await completeExisting(existing);
      else {
        const made = await this.gh(['release', 'create', snapshot.id, ...files, '--repo', this.opts.repo, '--title', snapshot.id, '--notes', `wb-backup snapshot ${snapshot.id}`], what, signal, watchUpload);
        if (made.ok) uploaded = true;
        else if (/already exists/i.test(made.stderr)) {
          // Created meanwhile (an earlier attempt whose answer got lost): upload into it.
          const now = await this.release(snapshot.id, signal);
          if (!now) throw new RemoteError('transient', `Release ${snapshot.id} exists but could not be read back`, 'This is usually temporary; the next attempt uploads into it.');
          uploaded = await completeExisting(now);
        } else throw this.error(made, `Creating release ${snapshot.id}`);
      }
      if (uploaded) opts.onBytes?.(files.reduce((n, f) => n + fs.statSync(f).size, 0));
      logger().info({ remote: this.label, snapshot: snapshot.id, uploaded }, uploaded ? 'pushed to GitHub' : 'already on GitHub');
      return { uploaded, attempts: 1 };
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  async download(id: string, dir: string, opts: RemoteCallOptions = {}): Promise<SnapshotFiles> {
    const { signal } = opts;
    fs.mkdirSync(dir, { recursive: true });
    const raw = path.join(dir, '.assets');
    fs.rmSync(raw, { recursive: true, force: true });
    try {
      const r = await this.gh(['release', 'download', id, '--repo', this.opts.repo, '--dir', raw], `Downloading ${id}`, signal, opts.onBytes ? () => watchFolder(dir, '.assets', opts.onBytes!) : undefined);
      if (!r.ok) {
        // Only GitHub's answer that the release is not there is 'not_found'; a failed transfer is not.
        if (/release not found/i.test(r.stderr)) throw new RemoteError('not_found', `${this.label} has no snapshot ${id}.`, 'data_backup_list shows which snapshots exist.');
        throw this.error(r, `Downloading ${id}`);
      }
      const names = fs.readdirSync(raw);
      opts.onBytes?.(names.reduce((n, name) => n + fs.statSync(path.join(raw, name)).size, 0));
      const layout = downloadableLayout(this.label, id, names);
      const archivePath = path.join(dir, layout.archiveName);
      if (layout.pieces.length === 1 && layout.pieces[0] === layout.archiveName) fs.renameSync(path.join(raw, layout.archiveName), archivePath);
      else {
        try {
          await joinFiles(layout.pieces.map((p) => path.join(raw, p)), archivePath, signal);
        } catch (err) {
          if (signal?.aborted) throw cancelledError(this.label, `Downloading ${id}`);
          throw err;
        }
      }
      const manifestPath = path.join(dir, `${id}.manifest.json`);
      const checksumPath = path.join(dir, `${id}.sha256`);
      fs.renameSync(path.join(raw, `${id}.manifest.json`), manifestPath);
      fs.renameSync(path.join(raw, `${id}.sha256`), checksumPath);
      return { id, archivePath, manifestPath, checksumPath };
    } finally {
      fs.rmSync(raw, { recursive: true, force: true });
    }
  }

  async manifest(id: string, opts: RemoteCallOptions = {}): Promise<Manifest> {
    const { signal } = opts;
    const what = `Reading the manifest of ${id}`;
    const name = `${id}.manifest.json`;
    // The release's asset list first: its size is checked before anything is downloaded, and a
    // release without a manifest is 'incomplete', not a gh "no assets match" to parse.
    const rel = await this.release(id, signal);
    if (!rel) throw new RemoteError('not_found', `${this.label} has no snapshot ${id}.`, 'data_backup_list shows which snapshots exist.');
    const asset = rel.assets.find((a) => a.name === name);
    if (!asset) throw new RemoteError('incomplete', `The release ${id} on ${this.label} has no manifest.`, 'Use another snapshot; the next backup run re-pushes it if it is still kept locally.');
    if (asset.size > MAX_MANIFEST_BYTES) throw manifestTooLarge(this.label, id, asset.size);
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-manifest-'));
    try {
      // Just this one asset (--pattern matches the exact name: a snapshot id has no glob characters).
      const r = await this.gh(['release', 'download', id, '--repo', this.opts.repo, '--pattern', name, '--dir', work], what, signal);
      if (!r.ok) {
        if (/release not found/i.test(r.stderr)) throw new RemoteError('not_found', `${this.label} has no snapshot ${id}.`, 'data_backup_list shows which snapshots exist.');
        throw this.error(r, what);
      }
      let text: string;
      try {
        text = fs.readFileSync(path.join(work, name), 'utf8');
      } catch {
        throw new RemoteError('transient', `${what} on ${this.label}: gh reported success but delivered no file.`, 'This is usually temporary; try again.');
      }
      return parseRemoteManifest(this.label, id, text);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  async delete(id: string, opts: RemoteCallOptions = {}): Promise<void> {
    const r = await this.gh(['release', 'delete', id, '--repo', this.opts.repo, '--yes', '--cleanup-tag'], `Deleting ${id}`, opts.signal);
    if (r.ok || /release not found/i.test(r.stderr)) return;
    throw this.error(r, `Deleting release ${id}`);
  }
}

/**
 * Poll the size of the files in `parent`/`name` every 100 ms while gh downloads into it, calling
 * `onBytes` with the total each time it grows. Returns stop().
 */
function watchFolder(parent: string, name: string, onBytes: (bytes: number) => void): () => void {
  const measure = folderBytes(parent, (n) => n === name);
  let last = 0;
  const timer = setInterval(() => {
    const now = measure();
    if (now > last) {
      last = now;
      onBytes(now);
    }
  }, 100);
  timer.unref();
  return () => clearInterval(timer);
}
