import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { classifyGhFailure, runGh, type GhResult } from '../../core/gh.js';
import { logger } from '../../core/log.js';
import { parseSnapshotId } from '../../snapshot/id.js';
import { codecFromFileName } from '../../snapshot/codec.js';
import { joinFiles, partsOf, splitFile } from '../parts.js';
import { DEFAULT_PART_BYTES, RemoteError, type PushResult, type Remote, type RemoteSnapshot, type SnapshotFiles } from '../remote.js';

export interface GithubRemoteOptions {
  repo: string;
  partBytes?: number;
  /** environment for gh (tests point it at the GitHub emulator); default: this process's */
  env?: Record<string, string>;
  retry?: { attempts?: number; baseDelayMs?: number };
}

interface ReleaseInfo {
  tag: string;
  draft: boolean;
  assets: Array<{ name: string; size: number }>;
}

/**
 * GitHub Releases of a private repository, through gh. One release per snapshot (tag = id); its
 * assets are the snapshot's files. A release is complete when it is published and holds the
 * manifest, the checksum file and the whole archive (or every part of it).
 */
export class GithubRemote implements Remote {
  readonly label: string;
  private readonly partBytes: number;
  private readonly attempts: number;
  private readonly baseDelayMs: number;

  constructor(private readonly opts: GithubRemoteOptions) {
    this.label = `github:${opts.repo}`;
    this.partBytes = opts.partBytes ?? DEFAULT_PART_BYTES;
    this.attempts = opts.retry?.attempts ?? 3;
    this.baseDelayMs = opts.retry?.baseDelayMs ?? 1000;
  }

  private gh(args: string[]): Promise<GhResult> {
    return runGh(args, this.opts.env ? { env: this.opts.env } : {});
  }

  private error(r: GhResult, what: string, attempts?: number): RemoteError {
    const f = classifyGhFailure(r, this.opts.repo);
    return new RemoteError(`${what}: ${f.message}`, f.transient, f.hint, attempts);
  }

  /** Run `op` up to `attempts` times while it fails transiently, with growing pauses. */
  private async withRetries<T>(what: string, op: (attempt: number) => Promise<T>): Promise<{ value: T; attempts: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return { value: await op(attempt), attempts: attempt };
      } catch (err) {
        const transient = err instanceof RemoteError && err.transient;
        if (!transient || attempt >= this.attempts) {
          if (err instanceof RemoteError) throw new RemoteError(err.message, err.transient, err.hint, attempt);
          throw err;
        }
        const delay = this.baseDelayMs * 3 ** (attempt - 1);
        logger().warn({ remote: this.label, what, attempt, delay }, 'transient GitHub failure; retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async releases(): Promise<ReleaseInfo[]> {
    const r = await this.gh([
      'api',
      `repos/${this.opts.repo}/releases?per_page=100`,
      '--paginate',
      '--jq',
      '.[] | {tag: .tag_name, draft: .draft, assets: [.assets[] | {name: .name, size: .size}]}',
    ]);
    if (!r.ok) throw this.error(r, 'Listing releases failed');
    return r.stdout
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as ReleaseInfo);
  }

  private describe(rel: ReleaseInfo): RemoteSnapshot {
    const names = rel.assets.map((a) => a.name);
    const archive = names.map((n) => n.replace(/\.part\d{3}$/, '')).find((n) => codecFromFileName(n) !== null && n.startsWith(rel.tag));
    const pieces = archive ? (names.includes(archive) ? [archive] : partsOf(archive, names)) : null;
    const bytes = rel.assets.filter((a) => pieces?.includes(a.name)).reduce((n, a) => n + a.size, 0);
    const complete = !rel.draft && pieces !== null && names.includes(`${rel.tag}.manifest.json`) && names.includes(`${rel.tag}.sha256`);
    return { id: rel.tag, bytes, complete };
  }

  async list(): Promise<RemoteSnapshot[]> {
    const { value } = await this.withRetries('list', () => this.releases());
    return value.filter((r) => parseSnapshotId(r.tag)).map((r) => this.describe(r));
  }

  private async release(tag: string): Promise<ReleaseInfo | null> {
    return (await this.releases()).find((r) => r.tag === tag) ?? null;
  }

