import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup, sweepLocal } from '../src/backup/pipeline.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { DirRemote } from '../src/remote/dir/dir-remote.js';
import { createRemote } from '../src/remote/registry.js';
import { replicate } from '../src/backup/replicate.js';
import { runRestore } from '../src/restore/restore.js';
import { decideRetention } from '../src/snapshot/retention.js';
import { formatSnapshotId } from '../src/snapshot/id.js';
import { listSnapshots } from '../src/backup/list.js';
import { deleteLocalSnapshot, listLocalSnapshots } from '../src/snapshot/store.js';
import { dumpTables } from './support/db-snapshot.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { WbError } from '../src/core/errors.js';
import { describeRemoteBehaviour } from './support/remote-suite.js';

describeRemoteBehaviour('dir', async ({ partBytes }) => {
  const dir = tempRoot('wb-dir-remote-');
  return {
    // As the registry builds it from wb-backup.yaml: the backend wrapped in the one retry loop.
    remote: createRemote({ dir: { path: dir, ...(partBytes ? { part_bytes: partBytes } : {}) } }, dir, { retry: { attempts: 3, baseDelayMs: 20 } }),
    storedNames: async (id) => (fs.existsSync(path.join(dir, id)) ? fs.readdirSync(path.join(dir, id)) : []),
    // A part copied into the push's temporary folder; checked on every turn of the event loop, so
    // the abort that follows lands while the push is still copying.
    whenStoring: async (id, stop) => {
      const copying = () => fs.readdirSync(dir).some((n) => n.startsWith(`.tmp-${id}-`) && fs.readdirSync(path.join(dir, n)).some((f) => /\.part\d{3}$/.test(f)));
      while (!stop() && !copying()) await new Promise((r) => setImmediate(r));
    },
    // The manifest replaced by a folder of that name: reading it fails (EISDIR) though the snapshot is there.
    breakReads: async (id) => {
      const manifest = path.join(dir, id, `${id}.manifest.json`);
      fs.rmSync(manifest);
      fs.mkdirSync(manifest);
    },
    cleanup: async () => rmrf(dir),
  };
});

let root: string;
let nas: string;
beforeEach(() => {
  root = tempRoot();
  nas = tempRoot('wb-nas-');
});
afterEach(() => {
  rmrf(root);
  rmrf(nas);
});

describe('data_backup with a folder remote', () => {
  it('pushes each snapshot, lists local+remote, and restores one that only the remote has', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 20);
    writeConfigFile(root, { remote: { dir: { path: nas } } });
    const first = await runBackup(loadConfig(root), { manual: true });
    expect(first.remote).toMatchObject({ status: 'pushed', attempts: 1 });
    expect(fs.readdirSync(path.join(nas, first.snapshot_id)).sort()).toEqual([first.archive.file, `${first.snapshot_id}.manifest.json`, `${first.snapshot_id}.sha256`].sort());

    const listed = await listSnapshots(loadConfig(root), 'all');
    expect(listed.remote).toMatchObject({ configured: true, listed: true, label: `dir:${path.basename(nas)}` });
    expect(listed.snapshots).toEqual([expect.objectContaining({ id: first.snapshot_id, local: true, remote: true })]);

    // The machine loses its local copy: restore comes from the remote.
    const content = dumpTables(path.join(root, 'db', 'a.db'));
    deleteLocalSnapshot(root, first.snapshot_id);
    fs.rmSync(path.join(root, 'db', 'a.db'));
    expect((await listSnapshots(loadConfig(root), 'all')).snapshots).toEqual([expect.objectContaining({ id: first.snapshot_id, local: false, remote: true })]);
    const restored = await runRestore(loadConfig(root), { snapshotId: 'latest', consent: async () => ({ granted: true }) });
    expect(restored.snapshot_id).toBe(first.snapshot_id);
    expect(dumpTables(path.join(root, 'db', 'a.db'))).toEqual(content);
  });

  it('a remote that is away keeps the snapshot local, says so, and the next run backfills it', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 5);
    const gone = path.join(nas, 'unmounted');
    writeConfigFile(root, { remote: { dir: { path: gone } } });
    const t = (h: number) => () => new Date(Date.UTC(2026, 10, 22, h));
    const missed = await runBackup(loadConfig(root), { now: t(10) });
    expect(missed.remote.status).toBe('failed');
    expect(missed.remote.reason).toMatch(/not there \(not mounted\?\).*kept locally/s);
    expect(listLocalSnapshots(root).map((s) => s.id)).toEqual([missed.snapshot_id]);
    fs.mkdirSync(gone);
    const next = await runBackup(loadConfig(root), { now: t(11) });
    expect(next.remote).toMatchObject({ status: 'pushed', backfilled: [missed.snapshot_id] });
    expect(fs.readdirSync(gone).sort()).toEqual([missed.snapshot_id, next.snapshot_id].sort());
  });
});

