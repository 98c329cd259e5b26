/**
 * The mirror's manifest.json: its shape and its one reader. A manifest comes from a repository
 * anyone with push access can edit (a clone, the sync branch), so it is input: every reader goes
 * through parseMirrorManifest, which checks the structure (zod), the schema version, every
 * database name and every path (each must be exactly the one names.ts gives for its name), and
 * throws a WbError naming the file and what is wrong otherwise.
 *
 * The values that become part of SQL (pragmas, AUTOINCREMENT counters, FTS5 settings) and
 * `db_path` are checked where they are used, with their own messages: the schema only says they
 * are there. The reader returns the JSON as parsed (not zod's copy), so key order and a table
 * named `__proto__` survive, and content digests of the state come out as they were written.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { WbError } from '../core/errors.js';
import { runGit } from '../core/git.js';
import { logger } from '../core/log.js';
import { logicalNameProblem, mirrorDocumentDir, mirrorSchemaFile, mirrorTableFile } from '../root/names.js';

export const SYNC_SCHEMA_VERSION = 1;

/**
 * A record validated entry by entry over its own keys: zod's record leaves a `__proto__` key out
 * (unchecked), and a table may be named that.
 */
function ownRecord<T extends z.ZodType>(value: T) {
  return z
    .custom<Record<string, z.infer<T>>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), { message: 'expected an object' })
    .superRefine((record, ctx) => {
      for (const [key, v] of Object.entries(record)) {
        const r = value.safeParse(v);
        if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', ...innermost(issue, [key]) });
      }
    });
}

const rows = z.number().int().nonnegative().describe('rows the table held when it was mirrored');
const rowidField = z.string().min(1).optional().describe('the field holding the rowid when it is not "$rowid" (a column has that name)');

export const JsonlTableEntrySchema = z.object({ file: z.string(), rows, rowid_field: rowidField });
/** A table mirrored as `<dir><key>.md` files (see documents.ts). */
export const DocumentTableEntrySchema = z.object({ dir: z.string(), format: z.literal('documents'), key: z.string(), body: z.string(), rows, rowid_field: rowidField });
/** An entry with `format` is a document table; without, a JSONL file. */
const TableEntrySchema = z.union([DocumentTableEntrySchema, JsonlTableEntrySchema.refine((e) => !('format' in e), { message: 'an entry with a format must be {dir, format: "documents", key, body, rows}' })]);

export type JsonlTableEntry = z.infer<typeof JsonlTableEntrySchema>;
export type DocumentTableEntry = z.infer<typeof DocumentTableEntrySchema>;
export type MirrorTableEntry = JsonlTableEntry | DocumentTableEntry;

export function isDocumentEntry(entry: MirrorTableEntry): entry is DocumentTableEntry {
  return 'format' in entry && entry.format === 'documents';
}

/** Which state of the database a mirror holds (absent in mirrors written before it was recorded). */
export const MirrorSourceSchema = z.object({
  snapshot_id: z.string().nullable().describe('the snapshot the mirror was made from; null: read from the live database (push always does)'),
  content_sha256: z.string().describe("sha256 of this database's mirror content (see mirrorDigest): the same data always gives the same value"),
  taken_at: z
    .string()
    .nullable()
    .describe('when the database was read in this state (ISO 8601); null when the caller gave no time. Kept from the previous mirror while the content is unchanged'),
});
export type MirrorSource = z.infer<typeof MirrorSourceSchema>;

/** Database settings the import re-applies; only what differs from SQLite's defaults is written. Each value is checked where import uses it. */
export const MirrorPragmasSchema = z.object({
  encoding: z.unknown().optional(),
  application_id: z.unknown().optional(),
  auto_vacuum: z.unknown().optional(),
  page_size: z.unknown().optional(),
  journal_mode: z.unknown().optional(),
});
export type MirrorPragmas = z.infer<typeof MirrorPragmasSchema>;

