import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup, type BackupResult } from '../src/backup/pipeline.js';
import { replicate } from '../src/backup/replicate.js';
import { listSnapshots } from '../src/backup/list.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { createRemote } from '../src/remote/registry.js';
import type { Remote } from '../src/remote/remote.js';
import type { RetryPolicy } from '../src/remote/retry.js';
import { parseSnapshotId } from '../src/snapshot/id.js';
import { decideRetention, type RetentionPolicy } from '../src/snapshot/retention.js';
import { protectChains, type ChainSnapshot } from '../src/snapshot/chain.js';
import { validateManifest } from '../src/snapshot/manifest.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import { runRestore } from '../src/restore/restore.js';
import { describeRestorePlan } from '../src/restore/plan-text.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { startS3Server, useS3TestEnv, type S3TestServer } from './support/s3-server.js';
import { startGithubEmulator, type GithubEmulator } from './support/github-emulator/index.js';

const fastRetry: RetryPolicy = { attempts: 2, baseDelayMs: 1 };
/** Compact, so 90 days prune every tier: 2 hourly, 3 daily, 2 weekly, 2 monthly, 2 manual. */
const POLICY: RetentionPolicy = { hourly: 2, daily: 3, weekly: 2, monthly: 2, annual: 0, manual: 2 };
const HOSTS = ['laptop', 'desktop'] as const;
type Host = (typeof HOSTS)[number];

/** A real backend, watched: every delete is recorded with the machine that asked (nothing is faked). */
function watched(inner: Remote, deletes: Array<[Host, string]>, host: Host): Remote {
  return {
    label: inner.label,
    list: (opts) => inner.list(opts),
    push: (s, opts) => inner.push(s, opts),
    download: (id, dir, opts) => inner.download(id, dir, opts),
    manifest: (id, opts) => inner.manifest(id, opts),
    delete: (id, opts) => (deletes.push([host, id]), inner.delete(id, opts)),
  };
}

interface Machine {
  host: Host;
  root: string;
  /** every snapshot it ever took, with its chain link (from the backup result) */
  taken: ChainSnapshot[];
}

function machine(host: Host): Machine {
  const root = tempRoot(`wb-hosts-${host}-`);
  makeNotesDb(path.join(root, 'db', 'notes.db'), 20);
  writeConfigFile(root, { host, retention: POLICY });
  return { host, root, taken: [] };
}

/** A few rows more, so each snapshot has something to store. */
function write(m: Machine, n: number): void {
  const db = new Database(path.join(m.root, 'db', 'notes.db'));
  db.prepare('INSERT INTO notes(folder_id, title) VALUES (1, ?)').run(`${m.host} ${n}`);
  db.close();
}

function record(m: Machine, r: BackupResult): void {
  m.taken.push({ id: r.snapshot_id, kind: r.kind, base: r.base, bytes: r.archive.bytes, at: Date.parse(r.created_at) });
}

/** What machine `m` must hold: the policy over its own ids, widened to the chains kept snapshots need. */
function expectedSet(m: Machine, policyOf: RetentionPolicy = POLICY): { policy: string[]; kept: string[] } {
  const policy = decideRetention(m.taken.map((s) => s.id), policyOf).keep;
  return { policy: [...policy].sort(), kept: [...protectChains(m.taken, policy).keep].sort() };
}

const hostOf = (id: string) => parseSnapshotId(id)?.host;

/** A module of the built engine (dist/src/…), by its path under src/. */
const built = (rel: string) => pathToFileURL(path.join(path.dirname(CLI), '..', rel)).href;

