// Adversarial findings on incremental snapshots, check and export (issue 16/17). Each test states
// what a demanding user did and what they should have seen (found failing on incr at 21f584a, fixed since).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { runCheck } from '../src/check/run.js';
import { loadConfig } from '../src/root/config.js';
import { listLocalSnapshots } from '../src/snapshot/store.js';
import { connectStdio } from './support/mcp-client.js';
import { CLI, fillToTheLastByte, makeNotesDb, rmrf, tempRoot, waitFor } from './support/fixtures.js';

const canMount = process.getuid?.() === 0;
let root: string;
let out: string;
beforeEach(() => {
  root = tempRoot('wb-adv-');
  out = tempRoot('wb-adv-out-');
});
afterEach(() => {
  rmrf(root);
  rmrf(out);
});

const hour = (h: number) => () => new Date(Date.UTC(2026, 10, 22, h, 0, 0));

function cli(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, '--root', root, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'silent' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A full and two deltas of one database, each delta on the previous snapshot. */
async function chainOfThree(rows = 2000): Promise<string[]> {
  makeNotesDb(path.join(root, 'db', 'notes.db'), rows);
  const ids: string[] = [];
  for (let h = 0; h < 3; h++) {
    const db = new Database(path.join(root, 'db', 'notes.db'));
    db.prepare('UPDATE notes SET title = ? WHERE id = ?').run(`hour ${h}`, 10 + h);
    db.close();
    const r = await runBackup(loadConfig(root), { now: hour(h) });
    ids.push(r.snapshot_id);
  }
  const kinds = listLocalSnapshots(root).map((s) => s.id);
  expect(kinds.sort()).toEqual([...ids].sort());
  return ids;
}

function flipByte(file: string): void {
  const bytes = fs.readFileSync(file);
  bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
  fs.writeFileSync(file, bytes);
}

describe('check of a delta whose chain runs through a damaged archive', () => {
  it('check (without --read-data) reports the delta built on a damaged base, not only the base', async () => {
    const ids = await chainOfThree();
    flipByte(listLocalSnapshots(root).find((s) => s.id === ids[1])!.archivePath);
    // export of the newest fails: its chain needs ids[1]'s archive
    const exp = cli(['export', ids[2]!, '--db', 'notes', '--out', path.join(out, 'n.db')]);
    expect(exp.code).toBe(1);
    const r = await runCheck(loadConfig(root), { remote: false, readData: { kind: 'none' } });
    expect(r.failed.map((f) => f.id)).toContain(ids[1]);
    // Found: ids[2] is reported sound although it cannot be restored or exported.
    expect(r.failed.map((f) => f.id)).toContain(ids[2]);
  });

  it('`wb-backup check <newest delta>` does not say "ok" when a base archive of its chain is damaged', async () => {
    const ids = await chainOfThree();
    flipByte(listLocalSnapshots(root).find((s) => s.id === ids[1])!.archivePath);
    const r = cli(['check', ids[2]!]);
    // Found: exit 0, "ok: every snapshot checked is sound".
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(ids[1]);
  });
});

describe('check wording', () => {
  it('a snapshot whose manifest was deleted is reported with what to do, not a bare ENOENT and a path', async () => {
    const ids = await chainOfThree(200);
    fs.rmSync(path.join(root, 'backups', `${ids[0]}.manifest.json`));
    const r = await runCheck(loadConfig(root), { remote: false, readData: { kind: 'none' } });
    const problems = r.failed.find((f) => f.id === ids[0])!.problems.join(' ');
    // Found: "manifest: ENOENT: no such file or directory, open '/tmp/.../backups/<id>.manifest.json'"
    expect(problems).not.toMatch(/ENOENT/);
    expect(problems).toMatch(/missing|deleted|not found/i);
  });

  it('`check --read-data <id>` (the order the usage line shows) checks that snapshot', async () => {
    const ids = await chainOfThree(200);
    const r = cli(['check', '--read-data', ids[2]!]);
    // Found: exit 2, '--read-data: "snap-..." is not a percentage like 10%'.
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1 checked, 1 read in full, 0 failed/);
  });
});