  async push(snapshot: SnapshotFiles): Promise<PushResult> {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-push-'));
    try {
      const pieces = await splitFile(snapshot.archivePath, this.partBytes, work);
      // The manifest and the checksum file go last: without them a release never counts as complete.
      const files = [...pieces, snapshot.manifestPath, snapshot.checksumPath];
      const localSha = fs.readFileSync(snapshot.checksumPath);
      const { value: uploaded, attempts } = await this.withRetries(`push ${snapshot.id}`, async () => {
        const existing = await this.release(snapshot.id);
        if (existing) {
          const state = this.describe(existing);
          const shaAsset = existing.assets.find((a) => a.name === path.basename(snapshot.checksumPath));
          if (state.complete && shaAsset?.size === localSha.length) return false;
          // A half-done earlier push: put every file (again); --clobber replaces what is there.
          const up = await this.gh(['release', 'upload', snapshot.id, ...files, '--repo', this.opts.repo, '--clobber']);
          if (!up.ok) throw this.error(up, `Uploading ${snapshot.id}`);
          if (existing.draft) {
            const pub = await this.gh(['release', 'edit', snapshot.id, '--repo', this.opts.repo, '--draft=false']);
            if (!pub.ok) throw this.error(pub, `Publishing ${snapshot.id}`);
          }
          return true;
        }
        const made = await this.gh(['release', 'create', snapshot.id, ...files, '--repo', this.opts.repo, '--title', snapshot.id, '--notes', `wb-backup snapshot ${snapshot.id}`]);
        if (made.ok) return true;
        // Created by an earlier attempt whose answer got lost: the next attempt uploads into it.
        if (/already exists/i.test(made.stderr)) throw new RemoteError(`Release ${snapshot.id} already exists`, true, 'Retrying with upload --clobber.');
        throw this.error(made, `Creating release ${snapshot.id}`);
      });
      logger().info({ remote: this.label, snapshot: snapshot.id, attempts, uploaded }, uploaded ? 'pushed to GitHub' : 'already on GitHub');
      return { uploaded, attempts };
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }

  async download(id: string, dir: string): Promise<SnapshotFiles> {
    fs.mkdirSync(dir, { recursive: true });
    const raw = path.join(dir, '.assets');
    fs.rmSync(raw, { recursive: true, force: true });
    await this.withRetries(`download ${id}`, async () => {
      fs.rmSync(raw, { recursive: true, force: true });
      const r = await this.gh(['release', 'download', id, '--repo', this.opts.repo, '--dir', raw]);
      if (r.ok) return;
      if (/release not found/i.test(r.stderr)) throw new RemoteError(`${this.label} has no snapshot ${id}.`, false, 'data_backup_list shows which snapshots exist.');
      throw this.error(r, `Downloading ${id}`);
    });
    const names = fs.readdirSync(raw);
    const archiveName = names.map((n) => n.replace(/\.part\d{3}$/, '')).find((n) => codecFromFileName(n) !== null);
    if (!archiveName || !names.includes(`${id}.manifest.json`) || !names.includes(`${id}.sha256`)) {
      throw new RemoteError(`The release ${id} on ${this.label} is incomplete.`, false, 'Use another snapshot; the next backup run re-pushes it if it is still kept locally.');
    }
    const archivePath = path.join(dir, archiveName);
    if (names.includes(archiveName)) fs.renameSync(path.join(raw, archiveName), archivePath);
    else {
      const parts = partsOf(archiveName, names);
      if (!parts) throw new RemoteError(`The release ${id} on ${this.label} lacks some archive parts.`, false, 'Use another snapshot.');
      await joinFiles(parts.map((p) => path.join(raw, p)), archivePath);
    }
    const manifestPath = path.join(dir, `${id}.manifest.json`);
    const checksumPath = path.join(dir, `${id}.sha256`);
    fs.renameSync(path.join(raw, `${id}.manifest.json`), manifestPath);
    fs.renameSync(path.join(raw, `${id}.sha256`), checksumPath);
    fs.rmSync(raw, { recursive: true, force: true });
    return { id, archivePath, manifestPath, checksumPath };
  }

  async delete(id: string): Promise<void> {
    await this.withRetries(`delete ${id}`, async () => {
      const r = await this.gh(['release', 'delete', id, '--repo', this.opts.repo, '--yes', '--cleanup-tag']);
      if (r.ok || /release not found/i.test(r.stderr)) return;
      throw this.error(r, `Deleting release ${id}`);
    });
  }
}
