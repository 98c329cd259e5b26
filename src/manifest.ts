import { z } from 'zod';
import { WbError } from './errors.js';

/** Versions of MANIFEST.json this build can read. Bump when the format changes incompatibly. */
export const MANIFEST_VERSION = 1;
export const SUPPORTED_MANIFEST_VERSIONS: readonly number[] = [1];

export const CodecSchema = z.enum(['zstd', 'gzip']);
export type Codec = z.infer<typeof CodecSchema>;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');

export const ManifestDatabaseSchema = z.object({
  name: z.string().min(1),
  /** path of the file inside the archive, always "databases/<name>/<basename>" */
  file: z.string().min(1),
  /** where it lived, relative to the data root (or just the file name when it lived outside it) */
  relative_path: z.string().min(1),
  bytes: z.number().int().min(0),
  sha256: Sha256,
  user_version: z.number().int(),
  page_size: z.number().int().positive(),
  page_count: z.number().int().min(0),
  journal_mode: z.string(),
  rows: z.record(z.string(), z.number().int().min(0)),
  /** true when the live path was a symbolic link (the copy is of the file it led to); absent otherwise */
  via_link: z.boolean().optional(),
});
export type ManifestDatabase = z.infer<typeof ManifestDatabaseSchema>;

export const ManifestSchema = z.object({
  manifest_version: z.literal(MANIFEST_VERSION),
  snapshot_id: z.string().min(1),
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
  databases: z.array(ManifestDatabaseSchema),
  skipped: z.array(z.object({ name: z.string(), reason: z.string() })),
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
    throw new WbError('manifest_invalid', `MANIFEST.json is malformed (${detail}).`, 'The snapshot is damaged; pick another one.');
  }
  return parsed.data;
}
