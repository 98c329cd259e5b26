import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio, startHttpServerProcess } from './support/mcp-client.js';

let root: string;
beforeEach(() => {
  root = tempRoot();
});
afterEach(() => rmrf(root));

function structured<T>(result: unknown): T {
  return (result as CallToolResult).structuredContent as T;
}

describe('MCP over stdio', () => {
  it('lists both tools with schemas, backs up with progress, then lists the snapshot', async () => {
    makeNotesDb(path.join(root, 'db', 'notes.db'), 30);
    makeNotesDb(path.join(root, 'db', 'other.db'), 10);
    const { client, close, stderr } = await connectStdio(root);
    try {
      const { tools } = await client.listTools();
      const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
      expect(Object.keys(byName)).toEqual(expect.arrayContaining(['data_backup', 'data_backup_list']));
      expect(byName.data_backup!.inputSchema.properties).toHaveProperty('manual');
      expect(byName.data_backup!.outputSchema?.properties).toHaveProperty('snapshot_id');
      expect(byName.data_backup!.annotations?.readOnlyHint).toBe(false);
      expect(byName.data_backup_list!.annotations?.readOnlyHint).toBe(true);
      expect(byName.data_backup_list!.outputSchema?.properties).toHaveProperty('snapshots');

      const progress: string[] = [];
      const backup = await client.callTool({ name: 'data_backup', arguments: { manual: true } }, undefined, {
        onprogress: (p) => progress.push(String(p.message)),
      });
      expect(backup.isError).toBeFalsy();
      const made = structured<{ snapshot_id: string; databases: Array<{ name: string; rows: Record<string, number> }> }>(backup);
      expect(made.snapshot_id).toMatch(/-manual$/);
      expect(made.databases.find((d) => d.name === 'notes')?.rows.notes).toBe(30);
      // One notification per database, then the archive and the retention sweep.
      expect(progress.filter((m) => m.startsWith('copied'))).toHaveLength(2);
      expect(progress.length).toBeGreaterThanOrEqual(4);

      const list = await client.callTool({ name: 'data_backup_list', arguments: {} });
      const listed = structured<{ snapshots: Array<{ id: string; local: boolean; manual: boolean }> }>(list);
      expect(listed.snapshots).toEqual([expect.objectContaining({ id: made.snapshot_id, local: true, manual: true })]);
    } finally {
      await close();
    }
    // Logs went to stderr, and nothing broke the protocol on stdout (the calls above parsed).
    expect(stderr()).toMatch(/snapshot written/);
  });

  it('returns a tool error the agent can act on', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const result = (await client.callTool({ name: 'data_backup', arguments: {} })) as CallToolResult;
      expect(result.isError).toBe(true);
      const text = (result.content[0] as { text: string }).text;
      expect(text).toMatch(/nothing to back up/);
      expect(text).toMatch(/wb-backup\.yaml/);
      const bad = (await client.callTool({ name: 'data_backup_list', arguments: { where: 'moon' } })) as CallToolResult;
      expect(bad.isError).toBe(true);
    } finally {
      await close();
    }
  });
});

describe('MCP over Streamable HTTP', () => {
  it('round-trips data_backup and data_backup_list through the SDK client', async () => {
    makeNotesDb(path.join(root, 'db', 'notes.db'), 12);
    const server = await startHttpServerProcess(root);
    const client = new Client({ name: 'wb-backup-test', version: '1.0.0' });
    try {
      await client.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`)));
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['data_backup', 'data_backup_list']));
      const backup = await client.callTool({ name: 'data_backup', arguments: {} });
      const id = structured<{ snapshot_id: string }>(backup).snapshot_id;
      const list = structured<{ snapshots: Array<{ id: string }> }>(await client.callTool({ name: 'data_backup_list', arguments: {} }));
      expect(list.snapshots.map((s) => s.id)).toEqual([id]);
    } finally {
      await client.close();
      await server.stop();
    }
  });

  it('refuses a foreign Host header and a foreign Origin (DNS rebinding)', async () => {
    const server = await startHttpServerProcess(root);
    try {
      const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } };
      const port = new URL(server.url).port;
      // fetch cannot forge Host, so speak HTTP through node:http.
      const http = await import('node:http');
      const post = (headers: Record<string, string>) =>
        new Promise<number>((resolve, reject) => {
          const req = http.request(
            { host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.on('error', reject);
          req.end(JSON.stringify(init));
        });
      expect(await post({ host: `evil.example:${port}` })).toBe(403);
      expect(await post({ host: `127.0.0.1:${port}`, origin: 'http://evil.example' })).toBe(403);
      expect(await post({ host: `127.0.0.1:${port}` })).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it('will not serve a non-loopback address without a bearer token, and requires it when set', async () => {
    await expect(startHttpServerProcess(root, ['--host', '0.0.0.0'])).rejects.toThrow(/WB_BACKUP_HTTP_TOKEN/);
    const server = await startHttpServerProcess(root, ['--host', '0.0.0.0'], { WB_BACKUP_HTTP_TOKEN: 'test-secret-123-long-enough-to-be-accepted' });
    try {
      const url = server.url.replace('0.0.0.0', '127.0.0.1');
      const denied = await fetch(`${url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(denied.status).toBe(401);
      const client = new Client({ name: 't', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: { Authorization: 'Bearer test-secret-123-long-enough-to-be-accepted' } } }));
      expect((await client.listTools()).tools.length).toBeGreaterThanOrEqual(2);
      await client.close();
    } finally {
      await server.stop();
    }
    expect(fs.existsSync(root)).toBe(true);
  });
});