describe('a folder remote that fails', () => {
  it('a snapshot there but unreadable fails the restore as remote_failed (not not_found), changing nothing', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 5);
    writeConfigFile(root, { remote: { dir: { path: nas } } });
    const made = await runBackup(loadConfig(root), { manual: true });
    deleteLocalSnapshot(root, made.snapshot_id);
    const before = dumpTables(path.join(root, 'db', 'a.db'));
    // The archive turned into a folder of the same name: reading it fails (EISDIR), as a disk fault would.
    const stored = path.join(nas, made.snapshot_id, made.archive.file);
    fs.rmSync(stored);
    fs.mkdirSync(stored);
    const remote = createRemote({ dir: { path: nas } }, root, { retry: { attempts: 2, baseDelayMs: 1 } });
    const err = (await runRestore(loadConfig(root), { snapshotId: made.snapshot_id, remote, consent: async () => ({ granted: true }) }).catch((e: unknown) => e)) as WbError;
    expect(err).toBeInstanceOf(WbError);
    expect(err.code).toBe('remote_failed');
    expect(err.message).toMatch(/EISDIR.*Nothing was changed/s);
    expect(dumpTables(path.join(root, 'db', 'a.db'))).toEqual(before);
    expect(fs.readdirSync(path.join(root, 'backups')).filter((n) => n.startsWith(made.snapshot_id))).toEqual([]);
  });

  it('a backup cancelled while pushing keeps the snapshot local, reports the push as not done, and the next run backfills it', async () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 5);
    writeConfigFile(root, { remote: { dir: { path: nas } } });
    const t = (h: number) => () => new Date(Date.UTC(2026, 10, 22, h));
    // Cancelled before the push starts (the signal has fired): replicate must not report it as pushed.
    const config = loadConfig(root);
    const cancelled = await runBackup(config, { now: t(9), remote: null });
    const outcome = await replicate(config, createRemote({ dir: { path: nas } }, root), cancelled.snapshot_id, AbortSignal.abort());
    expect(outcome.status).not.toBe('pushed');
    expect(fs.readdirSync(nas)).toEqual([]);
    const next = await runBackup(loadConfig(root), { now: t(10) });
    expect(next.remote).toMatchObject({ status: 'pushed', backfilled: [cancelled.snapshot_id] });
    expect(fs.readdirSync(nas).sort()).toEqual([cancelled.snapshot_id, next.snapshot_id].sort());
  });
});

describe('retention convergence', () => {
  it('90 days of hourly pushes and sweeps leave the same set locally and remotely, the one the policy keeps', async () => {
    const config = loadConfig(root);
    const remote = new DirRemote(nas);
    const backups = path.join(root, 'backups');
    fs.mkdirSync(backups, { recursive: true });
    const start = Date.UTC(2026, 8, 1, 0, 30);
    const everything: string[] = [];
    for (let h = 0; h < 90 * 24; h++) {
      const time = new Date(start + h * 3_600_000);
      // A manual anchor every 5 days, an hourly snapshot every hour; tiny stand-in files keep 2,000+ runs fast.
      const ids = [formatSnapshotId(time, { manual: false }), ...(h % 120 === 7 ? [formatSnapshotId(time, { manual: true })] : [])];
      for (const id of ids) {
        fs.writeFileSync(path.join(backups, `${id}.tar.zst`), id);
        fs.writeFileSync(path.join(backups, `${id}.manifest.json`), '{}');
        fs.writeFileSync(path.join(backups, `${id}.sha256`), `${'0'.repeat(64)}  ${id}.tar.zst\n`);
        everything.push(id);
        sweepLocal(config, id);
        // The remote is away for day 40: pushes fail, later runs backfill.
        const away = h >= 40 * 24 && h < 41 * 24;
        if (away) fs.renameSync(nas, `${nas}.away`);
        await replicate(config, remote, id);
        if (away) fs.renameSync(`${nas}.away`, nas);
      }
    }
    const local = listLocalSnapshots(root).map((s) => s.id).sort();
    const onRemote = (await remote.list()).map((s) => s.id).sort();
    const policy = decideRetention(everything, config.retention).keep.sort();
    expect(local).toEqual(policy);
    expect(onRemote).toEqual(policy);
    // 24 hourly + 6 more days + weekly/monthly extras + all 18 manual anchors (bucket of 20)
    expect(policy.filter((id) => id.endsWith('-manual'))).toHaveLength(18);
    expect(policy.length).toBeGreaterThan(24 + 6 + 18);
  }, 600_000); // 2,000+ pushes and sweeps with fsyncs: slow on a shared, loaded machine
});