describe('several machines on one remote', () => {
  let emu: GithubEmulator;
  let nas: string;
  let laptop: Machine;
  let desktop: Machine;
  beforeAll(async () => {
    emu = await startGithubEmulator();
    emu.createRepo('octo/backups');
    nas = tempRoot('wb-hosts-nas-');
    laptop = machine('laptop');
    desktop = machine('desktop');
  });
  afterAll(async () => {
    await emu.close();
    for (const d of [nas, laptop.root, desktop.root]) rmrf(d);
  });

  // The simulated clock: every day at 00:00:07, and on every sixth day twice more at 12:00:07, in
  // the same second (seq 1), so each tier of the compact policy prunes, the hourly one included.
  // At this pace the default chain rule would make nearly every snapshot a full (a full every 24 h;
  // and the delta archive of a database this small is as big as its full, so max_delta_share would
  // start a full after each delta): a full every 36 h and no size limit give chains of up to three
  // deltas, about two snapshots in three.
  // The pipeline and the remotes run from dist/ (built by `npm run build`, as the CLI tests need):
  // the workers of each snapshot then start from compiled modules as in production, where under
  // vitest each would first boot tsx, which was most of this test's time.
  it('90 days, daily snapshots (three a day every sixth day) on both machines in the same second, to one folder and one GitHub repository: each keeps exactly its own policy set and never deletes the other’s', async () => {
    const { runBackup: builtBackup } = (await import(built('backup/pipeline.js'))) as typeof import('../src/backup/pipeline.js');
    const { replicate: builtReplicate } = (await import(built('backup/replicate.js'))) as typeof import('../src/backup/replicate.js');
    const { createRemote: builtRemote } = (await import(built('remote/registry.js'))) as typeof import('../src/remote/registry.js');
    for (const m of [laptop, desktop]) writeConfigFile(m.root, { host: m.host, retention: POLICY, backup: { incremental: { full_every_hours: 36, max_delta_share: 100 } } });
    const dirDeletes: Array<[Host, string]> = [];
    const ghDeletes: Array<[Host, string]> = [];
    const dirOf = (m: Machine) => watched(builtRemote({ dir: { path: nas } }, m.root, { retry: fastRetry }), dirDeletes, m.host);
    const ghOf = (m: Machine) => watched(builtRemote({ github: { repo: 'octo/backups' } }, '/', { ghEnv: emu.ghEnv(), retry: fastRetry }), ghDeletes, m.host);
    const machines = [laptop, desktop];
    const ghTags = () => emu.repo('octo/backups')!.releases.map((r) => r.tag_name);
    const start = Date.UTC(2026, 0, 5, 0, 0, 7);
    const DAY = 24 * 3_600_000;
    const schedule: Array<{ time: Date; day: number; twice: boolean }> = [];
    for (let day = 0; day < 90; day++) {
      schedule.push({ time: new Date(start + day * DAY), day, twice: false });
      if (day % 6 === 1) schedule.push({ time: new Date(start + day * DAY + DAY / 2), day, twice: true });
    }
    let twiceRuns = 0;
    for (const [tick, { time, day, twice }] of schedule.entries()) {
      const manual = tick % 5 === 2;
      // Both machines take their snapshot at the same instant: the ids differ only by host.
      const results = await Promise.all(
        machines.map(async (m) => {
          write(m, tick);
          const r = await builtBackup(loadConfig(m.root), { now: () => time, manual, remote: dirOf(m) });
          record(m, r);
          return r;
        }),
      );
      expect(results[0]!.snapshot_id.replace('snap-laptop-', '')).toBe(results[1]!.snapshot_id.replace('snap-desktop-', ''));
      for (const [i, r] of results.entries()) {
        const m = machines[i]!;
        expect(r.remote.status, `${m.host} tick ${tick}: ${r.remote.reason}`).toBe('pushed');
        for (const id of [...r.pruned, ...(r.remote.pruned ?? []), ...(r.remote.backfilled ?? [])]) expect(hostOf(id), `${m.host} tick ${tick}: ${id}`).toBe(m.host);
      }
      // A second snapshot in that same second on both machines: seq 1, still distinct.
      if (twice) {
        twiceRuns++;
        const again = await Promise.all(machines.map(async (m) => {
          const r = await builtBackup(loadConfig(m.root), { now: () => time, manual, remote: dirOf(m) });
          record(m, r);
          return r;
        }));
        expect(again.map((r) => parseSnapshotId(r.snapshot_id)?.seq)).toEqual([1, 1]);
      }
      // The GitHub repository is replicated to every twelve days, on the day after a same-second
      // pair with seq 1 (so both machines' seq-1 snapshots are on it at once), and at the end: each
      // run pushes what it lacks, then sweeps, both machines at once.
      const last = tick === schedule.length - 1;
      if (day % 12 === 2 || last) {
        const outcomes = await Promise.all(machines.map((m) => builtReplicate(loadConfig(m.root), ghOf(m), m.taken.at(-1)!.id)));
        for (const [i, o] of outcomes.entries()) {
          expect(o.status, `${machines[i]!.host} GitHub tick ${tick}: ${o.reason}`).toBe('pushed');
          for (const id of o.pruned ?? []) expect(hostOf(id)).toBe(machines[i]!.host);
        }
        const tags = ghTags();
        expect(new Set(tags).size).toBe(tags.length);
        // Whatever either machine swept, the other's snapshots are all still there.
        for (const m of machines) {
          const held = new Set(tags.filter((t) => hostOf(t) === m.host));
          for (const s of listLocalSnapshots(m.root)) expect(held.has(s.id), `GitHub lacks ${s.id} at tick ${tick}`).toBe(true);
        }
        // Both machines' seq-1 snapshots of the same second are on GitHub side by side, once each.
        if (!last) expect(tags.filter((t) => /Z-1(?:-manual)?$/.test(t) && parseSnapshotId(t)!.time.getTime() === start + (day - 1) * DAY + DAY / 2).map(hostOf).sort()).toEqual(['desktop', 'laptop']);
      }
      const folders = fs.readdirSync(nas);
      for (const m of machines) {
        const held = new Set(folders.filter((f) => hostOf(f) === m.host));
        for (const s of listLocalSnapshots(m.root)) expect(held.has(s.id), `the folder remote lacks ${s.id} at tick ${tick}`).toBe(true);
      }
    }
    expect(twiceRuns).toBe(15);

    for (const [who, id] of [...dirDeletes, ...ghDeletes]) expect(hostOf(id), `${who} deleted ${id}`).toBe(who);
    expect(dirDeletes.length).toBeGreaterThan(100);
    expect(ghDeletes.length).toBeGreaterThan(20);
    const allTaken = [...laptop.taken, ...desktop.taken].map((s) => s.id);
    expect(new Set(allTaken).size).toBe(allTaken.length);

    const tags = ghTags();
    const folders = fs.readdirSync(nas);
    for (const m of machines) {
      const { policy, kept } = expectedSet(m);
      // the policy set, plus only the bases that kept deltas need
      expect(policy.every((id) => kept.includes(id))).toBe(true);
      expect(kept.length - policy.length).toBeLessThan(10);
      expect(listLocalSnapshots(m.root).map((s) => s.id).sort(), `${m.host} local`).toEqual(kept);
      expect(folders.filter((f) => hostOf(f) === m.host).sort(), `${m.host} on the folder remote`).toEqual(kept);
      expect(tags.filter((t) => hostOf(t) === m.host).sort(), `${m.host} on GitHub`).toEqual(kept);
      expect(m.taken.filter((s) => s.kind === 'delta').length).toBeGreaterThan(60);
      const newest = listLocalSnapshots(m.root)[0]!;
      expect(validateManifest(JSON.parse(fs.readFileSync(newest.manifestPath, 'utf8'))).host).toBe(m.host);
    }
    // Nothing else is on either remote: every name carries one of the two hosts.
    expect(folders.every((f) => HOSTS.includes(hostOf(f) as Host))).toBe(true);
    expect(tags.every((t) => HOSTS.includes(hostOf(t) as Host))).toBe(true);
  }, 1_200_000);

  it('each machine lists its own snapshots by default, another’s with --host, and restores another’s when asked, saying so', async () => {
    // (uses the state the 90 days left: both machines' snapshots on the folder remote)
    for (const m of [laptop, desktop]) writeConfigFile(m.root, { host: m.host, retention: POLICY, remote: { dir: { path: nas } } });
    const own = await listSnapshots(loadConfig(laptop.root), 'all');
    expect(own.snapshots.length).toBeGreaterThan(0);
    expect(own.snapshots.every((s) => s.host === 'laptop')).toBe(true);
    expect(own.host).toMatchObject({ this_machine: 'laptop', shown: 'laptop' });
    const desktopCount = fs.readdirSync(nas).filter((f) => hostOf(f) === 'desktop').length;
    expect(own.host.others).toEqual([{ host: 'desktop', snapshots: desktopCount }]);
    const theirs = await listSnapshots(loadConfig(laptop.root), 'all', undefined, { host: 'desktop' });
    expect(theirs.snapshots.map((s) => s.id).sort()).toEqual(fs.readdirSync(nas).filter((f) => hostOf(f) === 'desktop').sort());
    expect(theirs.snapshots.every((s) => s.remote && !s.local)).toBe(true);
    const every = await listSnapshots(loadConfig(laptop.root), 'all', undefined, { host: 'all' });
    expect(every.snapshots.length).toBe(own.snapshots.length + theirs.snapshots.length);
    expect(every.host.others).toEqual([]);

    const cli = (args: string[]) => spawnSync(process.execPath, [CLI, '--root', laptop.root, ...args], { encoding: 'utf8' });
    const plain = cli(['list']);
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^snap-laptop-\S+ +laptop +/m);
    expect(plain.stdout).not.toMatch(/snap-desktop-/);
    expect(plain.stdout).toContain(`not shown: ${desktopCount} snapshot(s) of another machine (desktop: ${desktopCount}); list them with --host all or --host <name>`);
    const other = cli(['list', '--host', 'desktop']);
    expect(other.status, other.stderr).toBe(0);
    expect(other.stdout).toMatch(/^snap-desktop-\S+ +desktop +.* remote/m);
    expect(other.stdout).not.toMatch(/snap-laptop-/);
    expect(other.stdout).toContain(`not shown: ${own.snapshots.length} snapshot(s) of another machine (laptop: ${own.snapshots.length})`);
    const all = cli(['list', '--host', 'all', '--json']);
    expect(all.status, all.stderr).toBe(0);
    const json = JSON.parse(all.stdout) as { snapshots: Array<{ id: string; host: string }>; host: { shown: string } };
    expect(json.host.shown).toBe('all');
    expect(new Set(json.snapshots.map((s) => s.host))).toEqual(new Set(['laptop', 'desktop']));
    const bad = cli(['list', '--host', 'Desk.top']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--host "Desk.top" is not a host name/);

    // Moving to a new laptop: the desktop's newest snapshot, restored here, after a plan that says whose it is.
    const wanted = theirs.snapshots[0]!.id;
    let plan = '';
    const done = await runRestore(loadConfig(laptop.root), {
      snapshotId: wanted,
      consent: async (p) => {
        plan = describeRestorePlan(p);
        return { granted: true };
      },
    });
    expect(done.snapshot).toMatchObject({ host: 'desktop', this_machine: false });
    expect(plan).toContain('on another machine, host desktop)');
    expect(plan).toContain("This snapshot comes from another machine (desktop): its databases replace this machine's.");
    const rows = new Database(path.join(laptop.root, 'db', 'notes.db'), { readonly: true });
    expect((rows.prepare("SELECT count(*) AS n FROM notes WHERE title LIKE 'desktop %'").get() as { n: number }).n).toBeGreaterThan(0);
    rows.close();
    // "latest" stays this machine's own, though the desktop's downloaded copy is newer.
    const latest = await runRestore(loadConfig(laptop.root), { snapshotId: 'latest', dryRun: true });
    expect(hostOf(latest.snapshot_id)).toBe('laptop');
    expect(latest.snapshot.this_machine).toBe(true);
    // The next backup here neither builds on the desktop's snapshot nor pushes or sweeps it.
    const next = await runBackup(loadConfig(laptop.root), { now: () => new Date(Date.UTC(2026, 3, 10)) });
    expect(hostOf(next.snapshot_id)).toBe('laptop');
    expect(next.base === null || hostOf(next.base) === 'laptop').toBe(true);
    expect(next.remote.status).toBe('pushed');
    expect([...next.pruned, ...(next.remote.pruned ?? []), ...(next.remote.backfilled ?? [])].every((id) => hostOf(id) === 'laptop')).toBe(true);
    expect(fs.readdirSync(nas).filter((f) => hostOf(f) === 'desktop').length).toBe(desktopCount);
  }, 300_000);
});