describe('export interrupted or on a full disk', () => {
  it('an export killed with SIGKILL leaves no .wb-export-* folder behind once the next export has run', async () => {
    await chainOfThree(20000);
    const target = path.join(out, 'killed.db');
    const child = spawn(process.execPath, [CLI, '--root', root, 'export', 'latest', '--db', 'notes', '--out', target], { stdio: 'ignore', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'silent' } });
    const exited = new Promise((r) => child.on('exit', r));
    await waitFor(() => fs.readdirSync(out).some((n) => n.startsWith('.wb-export-')), 'the export work folder');
    child.kill('SIGKILL');
    await exited;
    const again = cli(['export', 'latest', '--db', 'notes', '--out', path.join(out, 'again.db')]);
    expect(again.code, again.stderr).toBe(0);
    // Found: each killed export leaves a hidden .wb-export-XXXXXX folder (up to the image size plus
    // the unpacked archives) beside --out, which nothing ever removes.
    expect(fs.readdirSync(out).filter((n) => n.startsWith('.wb-export-'))).toEqual([]);
  });

  it('a check --read-data killed with SIGKILL leaves no wb-check-* folder in the temp folder once the next check has run', async () => {
    await chainOfThree(20000);
    const tmp = tempRoot('wb-adv-tmp-');
    try {
      const env = { ...process.env, WB_BACKUP_LOG_LEVEL: 'silent', TMPDIR: tmp };
      const child = spawn(process.execPath, [CLI, '--root', root, 'check', '--read-data'], { stdio: 'ignore', env });
      const exited = new Promise((r) => child.on('exit', r));
      await waitFor(() => fs.readdirSync(tmp).some((n) => n.startsWith('wb-check-')), 'the check work folder');
      child.kill('SIGKILL');
      await exited;
      expect(fs.readdirSync(tmp).filter((n) => n.startsWith('wb-check-')).length).toBe(1);
      const again = spawnSync(process.execPath, [CLI, '--root', root, 'check'], { encoding: 'utf8', env });
      expect(again.status, again.stderr).toBe(0);
      expect(fs.readdirSync(tmp).filter((n) => n.startsWith('wb-check-'))).toEqual([]);
    } finally {
      rmrf(tmp);
    }
  });

  it('a running export\'s work folder is left alone by another export into the same folder', async () => {
    await chainOfThree(200);
    // A work folder named for a live process (this test's) is someone's export in progress.
    const live = path.join(out, `.wb-export-${process.pid}-${Buffer.from(os.hostname()).toString('hex').slice(0, 60)}-abcdef`);
    fs.mkdirSync(live);
    const r = cli(['export', 'latest', '--db', 'notes', '--out', path.join(out, 'n.db')]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(live)).toBe(true);
  });

  it.runIf(canMount)('export onto a full disk says the export (not a restore) failed, and names the --out folder', async () => {
    await chainOfThree(200);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', out]);
    try {
      fillToTheLastByte(path.join(out, 'filler'));
      const r = cli(['export', 'latest', '--db', 'notes', '--out', path.join(out, 'n.db')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/full|space/);
      // Found: "... Nothing was restored; the live databases are untouched. Free some space on the disk
      // of the data root <out>/.wb-export-XXXX (old <out>/.wb-export-XXXX/db.pre_restore_* folders can
      // go once you no longer need --undo), then restore again."
      expect(r.stderr).not.toMatch(/data root .*\.wb-export-/);
      expect(r.stderr).not.toMatch(/pre_restore/);
      expect(r.stderr).not.toMatch(/restore again/);
      expect(fs.readdirSync(out).filter((n) => n !== 'filler')).toEqual([]);
    } finally {
      execFileSync('umount', [out]);
    }
  });
});

describe('a database left with a hot rollback journal by a crashed writer', () => {
  it('is still snapshotted (as any SQLite reader, the journal is rolled back), or refused with what to do', async () => {
    const file = path.join(root, 'db', 'notes.db');
    makeNotesDb(file, 2000);
    expect(cli(['now']).code).toBe(0);
    // A writer in rollback-journal mode spills a big uncommitted transaction into the file, then dies.
    const crash = `
      const Database = require(${JSON.stringify(path.join(process.cwd(), 'node_modules', 'better-sqlite3'))});
      const db = new Database(${JSON.stringify(file)});
      db.pragma('journal_mode=delete'); db.pragma('cache_size=5');
      db.exec('BEGIN');
      for (let i = 0; i < 3000; i++) db.prepare('UPDATE notes SET title = ? WHERE id = ?').run('uncommitted ' + i, 1 + (i % 2000));
      process.kill(process.pid, 'SIGKILL');`;
    spawnSync(process.execPath, ['-e', crash]);
    expect(fs.existsSync(`${file}-journal`)).toBe(true);
    const r = cli(['now']);
    // Found: exit 1, "None of the 1 vital databases could be copied: notes: SQLite refused to copy it:
    // attempt to write a readonly database. ... paths are set under `databases:` in wb-backup.yaml"
    // on every run until some program opens the database read-write.
    if (r.code !== 0) expect(r.stderr).toMatch(/journal/);
    expect(r.code, r.stderr).toBe(0);
  });
});

