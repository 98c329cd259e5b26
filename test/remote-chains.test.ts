import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { replicate } from '../src/backup/replicate.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { createRemote } from '../src/remote/registry.js';
import { ensureLocalSnapshot } from '../src/remote/fetch.js';
import type { Remote } from '../src/remote/remote.js';
import type { RetryPolicy } from '../src/remote/retry.js';
import { verifyAgainstChecksums } from '../src/snapshot/checksums.js';
import { chainOf, type ChainSnapshot } from '../src/snapshot/chain.js';
import { chainSnapshotOf } from '../src/snapshot/chain-set.js';
import { deleteLocalSnapshot, listLocalSnapshots } from '../src/snapshot/store.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { listSnapshots } from '../src/backup/list.js';
import { formatBytes } from '../src/core/size-format.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';

/** What was asked of a remote, in order: a real backend, watched (nothing is faked). */
interface Watched {
  remote: Remote;
  calls: Array<[string, string]>;
}
function watched(inner: Remote): Watched {
  const calls: Array<[string, string]> = [];
  return {
    calls,
    remote: {
      label: inner.label,
      list: (opts) => inner.list(opts),
      push: (s, opts) => (calls.push(['push', s.id]), inner.push(s, opts)),
      download: (id, dir, opts) => (calls.push(['download', id]), inner.download(id, dir, opts)),
      manifest: (id, opts) => (calls.push(['manifest', id]), inner.manifest(id, opts)),
      delete: (id, opts) => (calls.push(['delete', id]), inner.delete(id, opts)),
    },
  };
}
const only = (w: Watched, what: string) => w.calls.filter(([c]) => c === what).map(([, id]) => id);

const fastRetry: RetryPolicy = { attempts: 2, baseDelayMs: 1 };
const hour = (h: number) => () => new Date(Date.UTC(2026, 10, 22, 0, 30) + h * 3_600_000);

/** A few scattered rows changed: the next snapshot is a small delta. */
function touch(file: string, h: number): void {
  const db = new Database(file);
  db.prepare('UPDATE notes SET body = ? WHERE id = ?').run(`changed at hour ${h} `.repeat(4), 1 + h * 701);
  db.prepare('INSERT INTO notes(folder_id, title, body) VALUES (1, ?, ?)').run(`hour ${h}`, 'new');
  db.close();
}

/** Every snapshot on the dir remote as the chain rule sees it, from the manifests stored there. */
function remoteChains(nas: string): ChainSnapshot[] {
  return fs
    .readdirSync(nas)
    .filter((n) => n.startsWith('snap-'))
    .map((id) => chainSnapshotOf(id, JSON.parse(fs.readFileSync(path.join(nas, id, `${id}.manifest.json`), 'utf8')), 0, 0));
}
const localIds = (root: string) => listLocalSnapshots(root).map((s) => s.id).sort();
const remoteIds = (nas: string) => fs.readdirSync(nas).filter((n) => n.startsWith('snap-')).sort();

let root: string;
let nas: string;
let dbFile: string;
beforeEach(() => {
  root = tempRoot('wb-chains-');
  nas = tempRoot('wb-chains-nas-');
  dbFile = path.join(root, 'db', 'notes.db');
  makeNotesDb(dbFile, 3000);
  // Incompressible ballast: a full archive is large next to the few pages an hour changes, so
  // deltas stay under backup.incremental.max_delta_share.
  const db = new Database(dbFile);
  db.exec('CREATE TABLE ballast (id INTEGER PRIMARY KEY, data BLOB)');
  db.prepare('INSERT INTO ballast(data) SELECT randomblob(4096) FROM notes LIMIT 300').run();
  db.close();
});
afterEach(() => {
  rmrf(root);
  rmrf(nas);
});

