// The CLI's restore and undo say what a "yes" costs: live vs snapshot rows per table, the
// snapshot's age and host, what is lost, where the current files go (issue 15, informed consent).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { defaultHostName } from '../src/root/host.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

const env = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'WB_BACKUP_LOG_LEVEL' && k !== 'WB_BACKUP_HOME')) as Record<string, string>;

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', env: env() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The CLI on a real terminal (script(1)), answering `answer` to its question. */
function onTerminal(args: string[], answer: string) {
  const cmd = [process.execPath, CLI, '--root', root, ...args].map((a) => JSON.stringify(a)).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: env(), input: `${answer}\n` });
  return { code: r.status, out: r.stdout };
}

const TOOL_WORDS = /\b(data_backup|data_restore|data_restore_undo|confirm_token|dry_run: true)\b/;

function prepared(): void {
  const live = path.join(root, 'db', 'a.db');
  makeNotesDb(live, 25);
  expect(cli(['now']).code).toBe(0);
  const db = new Database(live);
  const add = db.prepare('INSERT INTO notes(folder_id, title) VALUES (1, ?)');
  for (let i = 0; i < 15; i++) add.run(`since ${i}`);
  db.close();
}

describe('restore and undo on the CLI show what a yes costs', () => {
  it('the y/N question shows live vs snapshot rows, the snapshot age and host, what is lost and where the files go; "n" changes nothing', () => {
    prepared();
    const r = onTerminal(['restore', 'latest'], 'n');
    expect(r.out).toMatch(/Restore snapshot snap-\S+ \(taken (just now|[^)]*ago)/);
    expect(r.out).toContain(`on this machine (${defaultHostName()})`);
    expect(r.out).toMatch(/- a -> db\/a\.db \(28 rows in the snapshot, 43 live now/);
    expect(r.out).toMatch(/notes: 40 live -> 25 snapshot \(-15\)/);
    expect(r.out).toMatch(/What you lose: a: 15 rows added since the snapshot/);
    expect(r.out).toContain(path.join(root, 'db.pre_restore_'));
    expect(r.out).toMatch(/Proceed\? \[y\/N\]/);
    expect(r.out).not.toMatch(TOOL_WORDS);
    expect(r.out).not.toContain('<root>');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/you answered no/);
  });

  it('--dry-run prints the comparison, and undo --dry-run what the undo throws away', () => {
    prepared();
    const dry = cli(['restore', 'latest', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/would restore snap-\S+ \(taken .* on this machine/);
    expect(dry.stdout).toMatch(/notes: 40 live -> 25 snapshot \(-15\)/);
    expect(dry.stdout).toMatch(/what you lose: a: 15 rows added since the snapshot/);
    expect(dry.stdout).not.toMatch(TOOL_WORDS);

    expect(cli(['restore', 'latest', '--yes']).code).toBe(0);
    const undo = cli(['restore', '--undo', '--dry-run']);
    expect(undo.code, undo.stderr).toBe(0);
    expect(undo.stdout).toMatch(/would undo/);
    expect(undo.stdout).toContain(`in ${root}:`);
    expect(undo.stdout).toMatch(/notes: 25 live -> 40 after undo \(\+15\)/);
    expect(undo.stdout).toMatch(/What you lose: a: /);
    expect(undo.stdout).not.toMatch(TOOL_WORDS);
  });
});
