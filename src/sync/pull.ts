import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { runGit } from '../core/git.js';
import { withRootLock } from '../root/lock.js';
import { quoteIdent } from '../core/sqlite-util.js';
import { encodeSegment, mirrorDbDir, mirrorTableFile, parseMirrorPath } from '../root/names.js';
import { DocumentError, documentDir, documentShape, fileNameForKey, parseDocumentText } from './documents.js';
import { isDocumentEntry, readRows, type DocumentTableEntry, type MirrorManifest, type MirrorTableEntry } from './materialize.js';
import { planTableMerge } from './merge.js';
import { syncConfig } from './config.js';
import { fetchBranch, gitOptionsFor, resolveBranchFor } from './git-remote.js';
import { logOperation, readState, syncDir, writeState } from './state.js';
import { parseRows, rowLine, TextBytes, type SqlValue } from './rows.js';
import { ordinaryTableOf } from './sqlite-objects.js';

export const SyncPullResultSchema = z.object({
  status: z.enum(['up_to_date', 'applied', 'conflicts', 'dry_run']),
  remote_commit: z.string().nullable(),
  applied: z.record(z.string(), z.object({ upserts: z.number(), deletes: z.number() })).describe('"db.table" -> rows applied from the remote'),
  conflicts: z.array(
    z.object({
      table: z.string(),
      key: z.string(),
      base: z.string().nullable(),
      ours: z.string().nullable(),
      theirs: z.string().nullable(),
      path: z.string().optional().describe('the document file, for tables mirrored as documents'),
    }),
  ),
  rejected: z.array(z.object({ path: z.string(), reason: z.string() })).describe('remote files that could not be used; nothing from those tables was applied'),
  message: z.string(),
});
export type SyncPullResult = z.infer<typeof SyncPullResultSchema>;

async function fileAt(repo: string, sha: string, file: string): Promise<string | null> {
  const r = await runGit(['show', `${sha}:${file}`], { cwd: repo });
  return r.ok ? r.stdout + (r.stdout ? '\n' : '') : null;
}

/** Files directly in `dir` at a commit, with their sizes. */
async function listDirAt(repo: string, sha: string, dir: string): Promise<Array<{ path: string; size: number }>> {
  const r = await runGit(['ls-tree', '-l', '-z', sha, '--', dir], { cwd: repo });
  if (!r.ok) return [];
  return r.stdout
    .split('\0')
    .filter(Boolean)
    .flatMap((line) => {
      const m = /^\S+ blob \S+\s+(\d+)\t(.*)$/s.exec(line);
      return m ? [{ path: m[2]!, size: Number(m[1]) }] : [];
    });
}

/** Requests per `git cat-file` call stay well under execa's output buffer. */
const BLOB_BATCH_BYTES = 32 * 1024 * 1024;

/**
 * Contents of files at a commit, byte-exact (runGit strips a final newline, which a document body
 * may end with): each blob is framed by a random marker, and a last request for a missing object
 * ends the output. null for a file that is not valid UTF-8.
 */
async function readBlobs(repo: string, sha: string, files: ReadonlyArray<{ path: string; size: number }>): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (let i = 0; i < files.length; ) {
    const batch: string[] = [];
    for (let bytes = 0; i < files.length && (batch.length === 0 || bytes + files[i]!.size <= BLOB_BATCH_BYTES); i++) {
      batch.push(files[i]!.path);
      bytes += files[i]!.size;
    }
    const marker = `wb-${randomBytes(16).toString('hex')}`;
    const input = `${batch.map((p) => `${sha}:${p}`).join('\n')}\n${marker}-end\n`;
    const r = await runGit(['cat-file', `--batch=${marker} %(objectsize)`], { cwd: repo, input });
    if (!r.ok) throw new Error(`git cat-file failed: ${r.stderr.split('\n')[0]}`);
    const parts = `\n${r.stdout}`.split(`\n${marker} `).slice(1);
    if (parts.length !== batch.length) throw new Error(`git cat-file returned ${parts.length} of ${batch.length} files`);
    parts.forEach((part, j) => {
      const nl = part.indexOf('\n');
      const size = Number(part.slice(0, nl));
      let content = part.slice(nl + 1);
      if (j === parts.length - 1) content = content.slice(0, content.lastIndexOf(`\n${marker}-end missing`));
      // Invalid UTF-8 came back with replacement characters: the byte count no longer matches.
      out.set(batch[j]!, Buffer.byteLength(content, 'utf8') === size ? content : null);
    });
  }
  return out;
}

interface TableShape {
  columns: string[];
  pk: string[];
}

