import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { classifyGhFailure } from '../src/core/gh.js';
import { WbError } from '../src/core/errors.js';
import { createRemote } from '../src/remote/registry.js';
import { RemoteError, type Remote, type SnapshotFiles } from '../src/remote/remote.js';
import type { RetryPolicy } from '../src/remote/retry.js';
import { runRestore } from '../src/restore/restore.js';
import { listSnapshots } from '../src/backup/list.js';
import { deleteLocalSnapshot, listLocalSnapshots } from '../src/snapshot/store.js';
import { dumpTables } from './support/db-snapshot.js';
import { makeNotesDb, rmrf, tempRoot, waitFor } from './support/fixtures.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';
import { describeRemoteBehaviour, makeSnapshots } from './support/remote-suite.js';

const fastRetry = { attempts: 3, baseDelayMs: 20 };

/** The GitHub remote as the registry builds it: the backend wrapped in the one retry loop. */
function githubRemote(repo: string, env: Record<string, string>, retry: RetryPolicy, partBytes?: number): Remote {
  return createRemote({ github: { repo, ...(partBytes ? { part_bytes: partBytes } : {}) } }, '/', { ghEnv: env, retry });
}

describeRemoteBehaviour('github (real gh, emulated API)', async ({ partBytes }) => {
  const emu = await startGithubEmulator();
  emu.createRepo('octo/backups');
  return {
    remote: githubRemote('octo/backups', emu.ghEnv(), fastRetry, partBytes),
    storedNames: async (id) => emu.repo('octo/backups')!.releases.find((r) => r.tag_name === id)?.assets.map((a) => a.name) ?? [],
    // gh has started sending the release's assets.
    whenStoring: (_id, stop) => waitFor(() => stop() || emu.requests.some((r) => r.host === 'uploads.github.localhost' && r.method === 'POST'), 'an asset upload'),
    // Every asset download answers 502, as when GitHub has an outage.
    breakReads: async () => emu.inject({ kind: 'status', status: 502, match: { method: 'GET', path: /\/releases\/assets\/\d+$/ }, times: Infinity }),
    cleanup: () => emu.close(),
  };
});

