import fs from 'node:fs';
import { z } from 'zod';
import { rootLayout } from '../root/paths.js';
import { overwriteInPlace, writeFileAtomic } from '../core/durable-file.js';

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

/**
 * Record a run in last_run.json (atomically). On a disk too full for a new file, a failed run is
 * still recorded by rewriting the existing file in place within its allocated size (compact JSON,
 * the error cut to fit, space-padded), and if even that is impossible the old file is removed:
 * health must never read "ok" after a run that failed.
 */
export function writeLastRun(root: string, run: LastRun): void {
  const file = rootLayout(root).lastRunFile;
  try {
    fs.mkdirSync(rootLayout(root).backupsDir, { recursive: true });
    writeFileAtomic(file, `${JSON.stringify(run, null, 2)}\n`);
    return;
  } catch {
    // A full disk may refuse even this small file: fall through.
  }
  if (run.ok) return; // an older record is then merely stale, not wrong about a failure
  try {
    rewriteInPlace(file, run);
  } catch {
    try {
      fs.rmSync(file, { force: true });
    } catch {
      // Not even that (a root this user may not write): the caller's error is the one to report.
    }
  }
}

/** Overwrite `file` within its current size (no new blocks are needed), or throw. */
function rewriteInPlace(file: string, run: LastRun): void {
  const size = fs.statSync(file).size;
  let error = run.error ?? '';
  for (;;) {
    const text = JSON.stringify({ ...run, error });
    const bytes = Buffer.from(text, 'utf8');
    if (bytes.length <= size) {
      // Padding keeps the length (JSON allows trailing spaces), so nothing past the old end is written.
      const padded = Buffer.concat([bytes, Buffer.alloc(size - bytes.length, 0x20)]);
      overwriteInPlace(file, padded);
      return;
    }
    if (!error) throw new Error('last_run.json is too small for a failure record');
    error = error.length > 40 ? `${error.slice(0, Math.max(20, error.length - (bytes.length - size) - 2))}…` : '';
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
