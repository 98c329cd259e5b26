/**
 * Pull's reading of the remote tree: which tables changed between two commits, each side's
 * manifest (validated, mirror-manifest.ts) and each side's rows of a table, read from git objects
 * (never from a checkout). Reads only.
 */
import { randomBytes } from 'node:crypto';
import { runGit } from '../core/git.js';
import { mirrorTableFile } from '../root/names.js';
import { DocumentError, documentShape, fileNameForKey, parseDocumentText } from './documents.js';
import { isDocumentEntry, readMirrorManifestAt, type DocumentTableEntry, type MirrorManifest, type MirrorTableEntry } from './mirror-manifest.js';
import { tableOfMirrorPath } from './mirror-paths.js';
import { Rejection, type TheirRows } from './pull-merge.js';
import { parseRows, type SqlValue } from './rows.js';
import type { TableShape } from './sqlite-objects.js';

/** The two commits a pull compares, with their manifests (null where a commit has none). */
export interface RemoteSides {
  repo: string;
  baseSha: string;
  headSha: string;
  baseManifest: MirrorManifest | null;
  headManifest: MirrorManifest | null;
}

export { Rejection };

/** The git mirror's side of a merge (pull-merge.ts TheirRows): rows at the sync base and the remote head. */
export function gitRows(sides: RemoteSides): TheirRows {
  return {
    where: (dbName, table) => tablePath(sides.headManifest, dbName, table),
    async rows(dbName, table, shape) {
      // Each side is read in its own commit's format, so a table that became documents still merges row by row.
      // A side whose manifest does not mention the table (edited by hand) is read like the other side:
      // documents must not silently become an empty JSONL file, which would delete every row.
      const baseEntry = entryOf(sides.baseManifest, dbName, table);
      const headEntry = entryOf(sides.headManifest, dbName, table);
      const base = await rowsAt(sides.repo, sides.baseSha, baseEntry ?? headEntry, dbName, table, shape);
      const theirs = await rowsAt(sides.repo, sides.headSha, headEntry ?? baseEntry, dbName, table, shape);
      return { base, theirs };
    },
    placeOf: (dbName, table, key) => documentPath(sides.headManifest, dbName, table, key),
  };
}

/**
 * Both sides of a pull: the manifests of the last synced commit and of the remote head, each
 * validated; a manifest that cannot be trusted throws WbError manifest_invalid (nothing is pulled).
 */
export async function readSides(repo: string, baseSha: string, headSha: string, branch: string): Promise<RemoteSides> {
  const origin = (sha: string) => ({
    where: `at commit ${sha.slice(0, 12)} of the sync branch ${branch}`,
    hint: `Put back a manifest.json the sync wrote on ${branch} (revert the commit that changed it), then pull again.`,
  });
  return { repo, baseSha, headSha, baseManifest: await readMirrorManifestAt(repo, baseSha, origin(baseSha)), headManifest: await readMirrorManifestAt(repo, headSha, origin(headSha)) };
}

/** Paths changed between two commits; --no-renames: a renamed document is a deleted key and a new one. */
export async function changedPaths(repo: string, from: string, to: string): Promise<string[]> {
  return (await runGit(['diff', '--name-only', '--no-renames', from, to], { cwd: repo })).stdout.split('\n').filter(Boolean);
}

/**
 * The tables whose mirror files changed (`<db>/<table>.jsonl` or `<db>/<table>/<key>.md`), as
 * segments (names.ts): db segment -> table segments. The caller maps them back to names by
 * encoding the names it knows, never by decoding a path.
 */
export function changedTables(paths: readonly string[]): Map<string, Set<string>> {
  const byDb = new Map<string, Set<string>>();
  for (const p of paths) {
    const parsed = tableOfMirrorPath(p);
    if (!parsed || parsed.kind === 'folder') continue;
    byDb.set(parsed.db, (byDb.get(parsed.db) ?? new Set()).add(parsed.table));
  }
  return byDb;
}

export function entryOf(manifest: MirrorManifest | null, dbName: string, table: string): MirrorTableEntry | undefined {
  const tables = manifest?.databases[dbName]?.tables;
  return tables && Object.hasOwn(tables, table) ? tables[table] : undefined;
}

/** Where a table lives in the mirror, for messages: its JSONL file or its document directory. */
export function tablePath(manifest: MirrorManifest | null, dbName: string, table: string): string {
  const entry = entryOf(manifest, dbName, table);
  return entry && isDocumentEntry(entry) ? entry.dir : mirrorTableFile(dbName, table);
}

/** The document file of a key, for conflicts in document tables. */
export function documentPath(manifest: MirrorManifest | null, dbName: string, table: string, key: readonly SqlValue[] | undefined): string | undefined {
  const entry = entryOf(manifest, dbName, table);
  if (!entry || !isDocumentEntry(entry) || !key || key.length !== 1) return undefined;
  const name = fileNameForKey(key[0]!);
  return 'name' in name ? `${entry.dir}${name.name}` : undefined;
}

/** Rows of one table at a commit, in the format its manifest entry says (JSONL without one). Throws Rejection for a file that does not parse. */
export async function rowsAt(repo: string, sha: string, entry: MirrorTableEntry | undefined, dbName: string, table: string, shape: TableShape): Promise<SqlValue[][]> {
  if (entry && isDocumentEntry(entry)) return documentRowsAt(repo, sha, entry, table, shape);
  const file = mirrorTableFile(dbName, table);
  try {
    return parseRows((await fileAt(repo, sha, file)) ?? '', file, shape.columns);
  } catch (err) {
    throw new Rejection(file, (err as Error).message);
  }
}

/** The rows of a document table at a commit (its manifest entry was validated: entry.dir is the table's own folder). */
async function documentRowsAt(repo: string, sha: string, entry: DocumentTableEntry, table: string, shape: TableShape): Promise<SqlValue[][]> {
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