describe('chains on a folder remote', () => {
  it('backfill pushes the full and every base before the deltas that need them; the next run pushes just the new delta', async () => {
    const away = path.join(nas, 'away');
    writeConfigFile(root, { remote: { dir: { path: away } } });
    const taken: string[] = [];
    for (let h = 0; h < 4; h++) {
      if (h) touch(dbFile, h);
      const r = await runBackup(loadConfig(root), { now: hour(h) });
      expect(r.remote.status).toBe('failed'); // the folder is not there yet
      taken.push(r.snapshot_id);
    }
    const kinds = listLocalSnapshots(root).map((s) => JSON.parse(fs.readFileSync(s.manifestPath, 'utf8')) as { kind: string; base: string | null });
    expect(kinds.reverse().map((m) => m.kind)).toEqual(['full', 'delta', 'delta', 'delta']);

    fs.mkdirSync(away);
    touch(dbFile, 4);
    const w = watched(createRemote({ dir: { path: away } }, root, { retry: fastRetry }));
    const fifth = await runBackup(loadConfig(root), { now: hour(4), remote: w.remote });
    // The new delta's base is not on the remote: its whole chain goes first, full first.
    expect(only(w, 'push')).toEqual([...taken, fifth.snapshot_id]);
    expect(fifth.remote).toMatchObject({ status: 'pushed', backfilled: taken });

    touch(dbFile, 5);
    const w2 = watched(createRemote({ dir: { path: away } }, root, { retry: fastRetry }));
    const sixth = await runBackup(loadConfig(root), { now: hour(5), remote: w2.remote });
    expect(only(w2, 'push')).toEqual([sixth.snapshot_id]);
    expect(only(w2, 'manifest')).toEqual([]); // every kept chain is known from this machine's manifests
  });

  it('the remote sweep keeps every base a kept snapshot needs, deletes deltas before their bases, and converges with the local set', async () => {
    // A full every 3 hours; the policy alone keeps the 2 newest.
    writeConfigFile(root, {
      remote: { dir: { path: nas } },
      retention: { hourly: 2, daily: 0, weekly: 0, monthly: 0, annual: 0, manual: 0 },
      backup: { incremental: { full_every_hours: 3 } },
    });
    const deletes: string[][] = [];
    const ids: string[] = [];
    for (let h = 0; h < 8; h++) {
      if (h) touch(dbFile, h);
      const w = watched(createRemote({ dir: { path: nas } }, root, { retry: fastRetry }));
      const r = await runBackup(loadConfig(root), { now: hour(h), remote: w.remote });
      expect(r.remote.status).toBe('pushed');
      ids.push(r.snapshot_id);
      deletes.push(only(w, 'delete'));
      // Converged: the same set here and there, and every snapshot on the remote restores from the remote alone.
      expect(remoteIds(nas)).toEqual(localIds(root));
      const chains = remoteChains(nas);
      for (const s of chains) expect(chainOf(chains, s.id)).toMatchObject({ complete: true });
    }
    const kind = (id: string) => (JSON.parse(fs.readFileSync(path.join(nas, id, `${id}.manifest.json`), 'utf8')) as { kind: string }).kind;
    expect(kind(ids[6]!)).toBe('full');
    // Hour 5 keeps 5 and 4 by policy, and 3 (their full) as a base; hour 7 keeps 7 and its full 6:
    // the old chain goes, newest first.
    expect(deletes[5]).toEqual([]);
    expect(deletes[7]).toEqual([ids[5], ids[4], ids[3]]);
    expect(localIds(root)).toEqual([ids[6]!, ids[7]!].sort());
  });

  it('a kept snapshot only the remote has keeps its chain; one whose manifest cannot be read keeps everything older', async () => {
    writeConfigFile(root, { remote: { dir: { path: nas } }, backup: { incremental: { full_every_hours: 3 } } });
    const ids: string[] = [];
    for (let h = 0; h < 4; h++) {
      if (h) touch(dbFile, h);
      ids.push((await runBackup(loadConfig(root), { now: hour(h) })).snapshot_id);
    }
    // ids[0] full, 1 and 2 deltas on it, ids[3] a new full. This machine loses all but the newest.
    for (const id of ids.slice(0, 3)) deleteLocalSnapshot(root, id);
    writeConfigFile(root, {
      remote: { dir: { path: nas } },
      retention: { hourly: 2, daily: 0, weekly: 0, monthly: 0, annual: 0, manual: 0 },
      backup: { incremental: { full_every_hours: 3 } },
    });

    // ids[2]'s manifest cannot be read (a folder of that name: EISDIR, a transient read failure).
    const manifest = path.join(nas, ids[2]!, `${ids[2]}.manifest.json`);
    const saved = fs.readFileSync(manifest);
    fs.rmSync(manifest);
    fs.mkdirSync(manifest);
    const blind = watched(createRemote({ dir: { path: nas } }, root, { retry: fastRetry }));
    await replicate(loadConfig(root), blind.remote, ids[3]!);
    expect(only(blind, 'delete')).toEqual([]);
    expect(remoteIds(nas)).toEqual([...ids].sort());

    // Readable again: the policy keeps 3 and 2; 2's chain (1, then the full 0) is read from the remote and kept.
    fs.rmdirSync(manifest);
    fs.writeFileSync(manifest, saved);
    const seeing = watched(createRemote({ dir: { path: nas } }, root, { retry: fastRetry }));
    await replicate(loadConfig(root), seeing.remote, ids[3]!);
    expect(only(seeing, 'delete')).toEqual([]);
    expect(only(seeing, 'manifest')).toEqual([ids[2], ids[1], ids[0]]);

    // The policy keeps only the newest: the old chain goes, newest first.
    writeConfigFile(root, {
      remote: { dir: { path: nas } },
      retention: { hourly: 1, daily: 0, weekly: 0, monthly: 0, annual: 0, manual: 0 },
      backup: { incremental: { full_every_hours: 3 } },
    });
    const sweeping = watched(createRemote({ dir: { path: nas } }, root, { retry: fastRetry }));
    await replicate(loadConfig(root), sweeping.remote, ids[3]!);
    expect(only(sweeping, 'delete')).toEqual([ids[2], ids[1], ids[0]]);
    expect(remoteIds(nas)).toEqual([ids[3]]);
  });
});

