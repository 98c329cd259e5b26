import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeConfigFile } from '../src/root/config.js';
import { git, seededBareRemote } from './support/bare-remote.js';
import { makeNotesDb, rmrf, tempRoot } from './support/fixtures.js';
import { connectStdio } from './support/mcp-client.js';

// Progress notifications (issue 15): an SDK client passes a progress token and collects what the
// built server sends for each long tool. The MCP spec wants `progress` to increase with every
// notification and never pass `total`; the counts asked for are per byte of data, not per second.

const MiB = 1024 * 1024;
type ToolResult = { isError?: boolean; structuredContent?: Record<string, unknown> };

/** Calls a tool with a progress token; every notification it received, in order. */
async function callWithProgress(client: Client, name: string, args: Record<string, unknown>): Promise<{ result: ToolResult; seen: Progress[] }> {
  const seen: Progress[] = [];
  const result = (await client.callTool({ name, arguments: args }, undefined, { onprogress: (p) => seen.push(p), timeout: 600_000 })) as ToolResult;
  return { result, seen };
}

/** What the spec asks of every sequence: strictly increasing, and never past a total that is given. */
function expectWellFormed(seen: readonly Progress[]): void {
  for (const [i, p] of seen.entries()) {
    if (i > 0) expect(p.progress, `notification ${i}: ${JSON.stringify(seen.slice(i - 1, i + 1))}`).toBeGreaterThan(seen[i - 1]!.progress);
    if (p.total !== undefined) expect(p.progress).toBeLessThanOrEqual(p.total);
    expect(typeof p.message).toBe('string');
  }
}

/** A database of about `mib` MiB of random blobs (incompressible), made in one transaction. */
function makeBigDb(file: string, mib: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE blobs(id INTEGER PRIMARY KEY, data BLOB)');
  const rows = mib * 16; // 64 KiB each
  db.exec(`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${rows}) INSERT INTO blobs(data) SELECT randomblob(65536) FROM c`);
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
}

describe('one large database: progress while it is copied, archived and restored', () => {
  const BIG_MIB = 256;
  let work: string;
  let root: string;
  beforeAll(() => {
    work = tempRoot('wb-progress-');
    root = path.join(work, 'root');
    makeBigDb(path.join(root, 'db', 'big.db'), BIG_MIB);
    makeNotesDb(path.join(root, 'db', 'notes.db'), 50);
  });
  afterAll(() => rmrf(work));

  it('data_backup sends notifications during the copy of one big database, and at least one per 16 MiB in all', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const { result, seen } = await callWithProgress(client, 'data_backup', {});
      expect(result.isError).toBeFalsy();
      expectWellFormed(seen);
      const dataMiB = fs.statSync(path.join(root, 'db', 'big.db')).size / MiB;
      expect(seen.length, JSON.stringify(seen.map((p) => [p.progress, p.message]))).toBeGreaterThanOrEqual(Math.floor(dataMiB / 16));
      // Not one notification then silence: several while VACUUM INTO writes the copy, each with more bytes.
      const duringCopy = seen.filter((p) => p.message === 'copying big.db');
      expect(duringCopy.length, JSON.stringify(seen.map((p) => [p.progress, p.message]))).toBeGreaterThan(1);
      expect(duringCopy.some((p) => p.progress > 0)).toBe(true);
      // And while the archive is compressed.
      expect(seen.filter((p) => /compressing|copying notes\.db/.test(p.message ?? '')).length).toBeGreaterThan(0);
      // Bytes: the last value counts the copy and the archive of the big database at least once each.
      expect(seen.at(-1)!.progress).toBeGreaterThanOrEqual(2 * BIG_MIB * MiB * 0.95);
    } finally {
      await close();
    }
  });

  it('data_restore sends increasing byte counts while it unpacks and verifies', async () => {
    const { client, close } = await connectStdio(root);
    try {
      const list = (await client.callTool({ name: 'data_backup_list', arguments: { where: 'local' } })) as ToolResult;
      const id = (list.structuredContent!.snapshots as Array<{ id: string }>)[0]!.id;
      const { result, seen } = await callWithProgress(client, 'data_restore', { snapshot_id: id, dry_run: true });
      expect(result.isError).toBeFalsy();
      expectWellFormed(seen);
      const dataMiB = fs.statSync(path.join(root, 'db', 'big.db')).size / MiB;
      // Unpacked and verified: each byte counts twice, so at least one value per 32 MiB of data per step.
      expect(seen.length, JSON.stringify(seen.map((p) => [p.progress, p.message]))).toBeGreaterThanOrEqual(Math.floor(dataMiB / 32));
      expect(seen.filter((p) => /^unpacking/.test(p.message ?? '')).length).toBeGreaterThan(1);
      expect(seen.at(-1)!.progress).toBeGreaterThanOrEqual(2 * BIG_MIB * MiB * 0.95);
    } finally {
      await close();
    }
  });
});

describe('the github_sync tools send progress', () => {
  let work: string;
  let root: string;
  beforeAll(() => {
    work = tempRoot('wb-progress-sync-');
    root = path.join(work, 'root');
    makeNotesDb(path.join(root, 'db', 'notes.db'), 20_000);
  });
  afterAll(() => rmrf(work));

  it('push, pull and import each send well-formed notifications naming their steps', async () => {
    const bare = seededBareRemote(work);
    writeConfigFile(root, { sync: { github: { remote_url: bare } } });
    const { client, close } = await connectStdio(root);
    try {
      const push = await callWithProgress(client, 'github_sync_push', {});
      expect(push.result.structuredContent).toMatchObject({ status: 'pushed' });
      expectWellFormed(push.seen);
      expect(push.seen.length).toBeGreaterThan(1);
      expect(push.seen.some((p) => p.message === 'materializing notes/notes.jsonl'), JSON.stringify(push.seen)).toBe(true);

      const other = path.join(work, 'other');
      git(work, 'clone', '-q', bare, other);
      const file = path.join(other, 'notes', 'notes.jsonl');
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('"note 0"', '"edited elsewhere"'));
      git(other, 'commit', '-q', '-am', 'edit on the remote');
      git(other, 'push', '-q', 'origin', 'HEAD:trunk');
      const pull = await callWithProgress(client, 'github_sync_pull', {});
      expect(pull.result.isError).toBeFalsy();
      expectWellFormed(pull.seen);
      expect(pull.seen.length).toBeGreaterThan(0);
    } finally {
      await close();
    }

    // Import into a fresh root (nothing replaced, so no consent is needed).
    const fresh = path.join(work, 'fresh');
    fs.mkdirSync(path.join(fresh, 'db'), { recursive: true });
    const clone = path.join(work, 'clone');
    git(work, 'clone', '-q', bare, clone);
    const second = await connectStdio(fresh);
    try {
      const imported = await callWithProgress(second.client, 'github_sync_import', { clone_dir: clone });
      expect(imported.result.isError, JSON.stringify(imported.result)).toBeFalsy();
      expectWellFormed(imported.seen);
      expect(imported.seen.length).toBeGreaterThan(0);
      expect(imported.seen.some((p) => /^(importing|built) notes/.test(p.message ?? ''))).toBe(true);
    } finally {
      await second.close();
    }
  });
});
