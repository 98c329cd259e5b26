import path from 'node:path';
import { z } from 'zod';
import { archiveEntry, logicalNameProblem } from '../root/names.js';
import { WbError } from '../core/errors.js';
import { SNAPSHOT_ID_PATTERN } from './id.js';

/**
 * Versions of MANIFEST.json this build can read. Bump when the format changes incompatibly.
 * 1: every database stored whole (VACUUM INTO copies). 2: adds the snapshot's `kind` and `base`
 * and, per database, `stored` with a page delta against the base (docs/formats.md).
 */
export const MANIFEST_VERSION = 2;
export const SUPPORTED_MANIFEST_VERSIONS: readonly number[] = [1, 2];

export const CodecSchema = z.enum(['zstd', 'gzip']);
export type Codec = z.infer<typeof CodecSchema>;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');

/** SQLite's own limits: a file has at most 4294967294 pages of at most 65536 bytes. */
export const MAX_PAGE_COUNT = 4294967294;
export const MAX_DATABASE_BYTES = MAX_PAGE_COUNT * 65536;
const MAX_DATABASES = 10_000;
const MAX_TABLES = 100_000;
/** Longest table name a manifest may list (characters); SQLite's own SQL length limit is 1e9 bytes by default. */
const MAX_TABLE_NAME = 1_000_000;

export const ManifestDatabaseSchema = z.object({
  name: z.string().min(1).max(200),
  /** path of the file inside the archive, always "databases/<name>/<basename>" */
  file: z.string().min(1).max(1000),
  /** where it lived, relative to the data root (or just the file name when it lived outside it) */
  relative_path: z.string().min(1).max(4096),
  bytes: z.number().int().min(0).max(MAX_DATABASE_BYTES),
  sha256: Sha256,
  user_version: z.number().int().min(-(2 ** 31)).max(2 ** 31 - 1),
  page_size: z
    .number()
    .int()
    .min(512)
    .max(65536)
    .refine((n) => (n & (n - 1)) === 0, 'expected a power of two'),
  page_count: z.number().int().min(0).max(MAX_PAGE_COUNT),
  journal_mode: z.string().max(16),
  // Keys are table names as SQLite holds them: SQLite sets no length limit on a name, and a backup
  // writes them as they are, so a limit here below what a real table can have would make the
  // snapshot unrestorable ("malformed"). The bound only keeps a hostile manifest from being absurd.
  rows: z.record(z.string().max(MAX_TABLE_NAME), z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)),
  /** true when the live path was a symbolic link (the copy is of the file it led to); absent otherwise */
  via_link: z.boolean().optional(),
  /**
   * How the archive holds it (version 2): 'image' (the whole image at `file`, the default and
   * the only form of version 1) or 'delta' (only `delta.file`: the pages that differ from this
   * database in the snapshot's base; `file`, `bytes` and `sha256` describe the rebuilt image).
   */
  stored: z.enum(['image', 'delta']).optional(),
  delta: z
    .object({
      /** the delta's archive entry: `<file>.delta` */
      file: z.string().min(1).max(1010),
      /** bytes of the delta file inside the archive */
      bytes: z.number().int().min(0).max(MAX_DATABASE_BYTES * 2),
      /** sha256 of the base's image of this database: the link a restore checks */
      base_sha256: Sha256,
      /** pages the delta holds */
      changed_pages: z.number().int().min(0).max(MAX_PAGE_COUNT),
    })
    .strict()
    .optional(),
});
export type ManifestDatabase = z.infer<typeof ManifestDatabaseSchema>;

