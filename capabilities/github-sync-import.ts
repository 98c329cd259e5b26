import { z } from 'zod';
import { defineCapability } from '../src/capability.js';
import { SyncImportResultSchema, syncImport } from '../src/sync/import.js';

export default defineCapability({
  name: 'github_sync_import',
  title: 'Rebuild databases from a mirror clone',
  description:
    'Rebuild the databases from a `git clone` of the sync repository (schema.sql + rows), e.g. on a new or wiped machine. Each database is built in a temp file and its row counts checked against the mirror manifest before it is moved into place. ' +
    'Existing databases are refused unless force is true (DESTRUCTIVE then: the old files are kept as <file>.pre_import). A malformed row file is refused with its path and line. Use dry_run first to see what would be rebuilt.',
  input: z.object({
    clone_dir: z.string().min(1).describe('folder of a git clone of the sync repository'),
    dry_run: z.boolean().default(false),
    force: z.boolean().default(false).describe('replace existing databases'),
  }),
  output: SyncImportResultSchema,
  annotations: { title: 'Rebuild databases from a mirror clone', readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  async run(input, ctx) {
    const result = await syncImport(ctx.loadConfig(), input.clone_dir, { dryRun: input.dry_run, force: input.force });
    return { result, summary: result.message };
  },
});
