import path from 'node:path';
import Database from 'better-sqlite3';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, expect, it } from 'vitest';
import fs from 'node:fs';
import { rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

/** What an agent receives for one call, serialized (the same bound as mcp-bounded.test.ts). */
const BOUND = 32 * 1024;

let work: string;
let root: string;
beforeEach(() => {
  work = tempRoot('wb-keys-');
  root = path.join(work, 'root');
});
afterEach(() => rmrf(work));

// Map keys (table names) are never cut, only string values are: a database whose tables have long
// names gives a tool result far over the bound.
it('tool results stay bounded when table names (map keys) are long', async () => {
  fs.mkdirSync(path.join(root, 'db'), { recursive: true });
  const db = new Database(path.join(root, 'db', 'long.db'));
  const long = 't'.repeat(40_000);
  db.exec(`CREATE TABLE "${long}"(x); INSERT INTO "${long}" VALUES (1);`);
  db.close();
  const { client, close } = await connectStdio(root);
  try {
    for (const [name, args] of [
      ['data_backup', {}],
      ['data_backup_list', {}],
      ['health_status', {}],
      ['data_restore', { snapshot_id: 'latest', dry_run: true }],
    ] as const) {
      const r = (await client.callTool({ name, arguments: args })) as CallToolResult;
      expect(r.isError, JSON.stringify(r.content).slice(0, 300)).toBeFalsy();
      expect(Buffer.byteLength(JSON.stringify(r)), name).toBeLessThan(BOUND);
    }
  } finally {
    await close();
  }
});