export const ManifestSchema = z.object({
  manifest_version: z.union([z.literal(1), z.literal(2)]),
  /** version 2: 'full' (every database an image) or 'delta' (some databases stored against `base`) */
  kind: z.enum(['full', 'delta']).optional(),
  /** version 2: the snapshot a delta snapshot's deltas apply to; null for a full */
  base: z.string().regex(SNAPSHOT_ID_PATTERN).nullable().optional(),
  snapshot_id: z.string().regex(SNAPSHOT_ID_PATTERN, 'expected a snapshot id like snap-2026-01-01T00-00-00Z'),
  created_at: z.string().datetime(),
  manual: z.boolean(),
  codec: CodecSchema,
  tool: z.object({
    name: z.literal('wb-backup'),
    version: z.string(),
    commit: z.string().nullable(),
    branch: z.string().nullable(),
    dirty: z.boolean().nullable(),
  }),
  host: z.string(),
  databases: z.array(ManifestDatabaseSchema).max(MAX_DATABASES),
  skipped: z.array(z.object({ name: z.string().max(1000), reason: z.string().max(10_000) })).max(MAX_DATABASES),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/**
 * Validate a parsed MANIFEST.json. An unknown manifest_version is refused before anything else,
 * because fields may mean something else in a format this build does not know.
 */
export function validateManifest(raw: unknown): Manifest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new WbError('manifest_invalid', 'MANIFEST.json is not a JSON object.', 'The snapshot is damaged; pick another one.');
  }
  const version = (raw as { manifest_version?: unknown }).manifest_version;
  if (typeof version !== 'number' || !SUPPORTED_MANIFEST_VERSIONS.includes(version)) {
    throw new WbError(
      'manifest_invalid',
      `MANIFEST.json has manifest_version ${JSON.stringify(version)}, which this wb-backup does not know (it reads ${SUPPORTED_MANIFEST_VERSIONS.join(', ')}).`,
      'The snapshot was probably written by a newer wb-backup: upgrade wb-backup, then try again.',
    );
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
    throw new WbError('manifest_invalid', `MANIFEST.json is malformed (${detail}). Nothing was changed.`, 'The snapshot is damaged or was tampered with; pick another one.');
  }
  const problems = manifestEntryProblems(parsed.data);
  if (problems.length) {
    throw new WbError('manifest_invalid', `MANIFEST.json is not safe to use: ${problems.join('; ')}. Nothing was changed.`, 'The snapshot is damaged or was tampered with; pick another one.');
  }
  return parsed.data;
}

/**
 * Why a logical database name taken from a manifest, a remote or a clone cannot be used, or null.
 * Names become folder and file names, so: letters, digits, "_", "." and "-", starting with a letter
 * or digit (so never "." or ".."), at most 200 characters: the names config.ts accepts. (Meant to be
 * replaced by the shared name mapping of src/names.ts.)
 */
export function unsafeDatabaseNameReason(name: string): string | null {
  // One rule for every name taken from data: the shared name mapping's. The common hostile shapes
  // get a precise reason first.
  if (!logicalNameProblem(name)) return null;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'it contains a control character';
  if (/[\\/]/.test(name)) return 'it contains a path separator';
  if (name === '.' || name === '..') return 'it is "." or ".."';
  return logicalNameProblem(name);
}

/** A single path component that is a plain file name (no separators, control characters, "." or ".."). */
function unsafeFileNameReason(name: string): string | null {
  if (!name || name === '.' || name === '..') return 'it is empty, "." or ".."';
  if (name.length > 255) return 'it is longer than 255 characters';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'it contains a control character';
  if (/[\\/]/.test(name)) return 'it contains a path separator';
  return null;
}

/** Why a manifest's relative_path cannot be used as a path under the data root, or null. */
export function unsafeRelativePathReason(rel: string): string | null {
  if (path.posix.isAbsolute(rel) || path.win32.isAbsolute(rel) || /^[A-Za-z]:/.test(rel)) return 'it is an absolute path';
  const parts = rel.split(/[\\/]/);
  for (const part of parts) {
    const why = unsafeFileNameReason(part);
    if (why) return `its component "${part.replace(/[\u0000-\u001f\u007f]/g, '?')}" is not a plain name (${why})`;
  }
  return null;
}

/**
 * The archive paths a backup writes for a database: the name's folder, then the live file's name
 * (the last component of relative_path). Nothing else is accepted, so a manifest cannot point one
 * database at another's file or anywhere else. (With the shared name mapping, the names.ts form
 * `archiveEntry(name, base)` joins this list; the plain form stays for older snapshots.)
 */
