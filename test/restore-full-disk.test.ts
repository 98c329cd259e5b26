import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, fillToTheLastByte, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

const canMount = process.getuid?.() === 0;
let root: string;
beforeEach(() => {
  root = tempRoot('wb-full-');
});
afterEach(() => rmrf(root));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'silent' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}


describe('a data root on a disk with no byte free', () => {
  it.runIf(canMount)('restore and undo say the disk is full (not a bare "ENOSPC ... write"), and change nothing', () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', root]);
    try {
      makeNotesDb(path.join(root, 'db', 'a.db'), 10);
      expect(cli(['now']).code).toBe(0);
      expect(cli(['restore', 'latest', '--yes']).code).toBe(0);
      const before = fs.readFileSync(path.join(root, 'db', 'a.db'));
      fillToTheLastByte(path.join(root, 'filler'));
      for (const args of [['restore', 'latest', '--yes'], ['restore', '--undo', '--yes']]) {
        const r = cli(args);
        expect(r.code, args.join(' ')).not.toBe(0);
        // Today: "wb-backup: ENOSPC: no space left on device, write" (the lock's owner record).
        expect(r.stderr, args.join(' ')).toMatch(/is full \(0 B free\).*Nothing was changed.*Free some space/s);
        expect(fs.readFileSync(path.join(root, 'db', 'a.db')).equals(before)).toBe(true);
      }
    } finally {
      execFileSync('umount', [root]);
    }
  });
});