export const MirrorDatabaseEntrySchema = z.object({
  schema: z.string().describe('`<db>/schema.sql`'),
  user_version: z.number().int(),
  source: MirrorSourceSchema.optional(),
  /**
   * Where the database file lived relative to <root>/db, as path components (`["sub", "名前.db"]`);
   * only for databases under db/. Used only through import's recordedPath, which falls back to the
   * name's own path when it is not exactly right (so any value is accepted here).
   */
  db_path: z.unknown().optional(),
  tables: ownRecord(TableEntrySchema),
  pragmas: MirrorPragmasSchema.optional(),
  /** the rows of sqlite_sequence (AUTOINCREMENT counters), in rowid order; values checked by fromJson where used */
  sqlite_sequence: z.array(z.object({ name: z.unknown(), seq: z.unknown() })).optional(),
  /** FTS5 settings per table (rank, automerge, …), re-applied before the rows are loaded; values checked by fromJson */
  fts5_config: ownRecord(z.array(z.tuple([z.string(), z.unknown()]))).optional(),
  /** virtual tables whose index is rebuilt from their external content table after the rows are loaded */
  rebuild: z.array(z.string()).optional(),
});
export type MirrorDatabaseEntry = z.infer<typeof MirrorDatabaseEntrySchema>;

const ListedPathSchema = z.object({ path: z.string(), reason: z.string() });

export const MirrorManifestSchema = z.object({
  schema_version: z.literal(SYNC_SCHEMA_VERSION),
  databases: ownRecord(MirrorDatabaseEntrySchema),
  skipped: z.array(ListedPathSchema),
  /** sync.github.documents entries that could not be honoured (the table stays JSONL); absent when none. */
  warnings: z.array(z.object({ table: z.string(), reason: z.string() })).optional(),
});
export type MirrorManifest = z.infer<typeof MirrorManifestSchema>;

/** Where a manifest was read from, for messages, and what the user should do when it cannot be used. */
export interface ManifestOrigin {
  /** e.g. "in the clone /x" or "at commit 1a2b3c4 of the sync branch" */
  where: string;
  hint: string;
}

/**
 * The one reader: `text` (a manifest.json) as a validated manifest. Throws WbError
 * `manifest_invalid` naming the file, where it came from and the first thing wrong: not JSON,
 * another schema_version, a field of the wrong type, a name that is not a database name, or a path
 * that is not the one names.ts gives (a hostile manifest could point outside the mirror).
 */
export function parseMirrorManifest(text: string, origin: ManifestOrigin): MirrorManifest {
  const file = `manifest.json ${origin.where}`;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new WbError('manifest_invalid', `The ${file} is not valid JSON (${(err as Error).message}). Nothing was changed.`, origin.hint);
  }
  const version = typeof raw === 'object' && raw !== null ? (raw as { schema_version?: unknown }).schema_version : undefined;
  // A newer format is not this version's to judge; anything else is checked like the other fields.
  if (typeof version === 'number' && version > SYNC_SCHEMA_VERSION) {
    throw new WbError('manifest_invalid', `The mirror's schema_version is ${JSON.stringify(version)}; this wb-backup reads ${SYNC_SCHEMA_VERSION}.`, 'Upgrade wb-backup.');
  }
  const parsed = MirrorManifestSchema.safeParse(raw);
  const problem = parsed.success ? manifestPathProblem(raw as MirrorManifest) : describeIssue(parsed.error.issues[0]!);
  if (problem) throw new WbError('manifest_invalid', `The ${file} cannot be trusted: ${problem}. Nothing was changed.`, origin.hint);
  return raw as MirrorManifest;
}

/** `manifest.json` in a folder (a clone, a materialized mirror): validated, or null when the folder has none. */
export function readMirrorManifestIn(dir: string, origin: ManifestOrigin): MirrorManifest | null {
  const file = path.join(dir, 'manifest.json');
  if (!fs.existsSync(file)) return null;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new WbError('manifest_invalid', `The manifest.json ${origin.where} cannot be read (${(err as Error).message}). Nothing was changed.`, origin.hint);
  }
  return parseMirrorManifest(text, origin);
}

/** `manifest.json` at a commit of a git repository: validated, or null when the commit has none. */
export async function readMirrorManifestAt(repo: string, commit: string, origin: ManifestOrigin): Promise<MirrorManifest | null> {
  const r = await runGit(['show', `${commit}:manifest.json`], { cwd: repo });
  return r.ok ? parseMirrorManifest(r.stdout, origin) : null;
}