describe('GitHub faults converge, or fail with what to do', () => {
  let emu: GithubEmulator;
  let root: string;
  let snaps: SnapshotFiles[];
  beforeAll(async () => {
    root = tempRoot('wb-gh-faults-');
    snaps = await makeSnapshots(root, 2);
  });
  afterAll(() => rmrf(root));
  beforeEach(async () => {
    emu = await startGithubEmulator();
    emu.createRepo('octo/backups');
  });
  afterEach(() => emu.close());

  const remote = () => githubRemote('octo/backups', emu.ghEnv(), fastRetry);
  const releases = () => emu.repo('octo/backups')!.releases;
  const expectOneCompleteRelease = (snap: SnapshotFiles) => {
    expect(releases().map((r) => [r.tag_name, r.draft])).toEqual([[snap.id, false]]);
    const names = releases()[0]!.assets.map((a) => a.name).sort();
    expect(names).toEqual([path.basename(snap.archivePath), path.basename(snap.checksumPath), path.basename(snap.manifestPath)].sort());
  };

  it('dropped connections on the asset upload (an outage beyond gh’s own retries) converge on our next attempt', async () => {
    // The outage lasts until our first attempt has given up (gh deletes its draft release when its
    // upload fails); then the network comes back, and our retry, one second later, must converge.
    emu.inject({ kind: 'drop', match: { host: 'uploads.github.localhost' }, times: Infinity });
    const pushing = githubRemote('octo/backups', emu.ghEnv(), { attempts: 3, baseDelayMs: 1000 }).push(snaps[0]!);
    await waitFor(() => emu.requests.some((r) => r.method === 'DELETE' && /\/releases\/\d+$/.test(r.path)), 'the first attempt to give up', 60_000);
    emu.clearFaults();
    const pushed = await pushing;
    expect(pushed.attempts).toBe(2);
    expectOneCompleteRelease(snaps[0]!);
    expect(emu.requests.some((r) => r.fault === 'drop')).toBe(true);
  });

  it('a 502 on release creation is retried once and converges', async () => {
    emu.inject({ kind: 'status', status: 502, match: { method: 'POST', path: /\/releases$/ } });
    const pushed = await remote().push(snaps[0]!);
    expect(pushed.attempts).toBe(2);
    expectOneCompleteRelease(snaps[0]!);
  });

  it('after a half-done push (release exists, assets missing) the next push completes it instead of duplicating', async () => {
    // The checksum upload fails for good on the first run: the release is left without it.
    emu.inject({ kind: 'status', status: 422, match: { host: 'uploads.github.localhost', path: /name=[^&]*\.sha256/ }, times: Infinity });
    const first = await remote().push(snaps[0]!).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(RemoteError);
    expect((await remote().list()).find((s) => s.id === snaps[0]!.id)?.complete ?? false).toBe(false);
    emu.clearFaults();
    const second = await remote().push(snaps[0]!);
    expect(second.attempts).toBeLessThanOrEqual(3);
    expectOneCompleteRelease(snaps[0]!);
    expect((await remote().list()).find((s) => s.id === snaps[0]!.id)?.complete).toBe(true);
  });

  it('a revoked token fails at once (no retries) with a message about gh auth', async () => {
    emu.revokeToken();
    const err = (await remote().push(snaps[0]!).catch((e: unknown) => e)) as RemoteError;
    expect(err).toBeInstanceOf(RemoteError);
    expect(err.transient).toBe(false);
    expect(err.attempts).toBe(1);
    expect(`${err.message} ${err.hint}`).toMatch(/gh auth login/);
  });

  it('a missing repository and an empty one are permanent, explained errors', async () => {
    const missing = (await githubRemote('octo/nope', emu.ghEnv(), fastRetry).push(snaps[0]!).catch((e: unknown) => e)) as RemoteError;
    expect(missing.transient).toBe(false);
    expect(`${missing.message} ${missing.hint}`).toMatch(/not found.*remote\.github\.repo/s);
    emu.createRepo('octo/blank', { empty: true });
    const empty = (await githubRemote('octo/blank', emu.ghEnv(), fastRetry).push(snaps[0]!).catch((e: unknown) => e)) as RemoteError;
    expect(empty.transient).toBe(false);
    expect(`${empty.message} ${empty.hint}`).toMatch(/no commits.*--add-readme/s);
    expect(emu.repo('octo/blank')!.releases.filter((r) => !r.draft)).toEqual([]);
  });
});

