import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/pipeline.js';
import { loadConfig } from '../../src/root/config.js';
import { RemoteError, type Remote, type SnapshotFiles } from '../../src/remote/remote.js';
import { listLocalSnapshots } from '../../src/snapshot/store.js';
import { rmrf, tempRoot } from './fixtures.js';

export interface RemoteUnderTest {
  remote: Remote;
  /** names of the files (assets) the backend stores for a snapshot, to see how it was split */
  storedNames(id: string): Promise<string[]>;
  /** resolves once the backend is storing files of `id` (a push is under way); gives up when `stop()` is true */
  whenStoring(id: string, stop: () => boolean): Promise<void>;
  /** make the stored snapshot unreadable the way a fault does (network error, I/O error), not absent */
  breakReads(id: string): Promise<void>;
  cleanup(): Promise<void>;
}

/** The RemoteError a promise rejects with (fails the test when it resolves or rejects otherwise). */
async function remoteFailure(p: Promise<unknown>): Promise<RemoteError> {
  const err = await p.then(
    () => new Error('expected a RemoteError, but the call succeeded'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RemoteError);
  return err as RemoteError;
}

/** Real snapshots (incompressible blobs, so the archive is ~`kb` KiB) to push around, newest first: all full, or with `incremental` a full then deltas on it. */
export async function makeSnapshots(root: string, count: number, kb = 64, opts: { incremental?: boolean } = {}): Promise<SnapshotFiles[]> {
  const file = path.join(root, 'db', 'blobs.db');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, data BLOB)');
  db.prepare('INSERT INTO blobs(data) VALUES (randomblob(?))').run(kb * 1024);
  db.close();
  const base = Date.parse('2026-11-01T00:00:00Z');
  // Full snapshots: each stands alone, as the contract tests want (chains on remotes have tests of their own).
  for (let i = 0; i < count; i++) await runBackup(loadConfig(root), { now: () => new Date(base + i * 3_600_000), remote: null, full: !opts.incremental });
  return listLocalSnapshots(root).map((s) => ({ id: s.id, archivePath: s.archivePath, manifestPath: s.manifestPath, checksumPath: s.checksumPath }));
}

/**
 * What every remote backend must do, whatever it is made of. Run once per backend
 * (test/remote-dir.test.ts, test/remote-github.test.ts).
 */
