import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../src/config.js';
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