describe('data_backup and data_restore with the GitHub remote', () => {
  let emu: GithubEmulator;
  let root: string;
  beforeEach(async () => {
    emu = await startGithubEmulator();
    emu.createRepo('octo/backups');
    root = tempRoot();
    makeNotesDb(path.join(root, 'db', 'a.db'), 25);
    writeConfigFile(root, { remote: { github: { repo: 'octo/backups' } } });
  });
  afterEach(async () => {
    await emu.close();
    rmrf(root);
  });
  const gh = () => githubRemote('octo/backups', emu.ghEnv(), fastRetry);

  it('pushes, lists, and restores a snapshot that only GitHub has', async () => {
    const made = await runBackup(loadConfig(root), { remote: gh() });
    expect(made.remote).toMatchObject({ status: 'pushed', attempts: 1 });
    const listed = await listSnapshots(loadConfig(root), 'all', gh());
    expect(listed.snapshots).toEqual([expect.objectContaining({ id: made.snapshot_id, local: true, remote: true })]);
    const content = dumpTables(path.join(root, 'db', 'a.db'));
    deleteLocalSnapshot(root, made.snapshot_id);
    fs.rmSync(path.join(root, 'db', 'a.db'));
    const restored = await runRestore(loadConfig(root), { snapshotId: made.snapshot_id, remote: gh(), consent: async () => ({ granted: true }) });
    expect(restored.databases.map((d) => d.name)).toEqual(['a']);
    expect(dumpTables(path.join(root, 'db', 'a.db'))).toEqual(content);
  });

  it('a restore whose download GitHub fails with 5xx says the remote failed, not that the snapshot is missing', async () => {
    const made = await runBackup(loadConfig(root), { remote: gh() });
    deleteLocalSnapshot(root, made.snapshot_id);
    const before = dumpTables(path.join(root, 'db', 'a.db'));
    emu.inject({ kind: 'status', status: 503, match: { method: 'GET', path: /\/releases\/assets\/\d+$/ }, times: Infinity });
    const err = (await runRestore(loadConfig(root), { snapshotId: made.snapshot_id, remote: gh(), consent: async () => ({ granted: true }) }).catch((e: unknown) => e)) as WbError;
    expect(err).toBeInstanceOf(WbError);
    expect(err.code).toBe('remote_failed');
    expect(err.message).toMatch(new RegExp(`Downloading snapshot ${made.snapshot_id} from github:octo/backups failed: .*could not be reached.*Nothing was changed`, 's'));
    expect(dumpTables(path.join(root, 'db', 'a.db'))).toEqual(before);
    expect(fs.readdirSync(path.join(root, 'backups')).filter((n) => n.startsWith(made.snapshot_id))).toEqual([]);
    // A snapshot GitHub really lacks is still not_found.
    const missing = (await runRestore(loadConfig(root), { snapshotId: 'snap-2001-01-01T00-00-00Z', remote: gh(), consent: async () => ({ granted: true }) }).catch((e: unknown) => e)) as WbError;
    expect(missing.code).toBe('not_found');
  });

  it('keeps the snapshot locally when GitHub refuses, and backfills it on the next run', async () => {
    emu.revokeToken();
    const t = (h: number) => () => new Date(Date.UTC(2026, 10, 22, h));
    const first = await runBackup(loadConfig(root), { remote: gh(), now: t(9) });
    expect(first.remote).toMatchObject({ status: 'failed', attempts: 1 });
    expect(first.remote.reason).toMatch(/gh auth login/);
    expect(listLocalSnapshots(root).map((s) => s.id)).toEqual([first.snapshot_id]);
    const healed = await startGithubEmulator();
    try {
      healed.createRepo('octo/backups');
      const remote = githubRemote('octo/backups', healed.ghEnv(), fastRetry);
      const second = await runBackup(loadConfig(root), { remote, now: t(10) });
      expect(second.remote).toMatchObject({ status: 'pushed', backfilled: [first.snapshot_id] });
      expect(healed.repo('octo/backups')!.releases.map((r) => r.tag_name).sort()).toEqual([first.snapshot_id, second.snapshot_id].sort());
    } finally {
      await healed.close();
    }
  });
});

describe('classifyGhFailure (the lines gh 2.23 prints)', () => {
  const c = (stderr: string) => classifyGhFailure({ stderr, missing: false, exitCode: 1 }, 'o/r');
  it.each([
    ['HTTP 401: Bad credentials (http://api.github.localhost/repos/O/R/releases)\nTry authenticating with:  gh auth login', false, /credentials/],
    ['non-200 OK status code: 401 Unauthorized body: "{\\"message\\":\\"Bad credentials\\"}"', false, /credentials/],
    ["GraphQL: Could not resolve to a Repository with the name 'O/R'. (repository)", false, /not found/],
    ['HTTP 404: Not Found (http://api.github.localhost/repos/O/R/releases)', false, /not found/],
    ['HTTP 422: Validation Failed (http://api.github.localhost/repos/O/R/releases/1)\nRepository is empty.', false, /no commits/],
    ['Post "http://uploads.github.localhost/repos/O/R/releases/1/assets?label=&name=F": read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer', true, /could not be reached/],
    ['Post "http://api.github.localhost/repos/O/R/releases": EOF', true, /could not be reached/],
    ['HTTP 502: 502 Bad Gateway (http://api.github.localhost/repos/O/R/releases)', true, /could not be reached/],
    ['non-200 OK status code: 502 Bad Gateway body: "<!DOCTYPE html>"', true, /could not be reached/],
    ['dial tcp: lookup api.github.com: no such host', true, /could not be reached/],
    ['HTTP 422: Validation Failed (x)\nRelease.tag_name already exists', false, /refused the request/],
  ])('%s', (stderr, transient, message) => {
    const f = c(stderr);
    expect(f.transient).toBe(transient);
    expect(f.message).toMatch(message);
    expect(f.hint.length).toBeGreaterThan(10);
  });
  it('gh not installed', () => {
    expect(classifyGhFailure({ stderr: '', missing: true, exitCode: undefined })).toMatchObject({ transient: false, message: /not installed/ });
  });
});
