import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../src/root/config.js';
import { formatSnapshotId } from '../src/snapshot/id.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

/** What an agent receives for one call, serialized: the bound every tool result must stay under. */
const BOUND = 32 * 1024;

interface Lists {
  truncated: Array<{ path: string; total: number; offset: number; shown: number; next_cursor: string | null }>;
  strings_cut: number;
  result_file: string;
}
type Structured = Record<string, unknown> & { lists?: Lists };

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-bounded-');
  root = path.join(work, 'root');
});
afterEach(() => rmrf(work));

/** Sizes seen, for the report: tool -> [whole result bytes, bounded result bytes]. */
const sizes: Record<string, [number, number]> = {};
afterEach(() => console.log(JSON.stringify(sizes)));

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<{ s: Structured; bytes: number; text: string }> {
  const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  expect(r.isError, text).toBeFalsy();
  const bytes = Buffer.byteLength(JSON.stringify(r));
  expect(bytes).toBeLessThan(BOUND);
  const s = r.structuredContent as Structured;
  if (!args.cursor) sizes[name] = [s.lists ? fs.statSync(s.lists.result_file).size : bytes, bytes];
  return { s, bytes, text };
}

/**
 * Follow next_cursor for the list at `listPath` until the end; `pick` reads that list out of a
 * result (a page shows it at the same place). Returns every item, in order, keyed for records.
 */
async function pageAll(client: Client, name: string, args: Record<string, unknown>, first: Structured, listPath: string, pick: (s: Structured) => unknown): Promise<unknown[]> {
  const items = (s: Structured) => {
    const v = pick(s);
    return Array.isArray(v) ? v : Object.entries(v as object);
  };
  const out = [...items(first)];
  let cut = first.lists?.truncated.find((l) => l.path === listPath);
  expect(cut, `${listPath} is cut in the first result`).toBeDefined();
  const total = cut!.total;
  let pages = 1;
  while (cut?.next_cursor) {
    const { s } = await call(client, name, { ...args, cursor: cut.next_cursor, limit: 200 });
    cut = s.lists?.truncated.find((l) => l.path === listPath);
    expect(cut?.offset).toBe(out.length);
    out.push(...items(s));
    pages++;
  }
  expect(out).toHaveLength(total);
  expect(pages).toBeGreaterThan(1);
  return out;
}

function whole(s: Structured): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(s.lists!.result_file, 'utf8')) as Record<string, unknown>;
}

/** A database with `n` tables of one row each. */
function wideDb(file: string, n: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.transaction(() => {
    for (let i = 0; i < n; i++) db.exec(`CREATE TABLE t${String(i).padStart(4, '0')} (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t${String(i).padStart(4, '0')} VALUES (1, 'row');`);
  })();
  db.close();
}

