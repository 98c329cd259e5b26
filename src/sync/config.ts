import { z } from 'zod';

/** `sync.github` in wb-backup.yaml: where the readable mirror of the databases goes. */
export const SyncConfigSchema = z
  .object({
    github: z
      .object({
        repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected "owner/name"').optional().describe('GitHub repository (credentials through gh)'),
        remote_url: z.string().min(1).optional().describe('any git URL or path instead of a GitHub repository'),
        branch: z.string().min(1).optional().describe("default: the remote's default branch"),
        mode: z.literal('direct').default('direct').describe('direct: commit to the branch; refuses when the remote moved (pr/hybrid are planned)'),
        exclude_tables: z.array(z.string()).default([]).describe('"table" or "db.table"'),
        max_file_bytes: z.number().int().positive().default(50 * 1024 * 1024),
        max_push_bytes: z.number().int().positive().default(200 * 1024 * 1024),
      })
      .strict()
      .refine((g) => Boolean(g.repo) !== Boolean(g.remote_url), { message: 'set exactly one of repo or remote_url' }),
  })
  .strict();
export type SyncConfig = z.infer<typeof SyncConfigSchema>;
export type GithubSyncConfig = SyncConfig['github'];
