import fs from 'node:fs';
import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, writeConfigFile } from '../src/root/config.js';
import { syncPull } from '../src/sync/pull.js';
import { syncPush } from '../src/sync/push.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio, connectWithConsent } from './support/mcp-client.js';

let work: string;
let root: string;
let bare: string;
const dbFile = () => path.join(root, 'db', 'notes.db');
const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;
const title = (id: number): unknown => {
  const db = new Database(dbFile(), { readonly: true });
  try {
    return db.prepare('SELECT title FROM notes WHERE id = ?').pluck().get(id);
  } finally {
    db.close();
  }
};

/** Rows 5 and 7 edited here ("ours") and on the remote ("theirs"); the pull records both conflicts. */
beforeEach(async () => {
  work = tempRoot('wb-mcp-resolve-');
  root = path.join(work, 'root');
  bare = seededBareRemote(work);
  makeNotesDb(dbFile(), 10);
  writeConfigFile(root, { sync: { github: { remote_url: bare } } });
  await syncPush(loadConfig(root));
  const other = path.join(work, 'other');
  git(work, 'clone', '-q', bare, other);
  const file = path.join(other, 'notes', 'notes.jsonl');
  fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"note 4"', '"theirs"').replace('"note 6"', '"theirs 7"'));
  git(other, 'commit', '-q', '-am', 'edit on GitHub');
  git(other, 'push', '-q', 'origin', 'HEAD:trunk');
  const db = new Database(dbFile());
  db.exec("UPDATE notes SET title = 'ours' WHERE id IN (5, 7)");
  db.close();
  expect((await syncPull(loadConfig(root))).conflicts).toHaveLength(2);
});
afterEach(() => rmrf(work));

describe('github_sync_resolve over MCP (stdio, the built server)', () => {
  it('lists, refuses without consent, previews with a token, resolves; a replayed token is refused', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const tool = (await client.listTools()).tools.find((t) => t.name === 'github_sync_resolve')!;
      expect(tool.annotations).toMatchObject({ destructiveHint: true, readOnlyHint: false });
      expect(tool.inputSchema.properties).toHaveProperty('confirm_token');
      expect(tool.inputSchema.properties).toHaveProperty('cursor');

      const listed = await client.callTool({ name: 'github_sync_resolve', arguments: {} });
      expect(listed.isError).toBeFalsy();
      expect(listed.structuredContent).toMatchObject({
        status: 'listed',
        counts: { total: 2, unresolved: 2, tables: { 'notes.notes': { unresolved: 2, resolved: 0 } } },
        conflicts: [expect.objectContaining({ key: '{"id":5}' }), expect.objectContaining({ key: '{"id":7}' })],
      });

      const resolutions = [
        { database: 'notes', table: 'notes', key: '{"id":5}', take: 'theirs' },
        { database: 'notes', table: 'notes', key: '7', take: 'ours' },
      ];
      const refused = await client.callTool({ name: 'github_sync_resolve', arguments: { resolutions } });
      expect(refused.isError).toBe(true);
      expect(text(refused)).toMatch(/consent.*dry_run: true.*confirm_token/s);
      expect(title(5)).toBe('ours');

      const before = fs.readFileSync(dbFile());
      const dry = await client.callTool({ name: 'github_sync_resolve', arguments: { resolutions, dry_run: true } });
      const plan = dry.structuredContent as { status: string; confirm_token: string; plan: Array<{ key: string; action: string; write: { line: string } | null }> };
      expect(plan.status).toBe('dry_run');
      expect(plan.plan.map((p) => [p.key, p.action])).toEqual([
        ['{"id":5}', 'update'],
        ['{"id":7}', 'keep_ours'],
      ]);
      expect(plan.plan[0]!.write!.line).toMatch(/"title":"theirs"/);
      expect(text(dry)).toContain(plan.confirm_token);
      expect(fs.readFileSync(dbFile()).equals(before)).toBe(true);

      const done = await client.callTool({ name: 'github_sync_resolve', arguments: { resolutions, confirm_token: plan.confirm_token } });
      expect(done.isError, text(done)).toBeFalsy();
      expect(done.structuredContent).toMatchObject({ status: 'resolved', base_advanced: true });
      expect(title(5)).toBe('theirs');
      expect(title(7)).toBe('ours');

      const replay = await client.callTool({ name: 'github_sync_resolve', arguments: { resolutions, confirm_token: plan.confirm_token } });
      expect(replay.structuredContent).toMatchObject({ status: 'none' });

      const pushed = await client.callTool({ name: 'github_sync_push', arguments: {} });
      expect(pushed.structuredContent).toMatchObject({ status: 'pushed' });
      expect(git(work, '--git-dir', bare, 'show', 'trunk:notes/notes.jsonl')).toMatch(/"id":7,"folder_id":\d+,"title":"ours"/);
    } finally {
      await close();
    }
  });

  it('a replayed confirm_token is refused while conflicts remain', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const five = [{ database: 'notes', table: 'notes', key: '5', take: 'theirs' }];
      const dry = await client.callTool({ name: 'github_sync_resolve', arguments: { resolutions: five, dry_run: true } });
      const token = (dry.structuredContent as { confirm_token: string }).confirm_token;
      const done = await client.callTool({ name: 'github_sync_resolve', arguments: { resolutions: five, confirm_token: token } });
      expect(done.structuredContent).toMatchObject({ status: 'resolved', base_advanced: false, counts: { unresolved: 1 } });
      // Another request with the used token: refused as used, nothing written.
      const seven = [{ database: 'notes', table: 'notes', key: '7', take: 'theirs' }];
      const replay = await client.callTool({ name: 'github_sync_resolve', arguments: { resolutions: seven, confirm_token: token } });
      expect(replay.isError).toBe(true);
      expect(text(replay)).toMatch(/already used|different request/);
      expect(title(7)).toBe('ours');
    } finally {
      await close();
    }
  });

  it('asks through elicitation when the client can; a decline changes nothing', async () => {
    const { client, close, asked, answer } = await connectWithConsent(root, 'decline');
    try {
      const resolutions = [{ database: 'notes', table: 'notes', key: '5', take: 'theirs' }];
      const declined = await client.callTool({ name: 'github_sync_resolve', arguments: { resolutions } });
      expect(declined.isError).toBe(true);
      expect(text(declined)).toMatch(/declined/);
      expect(title(5)).toBe('ours');
      expect(asked[0]).toMatch(/notes\.notes \{"id":5\}: REPLACE the local row with the remote row: .*"title":"theirs"/);
      answer.next = 'accept';
      const done = await client.callTool({ name: 'github_sync_resolve', arguments: { resolutions } });
      expect(done.isError, text(done)).toBeFalsy();
      expect(title(5)).toBe('theirs');
    } finally {
      await close();
    }
  });
});
