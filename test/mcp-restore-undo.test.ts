import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ElicitRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio, connectWithConsent } from './support/mcp-client.js';
import { defaultHostName } from '../src/root/host.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

const live = (name: string) => path.join(root, 'db', `${name}.db`);
const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

/** Every file under `dir` and its sha256: a dry run must leave all of them as they were. */
function treeHashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const file = path.join(e.parentPath, e.name);
    out[path.relative(dir, file)] = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  }
  return out;
}

/** Bytes of a live database and its companions, to compare "put back byte-identical". */
function liveBytes(name: string): Record<string, string | null> {
  return Object.fromEntries(['', '-wal', '-journal'].map((s) => [s || 'main', fs.existsSync(live(name) + s) ? createHash('sha256').update(fs.readFileSync(live(name) + s)).digest('hex') : null]));
}

/**
 * A snapshot of `a` with 25 notes; then, live, 15 more notes and a table of its own (`drafts`,
 * 2 rows): what a restore of the snapshot throws away.
 */
async function prepared(): Promise<void> {
  makeNotesDb(live('a'), 25);
  const { client, close } = await connectStdio(root);
  try {
    const r = await client.callTool({ name: 'data_backup', arguments: {} });
    expect(r.isError, text(r)).toBeFalsy();
  } finally {
    await close();
  }
  const db = new Database(live('a'));
  const add = db.prepare('INSERT INTO notes(folder_id, title, body) VALUES (1, ?, ?)');
  for (let i = 0; i < 15; i++) add.run(`since ${i}`, 'written after the snapshot');
  db.exec("CREATE TABLE drafts (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO drafts(body) VALUES ('x'), ('y');");
  db.close();
}

interface Compared {
  live_state: string;
  live_total: number | null;
  rows_lost: number;
  tables_only_live: string[];
  tables: Array<{ table: string; live: number | null; after: number | null; difference: number }>;
}

describe('informed consent: restore plans compare live and snapshot rows', () => {
  it('a dry run shows live vs snapshot rows per table, the snapshot age and host, and what is lost; it changes no byte under the root', async () => {
    await prepared();
    const before = treeHashes(root);
    const { client, close } = await connectStdio(root);
    try {
      const dry = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', dry_run: true } });
      expect(dry.isError, text(dry)).toBeFalsy();
      const s = dry.structuredContent as {
        data_root: string;
        snapshot: { age: string; host: string; this_machine: boolean; created_at: string };
        what_you_lose: string;
        databases: Array<{ name: string; compared: Compared }>;
      };
      expect(s.data_root).toBe(root);
      expect(s.snapshot.host).toBe(defaultHostName());
      expect(s.snapshot.this_machine).toBe(true);
      expect(s.snapshot.age).toMatch(/just now|s ago|min ago/);
      const c = s.databases[0]!.compared;
      expect(c.live_state).toBe('read');
      expect(c.tables).toContainEqual({ table: 'notes', live: 40, after: 25, difference: -15 });
      expect(c.tables).toContainEqual({ table: 'drafts', live: 2, after: null, difference: -2 });
      expect(c.tables).toContainEqual({ table: 'folders', live: 3, after: 3, difference: 0 });
      // Tables that change come first.
      expect(c.tables.at(-1)!.table).toBe('folders');
      expect(c.rows_lost).toBe(17);
      expect(c.tables_only_live).toEqual(['drafts']);
      expect(s.what_you_lose).toMatch(/17 rows added since the snapshot .* are lost; tables that exist only live and go away: drafts/);
      expect(s.what_you_lose).toContain(path.join(root, 'db.pre_restore_'));
      expect(text(dry)).toMatch(/notes: 40 live -> 25 snapshot \(-15\)/);
      expect(text(dry)).toContain(`on this machine (${defaultHostName()})`);
      expect(treeHashes(root)).toEqual(before);
    } finally {
      await close();
    }
    expect(treeHashes(root)).toEqual(before);
  });

  it('the elicitation message shows the same comparison, age, host and loss', async () => {
    await prepared();
    const asked: string[] = [];
    const { client, close } = await connectStdio(root, { capabilities: { elicitation: {} } });
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      asked.push(String(req.params.message));
      return { action: 'decline' };
    });
    try {
      const declined = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest' } });
      expect(declined.isError).toBe(true);
      expect(asked[0]).toMatch(/Restore snapshot snap-\S+ \(taken (just now|\d+ s ago|\d+ min ago), at .*, on this machine \(.*\)\)\? This replaces, in \//);
      expect(asked[0]).toContain(`in ${root}:`);
      expect(asked[0]).toMatch(/- a -> db\/a\.db \(28 rows in the snapshot, 45 live now; schema 0\)/);
      expect(asked[0]).toMatch(/notes: 40 live -> 25 snapshot \(-15\)/);
      expect(asked[0]).toMatch(/drafts: 2 live -> not in the snapshot \(-2, table goes away\)/);
      expect(asked[0]).toMatch(/What you lose: a: 17 rows added since the snapshot/);
      expect(asked[0]).toContain(`The current files are kept in ${path.join(root, 'db.pre_restore_')}`);
      expect(asked[0]).not.toMatch(/The current files move to/); // said once, not twice
    } finally {
      await close();
    }
  });
});