describe('snapshots whose ids have no host (taken before hosts existed)', () => {
  let root: string;
  let nas: string;
  let scratch: string;
  beforeAll(() => {
    root = tempRoot('wb-hosts-legacy-');
    nas = tempRoot('wb-hosts-legacy-nas-');
    scratch = tempRoot('wb-hosts-legacy-forge-');
  });
  afterAll(() => {
    for (const d of [root, nas, scratch]) rmrf(d);
  });

  it("count as this machine's: the remote sweep deletes those whose manifest names this machine, and keeps those whose manifest names another", async () => {
    makeNotesDb(path.join(root, 'db', 'notes.db'), 10);
    writeConfigFile(root, { host: 'laptop', retention: { hourly: 1, daily: 0, weekly: 0, monthly: 0, annual: 0, manual: 0 } });
    const remote = createRemote({ dir: { path: nas } }, root, { retry: fastRetry });
    const template = await runBackup(loadConfig(root), { now: () => new Date(Date.UTC(2026, 0, 1, 12)), remote: null });
    const manifest = JSON.parse(fs.readFileSync(listLocalSnapshots(root)[0]!.manifestPath, 'utf8')) as Record<string, unknown>;
    // Six old snapshots on the shared remote, as two machines wrote them before ids carried hosts.
    const legacy = Array.from({ length: 6 }, (_, i) => ({ id: `snap-2026-01-01T0${i}-00-00Z`, host: i % 2 === 0 ? 'Other-Box.local' : os.hostname() }));
    for (const { id, host } of legacy) {
      const files = { id, archivePath: path.join(scratch, `${id}.tar.zst`), manifestPath: path.join(scratch, `${id}.manifest.json`), checksumPath: path.join(scratch, `${id}.sha256`) };
      fs.writeFileSync(files.archivePath, id);
      fs.writeFileSync(files.manifestPath, JSON.stringify({ ...manifest, snapshot_id: id, kind: 'full', base: null, host }));
      fs.writeFileSync(files.checksumPath, `${'0'.repeat(64)}  ${id}.tar.zst\n`);
      await remote.push(files);
    }
    const listed = await listSnapshots(loadConfig(root), 'remote', remote);
    expect(listed.snapshots.filter((s) => legacy.some((l) => l.id === s.id)).every((s) => s.host === 'laptop')).toBe(true);

    const outcome = await replicate(loadConfig(root), remote, template.snapshot_id);
    expect(outcome.status).toBe('pushed');
    const ours = legacy.filter((l) => l.host === os.hostname()).map((l) => l.id);
    const theirs = legacy.filter((l) => l.host !== os.hostname()).map((l) => l.id);
    expect([...(outcome.pruned ?? [])].sort()).toEqual(ours.sort());
    expect(fs.readdirSync(nas).sort()).toEqual([...theirs, template.snapshot_id].sort());
    // The next run keeps them too (remembered, not re-read), and prunes nothing else.
    const again = await replicate(loadConfig(root), remote, template.snapshot_id);
    expect(again.pruned ?? []).toEqual([]);
    expect(fs.readdirSync(nas).sort()).toEqual([...theirs, template.snapshot_id].sort());
  }, 120_000);
});

