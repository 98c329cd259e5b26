// `wb-backup sync push | pull | import` show the same progress bar as `now` and `restore` on a
// terminal (bytes, a rate, the step), and print only the human result otherwise: no log lines.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../src/root/config.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-cli-sync-');
  root = path.join(work, 'root');
  const bare = seededBareRemote(work);
  makeNotesDb(path.join(root, 'db', 'notes.db'), 3000);
  writeConfigFile(root, { sync: { github: { remote_url: bare } } });
});
afterEach(() => rmrf(work));

/** The environment a person has: no log level set (vitest's own env sets one; it is removed). */
function personEnv(): Record<string, string> {
  const env = { ...(process.env as Record<string, string>) };
  delete env.WB_BACKUP_LOG_LEVEL;
  delete env.WB_BACKUP_HOME;
  return env;
}

const LOG_LINE = /^\s*\{.*"level"/m;
const BAR = /\d+(\.\d)? (B|KiB|MiB) [^\n]*(B|KiB|MiB)\/s/;

/** The built CLI without a terminal (a pipe, as in a script). */
function piped(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', cwd: work, env: personEnv() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The built CLI on a real terminal, as a person runs it: script(1) gives it one; stdout holds all it drew. */
function onTerminal(args: string[]) {
  const command = [process.execPath, CLI, '--root', root, ...args].map((a) => JSON.stringify(a)).join(' ');
  const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', cwd: work, env: personEnv() });
  return { code: r.status, out: r.stdout };
}

describe('sync commands show progress on a terminal and stay clean otherwise', () => {
  it('sync push and pull on a terminal draw the progress bar with bytes and a rate, and no log line', () => {
    const push = onTerminal(['sync', 'push']);
    expect(push.code, push.out).toBe(0);
    expect(push.out).toMatch(BAR);
    expect(push.out).toMatch(/pushed: /);
    expect(push.out).not.toContain('"level"');
    const pull = onTerminal(['sync', 'pull']);
    expect(pull.code, pull.out).toBe(0);
    expect(pull.out).not.toContain('"level"');
    expect(pull.out).toMatch(/up_to_date: The remote has no changes/);
  });

  it('sync push, pull and import in a pipe print only the human result: no bar, no log lines', () => {
    const push = piped(['sync', 'push']);
    expect(push.code, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/^pushed: /);
    expect(push.stdout + push.stderr).not.toMatch(LOG_LINE);
    expect(push.stderr).not.toMatch(BAR);
    const pull = piped(['sync', 'pull']);
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout + pull.stderr).not.toMatch(LOG_LINE);
    expect(pull.stderr).toBe('');
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', path.join(work, 'remote.git'), clone);
    const fresh = path.join(work, 'fresh');
    fs.mkdirSync(fresh);
    const imported = spawnSync(process.execPath, [CLI, '--root', fresh, 'sync', 'import', clone], { encoding: 'utf8', cwd: work, env: personEnv() });
    expect(imported.status, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/notes -> /);
    expect(imported.stdout + imported.stderr).not.toMatch(LOG_LINE);
    expect(imported.stderr).toBe('');
  });

  it('sync import on a terminal draws the bar while it rebuilds the databases', () => {
    expect(piped(['sync', 'push']).code).toBe(0);
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', path.join(work, 'remote.git'), clone);
    root = path.join(work, 'fresh');
    fs.mkdirSync(root);
    const r = onTerminal(['sync', 'import', clone]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(BAR);
    expect(r.out).not.toContain('"level"');
  });
});
