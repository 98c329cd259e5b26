import fs from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../core/durable-file.js';
import { rootLayout } from '../root/paths.js';

/** One snapshot's verdict: what was checked and what failed, by name. */
export const SnapshotVerdictSchema = z.object({
  id: z.string(),
  where: z.enum(['local', 'remote']),
  /** true when the snapshot was read in full (downloaded if remote, rebuilt, integrity-checked) */
  read: z.boolean(),
  ok: z.boolean(),
  problems: z.array(z.string()).describe('what failed, each naming the file, database or base'),
});
export type SnapshotVerdict = z.infer<typeof SnapshotVerdictSchema>;

/** last_check.json: the last check's result, and when each snapshot was last read in full. */
export const LastCheckSchema = z.object({
  started_at: z.string(),
  finished_at: z.string(),
  where: z.enum(['local', 'remote']),
  ok: z.boolean(),
  checked: z.number().int(),
  read: z.number().int(),
  failed: z.array(SnapshotVerdictSchema).describe('the snapshots with problems (at most 50)'),
  /** snapshot id -> ISO time it was last read in full and passed, per place ("local" / "remote") */
  read_at: z.record(z.string(), z.record(z.string(), z.string())).default({}),
});
export type LastCheck = z.infer<typeof LastCheckSchema>;

export function readLastCheck(root: string): LastCheck | null {
  try {
    const parsed = LastCheckSchema.safeParse(JSON.parse(fs.readFileSync(rootLayout(root).lastCheckFile, 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

export function writeLastCheck(root: string, check: LastCheck): void {
  fs.mkdirSync(rootLayout(root).backupsDir, { recursive: true });
  writeFileAtomic(rootLayout(root).lastCheckFile, `${JSON.stringify(check, null, 2)}\n`);
}