describe('data_backup_list on a shared remote', () => {
  let roots: string[] = [];
  afterAll(() => {
    for (const d of roots) rmrf(d);
  });

  it("lists this machine's snapshots by default, another's with host, every machine's with host all, and refuses a name that is no host", async () => {
    const nas = tempRoot('wb-hosts-mcp-nas-');
    const [alpha, beta] = ['alpha', 'beta'].map((host) => {
      const root = tempRoot(`wb-hosts-mcp-${host}-`);
      makeNotesDb(path.join(root, 'db', 'notes.db'), 5);
      writeConfigFile(root, { host, remote: { dir: { path: nas } } });
      return root;
    }) as [string, string];
    roots = [nas, alpha, beta];
    const at = new Date(Date.UTC(2026, 5, 1, 9));
    for (const root of [alpha, beta, beta]) await runBackup(loadConfig(root), { now: () => at, remote: createRemote({ dir: { path: nas } }, root, { retry: fastRetry }) });
    const tool = (await import('../capabilities/data-backup-list.js')).default;
    const ctx = { root: alpha, loadConfig: () => loadConfig(alpha), signal: new AbortController().signal, progress: () => {} };
    const call = async (args: Record<string, unknown>) => tool.run(tool.input.parse(args), ctx);

    const own = await call({});
    expect(own.result.snapshots.map((s) => s.id)).toEqual(['snap-alpha-2026-06-01T09-00-00Z']);
    expect(own.result.host).toEqual({ this_machine: 'alpha', shown: 'alpha', others: [{ host: 'beta', snapshots: 2 }] });
    expect(own.summary).toContain('Not listed: 2 snapshot(s) of other machines (beta); host "all" lists them.');
    const theirs = await call({ host: 'beta' });
    expect(theirs.result.snapshots.map((s) => [s.id, s.host, s.local, s.remote])).toEqual([
      ['snap-beta-2026-06-01T09-00-00Z-1', 'beta', false, true],
      ['snap-beta-2026-06-01T09-00-00Z', 'beta', false, true],
    ]);
    const every = await call({ host: 'all' });
    expect(every.result.snapshots).toHaveLength(3);
    expect(every.result.host.others).toEqual([]);
    expect(every.result.totals.remote_bytes).toBe(theirs.result.totals.remote_bytes! + own.result.totals.remote_bytes!);
    expect(tool.input.safeParse({ host: 'Beta.local' }).success).toBe(false);
    const nobody = await call({ host: 'gamma' });
    expect(nobody.result.snapshots).toEqual([]);
    expect(nobody.summary).toMatch(/^No snapshots of host gamma\./);
  }, 120_000);
});