/** Four hourly snapshots (a full, then three deltas) pushed to `remote`. */
async function chainOnRemote(remote: Remote): Promise<{ ids: string[] }> {
  const ids: string[] = [];
  for (let h = 0; h < 4; h++) {
    if (h) touch(dbFile, h);
    const r = await runBackup(loadConfig(root), { now: hour(h), remote });
    expect(r.remote.status).toBe('pushed');
    ids.push(r.snapshot_id);
  }
  return { ids };
}

function describeChainDownload(label: string, make: () => Promise<{ remote: Remote; close: () => Promise<void> }>): void {
  describe(`restoring a delta that only the remote has (${label})`, () => {
    it('downloads exactly the archives of its chain for the newest delta (latest), full first, each an intact local snapshot', async () => {
      const { remote, close } = await make();
      try {
        const { ids } = await chainOnRemote(remote);
        const archives = new Map(listLocalSnapshots(root).map((s) => [s.id, fs.readFileSync(s.archivePath)]));
        for (const id of ids) deleteLocalSnapshot(root, id);
        const w = watched(remote);
        // What a restore of "latest" does first (restore.ts); the delta restore itself is the restore side's.
        const got = await ensureLocalSnapshot(loadConfig(root), 'latest', w.remote);
        expect(got.id).toBe(ids[3]);
        expect(only(w, 'download')).toEqual(ids);
        expect(localIds(root)).toEqual([...ids].sort());
        for (const s of listLocalSnapshots(root)) {
          await verifyAgainstChecksums(s.checksumPath, s.archivePath);
          expect(fs.readFileSync(s.archivePath).equals(archives.get(s.id)!)).toBe(true);
        }
      } finally {
        await close();
      }
    });

    it('downloads only the links this machine lacks, and nothing for a snapshot it has', async () => {
      const { remote, close } = await make();
      try {
        const { ids } = await chainOnRemote(remote);
        // This machine still has the full and the first delta.
        for (const id of ids.slice(2)) deleteLocalSnapshot(root, id);
        const w = watched(remote);
        const got = await ensureLocalSnapshot(loadConfig(root), ids[3]!, w.remote);
        expect(got.id).toBe(ids[3]);
        expect(only(w, 'download')).toEqual([ids[2], ids[3]]);
        expect(only(w, 'manifest')).toEqual([ids[3], ids[2]]);
        const again = watched(remote);
        await ensureLocalSnapshot(loadConfig(root), ids[2]!, again.remote);
        expect(again.calls).toEqual([]);
      } finally {
        await close();
      }
    });

    it('a delta whose base is on neither side is refused before anything is downloaded', async () => {
      const { remote, close } = await make();
      try {
        const { ids } = await chainOnRemote(remote);
        for (const id of ids) deleteLocalSnapshot(root, id);
        await remote.delete(ids[1]!);
        const w = watched(remote);
        const err = await ensureLocalSnapshot(loadConfig(root), ids[3]!, w.remote).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'restore_refused' });
        expect((err as Error).message).toContain(ids[1]);
        expect(only(w, 'download')).toEqual([]);
        expect(localIds(root)).toEqual([]);
      } finally {
        await close();
      }
    });
  });
}