function keyOf(shape: TableShape, row: readonly SqlValue[]): string {
  return rowLine(shape.pk, keyValues(shape, row));
}

function keyValues(shape: TableShape, row: readonly SqlValue[]): SqlValue[] {
  return shape.pk.map((c) => row[shape.columns.indexOf(c)] ?? null);
}

function toMap(shape: TableShape, rows: SqlValue[][]): Map<string, string> {
  return new Map(rows.map((r) => [keyOf(shape, r), rowLine(shape.columns, r)]));
}

/** A remote file (or directory) that cannot be used; nothing from its table is applied. */
class Rejection extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(reason);
  }
}

/**
 * The tables whose mirror files changed (`<db>/<table>.jsonl` or `<db>/<table>/<key>.md`), as
 * segments (names.ts): db segment -> table segments. The caller maps them back to names by
 * encoding the names it knows, never by decoding a path.
 */
function changedTables(paths: readonly string[]): Map<string, Set<string>> {
  const byDb = new Map<string, Set<string>>();
  for (const p of paths) {
    const parsed = parseMirrorPath(p);
    if (!parsed) continue;
    byDb.set(parsed.db, (byDb.get(parsed.db) ?? new Set()).add(parsed.table));
  }
  return byDb;
}

async function manifestAt(repo: string, sha: string): Promise<MirrorManifest | null> {
  try {
    return JSON.parse((await fileAt(repo, sha, 'manifest.json')) ?? 'null') as MirrorManifest | null;
  } catch {
    return null;
  }
}

/** Rows of one table at a commit, in the format its manifest entry says (JSONL without one). */
async function rowsAt(repo: string, sha: string, entry: MirrorTableEntry | undefined, dbName: string, table: string, shape: TableShape): Promise<SqlValue[][]> {
  if (entry && isDocumentEntry(entry)) return documentRowsAt(repo, sha, entry, dbName, table, shape);
  const file = mirrorTableFile(dbName, table);
  try {
    return parseRows((await fileAt(repo, sha, file)) ?? '', file, shape.columns);
  } catch (err) {
    throw new Rejection(file, (err as Error).message);
  }
}

function entryOf(manifest: MirrorManifest | null, dbName: string, table: string): MirrorTableEntry | undefined {
  return manifest?.databases?.[dbName]?.tables?.[table];
}

async function documentRowsAt(repo: string, sha: string, entry: DocumentTableEntry, dbName: string, table: string, shape: TableShape): Promise<SqlValue[][]> {
  if (entry.dir !== documentDir(dbName, table)) throw new Rejection('manifest.json', `it puts ${dbName}.${table} in ${entry.dir}, not ${documentDir(dbName, table)}`);
  const doc = documentShape({ name: table, columns: shape.columns, pk: shape.pk }, entry.body);
  if ('reason' in doc) throw new Rejection(entry.dir, `cannot be read as documents: ${doc.reason}`);
  const files = (await listDirAt(repo, sha, entry.dir)).filter((f) => f.path.endsWith('.md'));
  const texts = await readBlobs(repo, sha, files);
  return files.map(({ path: file }) => {
    const text = texts.get(file);
    try {
      if (typeof text !== 'string') throw new DocumentError(file, null, 'the file is not valid UTF-8');
      return parseDocumentText(doc, file, text);
    } catch (err) {
      throw new Rejection(err instanceof DocumentError ? err.path : file, (err as Error).message);
    }
  });
}

/** The document file of a key, for conflicts in document tables. */
function documentPath(manifest: MirrorManifest | null, dbName: string, table: string, key: readonly SqlValue[] | undefined): string | undefined {
  const entry = entryOf(manifest, dbName, table);
  if (!entry || !isDocumentEntry(entry) || !key || key.length !== 1) return undefined;
  const name = fileNameForKey(key[0]!);
  return 'name' in name ? `${entry.dir}${name.name}` : undefined;
}

interface PullContext {
  repo: string;
  baseSha: string;
  headSha: string;
  baseManifest: MirrorManifest | null;
  headManifest: MirrorManifest | null;
  result: SyncPullResult;
}

/** Where a table lives in the mirror, for messages: its JSONL file or its document directory. */
function tablePath(manifest: MirrorManifest | null, dbName: string, table: string): string {
  const entry = entryOf(manifest, dbName, table);
  return entry && isDocumentEntry(entry) ? entry.dir : mirrorTableFile(dbName, table);
}

