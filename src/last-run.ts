import fs from 'node:fs';
import { z } from 'zod';
import { rootLayout } from './paths.js';
import { writeFileAtomic } from './durable-file.js';

export const RemoteOutcomeSchema = z.object({
  status: z.enum(['pushed', 'skipped', 'failed']),
  reason: z.string().optional(),
  attempts: z.number().int().optional(),
  backfilled: z.array(z.string()).optional(),
  pruned: z.array(z.string()).optional(),
});
export type RemoteOutcome = z.infer<typeof RemoteOutcomeSchema>;

/** What the last backup run did. Health checks read this file; they never call a remote. */
export const LastRunSchema = z.object({
  ok: z.boolean(),
  snapshot_id: z.string().nullable(),
  manual: z.boolean(),
  started_at: z.string(),
  finished_at: z.string(),
  duration_ms: z.number(),
  archive_bytes: z.number().nullable(),
  databases_bytes: z.number().nullable(),
  databases: z.number().int(),
  skipped: z.array(z.object({ name: z.string(), reason: z.string() })),
  error: z.string().nullable(),
  remote: RemoteOutcomeSchema.nullable(),
});
export type LastRun = z.infer<typeof LastRunSchema>;

export function writeLastRun(root: string, run: LastRun): void {
  const file = rootLayout(root).lastRunFile;
  fs.mkdirSync(rootLayout(root).backupsDir, { recursive: true });
  try {
    writeFileAtomic(file, `${JSON.stringify(run, null, 2)}\n`);
  } catch {
    // A full disk may refuse even this small file; the caller's result still reports the run.
  }
}

export function readLastRun(root: string): LastRun | null {
  try {
    const parsed = LastRunSchema.safeParse(JSON.parse(fs.readFileSync(rootLayout(root).lastRunFile, 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
