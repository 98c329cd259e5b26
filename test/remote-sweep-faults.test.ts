// "A remote sweep that failed or was killed part way lost a base my kept snapshots need / left a
// half-deleted snapshot that looked whole / never finished": the folder remote's sweep with a fault
// injected at each of its steps (every rename and file removal failing from there on, and a SIGKILL
// before each), then the next sweep, which must converge.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { replicate } from '../src/backup/replicate.js';
import { recordOps, setFault, stopRecordingOps } from '../src/core/fault-gate.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { createRemote } from '../src/remote/registry.js';
import type { RemoteSnapshot } from '../src/remote/remote.js';
import type { RetryPolicy } from '../src/remote/retry.js';
import { chainOf } from '../src/snapshot/chain.js';
import { chainSnapshotOf } from '../src/snapshot/chain-set.js';
import { verifyAgainstChecksums } from '../src/snapshot/checksums.js';
import { deleteLocalSnapshot, listLocalSnapshots } from '../src/snapshot/store.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

const noRetry: RetryPolicy = { attempts: 1, baseDelayMs: 1 };
const hour = (h: number) => () => new Date(Date.UTC(2026, 10, 22, 0, 30) + h * 3_600_000);
const DIST = path.resolve(__dirname, '..', 'dist', 'src');

let base: string; // a prepared root and remote, copied for each case
let ids: string[];
let steps: number;
let work: string;

/** root + nas, copied from the prepared pair; the configuration points at the copy's nas. */
function freshCase(name: string): { root: string; nas: string } {
  const root = path.join(work, name, 'root');
  const nas = path.join(work, name, 'nas');
  fs.cpSync(path.join(base, 'root'), root, { recursive: true });
  fs.cpSync(path.join(base, 'nas'), nas, { recursive: true });
  writeConfigFile(root, policy(nas));
  return { root, nas };
}

function policy(nas: string) {
  return {
    remote: { dir: { path: nas } },
    retention: { hourly: 1, daily: 0, weekly: 0, monthly: 0, annual: 0, manual: 0 },
    backup: { incremental: { full_every_hours: 3 } },
  };
}

const remoteOf = (root: string, nas: string) => createRemote({ dir: { path: nas } }, root, { retry: noRetry });

/**
 * What must hold after any fault: the kept snapshots (ids[4] and its base ids[3]) are whole on the
 * remote; every snapshot listed complete has every file and its whole chain there; the rest are
 * gone or listed as not complete (broken), never half there and listed whole.
 */
async function assertNothingKeptIsLost(root: string, nas: string): Promise<RemoteSnapshot[]> {
  const listed = await remoteOf(root, nas).list();
  const complete = listed.filter((s) => s.complete);
  expect(complete.map((s) => s.id)).toEqual(expect.arrayContaining([ids[3], ids[4]]));
  const chains = complete.map((s) => chainSnapshotOf(s.id, JSON.parse(fs.readFileSync(path.join(nas, s.id, `${s.id}.manifest.json`), 'utf8')), 0, 0));
  for (const s of complete) {
    expect(chainOf(chains, s.id), s.id).toMatchObject({ complete: true });
    const dir = path.join(nas, s.id);
    const archive = fs.readdirSync(dir).find((n) => n.endsWith('.tar.zst'))!;
    await verifyAgainstChecksums(path.join(dir, `${s.id}.sha256`), path.join(dir, archive));
  }
  return listed;
}

/** The next sweep finishes the job: the remote holds exactly the kept set, nothing else, and a further sweep changes nothing. */
async function assertNextSweepConverges(root: string, nas: string): Promise<void> {
  await replicate(loadConfig(root), remoteOf(root, nas), ids[4]!);
  expect(fs.readdirSync(nas).sort()).toEqual([ids[3]!, ids[4]!].sort());
  const again = await replicate(loadConfig(root), remoteOf(root, nas), ids[4]!);
  expect(again.pruned ?? []).toEqual([]);
  expect(fs.readdirSync(nas).sort()).toEqual([ids[3]!, ids[4]!].sort());
  await assertNothingKeptIsLost(root, nas);
}

