import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { runCheck } from '../src/check/run.js';
import { readLastCheck } from '../src/check/record.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import { healthStatus } from '../src/health/service.js';
import { defaultJobsDir, loadJobs } from '../src/sidecar/jobs.js';
import { runnerDeps } from '../src/sidecar/service.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

let root: string;
let away: string;
beforeEach(() => {
  root = tempRoot();
  away = tempRoot('wb-away-');
});
afterEach(() => {
  rmrf(root);
  rmrf(away);
});

const hour = (h: number) => () => new Date(Date.UTC(2026, 10, 22, h, 0, 0));

/** A full and two deltas of two databases, pushed to a folder remote. */
async function chainOfThree(): Promise<string[]> {
  makeNotesDb(path.join(root, 'db', 'notes.db'), 2000);
  makeNotesDb(path.join(root, 'db', 'tasks.db'), 500);
  writeConfigFile(root, { remote: { dir: { path: away } } });
  const ids: string[] = [];
  for (let h = 0; h < 3; h++) {
    const db = new Database(path.join(root, 'db', 'notes.db'));
    db.prepare('UPDATE notes SET title = ? WHERE id = ?').run(`hour ${h}`, 10 + h);
    db.close();
    const r = await runBackup(loadConfig(root), { now: hour(h) });
    expect(r.remote.status).toBe('pushed');
    ids.push(r.snapshot_id);
  }
  expect(listLocalSnapshots(root).map((s) => s.id).sort()).toEqual([...ids].sort());
  return ids;
}

function flipByte(file: string): void {
  const bytes = fs.readFileSync(file);
  bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
  fs.writeFileSync(file, bytes);
}

const remoteFile = (id: string, suffix: string) => path.join(away, id, `${id}${suffix}`);

