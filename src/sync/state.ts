import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { logger } from '../core/log.js';
import { writeFileAtomic } from '../core/durable-file.js';
import { rootLayout } from '../root/paths.js';

/** One side of a conflicting row: its JSON line, cut when long (`cut`), with the whole line's size and hash. */
export const ConflictValueSchema = z.object({
  line: z.string().describe('the row as its mirror line; cut to 1,000 characters when longer (then cut: true)'),
  bytes: z.number().describe('UTF-8 bytes of the whole line'),
  sha256: z.string().describe('hash of the whole line: a resolution checks the row still is this'),
  cut: z.boolean(),
});
export type ConflictValue = z.infer<typeof ConflictValueSchema>;

/** A row changed on both sides since the last sync, as a pull recorded it. */
export const ConflictRecordSchema = z.object({
  database: z.string(),
  table: z.string(),
  key: z.string().describe('the primary key as its JSON line, e.g. {"id":5}'),
  path: z.string().optional().describe('the document file, for tables mirrored as documents'),
  base: ConflictValueSchema.nullable().describe('the row at the last sync; null: it did not exist'),
  ours: ConflictValueSchema.nullable().describe('the row in the database when the pull ran; null: deleted here'),
  theirs: ConflictValueSchema.nullable().describe('the row on the remote; null: deleted there'),
  resolved: z.object({ take: z.enum(['ours', 'theirs']), at: z.string() }).nullable(),
});
export type ConflictRecord = z.infer<typeof ConflictRecordSchema>;

/** The conflicts of one pull: the commits it compared, and what else kept the sync base from moving. */
export const ConflictSetSchema = z.object({
  base_commit: z.string().describe('the sync base the pull compared against'),
  remote_commit: z.string().describe('the remote head the conflicting rows came from'),
  branch: z.string(),
  recorded_at: z.string(),
  rejected: z.number().describe('remote files the same pull could not use: while any, resolving does not move the sync base'),
  items: z.array(ConflictRecordSchema),
});
export type ConflictSet = z.infer<typeof ConflictSetSchema>;

/** What the last sync left behind: the base of the next three-way pull and of the "remote moved" check. */
export const SyncStateSchema = z.object({
  last_synced_sha: z.string().nullable(),
  last_remote_sha: z.string().nullable(),
  last_sync_at: z.string().nullable(),
  /**
   * the remote head the last pull read, whatever came of it (applied, or left conflicts): the
   * sidecar's poll does not report that head as a change again (transport.ts, poll)
   */
  last_pulled_sha: z.string().nullable().optional(),
  /** the pull request a pr/hybrid push opened and that is not merged into the sync base yet */
  open_pull_request: z.object({ number: z.number(), url: z.string(), branch: z.string() }).nullable().optional(),
  /** the rows the last pull found changed on both sides, until they are resolved (conflicts.ts) */
  conflicts: ConflictSetSchema.nullable().optional().catch(null),
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
