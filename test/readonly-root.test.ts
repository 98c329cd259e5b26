import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

const isRoot = process.getuid?.() === 0;
let root: string;
beforeEach(() => {
  root = tempRoot('wb-ro-');
});
afterEach(() => rmrf(root));

/** The CLI as nobody (setpriv), on a root that belongs to root and that nobody may only read. */
function asNobody(args: string[]) {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, '--root', root, ...args], {
    encoding: 'utf8',
    env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'silent' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('a data root the user may not write', () => {
  it.runIf(isRoot)('now / restore / undo as another user: one clear error naming the cause, never a raw errno about another file', () => {
    makeNotesDb(path.join(root, 'db', 'a.db'), 10);
    const first = spawnSync(process.execPath, [CLI, '--root', root, 'now'], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'silent' } });
    expect(first.status).toBe(0);
    fs.chmodSync(root, 0o755);
    for (const args of [['now'], ['restore', 'latest', '--dry-run'], ['restore', 'latest', '--yes'], ['restore', '--undo', '--yes']]) {
      const r = asNobody(args);
      expect(r.code, args.join(' ')).not.toBe(0);
      // Today `now` says "EACCES: permission denied, unlink '<root>/backups/last_run.json'" (the
      // last-resort removal of last_run.json fails too and hides the real cause), and the others
      // print the raw mkdir error of the lock's temporary folder.
      expect(r.stderr, args.join(' ')).toMatch(/may not write in the data root/);
      expect(r.stderr, args.join(' ')).not.toMatch(/last_run\.json|\.wb-backup\.lock\.new-/);
    }
  });
});