/**
 * The issue that says what is wrong: for a union (a table entry is JSONL or documents), the branch
 * that came closest (fewest issues), so the message names the field rather than "Invalid input".
 */
function innermost(issue: z.core.$ZodIssue, prefix: PropertyKey[] = []): { path: PropertyKey[]; message: string } {
  const at = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    const closest = [...issue.errors].sort((a, b) => a.length - b.length)[0];
    if (closest?.length) return innermost(closest[0]!, at);
  }
  return { path: at, message: issue.message };
}

/** A zod issue in words: the field (`databases.notes.tables.t.rows`) and what is wrong with it. */
function describeIssue(issue: z.core.$ZodIssue): string {
  const { path: at, message } = innermost(issue);
  const field = at.map(String).join('.');
  return field ? `${field}: ${message}` : message;
}

/**
 * Every name in the manifest must be a database name and every path exactly the one names.ts
 * gives for its name: a path is never taken from the manifest and joined (a hand-edited or
 * hostile manifest could point outside the clone). Returns what is wrong, or null.
 */
function manifestPathProblem(manifest: MirrorManifest): string | null {
  for (const [name, entry] of Object.entries(manifest.databases)) {
    const bad = logicalNameProblem(name);
    if (bad) return bad;
    if (!mirrorPathAllowed(entry.schema, mirrorSchemaFile(name), legacyMirrorPath(name, 'schema.sql'))) {
      return `it puts the schema of ${name} in ${JSON.stringify(entry.schema)}, not ${mirrorSchemaFile(name)}`;
    }
    for (const [table, info] of Object.entries(entry.tables)) {
      const doc = isDocumentEntry(info);
      const expected = doc ? mirrorDocumentDir(name, table) : mirrorTableFile(name, table);
      const given = doc ? info.dir : info.file;
      if (!mirrorPathAllowed(given, expected, legacyMirrorPath(name, doc ? `${table}/` : `${table}.jsonl`, table))) {
        return `it puts the table ${name}.${JSON.stringify(table).slice(1, -1)} in ${JSON.stringify(given)}, not ${expected}`;
      }
    }
  }
  return null;
}

/** A mirror path is the one names.ts gives, or (mirrors pushed before names.ts) the plain legacy one. */
function mirrorPathAllowed(given: unknown, expected: string, legacy: string | null): boolean {
  return given === expected || (legacy !== null && given === legacy);
}

/**
 * Mirrors pushed before names.ts used the database and table names as they were
 * (`<db>/<table>.jsonl`, `<db>/<table>/`): still readable, but only where each name is a plain
 * single path segment (no separator, control character, "." or ".."), so a legacy path can never
 * lead outside its database folder. Import also refuses links and paths outside the clone.
 */
function legacyMirrorPath(db: string, rest: string, table?: string): string | null {
  const plain = (n: string) => n.length > 0 && n !== '.' && n !== '..' && !/[\\/\u0000-\u001f\u007f]/.test(n);
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(db)) return null;
  if (table !== undefined && !plain(table)) return null;
  return `${db}/${rest}`;
}

const REPLACED: ManifestOrigin = { where: 'in the sync clone', hint: 'The next push replaces it.' };

/**
 * A manifest a push is about to replace (the parent commit's, in the sync clone's folder): one that
 * cannot be trusted counts as none (logged), since the push only carries records over from it and
 * writes its own.
 */
export function replacedManifestIn(dir: string): MirrorManifest | null {
  try {
    return readMirrorManifestIn(dir, REPLACED);
  } catch (err) {
    return untrusted(err);
  }
}

/** replacedManifestIn for a commit of the sync clone. */
export async function replacedManifestAt(repo: string, commit: string): Promise<MirrorManifest | null> {
  try {
    return await readMirrorManifestAt(repo, commit, REPLACED);
  } catch (err) {
    return untrusted(err);
  }
}

function untrusted(err: unknown): null {
  if (!(err instanceof WbError)) throw err;
  logger().warn({ err: err.message }, 'github-sync: the manifest.json this push replaces is not used');
  return null;
}