describe('a chain link missing locally but present on the remote', () => {
  it('export and restore --dry-run of the newest delta fetch the missing link from the remote (as the refusal suggests)', async () => {
    const away = tempRoot('wb-adv-away-');
    try {
      fs.writeFileSync(path.join(root, 'wb-backup.yaml'), `remote:\n  dir:\n    path: ${away}\n`);
      const ids = await chainOfThree(500);
      expect(fs.readdirSync(away).sort()).toEqual([...ids].sort());
      for (const f of fs.readdirSync(path.join(root, 'backups')).filter((n) => n.startsWith(ids[1]!))) fs.rmSync(path.join(root, 'backups', f));
      const exp = cli(['export', ids[2]!, '--db', 'notes', '--out', path.join(out, 'n.db')]);
      // Found: exit 1, "its base snapshot <ids[1]> ... is missing ... or fetch the missing snapshot from
      // the remote" -- but no command fetches it except, undocumented, `restore <ids[1]> --dry-run`.
      expect(exp.code, exp.stderr).toBe(0);
      const dry = cli(['restore', ids[2]!, '--dry-run']);
      expect(dry.code, dry.stderr).toBe(0);
    } finally {
      rmrf(away);
    }
  });

  it('export of a delta whose middle link is gone here downloads that link only, and the local set is whole again', async () => {
    const away = tempRoot('wb-adv-away-');
    try {
      fs.writeFileSync(path.join(root, 'wb-backup.yaml'), `remote:\n  dir:\n    path: ${away}\n`);
      const ids = await chainOfThree(500);
      const backups = path.join(root, 'backups');
      const before = new Map(fs.readdirSync(backups).filter((n) => !n.startsWith(ids[1]!)).map((n) => [n, fs.statSync(path.join(backups, n)).ino]));
      for (const f of fs.readdirSync(backups).filter((n) => n.startsWith(ids[1]!))) fs.rmSync(path.join(backups, f));
      const exp = cli(['export', ids[2]!, '--db', 'notes', '--out', path.join(out, 'n.db'), '--json']);
      expect(exp.code, exp.stderr).toBe(0);
      expect(JSON.parse(exp.stdout).chain).toEqual(ids);
      expect(listLocalSnapshots(root).map((s) => s.id).sort()).toEqual([...ids].sort());
      // The snapshots this machine had are the same files (the full was not downloaded again).
      for (const [n, ino] of before) expect(fs.statSync(path.join(backups, n)).ino, n).toBe(ino);
      const db = new Database(path.join(out, 'n.db'), { readonly: true });
      expect(db.prepare('SELECT title FROM notes WHERE id = 12').get()).toEqual({ title: 'hour 2' });
      db.close();
    } finally {
      rmrf(away);
    }
  });

  it('check --read-data of a delta whose base is gone here reads it with the base fetched from the remote, leaving backups/ as it was', async () => {
    const away = tempRoot('wb-adv-away-');
    try {
      fs.writeFileSync(path.join(root, 'wb-backup.yaml'), `remote:\n  dir:\n    path: ${away}\n`);
      const ids = await chainOfThree(500);
      for (const f of fs.readdirSync(path.join(root, 'backups')).filter((n) => n.startsWith(ids[1]!))) fs.rmSync(path.join(root, 'backups', f));
      const before = fs.readdirSync(path.join(root, 'backups')).sort();
      const r = cli(['check', '--read-data', ids[2]!]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toMatch(/1 checked, 1 read in full, 0 failed/);
      expect(fs.readdirSync(path.join(root, 'backups')).filter((n) => n !== 'last_check.json').sort()).toEqual(before.filter((n) => n !== 'last_check.json'));
      // Missing on the remote too: the check fails it, naming the link and why it could not be fetched.
      fs.rmSync(path.join(away, ids[1]!), { recursive: true });
      const gone = cli(['check', '--read-data', ids[2]!]);
      expect(gone.code).toBe(1);
      expect(gone.stdout).toContain(ids[1]);
      expect(gone.stdout).toMatch(/neither on this machine nor on/);
    } finally {
      rmrf(away);
    }
  });

  it('a link missing here and on the remote is refused naming it, before anything is downloaded or written', async () => {
    const away = tempRoot('wb-adv-away-');
    try {
      fs.writeFileSync(path.join(root, 'wb-backup.yaml'), `remote:\n  dir:\n    path: ${away}\n`);
      const ids = await chainOfThree(500);
      for (const f of fs.readdirSync(path.join(root, 'backups')).filter((n) => n.startsWith(ids[1]!))) fs.rmSync(path.join(root, 'backups', f));
      fs.rmSync(path.join(away, ids[1]!), { recursive: true });
      const before = fs.readdirSync(path.join(root, 'backups')).sort();
      for (const args of [['export', ids[2]!, '--db', 'notes', '--out', path.join(out, 'n.db')], ['restore', ids[2]!, '--dry-run']]) {
        const r = cli(args);
        expect(r.code, args.join(' ')).toBe(1);
        expect(r.stderr, args.join(' ')).toContain(`needs ${ids[1]}, which is neither on this machine nor on`);
      }
      expect(fs.readdirSync(path.join(root, 'backups')).sort()).toEqual(before);
      expect(fs.readdirSync(out)).toEqual([]);
    } finally {
      rmrf(away);
    }
  });
});

describe('list of a delta whose chain is broken', () => {
  type Listed = { snapshots: Array<{ id: string; restorable?: boolean; not_restorable_reason?: string }> };
  const listed = (r: { stdout: string }) => new Map((JSON.parse(r.stdout) as Listed).snapshots.map((s) => [s.id, s]));

  it('list says the newest delta cannot be restored when its base was deleted here and no remote has it, naming the base', async () => {
    const ids = await chainOfThree(500);
    for (const f of fs.readdirSync(path.join(root, 'backups')).filter((n) => n.startsWith(ids[1]!))) fs.rmSync(path.join(root, 'backups', f));
    const json = listed(cli(['list', '--json']));
    expect(json.get(ids[2]!)!.restorable).toBe(false);
    expect(json.get(ids[2]!)!.not_restorable_reason).toContain(ids[1]);
    expect(json.get(ids[0]!)!.restorable).toBe(true);
    const text = cli(['list']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`${ids[2]}.*\\n\\s+not restorable: its chain needs ${ids[1]}`));
    // The agent sees it too, in the result and its summary.
    const { client, close } = await connectStdio(root);
    try {
      const r = (await client.callTool({ name: 'data_backup_list', arguments: {} })) as { structuredContent?: { result?: Listed } & Listed; content: Array<{ text: string }> };
      const text = r.content.map((c) => c.text).join(' ');
      expect(text).toMatch(/1 cannot be restored/);
      expect(text).toContain(ids[2]);
    } finally {
      await close();
    }
  });

  it('list says a delta cannot be restored when its base archive is cut short and no remote has a copy to compare with', async () => {
    const ids = await chainOfThree(500);
    const base = listLocalSnapshots(root).find((s) => s.id === ids[1])!;
    expect(base.codec).toBe('zstd');
    fs.truncateSync(base.archivePath, base.bytes - 7);
    const json = listed(cli(['list', '--json']));
    expect(json.get(ids[1]!)!.restorable).toBe(false);
    expect(json.get(ids[1]!)!.not_restorable_reason).toMatch(/cut short/);
    expect(json.get(ids[2]!)!.restorable).toBe(false);
    expect(json.get(ids[2]!)!.not_restorable_reason).toContain(`its chain needs ${ids[1]}`);
    expect(json.get(ids[0]!)!.restorable).toBe(true);
    // What list said is what a restore finds.
    const exp = cli(['export', ids[2]!, '--db', 'notes', '--out', path.join(out, 'n.db')]);
    expect(exp.code).toBe(1);
  });

  it('list says a delta cannot be restored when its base archive here is cut short (its size differs from the remote copy), and stays restorable when the base is only on the remote', async () => {
    const away = tempRoot('wb-adv-away-');
    try {
      fs.writeFileSync(path.join(root, 'wb-backup.yaml'), `remote:\n  dir:\n    path: ${away}\n`);
      const ids = await chainOfThree(500);
      const base = listLocalSnapshots(root).find((s) => s.id === ids[1])!;
      fs.truncateSync(base.archivePath, Math.floor(base.bytes / 2));
      let json = listed(cli(['list', '--json']));
      expect(json.get(ids[1]!)!.restorable).toBe(false);
      expect(json.get(ids[1]!)!.not_restorable_reason).toMatch(/bytes here but .* on the remote/);
      expect(json.get(ids[2]!)!.restorable).toBe(false);
      expect(json.get(ids[2]!)!.not_restorable_reason).toContain(ids[1]);
      expect(json.get(ids[0]!)!.restorable).toBe(true);
      // Deleted here, on the remote: a restore fetches it, so the delta is restorable.
      for (const f of fs.readdirSync(path.join(root, 'backups')).filter((n) => n.startsWith(ids[1]!))) fs.rmSync(path.join(root, 'backups', f));
      json = listed(cli(['list', '--json']));
      expect(json.get(ids[2]!)!.restorable).toBe(true);
    } finally {
      rmrf(away);
    }
  });
});
