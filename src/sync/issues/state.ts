/**
 * What the issues transport remembers between syncs, in <root>/sync/issues/state.json: per row, its
 * issue (number, GitHub's `updated_at` and a hash of what GitHub held when last synced) and the
 * issue view at the last sync (the base of the three-way merge); per child row, its comment; the
 * watermark (`since=` of the next pull and poll); and the rows left in conflict.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../core/durable-file.js';
import { syncDir } from '../state.js';

const ViewSchema = z.object({
  title: z.string(),
  body: z.string(),
  state: z.string().nullable(),
  priority: z.string().nullable(),
  type: z.string().nullable(),
  labels: z.array(z.string()),
});

export const IssueEntrySchema = z.object({
  number: z.number().int(),
  /** GitHub's updated_at the last time this transport wrote or read the issue */
  updated_at: z.string(),
  /** payloadHash of the issue as GitHub held it after the last sync */
  hash: z.string(),
  /** payloadHash of what this transport last sent (GitHub may normalize it, e.g. trim a title) */
  sent: z.string().optional(),
  /** the issue view at the last sync: the merge's base */
  base: ViewSchema,
  /** the whole row (its mirror line) at the last sync, for a row deleted here since */
  line: z.string(),
  /** the row was deleted here and the issue closed with wb:deleted */
  deleted: z.boolean().optional(),
});
export type IssueEntry = z.infer<typeof IssueEntrySchema>;

export const CommentEntrySchema = z.object({
  id: z.number().int(),
  issue: z.number().int(),
  /** commentHash of the comment as GitHub held it after the last sync */
  hash: z.string(),
  /** the child row's text at the last sync: the merge's base */
  base: z.string(),
  /** 'github': a person's comment brought in as a row (never deleted on GitHub by this transport) */
  origin: z.enum(['row', 'github']),
});
export type CommentEntry = z.infer<typeof CommentEntrySchema>;

export const IssueConflictSchema = z.object({
  table: z.string(),
  key: z.string(),
  issue: z.number().int().nullable(),
  base: z.string().nullable(),
  ours: z.string().nullable(),
  theirs: z.string().nullable(),
  recorded_at: z.string(),
});
export type IssueConflict = z.infer<typeof IssueConflictSchema>;

export const IssuesStateSchema = z.object({
  repo: z.string(),
  /** `since=` of the next pull and poll: GitHub's updated_at of the newest change already read */
  watermark: z.string().nullable(),
  /** "db.table" -> row key -> its issue */
  issues: z.record(z.string(), z.record(z.string(), IssueEntrySchema)),
  /** "db.child_table" -> child row key -> its comment */
  comments: z.record(z.string(), z.record(z.string(), CommentEntrySchema)),
  conflicts: z.array(IssueConflictSchema),
  last_push_at: z.string().nullable(),
  last_pull_at: z.string().nullable(),
});
export type IssuesState = z.infer<typeof IssuesStateSchema>;

function stateFile(root: string): string {
  return path.join(syncDir(root), 'issues', 'state.json');
}

/** The state for `repo`; a fresh one when none was written or it belongs to another repository. */
export function readIssuesState(root: string, repo: string): IssuesState {
  try {
    const parsed = IssuesStateSchema.safeParse(JSON.parse(fs.readFileSync(stateFile(root), 'utf8')));
    if (parsed.success && parsed.data.repo.toLowerCase() === repo.toLowerCase()) return parsed.data;
  } catch {
    /* none yet */
  }
  return { repo, watermark: null, issues: {}, comments: {}, conflicts: [], last_push_at: null, last_pull_at: null };
}

export function writeIssuesState(root: string, state: IssuesState): void {
  const file = stateFile(root);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, `${JSON.stringify(state)}\n`);
}
