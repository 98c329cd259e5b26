import path from 'node:path';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-cursor-');
  root = path.join(work, 'root');
});
afterEach(() => rmrf(work));

type Lists = { truncated: Array<{ path: string; next_cursor: string | null }>; result_file: string };

// A cursor names its tool and its stored result separately; the result id is not checked against the tool.
it('a cursor rewritten to name another tool is refused, not used to read that tool\'s stored result', async () => {
  for (let i = 0; i < 30; i++) makeNotesDb(path.join(root, 'db', `db${String(i).padStart(2, '0')}.db`), 1);
  const { client, close } = await connectStdio(root);
  try {
    const backup = (await client.callTool({ name: 'data_backup', arguments: {} })) as CallToolResult;
    const lists = (backup.structuredContent as { lists: Lists }).lists;
    const cursor = lists.truncated.find((l) => l.path === 'databases')!.next_cursor!;
    const data = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { t: string };
    for (const tool of ['data_backup_list', 'health_status', 'github_sync_status']) {
      const forged = Buffer.from(JSON.stringify({ ...data, t: tool })).toString('base64url');
      const r = (await client.callTool({ name: tool, arguments: { cursor: forged } })) as CallToolResult;
      expect(r.isError, `${tool}: ${JSON.stringify(r.structuredContent ?? r.content).slice(0, 300)}`).toBe(true);
      expect(JSON.stringify(r.content), tool).toMatch(/cursor is not usable/);
    }
  } finally {
    await close();
  }
});
