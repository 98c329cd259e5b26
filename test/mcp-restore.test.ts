import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dumpTables, fileState } from './support/db-snapshot.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio, connectWithConsent } from './support/mcp-client.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

const live = (name: string) => path.join(root, 'db', `${name}.db`);
const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

async function prepared(): Promise<{ snapshotContent: Record<string, unknown[]> }> {
  makeNotesDb(live('a'), 25);
  const { client, close } = await connectStdio(root);
  try {
    const r = await client.callTool({ name: 'data_backup', arguments: {} });
    expect(r.isError).toBeFalsy();
  } finally {
    await close();
  }
  const snapshotContent = dumpTables(live('a'));
  const db = new Database(live('a'));
  db.exec('DELETE FROM notes WHERE id > 10');
  db.close();
  return { snapshotContent };
}

describe('data_restore over MCP (stdio)', () => {
  it('is annotated destructive, refuses without consent, then works with a dry run token', async () => {
    const { snapshotContent } = await prepared();
    const before = fileState(live('a'));
    const { client, close } = await connectStdio(root);
    try {
      const tool = (await client.listTools()).tools.find((t) => t.name === 'data_restore')!;
      expect(tool.annotations).toMatchObject({ destructiveHint: true, readOnlyHint: false });
      expect(tool.inputSchema.properties).toHaveProperty('confirm_token');

      const refused = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest' } });
      expect(refused.isError).toBe(true);
      expect(text(refused)).toMatch(/consent.*dry_run: true.*confirm_token/s);
      expect(fileState(live('a'))).toEqual(before);

      const dry = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', dry_run: true } });
      const plan = dry.structuredContent as { confirm_token: string; dry_run: boolean; databases: Array<{ rows: Record<string, number> }> };
      expect(plan.dry_run).toBe(true);
      expect(plan.databases[0]!.rows.notes).toBe(25);
      expect(fileState(live('a'))).toEqual(before);

      // A token for another request does not carry over.
      const wrong = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', databases: ['a'], confirm_token: `${plan.confirm_token.split('.')[0]}.forged` } });
      expect(wrong.isError).toBe(true);
      expect(text(wrong)).toMatch(/different request|new dry run/);
      expect(fileState(live('a'))).toEqual(before);

      const done = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest', confirm_token: plan.confirm_token } });
      expect(done.isError, text(done)).toBeFalsy();
      expect(dumpTables(live('a'))).toEqual(snapshotContent);
    } finally {
      await close();
    }
  });

  it('asks the user through elicitation when the client supports it; a decline changes nothing', async () => {
    const { snapshotContent } = await prepared();
    const before = fileState(live('a'));
    const { client, close, asked, answer } = await connectWithConsent(root, 'decline');
    try {
      const declined = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest' } });
      expect(declined.isError).toBe(true);
      expect(text(declined)).toMatch(/declined/);
      expect(fileState(live('a'))).toEqual(before);
      expect(asked[0]).toMatch(/Restore snapshot snap-.*\n- a -> db\/a\.db \(\d+ rows/);

      answer.next = 'accept';
      const done = await client.callTool({ name: 'data_restore', arguments: { snapshot_id: 'latest' } });
      expect(done.isError, text(done)).toBeFalsy();
      expect(asked).toHaveLength(2);
      expect(dumpTables(live('a'))).toEqual(snapshotContent);
    } finally {
      await close();
    }
  });
});
