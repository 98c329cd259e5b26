import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig } from '../src/root/config.js';
import { createRemote } from '../src/remote/registry.js';
import type { Remote } from '../src/remote/remote.js';
import { runRestore } from '../src/restore/restore.js';
import { deleteLocalSnapshot } from '../src/snapshot/store.js';
import { rmrf, tempRoot } from './support/fixtures.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';

/**
 * "A 300 MB push to GitHub is silent for minutes": a backup's progress must keep increasing while
 * the remote sends, and a restore's while it downloads. Asserted on the values and their count.
 */

interface Seen {
  done: number;
  total: number | undefined;
  message: string;
}

/** A data root whose one database holds `mb` MiB of incompressible rows (so the archive is as large). */
function bigRoot(mb: number): string {
  const root = tempRoot('wb-remote-progress-');
  fs.mkdirSync(path.join(root, 'db'));
  const db = new Database(path.join(root, 'db', 'blobs.db'));
  db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)');
  const insert = db.prepare('INSERT INTO blobs(data) VALUES (randomblob(?))');
  for (let i = 0; i < mb * 4; i++) insert.run(256 * 1024);
  db.close();
  return root;
}

/** The values sent while the step whose message starts with `prefix` was under way. */
function during(seen: readonly Seen[], prefix: string): number[] {
  return seen.filter((s) => s.message.startsWith(prefix)).map((s) => s.done);
}

function expectStrictlyIncreasing(values: readonly number[]): void {
  for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]!);
}

describe('progress while a remote transfers', () => {
  let root: string;
  let emu: GithubEmulator;
  beforeAll(async () => {
    root = bigRoot(24);
    emu = await startGithubEmulator();
    emu.createRepo('octo/backups');
  });
  afterAll(async () => {
    await emu.close();
    rmrf(root);
  });

  const github = (): Remote => createRemote({ github: { repo: 'octo/backups' } }, '/', { ghEnv: emu.ghEnv(), retry: { attempts: 1 } });

  it('a backup pushing a multi-MB snapshot to a dir remote reports growing bytes while it copies', async () => {
    const dir = tempRoot('wb-remote-progress-dir-');
    try {
      const seen: Seen[] = [];
      const made = await runBackup(loadConfig(root), { remote: createRemote({ dir: { path: dir } }, dir), onProgress: (p) => seen.push({ done: p.done, total: p.total, message: p.message }) });
      expect(made.remote.status).toBe('pushed');
      expect(made.archive.bytes).toBeGreaterThan(20 * 1024 * 1024);
      const pushing = during(seen, 'pushing to dir:');
      // The step's start, then at least one value per 4 MiB copied (the reporter's step for this size).
      expect(pushing.length).toBeGreaterThanOrEqual(5);
      expectStrictlyIncreasing(pushing);
      expect(pushing.at(-1)! - pushing[0]!).toBeGreaterThan(made.archive.bytes / 2);
      expectStrictlyIncreasing(seen.map((s) => s.done));
      expect(seen.at(-1)!.message).toBe(`pushed to dir:${path.basename(dir)}`);
    } finally {
      rmrf(dir);
    }
  });

  it('a backup pushing a multi-MB snapshot to GitHub reports growing bytes while gh uploads', async () => {
    // A slow link: the upload lasts long enough to be watched (gh's file position, read from /proc).
    emu.inject({ kind: 'slow', bytesPerSecond: 6 * 1024 * 1024, match: { host: 'uploads.github.localhost' }, times: Infinity });
    try {
      const seen: Seen[] = [];
      const made = await runBackup(loadConfig(root), { manual: true, full: true, remote: github(), onProgress: (p) => seen.push({ done: p.done, total: p.total, message: p.message }) });
      expect(made.remote.status).toBe('pushed');
      const pushing = during(seen, 'pushing to github:octo/backups');
      expect(pushing.length).toBeGreaterThanOrEqual(4);
      expectStrictlyIncreasing(pushing);
      expect(pushing.at(-1)! - pushing[0]!).toBeGreaterThan(made.archive.bytes / 2);
      expectStrictlyIncreasing(seen.map((s) => s.done));
    } finally {
      emu.clearFaults();
    }
  });

  it('a restore of a snapshot only GitHub has reports growing bytes while gh downloads it', async () => {
    // A full one: a download of a few MB to watch (a delta of the same data would be a few KB).
    const made = await runBackup(loadConfig(root), { manual: true, full: true, remote: github() });
    expect(made.remote.status).toBe('pushed');
    deleteLocalSnapshot(root, made.snapshot_id);
    emu.inject({ kind: 'slow', bytesPerSecond: 6 * 1024 * 1024, match: { host: 'objects.github.localhost' }, times: Infinity });
    try {
      const seen: Seen[] = [];
      const restored = await runRestore(loadConfig(root), {
        snapshotId: made.snapshot_id,
        remote: github(),
        dryRun: true,
        onProgress: (done, total, message) => seen.push({ done, total, message }),
      });
      expect(restored.snapshot_id).toBe(made.snapshot_id);
      const downloading = during(seen, 'downloading the snapshot');
      expect(downloading.length).toBeGreaterThanOrEqual(4);
      expectStrictlyIncreasing(downloading);
      expect(downloading.at(-1)!).toBeGreaterThan(made.archive.bytes / 2);
      expectStrictlyIncreasing(seen.map((s) => s.done));
    } finally {
      emu.clearFaults();
    }
  });
});