export function expectedArchiveFiles(name: string, relativePath: string): string[] {
  const base = relativePath.split(/[\\/]/).at(-1) ?? '';
  // Snapshots written before the shared name mapping used the plain name and file name; both stay readable.
  return [...new Set([archiveEntry(name, base), `databases/${name}/${base}`])];
}

/** Cross-field checks zod cannot express: safe names and paths, one entry per name, file and path. */
function manifestEntryProblems(m: Manifest): string[] {
  const problems: string[] = [...chainProblems(m)];
  const show = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
  const seen = { name: new Set<string>(), file: new Set<string>(), relative_path: new Set<string>() };
  for (const d of m.databases) {
    const nameWhy = unsafeDatabaseNameReason(d.name);
    if (nameWhy) {
      problems.push(`database name ${show(d.name)} is not a safe name (${nameWhy})`);
      continue;
    }
    const relWhy = unsafeRelativePathReason(d.relative_path);
    if (relWhy) problems.push(`database ${d.name} has relative_path ${show(d.relative_path)}: ${relWhy}`);
    else {
      const expected = expectedArchiveFiles(d.name, d.relative_path);
      if (!expected.includes(d.file)) problems.push(`database ${d.name} has archive file ${show(d.file)}, expected ${expected.map((e) => JSON.stringify(e)).join(' or ')}`);
    }
    if (d.stored === 'delta') {
      if (!d.delta) problems.push(`database ${d.name} is stored as a delta but names no delta file`);
      else if (d.delta.file !== `${d.file}.delta`) problems.push(`database ${d.name} has delta file ${show(d.delta.file)}, expected ${show(`${d.file}.delta`)}`);
    } else if (d.delta) problems.push(`database ${d.name} is stored whole but names a delta file`);
    if (d.bytes !== d.page_size * d.page_count) problems.push(`database ${d.name} says ${d.bytes} bytes, but ${d.page_count} pages of ${d.page_size} bytes are ${d.page_size * d.page_count}`);
    if (Object.keys(d.rows).length > MAX_TABLES) problems.push(`database ${d.name} lists more than ${MAX_TABLES} tables`);
    for (const key of ['name', 'file', 'relative_path'] as const) {
      const value = key === 'relative_path' ? d.relative_path.replace(/\\/g, '/').toLowerCase() : d[key];
      if (seen[key].has(value)) problems.push(`two databases have the ${key.replace('_', ' ')} ${show(d[key])}`);
      seen[key].add(value);
    }
  }
  return problems;
}

/** A snapshot's own chain fields must agree with its databases: deltas only in a delta snapshot, which names its base. */
function chainProblems(m: Manifest): string[] {
  const problems: string[] = [];
  const deltas = m.databases.filter((d) => d.stored === 'delta').length;
  if (m.manifest_version === 1) {
    if (m.kind !== undefined || m.base !== undefined || m.databases.some((d) => d.stored !== undefined || d.delta !== undefined)) problems.push('a version 1 manifest cannot hold the version 2 fields kind, base, stored or delta');
    return problems;
  }
  if (m.kind === undefined) problems.push('a version 2 manifest must say its kind (full or delta)');
  if (m.kind === 'delta' && !m.base) problems.push('a delta snapshot must name its base');
  if (m.kind === 'full' && (m.base || deltas)) problems.push('a full snapshot can have no base and no database stored as a delta');
  if (m.base && m.base === m.snapshot_id) problems.push('a snapshot cannot be its own base');
  return problems;
}

/** Whether the snapshot needs its base to be restored: a version 2 delta snapshot. */
export function isDeltaSnapshot(m: Manifest): boolean {
  return m.kind === 'delta';
}

/** The archive entry that holds a database in its snapshot: its image, or its delta. */
export function storedEntry(d: ManifestDatabase): string {
  return d.stored === 'delta' && d.delta ? d.delta.file : d.file;
}

/** Bytes of the stored entry in the archive (before compression). */
export function storedBytes(d: ManifestDatabase): number {
  return d.stored === 'delta' && d.delta ? d.delta.bytes : d.bytes;
}