describe('every tool result an agent receives stays small, and paging returns the rest exactly once', () => {
  it('a pull with 3,000 conflicting rows; a push, status and import of 300 tables', async () => {
    const bare = seededBareRemote(work);
    makeNotesDb(path.join(root, 'db', 'notes.db'), 3000);
    wideDb(path.join(root, 'db', 'wide.db'), 300);
    writeConfigFile(root, { sync: { github: { remote_url: bare } } });
    const { client, close } = await connectStdio(root);
    try {
      const push = await call(client, 'github_sync_push', {});
      expect(push.s.status).toBe('pushed');
      const files = await pageAll(client, 'github_sync_push', {}, push.s, 'files_changed', (s) => s.files_changed);
      expect(files).toEqual((whole(push.s).files_changed as string[]));
      expect(new Set(files).size).toBe(files.length);
      expect(files).toEqual(expect.arrayContaining(['wide/t0299.jsonl', 'notes/notes.jsonl', 'manifest.json']));
      const rows = await pageAll(client, 'github_sync_push', {}, push.s, 'rows', (s) => s.rows);
      expect(Object.fromEntries(rows as Array<[string, number]>)).toEqual(whole(push.s).rows);

      // Both sides change every note; this side also changes every wide table.
      const clone = path.join(work, 'clone');
      git(work, 'clone', '-q', bare, clone);
      const jsonl = path.join(clone, 'notes', 'notes.jsonl');
      fs.writeFileSync(jsonl, fs.readFileSync(jsonl, 'utf8').replace(/"title":"note /g, '"title":"theirs '));
      git(clone, 'commit', '-q', '-am', 'edit every note on the remote');
      git(clone, 'push', '-q', 'origin', 'HEAD:trunk');
      const notes = new Database(path.join(root, 'db', 'notes.db'));
      notes.exec("UPDATE notes SET title = 'ours ' || id");
      notes.close();
      const wide = new Database(path.join(root, 'db', 'wide.db'));
      for (let i = 0; i < 300; i++) wide.exec(`UPDATE t${String(i).padStart(4, '0')} SET v = 'changed'`);
      wide.close();

      const status = await call(client, 'github_sync_status', {});
      const local = await pageAll(client, 'github_sync_status', {}, status.s, 'local_changes', (s) => s.local_changes);
      expect(Object.fromEntries(local as Array<[string, number]>)).toEqual(whole(status.s).local_changes);
      expect(local).toHaveLength(301);

      const pull = await call(client, 'github_sync_pull', {});
      expect(pull.s.status).toBe('conflicts');
      expect(pull.s.lists!.truncated[0]).toMatchObject({ path: 'conflicts', total: 3000, offset: 0 });
      expect(pull.text).toMatch(/3000 row\(s\) changed on both sides/);
      expect(pull.text).toMatch(/Shown in part: conflicts 1-\d+ of 3000/);
      const conflicts = (await pageAll(client, 'github_sync_pull', {}, pull.s, 'conflicts', (s) => s.conflicts)) as Array<{ key: string; ours: string; theirs: string }>;
      expect(conflicts).toEqual(whole(pull.s).conflicts);
      expect(new Set(conflicts.map((c) => c.key)).size).toBe(3000);
      expect(conflicts.find((c) => c.key === '{"id":3000}')).toMatchObject({ ours: expect.stringContaining('"title":"ours 3000"'), theirs: expect.stringContaining('"title":"theirs 2999"') });

      const imported = await call(client, 'github_sync_import', { clone_dir: clone, dry_run: true });
      const dbs = imported.s.databases as Array<{ name: string }>;
      const wideAt = dbs.findIndex((d) => d.name === 'wide');
      const tables = await pageAll(client, 'github_sync_import', { clone_dir: clone, dry_run: true }, imported.s, `databases[${wideAt}].rows`, (s) => (s.databases as Array<{ name: string; rows: object }>).find((d) => d.name === 'wide')!.rows);
      expect(tables).toHaveLength(300);
    } finally {
      await close();
    }
  });

  it('a backup, a restore plan and health of 40 databases, one with 300 tables', async () => {
    for (let i = 0; i < 40; i++) makeNotesDb(path.join(root, 'db', `db${String(i).padStart(2, '0')}.db`), 2);
    wideDb(path.join(root, 'db', 'wide.db'), 300);
    const { client, close } = await connectStdio(root);
    try {
      const backup = await call(client, 'data_backup', {});
      const dbs = await pageAll(client, 'data_backup', {}, backup.s, 'databases', (s) => s.databases);
      expect((dbs as Array<{ name: string }>).map((d) => d.name)).toEqual((whole(backup.s).databases as Array<{ name: string }>).map((d) => d.name));
      expect(dbs).toHaveLength(41);

      const plan = await call(client, 'data_restore', { snapshot_id: 'latest', dry_run: true });
      expect(plan.s.confirm_token).toEqual(expect.any(String));
      const planned = await pageAll(client, 'data_restore', { snapshot_id: 'latest', dry_run: true }, plan.s, 'databases', (s) => s.databases);
      expect(planned).toHaveLength(41);
      // A list inside an item beyond the first sample: its cursor comes with the page showing the item.
      const wideAt = (whole(plan.s).databases as Array<{ name: string }>).findIndex((d) => d.name === 'wide');
      expect(wideAt).toBeGreaterThanOrEqual(20);
      let page = plan.s;
      while (!page.lists!.truncated.some((l) => l.path === `databases[${wideAt}].rows`)) {
        const next = page.lists!.truncated.find((l) => l.path === 'databases')!.next_cursor;
        page = (await call(client, 'data_restore', { snapshot_id: 'latest', dry_run: true, cursor: next })).s;
      }
      const pageStart = page.lists!.truncated.find((l) => l.path === 'databases')!.offset;
      const tables = await pageAll(client, 'data_restore', { snapshot_id: 'latest', dry_run: true }, page, `databases[${wideAt}].rows`, (s) => {
        const shown = s.databases as Array<{ name: string; rows: object }>;
        return (shown.find((d) => d.name === 'wide') ?? shown[wideAt - pageStart])!.rows;
      });
      expect(tables.map((t) => (t as [string, number])[0])).toEqual(Array.from({ length: 300 }, (_, i) => `t${String(i).padStart(4, '0')}`));
    } finally {
      await close();
    }
  });

  it('health with 400 configured databases, most missing: details are cut, never the result', async () => {
    const databases = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`missing-database-number-${i}`, { path: `db/missing-${i}.db` }]));
    makeNotesDb(path.join(root, 'db', 'missing-0.db'), 2);
    writeConfigFile(root, { databases });
    const { client, close } = await connectStdio(root);
    try {
      const health = await call(client, 'health_status', {});
      expect(health.s.lists!.strings_cut).toBeGreaterThan(0);
      expect(JSON.stringify(whole(health.s))).toContain('missing-database-number-399');
      // No fixer: an error result (docs/mcp.md), still bounded and still carrying its structured result.
      const fix = (await client.callTool({ name: 'health_fix', arguments: { requirement: 'local_backups.databases-found' } })) as CallToolResult;
      expect(fix.isError).toBe(true);
      expect(Buffer.byteLength(JSON.stringify(fix))).toBeLessThan(BOUND);
      expect(fix.structuredContent).toMatchObject({ requirement: 'local_backups.databases-found', status: 'failed' });
    } finally {
      await close();
    }
  });

  it('a list of 400 snapshots, as a tool and as a resource', async () => {
    makeNotesDb(path.join(root, 'db', 'notes.db'), 2);
    const { client, close } = await connectStdio(root);
    try {
      await call(client, 'data_backup', { manual: true });
      const backups = path.join(root, 'backups');
      const archive = fs.readdirSync(backups).find((n) => /\.tar\.(zst|gz)$/.test(n))!;
      const ext = archive.slice(archive.indexOf('.tar.'));
      for (let i = 0; i < 400; i++) fs.linkSync(path.join(backups, archive), path.join(backups, `${formatSnapshotId(new Date(Date.UTC(2025, 0, 1, i)), { manual: i % 2 === 0 })}${ext}`));
      const list = await call(client, 'data_backup_list', { where: 'local' });
      expect(list.s.lists!.truncated[0]).toMatchObject({ path: 'snapshots', total: 401 });
      const all = (await pageAll(client, 'data_backup_list', { where: 'local' }, list.s, 'snapshots', (s) => s.snapshots)) as Array<{ id: string }>;
      expect(all.map((s) => s.id)).toEqual((whole(list.s).snapshots as Array<{ id: string }>).map((s) => s.id));
      expect(new Set(all.map((s) => s.id)).size).toBe(401);

      const res = await client.readResource({ uri: 'backups://snapshots' });
      const text = (res.contents[0] as { text: string }).text;
      expect(Buffer.byteLength(text)).toBeLessThan(BOUND);
      const body = JSON.parse(text) as Structured;
      expect(body.lists!.truncated[0]).toMatchObject({ path: 'snapshots', total: 401 });
      // Its cursor pages through the tool of the same content.
      const next = await call(client, 'data_backup_list', { cursor: body.lists!.truncated[0]!.next_cursor });
      expect((next.s.snapshots as unknown[]).length).toBeGreaterThan(0);
      const health = await client.readResource({ uri: 'health://components' });
      expect(Buffer.byteLength((health.contents[0] as { text: string }).text)).toBeLessThan(BOUND);
    } finally {
      await close();
    }
  });

  it('a cursor of another tool or a made-up one is refused with what to do', async () => {
    makeNotesDb(path.join(root, 'db', 'notes.db'), 2);
    const { client, close } = await connectStdio(root);
    try {
      const bad = (await client.callTool({ name: 'data_backup_list', arguments: { cursor: 'not-a-cursor' } })) as CallToolResult;
      expect(bad.isError).toBe(true);
      expect(JSON.stringify(bad.content)).toMatch(/cursor is not usable.*without cursor/);
      const other = Buffer.from(JSON.stringify({ v: 1, t: 'github_sync_pull', r: 'github_sync_pull-1795964909737-0123456789ab', p: ['conflicts'], o: 20 })).toString('base64url');
      const wrong = (await client.callTool({ name: 'data_backup_list', arguments: { cursor: other } })) as CallToolResult;
      expect(JSON.stringify(wrong.content)).toMatch(/belongs to github_sync_pull, not data_backup_list/);
    } finally {
      await close();
    }
  });

  it('an error that echoes a huge input back is cut too (a 100,000-character snapshot id, a 200,000-character component), and an empty databases filter is refused', async () => {
    fs.mkdirSync(path.join(root, 'db'), { recursive: true });
    const { client, close } = await connectStdio(root);
    try {
      for (const [name, args] of [
        ['data_restore', { snapshot_id: 'x'.repeat(100_000), dry_run: true }],
        ['health_set_enabled', { component: 'c'.repeat(200_000), enabled: false }],
      ] as const) {
        const r = (await client.callTool({ name, arguments: args })) as { isError?: boolean; content: Array<{ text?: string }> };
        const text = r.content.map((c) => c.text ?? '').join('');
        expect(r.isError, name).toBe(true);
        expect(text.length, name).toBeLessThanOrEqual(2_100);
        expect(text, name).toMatch(/characters cut/);
      }
      // An empty filter is refused, never read as "every database".
      const empty = (await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', databases: [], dry_run: true } })) as { isError?: boolean; content: Array<{ text?: string }> };
      expect(empty.isError).toBe(true);
      expect(empty.content.map((c) => c.text).join('')).toMatch(/name at least one database/);
    } finally {
      await close();
    }
  });
});