function shapeOf(db: Database.Database, table: string): TableShape | null {
  const info = db.prepare(`PRAGMA table_info(${quoteIdent(table)})`).all() as Array<{ name: string; pk: number }>;
  if (!info.length) return null;
  return { columns: info.map((c) => c.name), pk: info.filter((c) => c.pk > 0).sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name) };
}

/**
 * Three-way merge of one table: conflicts and rejections go into ctx.result; returns the changes
 * to apply (run later, in the database's one transaction), or null when there are none.
 */
async function mergeTable(ctx: PullContext, db: Database.Database, dbName: string, table: string): Promise<(() => void) | null> {
  const { result } = ctx;
  const where = tablePath(ctx.headManifest, dbName, table);
  const shape = shapeOf(db, table);
  if (!shape) {
    result.rejected.push({ path: where, reason: 'the table does not exist in the database (schema changes are not pulled)' });
    return null;
  }
  if (!shape.pk.length) {
    result.rejected.push({ path: where, reason: 'the table has no primary key, so rows cannot be matched' });
    return null;
  }
  let baseRows: SqlValue[][];
  let theirRows: SqlValue[][];
  try {
    // Each side is read in its own commit's format, so a table that became documents still merges row by row.
    // A side whose manifest does not mention the table (edited by hand) is read like the other side:
    // documents must not silently become an empty JSONL file, which would delete every row.
    const baseEntry = entryOf(ctx.baseManifest, dbName, table);
    const headEntry = entryOf(ctx.headManifest, dbName, table);
    baseRows = await rowsAt(ctx.repo, ctx.baseSha, baseEntry ?? headEntry, dbName, table, shape);
    theirRows = await rowsAt(ctx.repo, ctx.headSha, headEntry ?? baseEntry, dbName, table, shape);
  } catch (err) {
    if (!(err instanceof Rejection)) throw err;
    result.rejected.push({ path: err.path, reason: err.message });
    return null;
  }
  // Read as materialize does (text that is not UTF-8 as its bytes), so an unchanged row compares equal to the mirror's.
  const carried = ordinaryTableOf(db, table);
  const ourRows = carried && carried.columns.join('\0') === shape.columns.join('\0')
    ? [...readRows(db, { ...carried, rowid: null })]
    : (db.prepare(`SELECT ${shape.columns.map(quoteIdent).join(', ')} FROM ${quoteIdent(table)}`).raw(true).all() as SqlValue[][]);
  const plan = planTableMerge(toMap(shape, baseRows), toMap(shape, ourRows), toMap(shape, theirRows));
  const keys = new Map([...baseRows, ...ourRows, ...theirRows].map((r) => [keyOf(shape, r), keyValues(shape, r)]));
  for (const c of plan.conflicts) {
    const file = documentPath(ctx.headManifest, dbName, table, keys.get(c.key));
    result.conflicts.push({ table: `${dbName}.${table}`, ...c, ...(file ? { path: file } : {}) });
  }
  if (!plan.upserts.length && !plan.deletes.length) return null;
  result.applied[`${dbName}.${table}`] = { upserts: plan.upserts.length, deletes: plan.deletes.length };
  // Rows are applied as read (not re-parsed from their canonical line), so INTEGER and REAL stay apart.
  const theirsByLine = new Map(theirRows.map((r) => [rowLine(shape.columns, r), r]));
  // An upsert, never INSERT OR REPLACE: REPLACE deletes the old row first, and with foreign keys on
  // that cascades to its children (an edited project on GitHub would delete its tasks here).
  const others = shape.columns.filter((c) => !shape.pk.includes(c));
  const onConflict = others.length ? `DO UPDATE SET ${others.map((c) => `${quoteIdent(c)} = excluded.${quoteIdent(c)}`).join(', ')}` : 'DO NOTHING';
  // TEXT that is not UTF-8 is bound as its bytes and cast back to TEXT (a JS string cannot hold it).
  const mark = (v: SqlValue) => (v instanceof TextBytes ? 'CAST(? AS TEXT)' : '?');
  const bind = (row: readonly SqlValue[]) => row.map((v) => (v instanceof TextBytes ? v.bytes : v));
  const upsertSql = (row: readonly SqlValue[]) =>
    `INSERT INTO ${quoteIdent(table)} (${shape.columns.map(quoteIdent).join(', ')}) VALUES (${row.map(mark).join(', ')}) ON CONFLICT (${shape.pk.map(quoteIdent).join(', ')}) ${onConflict}`;
  const delSql = (key: readonly SqlValue[]) => `DELETE FROM ${quoteIdent(table)} WHERE ${shape.pk.map((c, i) => `${quoteIdent(c)} IS ${mark(key[i] ?? null)}`).join(' AND ')}`;
  const statements = new Map<string, Database.Statement>();
  const prepared = (sql: string) => statements.get(sql) ?? statements.set(sql, db.prepare(sql)).get(sql)!;
  return () => {
    for (const line of plan.upserts) {
      const row = theirsByLine.get(line)!;
      prepared(upsertSql(row)).run(...bind(row));
    }
    for (const key of plan.deletes) prepared(delSql(keys.get(key)!)).run(...bind(keys.get(key)!));
  };
}

