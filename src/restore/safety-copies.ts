import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { listPreRestoreDirs, readPreRestoreInfo, rootEntries } from './pre-restore.js';

/**
 * Safety copies: the db.pre_restore_<time>/ folders holding what restores, undos and imports
 * replaced. This module plans their rotation so that the consent prompt can say exactly which
 * existing copy an operation would remove; prunePreRestoreDirs then removes only copies so named.
 */
export const SafetyCopyPlanSchema = z.object({
  keep: z.number().describe('how many safety copies are kept (restore.keep_safety_copies)'),
  existing: z.number().describe('safety copies there are now'),
  new_copy: z.string().nullable().describe('the folder this operation puts the replaced files in'),
  would_prune: z
    .array(z.object({ folder: z.string(), created_at: z.string().nullable(), made_by: z.string() }))
    .describe('existing safety copies this operation removes to stay within keep (oldest first); no other copy is ever removed'),
});
export type SafetyCopyPlan = z.infer<typeof SafetyCopyPlanSchema>;

function stamp(now: Date): string {
  return now.toISOString().replace(/[:.]/g, '-');
}

/**
 * A db.pre_restore_<time> folder name that no earlier copy has (a suffix is added when two
 * operations fall in the same millisecond), so no operation ever writes into another's copy.
 */
export function uniqueSafetyDir(root: string, now = new Date()): string {
  let base = path.join(root, `db.pre_restore_${stamp(now)}`);
  // Copies are ordered by name (--undo takes the last): a clock set back since the newest copy was
  // made (NTP, a wrong RTC) must not sort this one before it. Then it is named after that copy.
  const newest = existingSafetyNames(root).at(-1);
  if (newest !== undefined && path.basename(base) <= newest) base = path.join(root, `${newest}-1`);
  let candidate = base;
  for (let n = 2; fs.existsSync(candidate) || fs.existsSync(path.join(root, `db.discard_${path.basename(candidate)}`)); n++) candidate = `${base}-${n}`;
  return candidate;
}

/** Names of every safety copy there is, also those being deleted, in name order. */
function existingSafetyNames(root: string): string[] {
  return rootEntries(root)
    .map((n) => (n.startsWith('db.discard_') ? n.slice('db.discard_'.length) : n))
    .filter((n) => n.startsWith('db.pre_restore_'))
    .sort();
}

function describeMaker(dir: string): { created_at: string | null; made_by: string } {
  try {
    const info = readPreRestoreInfo(dir);
    const what = info.kind === 'undo' ? 'an undo' : info.snapshot_id ? `a restore of ${info.snapshot_id}` : `a ${info.kind}`;
    return { created_at: info.created_at, made_by: `${what} (${info.databases.map((d) => d.name).join(', ')})` };
  } catch {
    return { created_at: null, made_by: 'an unknown operation (its pre-restore.json is unreadable)' };
  }
}

/**
 * The rotation an operation that adds one safety copy would do. `consumes`: copies the operation
 * itself uses up (an undo moves its source copy back into place), not counted as kept.
 */
export function planSafetyCopies(config: Config, opts: { newCopy: string | null; consumes?: readonly string[] }): SafetyCopyPlan {
  const keep = config.restore.keep_safety_copies;
  const consumed = new Set((opts.consumes ?? []).map((d) => path.basename(d)));
  const existing = listPreRestoreDirs(config.root).filter((d) => !consumed.has(path.basename(d)));
  // Newest first; the new copy takes the first place, so the old ones from index keep-1 on go.
  const goes = opts.newCopy === null ? existing.slice(keep) : existing.slice(Math.max(0, keep - 1));
  return {
    keep,
    existing: existing.length,
    new_copy: opts.newCopy === null ? null : path.basename(opts.newCopy),
    would_prune: goes.reverse().map((dir) => ({ folder: path.basename(dir), ...describeMaker(dir) })),
  };
}

/**
 * One or two sentences for consent prompts and plan output. `root`: name the new copy by its
 * absolute path; `newCopySaid`: the text already says where the current files go (a restore's
 * what_you_lose does), so only the rotation is described.
 */
export function describeSafetyCopies(plan: SafetyCopyPlan, opts: { undo?: boolean; root?: string; newCopySaid?: boolean } = {}): string {
  const kept = `${plan.keep} safety cop${plan.keep === 1 ? 'y is' : 'ies are'} kept`;
  // What an undo replaces is kept, but a later --undo answers "nothing to undo" (it never re-applies).
  const back = opts.undo ? 'kept; a later --undo does not put them back: restore again for that' : 'wb-backup restore --undo puts them back';
  const into = plan.new_copy && !opts.newCopySaid ? `The current files move to ${opts.root ? path.join(opts.root, plan.new_copy) : plan.new_copy} (${back}); ` : '';
  if (!plan.would_prune.length) return capitalize(`${into}${kept}; this removes none of the ${plan.existing} existing.`);
  const gone = plan.would_prune.map((p) => `${p.folder} (made ${p.created_at ?? 'at an unknown time'} by ${p.made_by})`).join(', ');
  return capitalize(`${into}${kept}, so this REMOVES the oldest: ${gone}; what it holds can no longer be put back.`);
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
