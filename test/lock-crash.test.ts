import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../src/root/config.js';
import { WbError, describeError } from '../src/core/errors.js';
import { acquireRootLock } from '../src/root/lock.js';
import { CLI, makeNotesDb, REPO_ROOT, rmrf, tempRoot, waitFor } from './support/fixtures.js';

let root: string;
beforeEach(() => {
  root = tempRoot('wb-lock-');
  makeNotesDb(path.join(root, 'db', 'a.db'), 5);
  // No waiting at all: the next command must find the lock free or take it over at once.
  writeConfigFile(root, { backup: { lock_wait_ms: 0 } });
});
afterEach(() => rmrf(root));

function now(env: Record<string, string> = {}): ReturnType<typeof spawnSync> {
  return spawnSync(process.execPath, [CLI, 'now', '--json', '--root', root], { encoding: 'utf8', env: { ...process.env, ...env } });
}

const lockLeftovers = () => fs.readdirSync(root).filter((n) => n.startsWith('.wb-backup.lock'));

describe('a wb-backup killed while it creates or removes its lock', () => {
  // Each window of the lock's life: staging made but no owner yet, just published, about to
  // release, owner record removed but the folder not yet.
  for (const point of ['lock-staged', 'lock-acquired', 'lock-release-start', 'lock-owner-removed']) {
    it(`killed at ${point}: the next command proceeds at once and leaves no lock behind`, () => {
      const killed = now({ WB_BACKUP_CRASH_POINT: point });
      expect(killed.signal).toBe('SIGKILL');
      expect(lockLeftovers().length).toBeGreaterThan(0); // the kill did leave something behind
      const next = now();
      expect(next.stderr).not.toMatch(/busy/);
      expect(next.status).toBe(0);
      expect(JSON.parse(String(next.stdout))).toMatchObject({ databases: [{ name: 'a' }] });
      expect(lockLeftovers()).toEqual([]);
    });
  }

  it('a live holder is named in the busy answer: operation, pid, host and since', async () => {
    const holder = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'support', 'hold-lock.ts'), root], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let said = '';
      holder.stdout!.on('data', (d: Buffer) => (said += d.toString()));
      await waitFor(() => said.includes('locked'), 'the holder to take the lock');
      const busy = now();
      expect(busy.status).not.toBe(0);
      expect(busy.stderr).toContain(`busy: backup (pid ${holder.pid} on ${os.hostname()}, since 20`);
      expect(busy.stderr).toMatch(/Wait for it to finish/);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.on('exit', r));
    }
    // The holder is gone now (killed while holding): taken over at once.
    expect(now().status).toBe(0);
  });

  it('processes racing to take over a dead holder\'s lock hold it one at a time', async () => {
    const dead = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'support', 'hold-lock.ts'), root], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    dead.stdout!.on('data', (d: Buffer) => (said += d.toString()));
    await waitFor(() => said.includes('locked'), 'the holder to take the lock');
    dead.kill('SIGKILL');
    await new Promise((r) => dead.on('exit', r));
    const log = path.join(root, 'contenders.log');
    const contenders = Array.from({ length: 4 }, () =>
      spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'support', 'lock-contender.ts'), root, log], { cwd: REPO_ROOT, stdio: 'inherit' }),
    );
    const codes = await Promise.all(contenders.map((c) => new Promise((r) => c.on('exit', r))));
    expect(codes).toEqual([0, 0, 0, 0]);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(8);
    // Never two holders at once: every enter is followed by the exit of the same process.
    for (let i = 0; i < lines.length; i += 2) expect(lines[i + 1]).toBe(lines[i]!.replace('enter', 'exit'));
    expect(lockLeftovers()).toEqual([]);
  });

  it('a lock path that is not a wb-backup lock is reported as such, not as a nameless holder', () => {
    fs.mkdirSync(path.join(root, '.wb-backup.lock'));
    fs.writeFileSync(path.join(root, '.wb-backup.lock', 'stray.txt'), 'x');
    const r = now();
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/not a wb-backup lock \(\.wb-backup\.lock: it holds no owner record \(it contains stray\.txt\)\)/);
    expect(r.stderr).toMatch(/remove \.wb-backup\.lock/);
  });
});

describe('who holds the lock, when the owner record says little', () => {
  const lockDir = () => path.join(root, '.wb-backup.lock');
  const hex = (s: string) => Buffer.from(s).toString('hex');
  function plant(name: string, text: string, ageMs = 0): void {
    fs.mkdirSync(lockDir());
    const file = path.join(lockDir(), name);
    fs.writeFileSync(file, text);
    const t = new Date(Date.now() - ageMs);
    fs.utimesSync(file, t, t);
  }

  it('an unreadable owner record of a live process still names its pid and host', async () => {
    // A live process stands in for the holder: only its record is broken.
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      plant(`owner-${other.pid}-${hex(os.hostname())}-00aa.json`, '{"pid": 1, "ho');
      const err = await acquireRootLock(root, 'backup', 0).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WbError);
      expect(describeError(err)).toContain(`The data root is busy: a wb-backup process whose operation is unknown (pid ${other.pid} on ${os.hostname()}; its owner record owner-${other.pid}-${hex(os.hostname())}-00aa.json cannot be read) holds its lock.`);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('a holder on another host is named while it refreshes its record, and taken over once it stops', async () => {
    const owner = { pid: 4242, host: 'other-machine', operation: 'restore', since: '2026-01-01T00:00:00.000Z' };
    plant(`owner-4242-${hex('other-machine')}-00bb.json`, JSON.stringify(owner));
    const err = await acquireRootLock(root, 'backup', 0).catch((e: unknown) => e);
    expect(describeError(err)).toMatch(/busy: restore \(pid 4242 on other-machine, since 2026-01-01T00:00:00.000Z\) holds its lock/);
    fs.rmSync(lockDir(), { recursive: true });
    plant(`owner-4242-${hex('other-machine')}-00bb.json`, JSON.stringify(owner), 60_000);
    const lock = await acquireRootLock(root, 'backup', 0);
    expect(fs.readdirSync(lockDir())).toEqual([expect.stringMatching(new RegExp(`^owner-${process.pid}-`))]);
    await lock.release();
    expect(lockLeftovers()).toEqual([]);
  });
});
