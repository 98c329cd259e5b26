// What a person meets at the terminal (issue 15, "The person"): quiet human output, exit 2 for bad
// usage, options checked before anything starts, a mistyped root, the CLI's own words, locked
// databases and `~` in paths; and a malformed wb-backup.yaml under `serve` (over the real MCP client).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, REPO_ROOT, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

/** The built CLI as a person runs it: no log level set (vitest's own env sets one; it is removed). */
function cli(args: string[], env: Record<string, string> = {}, cwd = root) {
  const base: Record<string, string> = { ...(process.env as Record<string, string>) };
  delete base.WB_BACKUP_LOG_LEVEL;
  delete base.WB_BACKUP_HOME;
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd, env: { ...base, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const LOG_LINE = /^\s*\{.*"level"/m;
/** MCP tool names and arguments that must not reach a person at the terminal. */
const TOOL_WORDS = /\b(data_backup|data_backup_list|data_restore|data_restore_undo|health_status|health_fix|github_sync_\w+|inputs_schema|input_required|confirm_token|dry_run: true|force: true)\b/;

describe('quiet human output', () => {
  it('demo, the first command a newcomer runs, prints no log lines; they go to the demo root\'s log file', () => {
    const r = cli(['demo', '--dir', path.join(root, 'demo')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(LOG_LINE);
    expect(r.stderr).not.toMatch(LOG_LINE);
    const log = fs.readFileSync(path.join(root, 'demo', 'logs', 'wb-backup.log'), 'utf8');
    expect(log).toMatch(/"msg":"snapshot written"/);
    // No user path in the log: the demo folder is under the temp root.
    expect(log).not.toContain(root);
  });

  it('now and list print for people; -v puts the logs on stderr, stdout stays clean; --json is JSON only', () => {
    makeNotesDb(path.join(root, 'db', 'notes.db'), 5);
    const quiet = cli(['--root', root, 'now']);
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stdout).toMatch(/^snapshot snap-/);
    expect(quiet.stdout + quiet.stderr).not.toMatch(LOG_LINE);
    const verbose = cli(['--root', root, '-v', 'now']);
    expect(verbose.code).toBe(0);
    expect(verbose.stderr).toMatch(LOG_LINE);
    expect(verbose.stdout).not.toMatch(LOG_LINE);
    const byEnv = cli(['--root', root, 'now'], { WB_BACKUP_LOG_LEVEL: 'info' });
    expect(byEnv.stderr).toMatch(/"msg":"snapshot written"/);
    const json = cli(['--root', root, 'list', '--json']);
    expect((JSON.parse(json.stdout) as { snapshots: unknown[] }).snapshots.length).toBeGreaterThan(0);
    expect(json.stderr).not.toMatch(LOG_LINE);
  });

  it('a dry run writes no log file into the data root', () => {
    makeNotesDb(path.join(root, 'db', 'notes.db'), 5);
    expect(cli(['--root', root, 'now']).code).toBe(0);
    fs.rmSync(path.join(root, 'logs'), { recursive: true });
    const r = cli(['--root', root, 'restore', 'latest', '--dry-run']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(root, 'logs'))).toBe(false);
  });

  it('on a terminal, no log line lands inside the progress bar, which shows bytes and a rate', () => {
    makeNotesDb(path.join(root, 'db', 'notes.db'), 2000);
    // script(1) gives the CLI a real terminal, as a person has.
    const r = spawnSync('script', ['-qec', `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} --root ${JSON.stringify(root)} now`, '/dev/null'], {
      encoding: 'utf8',
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'WB_BACKUP_LOG_LEVEL')) as Record<string, string>,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('"level"');
    expect(r.stdout).toMatch(/\d+(\.\d)? (B|KiB|MiB) of \d+(\.\d)? (KiB|MiB)/);
    expect(r.stdout).toMatch(/(B|KiB|MiB)\/s/);
    expect(r.stdout).toMatch(/snapshot snap-/);
  });
});

describe('exit codes', () => {
  it('bad usage exits 2 as the README says: unknown command, unknown option, bad choice, missing argument', () => {
    for (const args of [['bogus'], ['list', '--bogus'], ['--root', root, 'list', '--where', 'moon'], ['fix'], ['--nope']]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/error: /);
    }
    // restore --undo acts on the newest restore only: an id or --db with it is refused, not ignored.
    for (const args of [['--root', root, 'restore', '--undo', 'snap-2026-01-01T00-00-00Z'], ['--root', root, 'restore', '--undo', '--db', 'notes']]) {
      const r = cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/--undo takes no snapshot id or --db/);
    }
    expect(cli(['--version']).code).toBe(0);
    expect(cli(['list', '--help']).code).toBe(0);
  });

  it('serve --http --port abc exits 2 with a clear message before starting anything', () => {
    const r = cli(['--root', root, 'serve', '--http', '--port', 'abc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--port.*'abc'.*port number from 0 to 65535/);
    expect(r.stderr).not.toMatch(/sidecar started|RangeError|ERR_SOCKET/);
    for (const port of ['70000', '-1', '80.5']) expect(cli(['--root', root, 'serve', '--http', '--port', port]).code, port).toBe(2);
    const host = cli(['--root', root, 'serve', '--http', '--host', 'not a host']);
    expect(host.code).toBe(2);
    expect(host.stderr).toMatch(/--host/);
    const stray = cli(['--root', root, 'serve', '--port', '9000']);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/--host and --port apply to --http only/);
  });

  it('serve --http with an unusable token exits 2 and never starts the sidecar', () => {
    const r = cli(['--root', root, 'serve', '--http', '--port', '0'], { WB_BACKUP_HTTP_TOKEN: 'short' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/WB_BACKUP_HTTP_TOKEN is 5 character\(s\) long/);
    expect(r.stderr).not.toMatch(/sidecar started/);
  });

  it('serve --http on a port already in use exits 2 saying so, with no sidecar left running', async () => {
    const net = await import('node:net');
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const child = spawn(process.execPath, [CLI, '--root', root, 'serve', '--http', '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).toBe(2);
      expect(stderr).toMatch(new RegExp(`Port ${port} on 127.0.0.1 is already in use`));
      expect(stderr).not.toMatch(/sidecar started/);
    } finally {
      blocker.close();
    }
  });
});

describe('the data root', () => {
  it('a mistyped --root is an error (exit 2) naming it, and is not created', () => {
    const typo = path.join(root, 'agnet-data');
    for (const args of [['list'], ['health'], ['restore', 'latest'], ['restore', '--undo'], ['sync', 'status'], ['fix', 'github_backups'], ['serve']]) {
      const r = cli(['--root', typo, ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(`The data root ${typo} does not exist`);
      expect(r.stdout, args.join(' ')).not.toMatch(/no snapshots yet/);
      expect(fs.existsSync(typo), args.join(' ')).toBe(false);
    }
    // The same through WB_BACKUP_HOME.
    expect(cli(['list'], { WB_BACKUP_HOME: typo }).code).toBe(2);
  });

  it('init and now create a missing root and say so on stderr', () => {
    const fresh = path.join(root, 'fresh');
    const init = cli(['--root', fresh, 'init']);
    expect(init.code, init.stderr).toBe(0);
    expect(init.stderr).toContain(`created the data root ${fresh}`);
    expect(fs.statSync(path.join(fresh, 'db')).isDirectory()).toBe(true);
    expect(cli(['--root', fresh, 'list']).stdout).toMatch(/no snapshots yet/);
    const other = path.join(root, 'other');
    const now = cli(['--root', other, 'now']);
    expect(now.stderr).toContain(`created the data root ${other}`);
    expect(now.code).toBe(1); // created, but there is nothing to back up yet: it says what to do
    expect(now.stderr).toMatch(/nothing to back up/i);
  });

  it('a file given as --root is refused', () => {
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'x');
    const r = cli(['--root', file, 'list']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not a folder');
  });
});

describe('the CLI speaks commands and flags', () => {
  it('an unknown snapshot points at `wb-backup list` / `wb-backup now`, not at tools', () => {
    const none = cli(['--root', root, 'restore', 'snap-2020-01-01T00-00-00Z']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/take one with `wb-backup now`/);
    expect(none.stderr).not.toMatch(TOOL_WORDS);
    makeNotesDb(path.join(root, 'db', 'notes.db'), 5);
    expect(cli(['--root', root, 'now']).code).toBe(0);
    const some = cli(['--root', root, 'restore', 'snap-2020-01-01T00-00-00Z']);
    expect(some.stderr).toMatch(/`wb-backup list`/);
    expect(some.stderr).not.toMatch(TOOL_WORDS);
  });

  it('fix asks for --input flags and says how to verify with `wb-backup health`', () => {
    const needs = cli(['--root', root, 'fix', 'github_backups.repo-configured']);
    expect(needs.code).toBe(1);
    expect(needs.stdout).toMatch(/--input repo=<string>/);
    expect(needs.stdout).toMatch(/wb-backup fix github_backups\.repo-configured --input repo=/);
    const handoff = cli(['--root', root, 'fix', 'github_backups.gh-authenticated']);
    expect(handoff.stdout).toMatch(/verify: .*`wb-backup health`/);
    expect(handoff.stdout).not.toMatch(/Walk the user/);
    const health = cli(['--root', root, 'health']);
    expect(health.stdout).toContain(path.join(root, 'db')); // the real root, not "<root>"
    for (const r of [needs, handoff, health]) expect(r.stdout + r.stderr).not.toMatch(TOOL_WORDS);
    // The help text too.
    expect(cli(['fix', '--help']).stdout).not.toMatch(TOOL_WORDS);
  });
});

describe('databases the snapshot cannot read', () => {
  it('a database held with locking_mode=EXCLUSIVE by another program is skipped as locked, naming its pid and program', async () => {
    makeNotesDb(path.join(root, 'db', 'free.db'), 5);
    const held = path.join(root, 'db', 'held.db');
    makeNotesDb(held, 5);
    // Another program: opens it in exclusive locking mode and writes, which keeps the lock until it exits.
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import Database from 'better-sqlite3';
         const db = new Database(${JSON.stringify(held)});
         db.pragma('journal_mode = DELETE');
         db.pragma('locking_mode = EXCLUSIVE');
         db.exec("INSERT INTO folders(name) VALUES ('held')");
         process.stdout.write('ready\\n');
         setInterval(() => {}, 1000);`,
      ],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        holder.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
      });
      const r = cli(['--root', root, 'now', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const result = JSON.parse(r.stdout) as { databases: Array<{ name: string }>; skipped: Array<{ name: string; reason: string }> };
      expect(result.databases.map((d) => d.name)).toEqual(['free']);
      const reason = result.skipped.find((s) => s.name === 'held')?.reason ?? '';
      expect(reason).toMatch(/locked by another program: pid \d+ \(node\)/);
      expect(reason).toContain(`pid ${holder.pid} (node)`);
      expect(reason).not.toMatch(/check the paths/i);
      // Alone, it fails the snapshot with advice about the lock, not about paths.
      fs.rmSync(path.join(root, 'db', 'free.db'));
      const alone = cli(['--root', root, 'now']);
      expect(alone.code).toBe(1);
      expect(alone.stderr).toMatch(/locked by another program.*let it release the lock/s);
    } finally {
      holder.kill();
    }
  });

  it('`~/` in a configured path is the home folder, and a missing file names the path it looked at', () => {
    const home = path.join(root, 'home');
    makeNotesDb(path.join(home, 'agent', 'notes.db'), 4);
    const data = path.join(root, 'data');
    fs.mkdirSync(data);
    fs.writeFileSync(path.join(data, 'wb-backup.yaml'), 'databases:\n  notes:\n    path: ~/agent/notes.db\n  gone:\n    path: ~/agent/gone.db\n');
    const r = cli(['--root', data, 'now', '--json'], { HOME: home });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { snapshot_id: string; databases: Array<{ name: string; rows: Record<string, number> }>; skipped: Array<{ name: string; reason: string }> };
    expect(result.databases.map((d) => d.name)).toEqual(['notes']);
    expect(result.databases[0]!.rows.notes).toBe(4);
    expect(result.skipped).toEqual([{ name: 'gone', reason: 'the file does not exist: ~/agent/gone.db' }]);
    // --root=~/... (no shell expands it there) and WB_BACKUP_HOME=~/... too.
    fs.renameSync(data, path.join(home, 'data'));
    expect(cli(['--root=~/data', 'list'], { HOME: home }).stdout).toContain(result.snapshot_id);
    expect(cli(['list'], { HOME: home, WB_BACKUP_HOME: '~/data' }).stdout).toContain(result.snapshot_id);
  });
});

describe('serve with a malformed wb-backup.yaml', () => {
  it('still starts over stdio; every tool and health_status answer with the configuration error', async () => {
    makeNotesDb(path.join(root, 'db', 'notes.db'), 3);
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'backup: [\n');
    const { client, close, stderr } = await connectStdio(root);
    try {
      const tools = await client.listTools();
      expect(tools.tools.map((t) => t.name)).toContain('health_status');
      for (const [name, args] of [['health_status', {}], ['data_backup_list', {}], ['data_backup', {}], ['data_restore', { snapshot_id: 'latest', dry_run: true }]] as const) {
        const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
        expect(result.isError, name).toBe(true);
        expect((result.content[0] as { text: string }).text, name).toMatch(/wb-backup\.yaml is not valid YAML/);
      }
      expect(stderr()).toMatch(/Serving anyway/);
      // Fixed while the server runs: the next call works, no restart needed.
      fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'backup:\n  cadence_minutes: 60\n');
      const ok = (await client.callTool({ name: 'data_backup_list', arguments: {} })) as CallToolResult;
      expect(ok.isError ?? false).toBe(false);
    } finally {
      await close();
    }
  });

  it('a field with a wrong value is reported the same way, naming the field', async () => {
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'backup:\n  cadence_minutes: soon\n');
    const { client, close } = await connectStdio(root);
    try {
      const result = (await client.callTool({ name: 'health_status', arguments: {} })) as CallToolResult;
      expect(result.isError).toBe(true);
      expect((result.content[0] as { text: string }).text).toMatch(/backup\.cadence_minutes/);
    } finally {
      await close();
    }
  });

  it('serve --http refuses a malformed configuration (it says where to bind): exit 2', () => {
    fs.writeFileSync(path.join(root, 'wb-backup.yaml'), 'http: [\n');
    const r = cli(['--root', root, 'serve', '--http', '--port', '0', '--no-sidecar']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not valid YAML/);
  });
});
