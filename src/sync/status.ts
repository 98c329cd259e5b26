import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rootLayout } from '../root/paths.js';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { runGit } from '../core/git.js';
import { materialize } from './materialize.js';
import { parseMirrorPath } from '../root/names.js';
import { syncConfig } from './config.js';
import { fetchBranch, gitOptionsFor, resolveBranchFor } from './git-remote.js';
import { readState, syncDir } from './state.js';

export const SyncStatusSchema = z.object({
  configured: z.boolean(),
  branch: z.string().nullable(),
  last_synced_sha: z.string().nullable(),
  last_sync_at: z.string().nullable(),
  remote_head: z.string().nullable(),
  behind: z.number().describe('commits on the remote since the last sync'),
  local_changes: z.record(z.string(), z.number()).describe('"db/table.jsonl" (lines that differ) or "db/table/" (document files that differ) -> rows added, changed or removed in the databases since the last sync'),
  remote_changes: z.record(z.string(), z.number()).describe('"db/table.jsonl" (lines that differ) or "db/table/" (document files that differ) -> rows added, changed or removed on the remote since the last sync'),
  open_pull_request: z.object({ number: z.number(), url: z.string(), branch: z.string() }).nullable().describe('a pull request a pr/hybrid push opened that is not merged into the sync base yet'),
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

/** Document files that differ (changed, added or removed): one per row. */
export function changedDocuments(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): number {
  let n = 0;
  for (const [name, id] of a) if (b.get(name) !== id) n++;
  for (const name of b.keys()) if (!a.has(name)) n++;
  return n;
}

/** A mirror as status compares it: JSONL text per file, and per document directory its files' blob ids. */
interface MirrorRows {
  jsonl: Map<string, string>;
  documents: Map<string, Map<string, string>>;
}

/** `<db>/<table>/<key>.md` -> [`<db>/<table>/`, `<key>.md`]; null for anything else (names.ts decides what a mirror path is). */
function documentFile(p: string): [string, string] | null {
  const parsed = parseMirrorPath(p);
  return parsed?.kind === 'document' ? [`${parsed.db}/${parsed.table}/`, parsed.file] : null;
}

function addDocument(rows: MirrorRows, p: string, id: string): void {
  const doc = documentFile(p);
  if (!doc) return;
  rows.documents.set(doc[0], (rows.documents.get(doc[0]) ?? new Map<string, string>()).set(doc[1], id));
}

async function tree(repo: string, sha: string): Promise<MirrorRows> {
  const entries = (await runGit(['ls-tree', '-r', '-z', sha], { cwd: repo })).stdout.split('\0').flatMap((line) => {
    const m = /^\S+ blob (\S+)\t(.*)$/s.exec(line);
    return m ? [{ id: m[1]!, path: m[2]! }] : [];
  });
  const out: MirrorRows = { jsonl: new Map(), documents: new Map() };
  for (const { id, path: f } of entries) {
    if (f.endsWith('.jsonl')) out.jsonl.set(f, (await runGit(['show', `${sha}:${f}`], { cwd: repo })).stdout);
    else addDocument(out, f, id);
  }
  return out;
}

/** The fresh materialization, with document blob ids computed by git (whatever the repository's hash). */
async function localTree(repo: string, dir: string): Promise<MirrorRows> {
  const out: MirrorRows = { jsonl: new Map(), documents: new Map() };
  const docs: string[] = [];
  for (const db of fs.readdirSync(dir).filter((d) => fs.statSync(path.join(dir, d)).isDirectory())) {
    for (const e of fs.readdirSync(path.join(dir, db), { withFileTypes: true })) {
      if (e.isFile() && e.name.endsWith('.jsonl')) out.jsonl.set(`${db}/${e.name}`, fs.readFileSync(path.join(dir, db, e.name), 'utf8'));
      if (e.isDirectory()) for (const f of fs.readdirSync(path.join(dir, db, e.name)).filter((n) => n.endsWith('.md'))) docs.push(`${db}/${e.name}/${f}`);
    }
  }
  if (docs.length) {
    const ids = (await runGit(['hash-object', '--no-filters', '--stdin-paths'], { cwd: repo, input: `${docs.map((d) => path.join(dir, d)).join('\n')}\n` })).stdout.split('\n');
    docs.forEach((d, i) => addDocument(out, d, ids[i] ?? ''));
  }
  return out;
}

/** Rows changed between two mirrors, per table file (JSONL) or directory (documents). */
function compare(a: MirrorRows, b: MirrorRows): Record<string, number> {
  const changes: Record<string, number> = {};
  for (const f of new Set([...a.jsonl.keys(), ...b.jsonl.keys()])) {
    const n = changedRows(a.jsonl.get(f) ?? '', b.jsonl.get(f) ?? '');
    if (n) changes[f] = n;
  }
  for (const d of new Set([...a.documents.keys(), ...b.documents.keys()])) {
    const n = changedDocuments(a.documents.get(d) ?? new Map(), b.documents.get(d) ?? new Map());
    if (n) changes[d] = n;
  }
  return changes;
}

/** github_sync_status: how far the databases and the remote have moved since the last sync. Read-only. */
export async function syncStatus(config: Config, opts: { env?: Record<string, string> } = {}): Promise<SyncStatus> {
  if (!config.sync?.github) {
    return { configured: false, branch: null, last_synced_sha: null, last_sync_at: null, remote_head: null, behind: 0, local_changes: {}, remote_changes: {}, open_pull_request: null, message: 'github-sync is not configured (sync.github in wb-backup.yaml).' };
  }
  const sync = syncConfig(config);
  const repo = path.join(syncDir(config.root), 'repo');
  const state = readState(config.root);
  if (!state.last_synced_sha || !fs.existsSync(path.join(repo, '.git'))) {
    return { configured: true, branch: null, last_synced_sha: null, last_sync_at: null, remote_head: null, behind: 0, local_changes: {}, remote_changes: {}, open_pull_request: null, message: 'Never synced: run github_sync_push.' };
  }
  const remote = gitOptionsFor(sync, opts.env);
  const branch = await resolveBranchFor(repo, remote, sync);
  const head = await fetchBranch(repo, remote, branch);
  const behind = head ? Number((await runGit(['rev-list', '--count', `${state.last_synced_sha}..${head}`], { cwd: repo })).stdout.trim() || 0) : 0;
  const base = await tree(repo, state.last_synced_sha);
  const remote_changes = head && head !== state.last_synced_sha ? compare(base, await tree(repo, head)) : {};
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-sync-status-'));
  let local_changes: Record<string, number>;
  try {
    materialize(tmp, config.databases, { dbDir: rootLayout(config.root).dbDir, exclude: sync.exclude_tables, maxFileBytes: sync.max_file_bytes, documents: sync.documents });
    local_changes = compare(base, await localTree(repo, tmp));
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
    open_pull_request: state.open_pull_request ?? null,
    message: `${sum(local_changes)} row change(s) here and ${sum(remote_changes)} on the remote (${behind} commit(s)) since the last sync.${state.open_pull_request ? ` Pull request #${state.open_pull_request.number} is waiting for review: ${state.open_pull_request.url}` : ''}`,
  };
}