/** The foreign-key violations in `tables` (`PRAGMA foreign_key_check`), counted per comparable key (table, rowid, parent, key id). */
function violationKeys(db: Database.Database, tables: ReadonlySet<string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const table of tables) {
    for (const v of db.prepare(`PRAGMA foreign_key_check(${quoteIdent(table)})`).all() as Array<{ table: string; rowid: unknown; parent: string; fkid: unknown }>) {
      // WITHOUT ROWID tables report no rowid: counted per table, parent and key instead.
      const key = JSON.stringify([v.table, v.rowid === null ? null : String(v.rowid), v.parent, String(v.fkid)]);
      out.set(key, (out.get(key) ?? 0) + 1);
    }
  }
  return out;
}

/**
 * Apply a pull's row changes to one database in one transaction, so that exactly the merged rows
 * change: foreign-key ACTIONS (ON DELETE CASCADE, SET NULL, SET DEFAULT) must not run, since they
 * would change rows the remote still holds (a parent deleted on GitHub would delete its children
 * here, and the next push on the remote). Foreign keys are therefore off while applying (the
 * pragma only takes effect outside a transaction) and checked afterwards: a violation the pulled
 * rows introduced throws (the transaction rolls back, nothing is applied); one the database held
 * before (SQLite leaves foreign keys off by default) is not the pull's doing and is kept.
 * Triggers do fire: they are the database's own rules (see docs/github-sync.md#pull).
 * `tables`: the tables written. Throws the reason on a violation or a constraint error.
 */
function applyExactly(db: Database.Database, tables: readonly string[], apply: () => void): void {
  const written = new Set(tables);
  // A write can break a key in the written tables (a new child) and in tables referring to them (a deleted parent).
  const affected = new Set(written);
  for (const t of db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all() as string[]) {
    const parents = db.prepare(`SELECT "table" FROM pragma_foreign_key_list(?)`).pluck().all(t) as string[];
    if (parents.some((p) => [...written].some((w) => w.toLowerCase() === p.toLowerCase()))) affected.add(t);
  }
  const wasOn = Number(db.pragma('foreign_keys', { simple: true })) === 1;
  db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      const before = violationKeys(db, affected);
      apply();
      const introduced = [...violationKeys(db, affected)].filter(([k, n]) => n > (before.get(k) ?? 0)).map(([k]) => JSON.parse(k) as [string, string | null, string]);
      if (introduced.length) {
        const [t, rowid, parent] = introduced[0]!;
        throw new Error(`FOREIGN KEY constraint failed: ${introduced.length} row(s) would refer to rows that do not exist, e.g. ${t}${rowid === null ? '' : ` rowid ${rowid}`} -> ${parent}`);
      }
    })();
  } finally {
    if (wasOn) db.pragma('foreign_keys = ON');
  }
}

/** Whether the last commit wb-backup pushed to its pull request's branch is now part of `head`. */
async function pullRequestMergedInto(repo: string, prBranch: string, head: string): Promise<boolean> {
  const tip = await runGit(['rev-parse', '-q', '--verify', `refs/remotes/origin/${prBranch}`], { cwd: repo });
  if (!tip.ok) return false;
  return (await runGit(['merge-base', '--is-ancestor', tip.stdout.trim(), head], { cwd: repo })).ok;
}

/**
 * github_sync_pull: bring edits made on the remote into the databases. Per row, three-way against
 * the last synced commit: remote-only changes are applied (one transaction per database), rows
 * changed on both sides are reported as conflicts and left as they are on both sides. While
 * conflicts remain, the sync base does not move, so a push cannot overwrite the remote's versions.
 */
