import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { logger } from '../core/log.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { rootLayout } from '../root/paths.js';

/** What the last sync left behind: the base of the next three-way pull and of the "remote moved" check. */
export const SyncStateSchema = z.object({
  last_synced_sha: z.string().nullable(),
  last_remote_sha: z.string().nullable(),
  last_sync_at: z.string().nullable(),
  /** the pull request a pr/hybrid push opened and that is not merged into the sync base yet */
  open_pull_request: z.object({ number: z.number(), url: z.string(), branch: z.string() }).nullable().optional(),
});
export type SyncState = z.infer<typeof SyncStateSchema>;

export function syncDir(root: string): string {
  return rootLayout(root).syncDir;
}

const EMPTY: SyncState = { last_synced_sha: null, last_remote_sha: null, last_sync_at: null };

export function readState(root: string): SyncState {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(path.join(syncDir(root), 'state.json'), 'utf8'));
  } catch {
    return { ...EMPTY };
  }
  const parsed = SyncStateSchema.safeParse(raw);
  return parsed.success ? parsed.data : { ...EMPTY };
}

export function writeState(root: string, state: SyncState): void {
  const file = path.join(syncDir(root), 'state.json');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
}

/** Every sync operation, appended to <root>/sync/log.jsonl and logged. */
export function logOperation(root: string, entry: Record<string, unknown>): void {
  fs.mkdirSync(syncDir(root), { recursive: true });
  fs.appendFileSync(path.join(syncDir(root), 'log.jsonl'), `${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`);
  logger().info(entry, 'github-sync');
}
