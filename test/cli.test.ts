import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, makeNotesDb, rmrf, tempRoot, waitFor } from './support/fixtures.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, WB_BACKUP_LOG_LEVEL: 'warn', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('wb-backup CLI', () => {
  it('now --json and list --json round-trip, with the root from WB_BACKUP_HOME', () => {
    makeNotesDb(path.join(root, 'db', 'n.db'), 3);
    const now = cli(['now', '--json'], { WB_BACKUP_HOME: root });
    expect(now.code).toBe(0);
    const made = JSON.parse(now.stdout) as { snapshot_id: string; databases: unknown[] };
    expect(made.databases).toHaveLength(1);
    const list = cli(['--root', root, 'list', '--json']);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { snapshots: Array<{ id: string }> }).snapshots.map((s) => s.id)).toEqual([made.snapshot_id]);
    const human = cli(['--root', root, 'list']);
    expect(human.stdout).toContain(made.snapshot_id);
  });

  it('exits non-zero with a message that says what to do', () => {
    const empty = cli(['--root', root, 'now']);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/nothing to back up.*databases:/s);
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'backup:\n  cadence_minutes: soon\n');
    const bad = cli(['--root', root, 'list']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/backup\.cadence_minutes/);
    const usage = cli(['--root', root, 'list', '--where', 'moon']);
    expect(usage.code).not.toBe(0);
    expect(usage.stderr).toMatch(/moon/);
  });

  it('--help works on every command', () => {
    for (const args of [['--help'], ['now', '--help'], ['list', '--help'], ['serve', '--help'], ['demo', '--help']]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: wb-backup/);
    }
  });

  it('demo makes its own data root, snapshots twice and lists', () => {
    const dir = path.join(root, 'demo');
    const r = cli(['demo', '--dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/snapshot snap-.*\n[\s\S]*snapshot snap-.*-manual/);
    expect(fs.readdirSync(path.join(dir, 'backups')).filter((n) => n.endsWith('.tar.zst') || n.endsWith('.tar.gz'))).toHaveLength(2);
  });

  it('stops cleanly on SIGTERM mid-snapshot: no .partial left, lock released', async () => {
    // Big enough that the copy is still running when the signal arrives.
    const file = path.join(root, 'db', 'big.db');
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, data BLOB)');
    const ins = db.prepare('INSERT INTO blobs(data) VALUES (randomblob(?))');
    db.transaction(() => {
      for (let i = 0; i < 1500; i++) ins.run(100_000);
    })();
    db.close();
    const child = spawn(process.execPath, [CLI, '--root', root, 'now'], { stdio: 'ignore' });
    const backups = path.join(root, 'backups');
    await waitFor(() => fs.existsSync(backups) && fs.readdirSync(backups).some((n) => n.endsWith('.partial')), 'a .partial folder');
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect([143, 0]).toContain(code); // 0 only if it finished before the signal landed
    const left = fs.readdirSync(backups);
    expect(left.filter((n) => n.endsWith('.partial') || n.includes('.tmp'))).toEqual([]);
    expect(fs.existsSync(path.join(root, '.wb-backup.lock'))).toBe(false);
    if (code === 143) expect(left.filter((n) => n.endsWith('.tar.zst') || n.endsWith('.tar.gz'))).toEqual([]);
    // And the next run works straight away.
    expect(cli(['--root', root, 'now', '--json']).code).toBe(0);
  });
});

describe('wb-backup health and fix', () => {
  it('prints the graph (exit 1 when something fails), as JSON too, and enables an opt-in component', () => {
    const failing = cli(['--root', root, 'health']);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/✗ Vital databases found: no databases configured/);
    expect(failing.stdout).toMatch(/– Off-machine copies on GitHub \[github_backups\]: unwanted\n\s+not enabled — enable with: wb-backup fix github_backups/);
    makeNotesDb(path.join(root, 'db', 'n.db'), 3);
    expect(cli(['--root', root, 'now']).code).toBe(0);
    const json = cli(['--root', root, 'health', '--json', '--component', 'local_backups']);
    expect(json.code).toBe(0);
    const graph = JSON.parse(json.stdout) as { components: Array<{ id: string; status: string; checks: Array<{ status: string }> }> };
    expect(graph.components).toEqual([expect.objectContaining({ id: 'local_backups', status: 'ok' })]);
    const enabled = cli(['--root', root, 'fix', 'github_backups']);
    expect(enabled.code).toBe(0);
    expect(enabled.stdout).toMatch(/fixed: Off-machine copies on GitHub is enabled/);
    expect(fs.readFileSync(path.join(root, 'wb-backup.yaml'), 'utf8')).toMatch(/opt_in:\n\s+- github_backups/);
    // An unknown requirement name is bad input, as `health disable <unknown>` is: exit 2.
    const unknown = cli(['--root', root, 'fix', 'nope.nothing']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no requirement "nope\.nothing".*Known: github_backups/s);
  });
});