export async function syncPull(config: Config, opts: { dryRun?: boolean; env?: Record<string, string> } = {}): Promise<SyncPullResult> {
  const sync = syncConfig(config);
  return withRootLock(config.root, 'github-sync pull', config.backup.lock_wait_ms, async () => {
    const repo = path.join(syncDir(config.root), 'repo');
    const state = readState(config.root);
    if (!state.last_synced_sha || !fs.existsSync(path.join(repo, '.git'))) {
      if (state.open_pull_request) {
        throw new WbError(
          'invalid_input',
          `There is no sync base yet: the first sync is pull request #${state.open_pull_request.number} (${state.open_pull_request.url}).`,
          'Once it is merged, run github_sync_push: it finds the branch equal to the databases and makes it the base for later pulls.',
        );
      }
      throw new WbError('invalid_input', 'There is no earlier sync to compare with.', 'Run github_sync_push first (or import a clone on a new machine).');
    }
    const remote = gitOptionsFor(sync, opts.env);
    const branch = await resolveBranchFor(repo, remote, sync);
    const head = await fetchBranch(repo, remote, branch);
    if (!head) throw new WbError('sync_failed', `The branch ${branch} no longer exists on the sync remote.`, 'Push again (github_sync_push) to recreate it, or set sync.github.branch.');
    const empty: SyncPullResult = { status: 'up_to_date', remote_commit: head, applied: {}, conflicts: [], rejected: [], message: 'The remote has no changes since the last sync.' };
    if (head === state.last_synced_sha) return empty;

    // --no-renames: a renamed document is a deleted key and a new one.
    const changed = (await runGit(['diff', '--name-only', '--no-renames', state.last_synced_sha, head], { cwd: repo })).stdout.split('\n').filter(Boolean);
    const result: SyncPullResult = { ...empty, status: 'applied', applied: {} };
    const ctx: PullContext = { repo, baseSha: state.last_synced_sha, headSha: head, baseManifest: await manifestAt(repo, state.last_synced_sha), headManifest: await manifestAt(repo, head), result };
    for (const [dbSegment, tableSegments] of changedTables(changed)) {
      const vital = config.databases.find((d) => mirrorDbDir(d.name) === dbSegment);
      if (!vital || !fs.existsSync(vital.path)) {
        result.rejected.push({ path: dbSegment, reason: 'no such database on this machine' });
        continue;
      }
      const dbName = vital.name;
      const db = new Database(vital.path, { timeout: 5000 });
      db.defaultSafeIntegers(true);
      try {
        const work: Array<{ table: string; apply: () => void }> = [];
        // Table segments back to names through the database's own tables.
        const tableBySegment = new Map((db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => [encodeSegment(t.name), t.name]));
        for (const segment of tableSegments) {
          const table = tableBySegment.get(segment);
          if (table === undefined) {
            result.rejected.push({ path: `${dbSegment}/${segment}`, reason: 'the table does not exist in the database (schema changes are not pulled)' });
            continue;
          }
          const apply = await mergeTable(ctx, db, dbName, table);
          if (apply) work.push({ table, apply });
        }
        if (!opts.dryRun && work.length) {
          try {
            applyExactly(db, work.map((w) => w.table), () => work.forEach((w) => w.apply()));
          } catch (err) {
            // The transaction rolled back: nothing from this database was applied.
            for (const key of Object.keys(result.applied)) if (key.startsWith(`${dbName}.`)) delete result.applied[key];
            result.rejected.push({
              path: dbName,
              reason: `the remote rows break a constraint of the database (${(err as Error).message}); nothing from ${dbName} was applied. Fix those rows on the remote (a foreign key or a unique column), then pull again`,
            });
          }
        }
      } finally {
        db.close();
      }
    }
    const applied = Object.values(result.applied).reduce((n, a) => n + a.upserts + a.deletes, 0);
    if (opts.dryRun) return { ...result, status: 'dry_run', message: `Would apply ${applied} row change(s); ${result.conflicts.length} conflict(s); nothing was changed.` };
    if (result.conflicts.length || result.rejected.length) {
      logOperation(config.root, { op: 'pull', status: 'conflicts', applied, conflicts: result.conflicts.length, rejected: result.rejected.length });
      return {
        ...result,
        status: 'conflicts',
        message: `Applied ${applied} row change(s); ${result.conflicts.length} row(s) changed on both sides and ${result.rejected.length} file(s) rejected were left untouched on both sides. Resolve them (make the row the same on both sides), then pull again.`,
      };
    }
    const merged = state.open_pull_request ? await pullRequestMergedInto(repo, state.open_pull_request.branch, head) : false;
    writeState(config.root, { ...state, last_synced_sha: head, last_remote_sha: head, last_sync_at: new Date().toISOString(), ...(merged ? { open_pull_request: null } : {}) });
    logOperation(config.root, { op: 'pull', status: 'applied', applied, remote: head });
    return { ...result, message: `Applied ${applied} row change(s) from the remote.` };
  });
}
