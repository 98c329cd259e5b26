import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rootLayout } from '../root/paths.js';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { runGit } from '../core/git.js';
import Database from 'better-sqlite3';
import type { VitalDatabase } from '../root/config.js';
import { quoteIdent } from '../core/sqlite-util.js';
import { mirrorTableFile } from '../root/names.js';
import { materialize, rowidFieldFor } from './materialize.js';
import { tableOfMirrorPath } from './mirror-paths.js';
import { tableShape, type TableShape } from './sqlite-objects.js';
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
  local_changes: z
    .record(z.string(), z.number())
    .describe('"db/table.jsonl" or "db/table/" (documents) -> rows added, changed or removed in the databases since the last sync (an edited row counts once: rows are matched by primary key, or rowid)'),
  remote_changes: z
    .record(z.string(), z.number())
    .describe('"db/table.jsonl" or "db/table/" (documents) -> rows added, changed or removed on the remote since the last sync (an edited row counts once: rows are matched by primary key, or rowid)'),
  open_pull_request: z.object({ number: z.number(), url: z.string(), branch: z.string() }).nullable().describe('a pull request a pr/hybrid push opened that is not merged into the sync base yet'),
  conflicts: z
    .object({ total: z.number(), unresolved: z.number() })
    .optional()
    .describe('present when the last pull recorded conflicts: how many, and how many are still open (github_sync_resolve lists and resolves them)'),
  message: z.string(),
});
export type SyncStatus = z.infer<typeof SyncStatusSchema>;

/**
 * Rows that differ between two versions of a JSONL table file: a row is matched by `keyFields`
 * (its primary key, or the field holding its rowid), so an edited row counts once, like an added or
 * a removed one. Without key fields (or for a line that does not carry them) each line is its own
 * row, so an edited line counts as one removed and one added.
 */
export function changedRows(a: string, b: string, keyFields?: readonly string[]): number {
  const left = linesByKey(a, keyFields);
  const right = linesByKey(b, keyFields);
  let n = 0;
  for (const key of new Set([...left.keys(), ...right.keys()])) {
    const l = left.get(key) ?? new Set<string>();
    const r = right.get(key) ?? new Set<string>();
    let onlyLeft = 0;
    let onlyRight = 0;
    for (const line of l) if (!r.has(line)) onlyLeft++;
    for (const line of r) if (!l.has(line)) onlyRight++;
    // A key whose line changed is one row; one held twice on a side (a hand edit) counts each extra line.
    n += Math.max(onlyLeft, onlyRight);
  }
  return n;
}

function linesByKey(text: string, keyFields: readonly string[] | undefined): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split('\n').filter(Boolean)) {
    const key = rowKeyOf(line, keyFields);
    out.set(key, (out.get(key) ?? new Set<string>()).add(line));
  }
  return out;
}

/** A line's key fields as JSON (`[…]`, never a line, which starts with `{`); the line itself when it has none. */
function rowKeyOf(line: string, keyFields: readonly string[] | undefined): string {
  if (!keyFields?.length) return line;
  try {
    const row = JSON.parse(line) as unknown;
    if (typeof row !== 'object' || row === null || Array.isArray(row)) return line;
    const record = row as Record<string, unknown>;
    return keyFields.every((f) => Object.hasOwn(record, f)) ? JSON.stringify(keyFields.map((f) => record[f])) : line;
  } catch {
    return line;
  }
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

/** Add one mirror file: a JSONL table file's text, or a document's blob id under its table's folder (mirror-paths.ts decides what a mirror path is). */
function addJsonl(rows: MirrorRows, p: string, text: string): void {
  rows.jsonl.set(p, text);
}

function addDocument(rows: MirrorRows, p: string, id: string): void {
  const t = tableOfMirrorPath(p);
  if (t?.kind !== 'document') return;
  const folder = `${t.db}/${t.table}/`;
  rows.documents.set(folder, (rows.documents.get(folder) ?? new Map<string, string>()).set(t.file!, id));
}

function isJsonl(p: string): boolean {
  return tableOfMirrorPath(p)?.kind === 'jsonl';
}

/** The mirror at a commit. */
async function tree(repo: string, sha: string): Promise<MirrorRows> {
  const entries = (await runGit(['ls-tree', '-r', '-z', sha], { cwd: repo })).stdout.split('\0').flatMap((line) => {
    const m = /^\S+ blob (\S+)\t(.*)$/s.exec(line);
    return m ? [{ id: m[1]!, path: m[2]! }] : [];
  });
  const out: MirrorRows = { jsonl: new Map(), documents: new Map() };
  for (const { id, path: f } of entries) {
    if (isJsonl(f)) addJsonl(out, f, (await runGit(['show', `${sha}:${f}`], { cwd: repo })).stdout);
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
      if (e.isFile() && isJsonl(`${db}/${e.name}`)) addJsonl(out, `${db}/${e.name}`, fs.readFileSync(path.join(dir, db, e.name), 'utf8'));
      if (e.isDirectory()) for (const f of fs.readdirSync(path.join(dir, db, e.name)).filter((n) => n.endsWith('.md'))) docs.push(`${db}/${e.name}/${f}`);
    }
  }
  if (docs.length) {
    const ids = (await runGit(['hash-object', '--no-filters', '--stdin-paths'], { cwd: repo, input: `${docs.map((d) => path.join(dir, d)).join('\n')}\n` })).stdout.split('\n');
    docs.forEach((d, i) => addDocument(out, d, ids[i] ?? ''));
  }
  return out;
}