describe('check: proof that stored copies restore, without restoring them', () => {
  it('a clean set passes, locally and on the remote, every snapshot rebuilt and checked', async () => {
    const ids = await chainOfThree();
    const before = fs.readFileSync(path.join(root, 'db', 'notes.db'));
    const local = await runCheck(loadConfig(root), { remote: false, readData: { kind: 'all' } });
    expect(local).toMatchObject({ where: 'local', ok: true, checked: 3, read: 3, failed_count: 0 });
    const remote = await runCheck(loadConfig(root), { remote: true, readData: { kind: 'all' } });
    expect(remote).toMatchObject({ where: 'remote', ok: true, checked: 3, read: 3, failed_count: 0 });
    expect(remote.read_ids.sort()).toEqual([...ids].sort());
    // Nothing live was touched; the local store gained nothing from the remote check.
    expect(fs.readFileSync(path.join(root, 'db', 'notes.db')).equals(before)).toBe(true);
    expect(listLocalSnapshots(root).length).toBe(3);
    expect(readLastCheck(root)).toMatchObject({ where: 'remote', ok: true, read: 3 });
    expect(Object.keys(readLastCheck(root)!.read_at.local!).sort()).toEqual([...ids].sort());
  });

  it('a flipped byte in a remote archive is found and named when the data is read', async () => {
    const ids = await chainOfThree();
    flipByte(remoteFile(ids[1]!, '.tar.zst'));
    const listingOnly = await runCheck(loadConfig(root), { remote: true, readData: { kind: 'none' } });
    expect(listingOnly.ok).toBe(true); // the listing and manifests are sound: only reading finds it
    const read = await runCheck(loadConfig(root), { remote: true, readData: { kind: 'all' } });
    expect(read.ok).toBe(false);
    expect(read.failed.map((f) => f.id)).toContain(ids[1]);
    expect(read.failed.find((f) => f.id === ids[1])!.problems.join(' ')).toMatch(/[Cc]hecksum mismatch/);
    // The delta built on it cannot be proven either; the full before it is fine.
    expect(read.failed.map((f) => f.id)).not.toContain(ids[0]);
  });

  it('a missing chain base on the remote is found without reading the data, by name', async () => {
    const ids = await chainOfThree();
    rmrf(path.join(away, ids[1]!));
    const r = await runCheck(loadConfig(root), { remote: true, readData: { kind: 'none' } });
    expect(r.ok).toBe(false);
    const newest = r.failed.find((f) => f.id === ids[2])!;
    expect(newest.problems.join(' ')).toContain(ids[1]);
    expect(newest.problems.join(' ')).toMatch(/missing/);
  });

  it('a truncated remote object is found', async () => {
    const ids = await chainOfThree();
    const archive = remoteFile(ids[0]!, '.tar.zst');
    fs.truncateSync(archive, Math.floor(fs.statSync(archive).size / 2));
    const r = await runCheck(loadConfig(root), { remote: true, readData: { kind: 'all' } });
    expect(r.ok).toBe(false);
    expect(r.failed.map((f) => f.id)).toContain(ids[0]);
  });

  it('locally: a flipped byte and a missing base are each reported by name, and health says the copies are not proven', async () => {
    const ids = await chainOfThree();
    const snaps = listLocalSnapshots(root);
    flipByte(snaps.find((s) => s.id === ids[2])!.archivePath);
    const r1 = await runCheck(loadConfig(root), { remote: false, readData: { kind: 'none' } });
    expect(r1.failed.map((f) => f.id)).toEqual([ids[2]]);
    expect(r1.failed[0]!.problems.join(' ')).toMatch(/archive: .*[Cc]hecksum mismatch/);
    for (const f of fs.readdirSync(path.join(root, 'backups')).filter((n) => n.startsWith(ids[0]!))) fs.rmSync(path.join(root, 'backups', f));
    const r2 = await runCheck(loadConfig(root), { remote: false, readData: { kind: 'none' } });
    expect(r2.failed.find((f) => f.id === ids[1])!.problems.join(' ')).toContain(ids[0]);
    const [local] = await healthStatus({ root, cacheMs: 0 }, 'local_backups');
    const proven = local!.checks.find((c) => c.id.endsWith('copies-proven'))!;
    expect(proven.status).toBe('fail');
    expect(proven.detail).toContain(ids[1]);
  });

  it('the CLI: exit 0 when sound, 1 with what failed, 2 for a bad --read-data', async () => {
    const ids = await chainOfThree();
    const cli = (args: string[]) => spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8' });
    const ok = cli(['check', '--read-data=50%']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/local snapshots: 3 checked, 2 read in full, 0 failed/);
    flipByte(listLocalSnapshots(root).find((s) => s.id === ids[0])!.archivePath);
    const bad = cli(['check', ids[0]!]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain(`FAILED ${ids[0]}`);
    const usage = cli(['check', '--read-data=abc']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/percentage/);
    const unknown = cli(['check', 'snap-2020-01-01T00-00-00Z']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/No local snapshot with id/);
  });
});

describe('check on a remote several machines share', () => {
  let nas: string;
  let alpha: string;
  let beta: string;
  beforeEach(async () => {
    nas = tempRoot('wb-check-hosts-nas-');
    [alpha, beta] = ['alpha', 'beta'].map((host) => {
      const r = tempRoot(`wb-check-hosts-${host}-`);
      makeNotesDb(path.join(r, 'db', 'notes.db'), 50);
      writeConfigFile(r, { host, remote: { dir: { path: nas } } });
      return r;
    }) as [string, string];
    // alpha takes two snapshots, beta one; all three land on the shared folder.
    for (const [r, h] of [[alpha, 1], [alpha, 2], [beta, 1]] as const) {
      const done = await runBackup(loadConfig(r), { now: hour(h) });
      expect(done.remote.status).toBe('pushed');
    }
    expect(fs.readdirSync(nas)).toHaveLength(3);
  });
  afterEach(() => {
    for (const d of [nas, alpha, beta]) rmrf(d);
  });

  it("checks this machine's snapshots by default, another's with host, every machine's with host all, and a named id whatever its host", async () => {
    const own = await runCheck(loadConfig(alpha), { remote: true, readData: { kind: 'all' } });
    expect(own).toMatchObject({ ok: true, checked: 2, read: 2 });
    expect(own.read_ids.every((id) => id.startsWith('snap-alpha-'))).toBe(true);
    expect(own.host).toEqual({ this_machine: 'alpha', shown: 'alpha', others: [{ host: 'beta', snapshots: 1 }] });
    const theirs = await runCheck(loadConfig(alpha), { remote: true, readData: { kind: 'all' }, host: 'beta' });
    expect(theirs).toMatchObject({ ok: true, checked: 1, read: 1, read_ids: ['snap-beta-2026-11-22T01-00-00Z'] });
    expect(theirs.host.others).toEqual([{ host: 'alpha', snapshots: 2 }]);
    const every = await runCheck(loadConfig(alpha), { remote: true, readData: { kind: 'none' }, host: 'all' });
    expect(every).toMatchObject({ ok: true, checked: 3, read: 0 });
    expect(every.host.others).toEqual([]);
    const named = await runCheck(loadConfig(alpha), { remote: true, readData: { kind: 'all' }, ids: ['snap-beta-2026-11-22T01-00-00Z'] });
    expect(named).toMatchObject({ ok: true, checked: 1, read_ids: ['snap-beta-2026-11-22T01-00-00Z'] });
    // A damaged snapshot of another machine does not fail this machine's default check.
    flipByte(path.join(nas, 'snap-beta-2026-11-22T01-00-00Z', 'snap-beta-2026-11-22T01-00-00Z.tar.zst'));
    expect((await runCheck(loadConfig(alpha), { remote: true, readData: { kind: 'all' } })).ok).toBe(true);
    const all = await runCheck(loadConfig(alpha), { remote: true, readData: { kind: 'all' }, host: 'all' });
    expect(all.failed.map((f) => f.id)).toEqual(['snap-beta-2026-11-22T01-00-00Z']);
    // Locally too: alpha holds only its own two.
    const local = await runCheck(loadConfig(alpha), { remote: false, readData: { kind: 'none' } });
    expect(local).toMatchObject({ ok: true, checked: 2 });
    expect(local.host.others).toEqual([]);
  });

  it("the daily sidecar check job proves this machine's snapshots only, and says how many of other machines it left", async () => {
    const { jobs } = loadJobs(defaultJobsDir(), ['data_backup_check']);
    const job = jobs.find((j) => j.capability === 'data_backup_check')!;
    expect(job).toBeDefined();
    const outcome = await runnerDeps(beta).run(job, new AbortController().signal);
    expect(outcome.kind, outcome.detail).toBe('ran');
    expect(outcome.detail).toContain('All 1 remote snapshot(s) passed');
    expect(outcome.detail).toContain('Not checked: 2 snapshot(s) of other machines (alpha); host "all" checks them.');
    const record = readLastCheck(beta)!;
    expect(record).toMatchObject({ where: 'remote', ok: true, checked: 1 });
    expect(Object.keys(record.read_at.remote ?? {})).toEqual(['snap-beta-2026-11-22T01-00-00Z']);
  });

  it('data_backup_check takes host like data_backup_list, and the CLI takes --host', async () => {
    const tool = (await import('../capabilities/data-backup-check.js')).default;
    const ctx = { root: alpha, loadConfig: () => loadConfig(alpha), signal: new AbortController().signal, progress: () => {} };
    const theirs = await tool.run(tool.input.parse({ remote: true, host: 'beta' }), ctx);
    expect(theirs.result).toMatchObject({ ok: true, checked: 1 });
    expect(theirs.summary).toMatch(/^All 1 remote snapshot\(s\) of host beta passed/);
    expect(tool.input.safeParse({ host: 'Beta.local' }).success).toBe(false);

    const cli = (args: string[]) => spawnSync(process.execPath, [CLI, '--root', alpha, ...args], { encoding: 'utf8' });
    const own = cli(['check', '--remote']);
    expect(own.status, own.stderr).toBe(0);
    expect(own.stdout).toMatch(/^remote snapshots: 2 checked, 0 read in full, 0 failed$/m);
    expect(own.stdout).toContain('not checked: 1 snapshot(s) of another machine (beta: 1); check them with --host all or --host <name>');
    const every = cli(['check', '--remote', '--host', 'all', '--json']);
    expect(every.status, every.stderr).toBe(0);
    expect(JSON.parse(every.stdout)).toMatchObject({ checked: 3, host: { shown: 'all', others: [] } });
    const bad = cli(['check', '--host', 'Beta.local']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--host "Beta.local" is not a host name/);
  });
});
