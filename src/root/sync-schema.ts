import { z } from 'zod';
import { IssuesSyncSchema } from './sync-issues-schema.js';

/* The sync.github section of wb-backup.yaml. It sits in root/ because the config schema is read
   before any domain folder loads; what github-sync does with it is in src/sync/. */

/** A table mirrored as one Markdown file per row: `body` is the Markdown, the other columns go in the front matter. */
export const DocumentMappingSchema = z
  .object({
    body: z.string().min(1).describe('the column holding the Markdown body'),
  })
  .strict();
export type DocumentMapping = z.infer<typeof DocumentMappingSchema>;

export const SYNC_MODES = ['direct', 'pr', 'hybrid'] as const;
export type SyncMode = (typeof SYNC_MODES)[number];

/** Minutes between two polls of each configured sync transport, when `sync.poll_minutes` does not say. */
export const DEFAULT_POLL_MINUTES = 15;

/**
 * `sync` in wb-backup.yaml: `github`, where the readable mirror of the databases goes (the git
 * transport), and how often the sidecar looks for changes on every configured transport.
 */
export const SyncConfigSchema = z
  .object({
    github: z
      .object({
        repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected "owner/name"').optional().describe('GitHub repository (credentials through gh; pull requests through gh)'),
        remote_url: z.string().min(1).optional().describe('git URL or path to push to; with repo, overrides its https URL (e.g. an SSH URL)'),
        branch: z.string().min(1).optional().describe("default: the repository's default branch, read from GitHub (or the remote)"),
        mode: z
          .enum(SYNC_MODES)
          .default('direct')
          .describe('direct: commit to the branch, refuse when the remote moved; pr: always a branch + pull request; hybrid: direct when it fast-forwards, else a pull request'),
        documents: z
          .record(z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'expected "db.table"'), DocumentMappingSchema)
          .default({})
          .describe('"db.table" -> { body: column }: one <db>/<table>/<key>.md per row with YAML front matter'),
        exclude_tables: z.array(z.string()).default([]).describe('"table" or "db.table"'),
        max_file_bytes: z.number().int().positive().default(50 * 1024 * 1024),
        max_push_bytes: z.number().int().positive().default(200 * 1024 * 1024),
      })
      .strict()
      .refine((g) => Boolean(g.repo) || Boolean(g.remote_url), { message: 'set repo (a GitHub repository) or remote_url (any git remote)' })
      .refine((g) => g.mode === 'direct' || Boolean(g.repo), { message: 'modes pr and hybrid open pull requests on GitHub: set repo' })
      .optional(),
    issues: IssuesSyncSchema.optional().describe('task tables kept as GitHub issues (docs/github-sync.md#issues)'),
    poll_minutes: z
      .number()
      .int()
      .min(1)
      .max(24 * 60)
      .default(DEFAULT_POLL_MINUTES)
      .describe('the sidecar checks each configured sync transport for remote changes this often (jittered: 80-100% of it), and pulls when one changed'),
  })
  .strict();
export type SyncConfig = z.infer<typeof SyncConfigSchema>;
export type GithubSyncConfig = NonNullable<SyncConfig['github']>;
