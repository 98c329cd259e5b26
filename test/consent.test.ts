import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ElicitRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runBackup } from '../src/backup/pipeline.js';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { runRestore } from '../src/restore/restore.js';
import { listPreRestoreDirs, prunePreRestoreDirs } from '../src/restore/pre-restore.js';
import { syncPush } from '../src/sync/push.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';
import { sha256 } from './support/snapshot-forge.js';
import { describeError } from '../src/core/errors.js';

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-consent-');
  root = path.join(work, 'root');
});
afterEach(() => rmrf(work));

const live = (name: string) => path.join(root, 'db', `${name}.db`);
const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

function addRow(file: string, title: string): void {
  const db = new Database(file);
  db.prepare('INSERT INTO notes(folder_id, title, body) VALUES (1, ?, ?)').run(title, 'added after the snapshot');
  db.close();
}

/** Titles of notes in a database file, read from a private copy (reading must not touch the copy under test). */
function titlesIn(file: string): string[] {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-read-'));
  try {
    for (const suffix of ['', '-wal']) if (fs.existsSync(file + suffix)) fs.copyFileSync(file + suffix, path.join(tmp, `x.db${suffix}`));
    const db = new Database(path.join(tmp, 'x.db'), { readonly: true });
    try {
      return db.prepare('SELECT title FROM notes').pluck().all() as string[];
    } finally {
      db.close();
    }
  } finally {
    rmrf(tmp);
  }
}

/** Every SQLite main file under the root outside the live db/ folder: the safety copies, whatever their layout. */
function copiesUnderRoot(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile() && !/-(wal|shm|journal)$/.test(e.name) && !full.startsWith(path.join(root, 'backups'))) {
        const head = Buffer.alloc(16);
        const fd = fs.openSync(full, 'r');
        fs.readSync(fd, head, 0, 16, 0);
        fs.closeSync(fd);
        if (head.toString('latin1') === 'SQLite format 3\0' && !(path.dirname(full) === path.join(root, 'db') && full.endsWith('.db'))) found.push(full);
      }
    }
  };
  walk(root);
  return found;
}

function hashes(files: string[]): Record<string, string> {
  return Object.fromEntries(files.map((f) => [f, sha256(f)]));
}