describe('several machines on one S3 bucket', () => {
  let s3: S3TestServer;
  let restoreEnv: () => void;
  let roots: string[] = [];
  beforeAll(async () => {
    // The SDK reads credentials from this process's environment: fake keys, never the machine's ~/.aws.
    restoreEnv = useS3TestEnv();
    s3 = await startS3Server();
  });
  afterAll(async () => {
    await s3.close();
    restoreEnv();
    for (const d of roots) rmrf(d);
  });

  it('two machines pushing to one bucket under one prefix in the same second: each sweep deletes only its own objects and keeps the other’s, each ends with exactly its own policy set', async () => {
    const policy: RetentionPolicy = { hourly: 2, daily: 0, weekly: 0, monthly: 0, annual: 0, manual: 0 };
    const settings = { bucket: s3.bucket, prefix: 'shared', endpoint: s3.endpoint, force_path_style: true };
    const machines = HOSTS.map((host) => {
      const m = machine(host);
      writeConfigFile(m.root, { host, retention: policy });
      return m;
    });
    roots = machines.map((m) => m.root);
    const deletes: Array<[Host, string]> = [];
    const s3Of = (m: Machine) => watched(createRemote({ s3: settings }, m.root, { retry: fastRetry }), deletes, m.host);
    /** The snapshot ids on the bucket (from its keys, read past the test layer), per host. */
    const onBucket = async (host: Host) => [...new Set([...(await s3.keys('shared/')).keys()].map((k) => k.split('/')[1]!))].filter((id) => hostOf(id) === host).sort();
    const start = Date.UTC(2026, 2, 1, 8, 0, 3);
    for (let tick = 0; tick < 5; tick++) {
      const time = new Date(start + tick * 3_600_000);
      const results = await Promise.all(
        machines.map(async (m) => {
          write(m, tick);
          const r = await runBackup(loadConfig(m.root), { now: () => time, remote: s3Of(m) });
          record(m, r);
          return r;
        }),
      );
      expect(results[0]!.snapshot_id.replace('snap-laptop-', '')).toBe(results[1]!.snapshot_id.replace('snap-desktop-', ''));
      for (const [i, r] of results.entries()) {
        const m = machines[i]!;
        expect(r.remote.status, `${m.host} tick ${tick}: ${r.remote.reason}`).toBe('pushed');
        for (const id of r.remote.pruned ?? []) expect(hostOf(id), `${m.host} tick ${tick}: ${id}`).toBe(m.host);
      }
      // Whatever either machine swept, every snapshot the other still holds is on the bucket.
      for (const m of machines) {
        const held = await onBucket(m.host);
        for (const s of listLocalSnapshots(m.root)) expect(held, `the bucket lacks ${s.id} at tick ${tick}`).toContain(s.id);
      }
    }
    for (const [who, id] of deletes) expect(hostOf(id), `${who} deleted ${id}`).toBe(who);
    for (const m of machines) {
      expect(deletes.filter(([who]) => who === m.host).length, `${m.host} swept its own`).toBeGreaterThan(0);
      const { kept } = expectedSet(m, policy);
      expect(listLocalSnapshots(m.root).map((s) => s.id).sort(), `${m.host} local`).toEqual(kept);
      expect(await onBucket(m.host), `${m.host} on the bucket`).toEqual(kept);
    }
    // Nothing else is in the bucket: every key is <prefix>/<an id of one of the two hosts>/<a file of that id>.
    for (const key of (await s3.keys('shared/')).keys()) {
      const [, id, file] = key.split('/');
      expect(HOSTS.includes(hostOf(id!) as Host), key).toBe(true);
      expect(file!.startsWith(`${id}.`), key).toBe(true);
    }
    // Each machine lists its own from the bucket, the other's counted.
    const listed = await listSnapshots(loadConfig(machines[0]!.root), 'remote', createRemote({ s3: settings }, machines[0]!.root, { retry: fastRetry }));
    expect(listed.snapshots.map((s) => s.id).sort()).toEqual(expectedSet(machines[0]!, policy).kept);
    expect(listed.host.others).toEqual([{ host: 'desktop', snapshots: expectedSet(machines[1]!, policy).kept.length }]);
  }, 300_000);
});