describeChainDownload('folder remote', async () => ({ remote: createRemote({ dir: { path: nas } }, root, { retry: fastRetry }), close: async () => {} }));

describeChainDownload('GitHub, real gh against the emulator', async () => {
  const emu: GithubEmulator = await startGithubEmulator();
  emu.createRepo('octo/backups');
  return { remote: createRemote({ github: { repo: 'octo/backups' } }, '/', { ghEnv: emu.ghEnv(), retry: fastRetry }), close: () => emu.close() };
});

describe('listing chains', () => {
  it('says which snapshots are full and which are deltas (with their base), their bytes, and the bytes stored on each side; the CLI prints the same', async () => {
    writeConfigFile(root, { remote: { dir: { path: nas } } });
    const { ids } = await chainOnRemote(createRemote({ dir: { path: nas } }, root, { retry: fastRetry }));
    // The full is on the remote only now: its kind is not read from there.
    deleteLocalSnapshot(root, ids[0]!);
    const list = await listSnapshots(loadConfig(root), 'all');
    const byId = new Map(list.snapshots.map((s) => [s.id, s]));
    expect(byId.get(ids[0]!)).toEqual({ id: ids[0], manual: false, created_at: expect.any(String), bytes: fs.statSync(path.join(nas, ids[0]!, `${ids[0]}.tar.zst`)).size, local: false, remote: true });
    for (const i of [1, 2, 3]) expect(byId.get(ids[i]!)).toMatchObject({ kind: 'delta', base: ids[i - 1], local: true, remote: true });
    const localBytes = listLocalSnapshots(root).reduce((n, s) => n + s.bytes, 0);
    const remoteBytes = ids.reduce((n, id) => n + fs.statSync(path.join(nas, id, `${id}.tar.zst`)).size, 0);
    expect(list.totals).toEqual({ local_bytes: localBytes, remote_bytes: remoteBytes });
    expect(byId.get(ids[1]!)!.bytes).toBeLessThan(byId.get(ids[0]!)!.bytes / 4); // a delta stores what changed
    expect((await listSnapshots(loadConfig(root), 'local')).totals).toEqual({ local_bytes: localBytes, remote_bytes: null });

    const printed = spawnSync(process.execPath, [CLI, '--root', root, 'list'], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn' } });
    expect(printed.status).toBe(0);
    const line = (id: string) => printed.stdout.split('\n').find((l) => l.startsWith(id))!;
    expect(line(ids[3]!)).toMatch(new RegExp(`${formatBytes(byId.get(ids[3]!)!.bytes).replace('.', '\\.')}\\s+delta of ${ids[2]}\\s+local\\+remote`));
    expect(line(ids[0]!)).toMatch(/\?\s+remote$/);
    expect(printed.stdout).toContain(`total: ${formatBytes(localBytes)} stored locally, ${formatBytes(remoteBytes)} on the remote`);
  });
});