export function describeRemoteBehaviour(label: string, setup: (opts: { partBytes?: number }) => Promise<RemoteUnderTest>): void {
  describe(`remote behaviour: ${label}`, () => {
    let root: string;
    let snaps: SnapshotFiles[];
    beforeAll(async () => {
      root = tempRoot('wb-remote-suite-');
      snaps = await makeSnapshots(root, 3);
    });
    afterAll(() => rmrf(root));

    it('push is idempotent, list reports complete copies with their size', async () => {
      const { remote, cleanup } = await setup({});
      try {
        const first = await remote.push(snaps[0]!);
        expect(first.uploaded).toBe(true);
        const again = await remote.push(snaps[0]!);
        expect(again.uploaded).toBe(false);
        await remote.push(snaps[1]!);
        const listed = await remote.list();
        expect(listed.map((s) => s.id).sort()).toEqual([snaps[0]!.id, snaps[1]!.id].sort());
        const entry = listed.find((s) => s.id === snaps[0]!.id)!;
        expect(entry.complete).toBe(true);
        expect(entry.bytes).toBe(fs.statSync(snaps[0]!.archivePath).size);
      } finally {
        await cleanup();
      }
    });

    it('download gives back the same bytes, verified by the checksum file', async () => {
      const { remote, cleanup } = await setup({});
      const into = tempRoot('wb-dl-');
      try {
        await remote.push(snaps[2]!);
        const got = await remote.download(snaps[2]!.id, into);
        expect(fs.readFileSync(got.archivePath).equals(fs.readFileSync(snaps[2]!.archivePath))).toBe(true);
        expect(fs.readFileSync(got.manifestPath, 'utf8')).toBe(fs.readFileSync(snaps[2]!.manifestPath, 'utf8'));
        expect(execFileSync('sha256sum', ['-c', path.basename(got.checksumPath)], { cwd: into }).toString()).toMatch(/OK\n.*OK/s);
      } finally {
        rmrf(into);
        await cleanup();
      }
    });

    it("manifest reads a snapshot's manifest (kind and base of a delta) without its archive; an absent one is not_found", async () => {
      const { remote, cleanup } = await setup({ partBytes: 16 * 1024 });
      const chainRoot = tempRoot('wb-remote-suite-chain-');
      try {
        // A full, then a delta against it (the contract's other snapshots are all full).
        const [delta, full] = await makeSnapshots(chainRoot, 2, 64, { incremental: true });
        await remote.push(full!);
        await remote.push(delta!);
        const local = JSON.parse(fs.readFileSync(delta!.manifestPath, 'utf8')) as { kind: string; base: string };
        expect(local).toMatchObject({ kind: 'delta', base: full!.id });
        expect(await remote.manifest(delta!.id)).toEqual(local);
        expect(await remote.manifest(full!.id)).toMatchObject({ snapshot_id: full!.id, kind: 'full', base: null });
        const err = await remoteFailure(remote.manifest('snap-2001-01-01T00-00-00Z'));
        expect(err.kind).toBe('not_found');
        expect(err.message).toMatch(/snap-2001-01-01T00-00-00Z/);
      } finally {
        rmrf(chainRoot);
        await cleanup();
      }
    });

    it('push and download report the bytes they move: growing, ending at the files’ total; a push with nothing to send reports none', async () => {
      const { remote, cleanup } = await setup({ partBytes: 16 * 1024 });
      const into = tempRoot('wb-dl-');
      try {
        const snap = snaps[1]!;
        const filesBytes = [snap.archivePath, snap.manifestPath, snap.checksumPath].reduce((n, f) => n + fs.statSync(f).size, 0);
        const sent: number[] = [];
        await remote.push(snap, { onBytes: (b) => sent.push(b) });
        expect(sent.length).toBeGreaterThan(0);
        for (let i = 1; i < sent.length; i++) expect(sent[i]).toBeGreaterThan(sent[i - 1]!);
        expect(sent.at(-1)).toBe(filesBytes);
        const again: number[] = [];
        expect((await remote.push(snap, { onBytes: (b) => again.push(b) })).uploaded).toBe(false);
        expect(again).toEqual([]);
        const received: number[] = [];
        await remote.download(snap.id, into, { onBytes: (b) => received.push(b) });
        expect(received.length).toBeGreaterThan(0);
        for (let i = 1; i < received.length; i++) expect(received[i]).toBeGreaterThan(received[i - 1]!);
        expect(received.at(-1)).toBe(filesBytes);
      } finally {
        rmrf(into);
        await cleanup();
      }
    });

    it('delete removes a snapshot, and deleting it again is not an error', async () => {
      const { remote, cleanup } = await setup({});
      try {
        await remote.push(snaps[0]!);
        await remote.push(snaps[1]!);
        await remote.delete(snaps[0]!.id);
        expect((await remote.list()).map((s) => s.id)).toEqual([snaps[1]!.id]);
        await expect(remote.delete(snaps[0]!.id)).resolves.toBeUndefined();
      } finally {
        await cleanup();
      }
    });

    it('downloading a snapshot that is not there is a permanent, explained error', async () => {
      const { remote, cleanup } = await setup({});
      const into = tempRoot('wb-dl-');
      try {
        const err = await remote.download('snap-2001-01-01T00-00-00Z', into).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RemoteError);
        expect((err as RemoteError).transient).toBe(false);
        expect((err as RemoteError).message).toMatch(/snap-2001-01-01T00-00-00Z/);
        expect((err as RemoteError).kind).toBe('not_found');
      } finally {
        rmrf(into);
        await cleanup();
      }
    });

    it('deleting a snapshot that was never pushed succeeds: it is already gone', async () => {
      const { remote, cleanup } = await setup({});
      try {
        await expect(remote.delete('snap-2001-01-01T00-00-00Z')).resolves.toBeUndefined();
        expect(await remote.list()).toEqual([]);
      } finally {
        await cleanup();
      }
    });

    it('a snapshot that is there but cannot be read is a transient failure, never not_found', async () => {
      const { remote, cleanup, breakReads } = await setup({});
      const into = tempRoot('wb-dl-');
      try {
        await remote.push(snaps[1]!);
        await breakReads(snaps[1]!.id);
        const err = await remoteFailure(remote.download(snaps[1]!.id, into));
        expect(err.kind).toBe('transient');
        expect(err.transient).toBe(true);
        expect(err.hint.length).toBeGreaterThan(10);
        const manifestErr = await remoteFailure(remote.manifest(snaps[1]!.id));
        expect(manifestErr.kind).toBe('transient');
        expect(manifestErr.hint.length).toBeGreaterThan(10);
      } finally {
        rmrf(into);
        await cleanup();
      }
    });

    it('every method called with a fired signal rejects as cancelled and changes nothing', async () => {
      const { remote, cleanup, storedNames } = await setup({});
      const into = tempRoot('wb-dl-');
      try {
        await remote.push(snaps[0]!);
        const fired = AbortSignal.abort();
        expect((await remoteFailure(remote.push(snaps[1]!, { signal: fired }))).kind).toBe('cancelled');
        expect((await remoteFailure(remote.list({ signal: fired }))).kind).toBe('cancelled');
        expect((await remoteFailure(remote.download(snaps[0]!.id, into, { signal: fired }))).kind).toBe('cancelled');
        expect((await remoteFailure(remote.delete(snaps[0]!.id, { signal: fired }))).kind).toBe('cancelled');
        expect((await remoteFailure(remote.manifest(snaps[0]!.id, { signal: fired }))).kind).toBe('cancelled');
        expect(await storedNames(snaps[1]!.id)).toEqual([]);
        expect((await remote.list()).map((s) => [s.id, s.complete])).toEqual([[snaps[0]!.id, true]]);
      } finally {
        rmrf(into);
        await cleanup();
      }
    });

    it('a push cancelled midway stops, does not count as pushed, and the next push converges', async () => {
      const { remote, cleanup, whenStoring } = await setup({ partBytes: 64 * 1024 });
      const bigRoot = tempRoot('wb-remote-big-');
      const into = tempRoot('wb-dl-');
      try {
        const [big] = await makeSnapshots(bigRoot, 1, 4096);
        const archiveBytes = fs.statSync(big!.archivePath).size;
        expect(archiveBytes).toBeGreaterThan(40 * 64 * 1024);
        const stop = new AbortController();
        let settled = false;
        const pushing = remote.push(big!, { signal: stop.signal }).finally(() => (settled = true));
        await whenStoring(big!.id, () => settled);
        stop.abort();
        const err = await remoteFailure(pushing);
        expect(err.kind).toBe('cancelled');
        expect((await remote.list()).filter((s) => s.id === big!.id && s.complete)).toEqual([]);
        const again = await remote.push(big!);
        expect(again.uploaded).toBe(true);
        expect((await remote.list()).find((s) => s.id === big!.id)).toEqual({ id: big!.id, complete: true, bytes: archiveBytes });
        const got = await remote.download(big!.id, into);
        expect(fs.readFileSync(got.archivePath).equals(fs.readFileSync(big!.archivePath))).toBe(true);
      } finally {
        rmrf(into);
        rmrf(bigRoot);
        await cleanup();
      }
    });

    it('splits archives larger than the part size and joins them on download', async () => {
      const { remote, cleanup, storedNames } = await setup({ partBytes: 16 * 1024 });
      const into = tempRoot('wb-dl-');
      // The oldest snapshot is the full one (~64 KiB); the later ones are small deltas.
      const full = snaps[snaps.length - 1]!;
      try {
        await remote.push(full);
        const archiveName = path.basename(full.archivePath);
        const parts = (await storedNames(full.id)).filter((n) => n.startsWith(`${archiveName}.part`)).sort();
        const expectedParts = Math.ceil(fs.statSync(full.archivePath).size / (16 * 1024));
        expect(expectedParts).toBeGreaterThan(2);
        expect(parts).toEqual(Array.from({ length: expectedParts }, (_, i) => `${archiveName}.part${String(i + 1).padStart(3, '0')}`));
        const listed = (await remote.list()).find((s) => s.id === full.id)!;
        expect(listed).toMatchObject({ complete: true, bytes: fs.statSync(full.archivePath).size });
        const got = await remote.download(full.id, into);
        expect(fs.readFileSync(got.archivePath).equals(fs.readFileSync(full.archivePath))).toBe(true);
        expect(fs.readdirSync(into).filter((n) => n.includes('.part'))).toEqual([]);
      } finally {
        rmrf(into);
        await cleanup();
      }
    });
  });
}