beforeAll(async () => {
  work = tempRoot('wb-sweep-faults-');
  base = path.join(work, 'base');
  const root = path.join(base, 'root');
  const nas = path.join(base, 'nas');
  fs.mkdirSync(nas, { recursive: true });
  const dbFile = path.join(root, 'db', 'notes.db');
  makeNotesDb(dbFile, 1500);
  // Keeps everything while the chain is built: a full (0), two deltas, a full (3), a delta (4).
  writeConfigFile(root, { remote: { dir: { path: nas } }, backup: { incremental: { full_every_hours: 3 } } });
  ids = [];
  for (let h = 0; h < 5; h++) {
    const db = new Database(dbFile);
    db.prepare('UPDATE notes SET title = ? WHERE id = ?').run(`hour ${h}`, 1 + h * 97);
    db.close();
    const r = await runBackup(loadConfig(root), { now: hour(h) });
    expect(r.remote.status).toBe('pushed');
    ids.push(r.snapshot_id);
  }
  const kinds = ids.map((id) => (JSON.parse(fs.readFileSync(path.join(nas, id, `${id}.manifest.json`), 'utf8')) as { kind: string }).kind);
  expect(kinds).toEqual(['full', 'delta', 'delta', 'full', 'delta']);
  // This machine's own sweep already ran: it keeps only the newest and its base.
  for (const id of ids.slice(0, 3)) deleteLocalSnapshot(root, id);
  expect(listLocalSnapshots(root).map((s) => s.id).sort()).toEqual([ids[3]!, ids[4]!].sort());

  // A clean sweep, counted: every rename and removal it makes is one step a fault can hit.
  const clean = freshCase('clean');
  const ops = recordOps();
  try {
    const r = await replicate(loadConfig(clean.root), remoteOf(clean.root, clean.nas), ids[4]!);
    expect(r.pruned).toEqual([ids[2], ids[1], ids[0]]);
  } finally {
    stopRecordingOps();
  }
  steps = ops.length;
  expect(ops.filter((o) => o.op === 'rename')).toHaveLength(3);
  await assertNextSweepConverges(clean.root, clean.nas);
}, 120_000);

afterAll(() => {
  setFault(null);
  rmrf(work);
});

describe('the remote sweep of a folder remote, faulted at each step', () => {
  it('a removal or rename failing (from any step on) loses nothing a kept snapshot needs, leaves the half-deleted snapshot listed as not complete, and the next sweep finishes it', async () => {
    expect(steps).toBeGreaterThanOrEqual(12);
    for (let n = 1; n <= steps; n++) {
      const { root, nas } = freshCase(`fail-${n}`);
      setFault({ op: 'any', n, errno: 'EIO', sticky: true });
      try {
        const r = await replicate(loadConfig(root), remoteOf(root, nas), ids[4]!);
        expect(r.status, `step ${n}`).toBe('pushed'); // a failing delete never fails the backup
      } finally {
        setFault(null);
      }
      const listed = await assertNothingKeptIsLost(root, nas);
      // The snapshot hit part way is listed, not complete, until a sweep finishes it.
      const broken = listed.filter((s) => !s.complete);
      expect(broken.length, `step ${n}`).toBeLessThanOrEqual(1);
      for (const s of broken) expect(s.deleting, `step ${n}`).toBe(true);
      await assertNextSweepConverges(root, nas);
    }
  }, 300_000);

  it('a sweep killed (SIGKILL) before any of its steps loses nothing a kept snapshot needs, and the next sweep finishes the job', async () => {
    for (let n = 1; n <= steps; n++) {
      const { root, nas } = freshCase(`kill-${n}`);
      const script = `
        const { replicate } = await import(${JSON.stringify(path.join(DIST, 'backup', 'replicate.js'))});
        const { loadConfig } = await import(${JSON.stringify(path.join(DIST, 'root', 'config.js'))});
        const { createRemote } = await import(${JSON.stringify(path.join(DIST, 'remote', 'registry.js'))});
        const root = ${JSON.stringify(root)};
        await replicate(loadConfig(root), createRemote({ dir: { path: ${JSON.stringify(nas)} } }, root, { retry: { attempts: 1, baseDelayMs: 1 } }), ${JSON.stringify(ids[4])});`;
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_FAULT: `any:${n}:KILL`, WB_BACKUP_LOG_LEVEL: 'silent' } });
      expect(child.signal, `step ${n}: ${child.stderr}`).toBe('SIGKILL');
      const listed = await assertNothingKeptIsLost(root, nas);
      for (const s of listed.filter((x) => !x.complete)) expect(s.deleting, `step ${n}`).toBe(true);
      await assertNextSweepConverges(root, nas);
    }
  }, 300_000);
});
