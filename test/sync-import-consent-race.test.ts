import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { syncPush } from '../src/sync/push.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { REPO_ROOT, makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-import-');
  root = path.join(work, 'root');
});
afterEach(() => rmrf(work));

const live = (name: string) => path.join(root, 'db', `${name}.db`);
const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

describe('github_sync_import plans under the lock', () => {
  it('a database that appears while the import waits for the lock (a restore, a program) is not replaced without consent', async () => {
    const bare = seededBareRemote(work);
    makeNotesDb(live('notes'), 12);
    writeConfigFile(root, { sync: { github: { remote_url: bare } }, backup: { lock_wait_ms: 30_000 } });
    await syncPush(loadConfig(root));
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    // A machine where notes.db does not exist (yet): importing it needs no consent.
    for (const s of ['', '-wal', '-shm']) fs.rmSync(live('notes') + s, { force: true });

    const { client, close } = await connectStdio(root);
    // Another wb-backup (say, a restore that brings notes.db back) holds the lock.
    const holder = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'test', 'support', 'hold-lock.ts'), root], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()));
      const importing = client.callTool({ name: 'github_sync_import', arguments: { clone_dir: clone } });
      await new Promise((r) => setTimeout(r, 1500));
      // Meanwhile notes.db comes into being with rows of its own.
      makeNotesDb(live('notes'), 3);
      const db = new Database(live('notes'));
      db.exec("INSERT INTO notes(folder_id, title, body) VALUES (1, 'made while the import waited', 'x')");
      db.close();
      holder.kill('SIGKILL');
      const result = await importing;
      // Today: "Rebuilt 1 database(s)" with no consent asked and no word of the replaced file
      // (it sits in a db.pre_restore_* folder the result does not name).
      expect(result.isError, text(result)).toBe(true);
      expect(text(result)).toMatch(/consent/);
      const check = new Database(live('notes'), { readonly: true });
      const titles = check.prepare('SELECT title FROM notes').all() as Array<{ title: string }>;
      check.close();
      expect(titles.map((t) => t.title)).toContain('made while the import waited');
    } finally {
      holder.kill('SIGKILL');
      await close();
    }
  });
});
