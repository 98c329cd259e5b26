import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../config.js';
import { runGit } from '../git.js';
import { materialize } from './materialize.js';
import { gitOptionsFor, readState, resolveBranchFor, syncConfig, syncDir } from './push.js';

export const SyncStatusSchema = z.object({
  configured: z.boolean(),
  branch: z.string().nullable(),
  last_synced_sha: z.string().nullable(),
  last_sync_at: z.string().nullable(),
  remote_head: z.string().nullable(),
  behind: z.number().describe('commits on the remote since the last sync'),
  local_changes: z.record(z.string(), z.number()).describe('"db/table.jsonl" -> rows added, changed or removed in the databases since the last sync'),
  remote_changes: z.record(z.string(), z.number()).describe('"db/table.jsonl" -> rows added, changed or removed on the remote since the last sync'),
  message: z.string(),
});
export type SyncStatus = z.infer<typeof SyncStatusSchema>;

/** Lines present on one side only: the rows a sync would add, change or remove. */
export function changedRows(a: string, b: string): number {
  const left = new Set(a.split('\n').filter(Boolean));
  const right = new Set(b.split('\n').filter(Boolean));
  let n = 0;
  for (const l of left) if (!right.has(l)) n++;
  for (const r of right) if (!left.has(r)) n++;
  return n;
}

async function tree(repo: string, sha: string): Promise<Map<string, string>> {
  const files = (await runGit(['ls-tree', '-r', '--name-only', sha], { cwd: repo })).stdout.split('\n').filter((f) => f.endsWith('.jsonl'));
  const out = new Map<string, string>();
  for (const f of files) out.set(f, (await runGit(['show', `${sha}:${f}`], { cwd: repo })).stdout);
  return out;
}

/** github_sync_status: how far the databases and the remote have moved since the last sync. Read-only. */
export async function syncStatus(config: Config): Promise<SyncStatus> {
  if (!config.sync?.github) {
    return { configured: false, branch: null, last_synced_sha: null, last_sync_at: null, remote_head: null, behind: 0, local_changes: {}, remote_changes: {}, message: 'github-sync is not configured (sync.github in wb-backup.yaml).' };
  }
  const sync = syncConfig(config);
  const repo = path.join(syncDir(config.root), 'repo');
  const state = readState(config.root);
  if (!state.last_synced_sha || !fs.existsSync(path.join(repo, '.git'))) {
    return { configured: true, branch: null, last_synced_sha: null, last_sync_at: null, remote_head: null, behind: 0, local_changes: {}, remote_changes: {}, message: 'Never synced: run github_sync_push.' };
  }
  const { url, pre } = gitOptionsFor(sync);
  const branch = await resolveBranchFor(repo, pre, url, sync);
  await runGit([...pre, 'fetch', '-q', 'origin', `+refs/heads/${branch}:refs/remotes/origin/${branch}`], { cwd: repo });
  const head = (await runGit(['rev-parse', `refs/remotes/origin/${branch}`], { cwd: repo })).stdout.trim() || null;
  const behind = head ? Number((await runGit(['rev-list', '--count', `${state.last_synced_sha}..${head}`], { cwd: repo })).stdout.trim() || 0) : 0;
  const base = await tree(repo, state.last_synced_sha);
  const remote_changes: Record<string, number> = {};
  if (head && head !== state.last_synced_sha) {
    const theirs = await tree(repo, head);
    for (const f of new Set([...base.keys(), ...theirs.keys()])) {
      const n = changedRows(base.get(f) ?? '', theirs.get(f) ?? '');
      if (n) remote_changes[f] = n;
    }
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-sync-status-'));
  const local_changes: Record<string, number> = {};
  try {
    materialize(tmp, config.databases, { exclude: sync.exclude_tables, maxFileBytes: sync.max_file_bytes });
    const ours = new Map<string, string>();
    for (const db of fs.readdirSync(tmp).filter((d) => fs.statSync(path.join(tmp, d)).isDirectory())) {
      for (const f of fs.readdirSync(path.join(tmp, db)).filter((n) => n.endsWith('.jsonl'))) ours.set(`${db}/${f}`, fs.readFileSync(path.join(tmp, db, f), 'utf8'));
    }
    for (const f of new Set([...base.keys(), ...ours.keys()])) {
      const n = changedRows(base.get(f) ?? '', ours.get(f) ?? '');
      if (n) local_changes[f] = n;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  return {
    configured: true,
    branch,
    last_synced_sha: state.last_synced_sha,
    last_sync_at: state.last_sync_at,
    remote_head: head,
    behind,
    local_changes,
    remote_changes,
    message: `${sum(local_changes)} row change(s) here and ${sum(remote_changes)} on the remote (${behind} commit(s)) since the last sync.`,
  };
}