/**
 * Which fields identify a row in each JSONL table file (`<db>/<table>.jsonl` -> fields), from the
 * databases' own tables (tableShape): the primary key, else the field carrying the rowid, else the
 * column that is the rowid (R*Tree). A file missing here (a database or table this machine does not
 * have, or cannot open) is compared line by line.
 */
function rowKeyFields(databases: readonly VitalDatabase[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const vital of databases) {
    let db: Database.Database;
    try {
      db = new Database(vital.path, { fileMustExist: true, timeout: 5000 });
    } catch {
      continue;
    }
    try {
      for (const name of db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[]) {
        const shape = tableShapeOrNull(db, name);
        const fields = shape ? keyFieldsOf(shape) : null;
        if (fields) out.set(mirrorTableFile(vital.name, name), fields);
      }
    } catch {
      /* an unreadable database: its files are compared line by line */
    } finally {
      db.close();
    }
  }
  return out;
}

function tableShapeOrNull(db: Database.Database, name: string): TableShape | null {
  try {
    return tableShape(db, name);
  } catch {
    return null; // a virtual table whose module this SQLite lacks
  }
}

/** The fields of a JSONL line that identify its row (see rowKeyFields); null when none does. */
function keyFieldsOf(shape: TableShape): string[] | null {
  if (shape.pk.length) return shape.pk;
  const rowidField = rowidFieldFor(shape);
  if (rowidField) return [rowidField];
  const keyColumn = shape.columns.find((c) => quoteIdent(c) === shape.rowKey);
  return keyColumn === undefined ? null : [keyColumn];
}

/** Rows changed between two mirrors, per table file (JSONL, rows matched by `keys`) or directory (documents). */
function compare(a: MirrorRows, b: MirrorRows, keys: ReadonlyMap<string, string[]>): Record<string, number> {
  const changes: Record<string, number> = {};
  for (const f of new Set([...a.jsonl.keys(), ...b.jsonl.keys()])) {
    const before = a.jsonl.get(f) ?? '';
    const after = b.jsonl.get(f) ?? '';
    const n = before === after ? 0 : changedRows(before, after, keys.get(f));
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
  const keys = rowKeyFields(config.databases);
  const remote_changes = head && head !== state.last_synced_sha ? compare(base, await tree(repo, head), keys) : {};
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-sync-status-'));
  let local_changes: Record<string, number>;
  try {
    materialize(tmp, config.databases, { dbDir: rootLayout(config.root).dbDir, exclude: sync.exclude_tables, maxFileBytes: sync.max_file_bytes, documents: sync.documents });
    local_changes = compare(base, await localTree(repo, tmp), keys);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  const conflicts = state.conflicts?.items.length ? { total: state.conflicts.items.length, unresolved: state.conflicts.items.filter((i) => !i.resolved).length } : undefined;
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
    ...(conflicts ? { conflicts } : {}),
    message: `${sum(local_changes)} row change(s) here and ${sum(remote_changes)} on the remote (${behind} commit(s)) since the last sync.${state.open_pull_request ? ` Pull request #${state.open_pull_request.number} is waiting for review: ${state.open_pull_request.url}` : ''}${
      conflicts?.unresolved ? ` ${conflicts.unresolved} conflict(s) from the last pull are open: list and resolve them with github_sync_resolve.` : ''
    }`,
  };
}