describe('a confirm token is consent for one restore only', () => {
  it('replaying a dry run token four times over MCP restores once; the other three are refused and the added row stays in the undo copy', async () => {
    makeNotesDb(live('a'), 20);
    await runBackup(loadConfig(root));
    addRow(live('a'), 'the row added after the backup');
    const { client, close } = await connectStdio(root);
    try {
      const dry = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', dry_run: true } });
      expect(dry.isError, text(dry)).toBeFalsy();
      const token = (dry.structuredContent as { confirm_token: string }).confirm_token;
      const calls = [];
      for (let i = 0; i < 4; i++) calls.push(await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', confirm_token: token } }));
      expect(calls[0]!.isError, text(calls[0])).toBeFalsy();
      for (const replay of calls.slice(1)) {
        expect(replay.isError).toBe(true);
        expect(text(replay)).toMatch(/confirm_token was already used at .*one restore only; run a new dry run.*Nothing was changed/);
      }
      expect(titlesIn(live('a'))).not.toContain('the row added after the backup');
      const copies = listPreRestoreDirs(root);
      expect(copies).toHaveLength(1);
      expect(titlesIn(path.join(copies[0]!, 'a', 'a.db'))).toContain('the row added after the backup');
    } finally {
      await close();
    }
  });

  it('a token is refused when the live database changed since the dry run, and nothing changes', async () => {
    makeNotesDb(live('a'), 20);
    await runBackup(loadConfig(root));
    const { client, close } = await connectStdio(root);
    try {
      const dry = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', dry_run: true } });
      const token = (dry.structuredContent as { confirm_token: string }).confirm_token;
      addRow(live('a'), 'written after the dry run');
      const before = sha256(live('a'));
      const refused = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', confirm_token: token } });
      expect(refused.isError).toBe(true);
      expect(text(refused)).toMatch(/the live databases changed since the dry run \(db\/a\.db was written to\).*run a new dry run/);
      expect(sha256(live('a'))).toBe(before);
      expect(listPreRestoreDirs(root)).toEqual([]);
      // A new dry run on the databases as they are now works.
      const again = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', dry_run: true } });
      const done = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', confirm_token: (again.structuredContent as { confirm_token: string }).confirm_token } });
      expect(done.isError, text(done)).toBeFalsy();
      expect(titlesIn(path.join(listPreRestoreDirs(root)[0]!, 'a', 'a.db'))).toContain('written after the dry run');
    } finally {
      await close();
    }
  });
});

describe('consent given through a prompt', () => {
  it('a database written while the user was being asked: the restore is refused and the write kept', async () => {
    makeNotesDb(live('a'), 10);
    await runBackup(loadConfig(root));
    const err = await runRestore(loadConfig(root), {
      snapshotId: 'latest',
      consent: async () => {
        addRow(live('a'), 'written while the prompt was open');
        return { granted: true };
      },
    }).catch((e: unknown) => e);
    expect(describeError(err)).toMatch(/the live databases changed since the plan was shown \(db\/a\.db was written to\).*Nothing was changed/);
    expect(titlesIn(live('a'))).toContain('written while the prompt was open');
    expect(listPreRestoreDirs(root)).toEqual([]);
  });
});

describe('safety copies rotate only as the plan says', () => {
  it('the plan names how many are kept and which copy it removes; only that one goes', async () => {
    makeNotesDb(live('a'), 10);
    writeConfigFile(root, { restore: { keep_safety_copies: 2 } });
    await runBackup(loadConfig(root));
    const yes = async () => ({ granted: true }) as const;
    for (let i = 0; i < 2; i++) {
      addRow(live('a'), `row ${i}`);
      await runRestore(loadConfig(root), { snapshotId: 'latest', consent: yes });
    }
    const [newer, older] = listPreRestoreDirs(root).map((d) => path.basename(d));
    const dry = await runRestore(loadConfig(root), { snapshotId: 'latest', dryRun: true });
    expect(dry.safety_copies).toMatchObject({ keep: 2, existing: 2, would_prune: [{ folder: older, made_by: expect.stringMatching(/a restore of snap-/) }] });
    expect(dry.safety_copies.would_prune[0]!.created_at).toMatch(/^\d{4}-/);

    let shown = '';
    const done = await runRestore(loadConfig(root), {
      snapshotId: 'latest',
      consent: async (plan) => {
        shown = JSON.stringify(plan.safety);
        return { granted: true };
      },
    });
    expect(shown).toContain(older);
    expect(done.pruned).toEqual([older]);
    expect(listPreRestoreDirs(root).map((d) => path.basename(d))).toEqual([path.basename(done.pre_restore_dir!), newer]);
  });

  it('pruning never removes a copy the plan did not name, even beyond the count kept', async () => {
    makeNotesDb(live('a'), 10);
    await runBackup(loadConfig(root));
    for (let i = 0; i < 3; i++) await runRestore(loadConfig(root), { snapshotId: 'latest', consent: async () => ({ granted: true }) });
    const all = listPreRestoreDirs(root);
    expect(prunePreRestoreDirs(root, 1, [])).toEqual([]);
    expect(prunePreRestoreDirs(root, 1, ['db.pre_restore_not-listed'])).toEqual([]);
    expect(listPreRestoreDirs(root)).toEqual(all);
  });
});

describe('github_sync_import asks for consent before replacing databases', () => {
  async function rootWithClone(): Promise<string> {
    const bare = seededBareRemote(work);
    makeNotesDb(live('notes'), 12);
    writeConfigFile(root, { sync: { github: { remote_url: bare } } });
    await syncPush(loadConfig(root));
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    addRow(live('notes'), 'only on this machine');
    return clone;
  }

  it('force twice on a root holding a row the clone lacks: consent is asked each time, no copy is overwritten, the row survives', async () => {
    const clone = await rootWithClone();
    const asked: string[] = [];
    const { client, close } = await connectStdio(root, { capabilities: { elicitation: {} } });
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(String(req.params.message));
      return { action: 'accept', content: { confirm: true } };
    });
    try {
      const first = await client.callTool({ name: 'github_sync_import', arguments: { clone_dir: clone, force: true } });
      expect(first.isError, text(first)).toBeFalsy();
      expect(asked).toHaveLength(1);
      expect(asked[0]).toMatch(/notes -> db\/notes\.db \(REPLACES the existing database\)/);
      expect(asked[0]).toMatch(/3 safety copies are kept/);
      const afterFirst = hashes(copiesUnderRoot());
      expect(Object.keys(afterFirst)).toHaveLength(1);

      const second = await client.callTool({ name: 'github_sync_import', arguments: { clone_dir: clone, force: true } });
      expect(second.isError, text(second)).toBeFalsy();
      expect(asked).toHaveLength(2);
      const afterSecond = hashes(copiesUnderRoot());
      // Every copy the first import made is still there, byte for byte; the second made its own.
      expect(afterSecond).toMatchObject(afterFirst);
      expect(Object.keys(afterSecond)).toHaveLength(2);
      expect(Object.keys(afterSecond).some((f) => titlesIn(f).includes('only on this machine'))).toBe(true);
      expect(titlesIn(live('notes'))).not.toContain('only on this machine');
    } finally {
      await close();
    }
  });

  it('without elicitation, force is refused; a dry run token imports once and a replay is refused', async () => {
    const clone = await rootWithClone();
    const before = sha256(live('notes'));
    const { client, close } = await connectStdio(root);
    try {
      const forced = await client.callTool({ name: 'github_sync_import', arguments: { clone_dir: clone, force: true } });
      expect(forced.isError).toBe(true);
      expect(text(forced)).toMatch(/would replace existing databases \(notes\), which needs the user's consent\. Nothing was changed\..*dry_run: true.*confirm_token/);
      expect(sha256(live('notes'))).toBe(before);

      const dry = await client.callTool({ name: 'github_sync_import', arguments: { clone_dir: clone, dry_run: true } });
      const plan = dry.structuredContent as { confirm_token: string; safety_copies: { keep: number; would_prune: unknown[] } };
      expect(plan.confirm_token).toMatch(/^wbc_import_/);
      expect(plan.safety_copies).toMatchObject({ keep: 3, would_prune: [] });
      expect(sha256(live('notes'))).toBe(before);

      const done = await client.callTool({ name: 'github_sync_import', arguments: { clone_dir: clone, confirm_token: plan.confirm_token } });
      expect(done.isError, text(done)).toBeFalsy();
      const replay = await client.callTool({ name: 'github_sync_import', arguments: { clone_dir: clone, confirm_token: plan.confirm_token } });
      expect(replay.isError).toBe(true);
      expect(text(replay)).toMatch(/already used.*new dry run/);
      expect(copiesUnderRoot().some((f) => titlesIn(f).includes('only on this machine'))).toBe(true);
    } finally {
      await close();
    }
  });
});
