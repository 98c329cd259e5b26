import { z } from 'zod';
import { defineBackend, PART_BYTES_DESCRIPTION } from '../backend.js';
import { GithubRemote } from './github-remote.js';

/** `remote: { github: { repo, part_bytes? } }`: releases of a private GitHub repository, through gh. */
export const GithubSettingsSchema = z
  .object({
    repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'expected "owner/name"'),
    part_bytes: z.number().int().min(1024).optional().describe(PART_BYTES_DESCRIPTION),
  })
  .strict();

export const githubBackend = defineBackend({
  schema: GithubSettingsSchema,
  create: (settings, ctx) =>
    new GithubRemote({ repo: settings.repo, ...(settings.part_bytes ? { partBytes: settings.part_bytes } : {}), ...(ctx.ghEnv ? { env: ctx.ghEnv } : {}) }),
});