describe('data_restore_undo over MCP (stdio)', () => {
  it('is annotated destructive; without a way to ask it refuses; a dry run changes nothing; its token works once and puts the live files back byte-identical', async () => {
    await prepared();
    const beforeRestore = liveBytes('a');
    const { client, close } = await connectStdio(root);
    try {
      const tool = (await client.listTools()).tools.find((t) => t.name === 'data_restore_undo')!;
      expect(tool.annotations).toMatchObject({ destructiveHint: true, readOnlyHint: false });
      expect(tool.description).toMatch(/dry_run: true.*confirm_token/s);

      // Nothing restored yet: nothing to undo, and that is not an error.
      const nothing = await client.callTool({ name: 'data_restore_undo', arguments: { dry_run: true } });
      expect(nothing.isError, text(nothing)).toBeFalsy();
      expect((nothing.structuredContent as { status: string }).status).toBe('nothing_to_undo');
      expect(text(nothing)).toContain(root);

      const dryRestore = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', dry_run: true } });
      const token = (dryRestore.structuredContent as { confirm_token: string }).confirm_token;
      const restored = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', confirm_token: token } });
      expect(restored.isError, text(restored)).toBeFalsy();
      // The result names the real data root, not "<root>".
      expect(text(restored)).toContain(path.join(root, 'db.pre_restore_'));
      expect(text(restored)).not.toContain('<root>');
      const restoredBytes = liveBytes('a');
      expect(restoredBytes).not.toEqual(beforeRestore);

      const refused = await client.callTool({ name: 'data_restore_undo', arguments: {} });
      expect(refused.isError).toBe(true);
      expect(text(refused)).toMatch(/consent.*dry_run: true.*confirm_token/s);
      expect(liveBytes('a')).toEqual(restoredBytes);

      const tree = treeHashes(root);
      const dry = await client.callTool({ name: 'data_restore_undo', arguments: { dry_run: true } });
      expect(dry.isError, text(dry)).toBeFalsy();
      expect(treeHashes(root)).toEqual(tree);
      const plan = dry.structuredContent as { status: string; confirm_token: string; put_back_from: string; what_you_lose: string; databases: Array<{ compared: Compared }> };
      expect(plan.status).toBe('dry_run');
      expect(plan.put_back_from.startsWith(path.join(root, 'db.pre_restore_'))).toBe(true);
      // The restored state has 25 notes and no drafts; the undo brings back 40 notes and drafts.
      expect(plan.databases[0]!.compared.tables).toContainEqual({ table: 'notes', live: 25, after: 40, difference: 15 });
      expect(plan.databases[0]!.compared.tables).toContainEqual({ table: 'drafts', live: null, after: 2, difference: 2 });
      expect(plan.what_you_lose).toContain(path.join(root, 'db.pre_restore_'));

      const done = await client.callTool({ name: 'data_restore_undo', arguments: { confirm_token: plan.confirm_token } });
      expect(done.isError, text(done)).toBeFalsy();
      const r = done.structuredContent as { status: string; restored_files_kept_in: string };
      expect(r.status).toBe('undone');
      expect(r.restored_files_kept_in.startsWith(path.join(root, 'db.pre_restore_'))).toBe(true);
      expect(fs.existsSync(r.restored_files_kept_in)).toBe(true);
      expect(liveBytes('a')).toEqual(beforeRestore);

      // The token worked once.
      const replay = await client.callTool({ name: 'data_restore_undo', arguments: { confirm_token: plan.confirm_token } });
      expect(replay.isError).toBe(true);
      expect(text(replay)).toMatch(/already used/);
      expect(liveBytes('a')).toEqual(beforeRestore);

      // Undo twice: nothing to undo, not an error, nothing changed.
      const again = await client.callTool({ name: 'data_restore_undo', arguments: { dry_run: true } });
      expect(again.isError, text(again)).toBeFalsy();
      expect((again.structuredContent as { status: string }).status).toBe('nothing_to_undo');
      expect(text(again)).toMatch(/Nothing to undo: the last restore \(snap-[^)]+\) was already undone/);
      expect(liveBytes('a')).toEqual(beforeRestore);
    } finally {
      await close();
    }
  });

  it('asks through elicitation when the client can: a decline changes nothing, an accept puts the files back; a second undo says nothing to undo', async () => {
    await prepared();
    const beforeRestore = liveBytes('a');
    const { client, close, asked, answer } = await connectWithConsent(root, 'accept');
    try {
      const restored = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest' } });
      expect(restored.isError, text(restored)).toBeFalsy();
      const restoredBytes = liveBytes('a');

      answer.next = 'decline';
      const declined = await client.callTool({ name: 'data_restore_undo', arguments: {} });
      expect(declined.isError).toBe(true);
      expect(text(declined)).toMatch(/declined/);
      expect(liveBytes('a')).toEqual(restoredBytes);
      expect(asked[1]).toMatch(/^Undo: put back \//);
      expect(asked[1]).toMatch(/notes: 25 live -> 40 after undo \(\+15\)/);
      expect(asked[1]).toMatch(/What you lose: a: /);

      answer.next = 'accept';
      const done = await client.callTool({ name: 'data_restore_undo', arguments: {} });
      expect(done.isError, text(done)).toBeFalsy();
      expect(liveBytes('a')).toEqual(beforeRestore);

      const twice = await client.callTool({ name: 'data_restore_undo', arguments: {} });
      expect(twice.isError, text(twice)).toBeFalsy();
      expect((twice.structuredContent as { status: string }).status).toBe('nothing_to_undo');
      expect(asked).toHaveLength(3); // nothing to undo asks nothing
      expect(liveBytes('a')).toEqual(beforeRestore);
    } finally {
      await close();
    }
  });
});

describe('results name the real data root', () => {
  it('a backup with no databases says where it looked, and health_status too', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const r = await client.callTool({ name: 'data_backup', arguments: {} });
      expect(r.isError).toBe(true);
      expect(text(r)).toContain(path.join(root, 'db'));
      expect(text(r)).not.toContain('<root>');
      const h = await client.callTool({ name: 'health_status', arguments: {} });
      expect(JSON.stringify(h.structuredContent)).toContain(path.join(root, 'db'));
      expect(JSON.stringify(h.structuredContent)).not.toContain('<root>');
    } finally {
      await close();
    }
  });
});
