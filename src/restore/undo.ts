import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { withRootLock } from '../root/lock.js';
import { logger } from '../core/log.js';
import { displayPath } from '../root/paths.js';
import { whyInUse } from './in-use.js';
import type { ConsentDecision } from './restore.js';
import { claimConfirmToken, fingerprintTargets, issueConfirmToken, liveChangedReason, type ConsentGrant } from '../root/consent.js';
import { compareRows, describeComparison, describeLoss, formatAge, readRowsByCopy, type RowComparison } from './compare.js';
import { describeSafetyCopies } from './safety-copies.js';
import { planSafetyCopies, uniqueSafetyDir, type SafetyCopyPlan } from './safety-copies.js';
import { exists, hashFile, type SwapItem } from './journal.js';
import { performSwap } from './swap.js';
import { z } from 'zod';
import { filesIn, prunePreRestoreDirs, readRecord, RECORD_FILE, rootEntries, type PreRestoreInfo } from './pre-restore.js';
import { journalPath } from './journal.js';
import { recoverInterruptedSwap } from './recovery.js';

export interface UndoPlan {
  from: string;
  /** what is undone: a restore (of snapshotId) or an import */
  kind: 'restore' | 'import' | 'recover';
  snapshotId: string | null;
  databases: Array<{
    name: string;
    target: string;
    action: 'put back' | 'remove (did not exist before)';
    /** the live (restored) rows now against the rows put back: what the undo throws away */
    compared: RowComparison;
  }>;
  /** when the operation being undone replaced the files, and how long ago */
  undone_at: string;
  undone_age: string;
  /** plainly: what the current (restored) state has that the undo throws away, and where it is kept */
  what_you_lose: string;
  /** the data root, absolute */
  data_root: string;
  /** the current files go to a new safety copy; which existing copy this would remove */
  safety: SafetyCopyPlan;
}

export interface UndoResult extends UndoPlan {
  pre_restore_dir: string;
}

/** Nothing to undo: no completed restore or import, or the last one was already undone. Not a failure. */
export interface NothingToUndo {
  nothing_to_undo: true;
  reason: string;
  hint: string | null;
}

export interface UndoOptions {
  force?: boolean;
  dryRun?: boolean;
  consent?: (plan: UndoPlan) => Promise<ConsentDecision>;
  /** a dry run's confirm token: checked and consumed first; the undo then executes its plan. Takes the place of `consent`. */
  confirmToken?: string;
  /** a dry run returns this token (only when asked: the CLI has its prompt) */
  issueToken?: boolean;
}

/** A dry run's plan, with the token that performs it when one was asked for. */
export type UndoDryRun = UndoPlan & { confirm_token?: string };

/** What a confirm token records of an undo's plan: the real run must come out the same. */
interface UndoTokenPlan {
  from: string;
  databases: Array<{ name: string; target: string }>;
  would_prune: string[];
}

const undoRequest = (opts: UndoOptions): unknown => ({ force: opts.force ?? false });

/** The safety copy an undo puts back: its folder, its completed record, and the folder as shown. */
interface UndoSource {
  dir: string;
  info: PreRestoreInfo;
  /** what it holds the files of (never an undo: that one is not undone again) */
  kind: UndoPlan['kind'];
  from: string;
}

/**
 * Put back the newest completed db.pre_restore_<ts>/ folder (of a restore or an import). The files
 * it replaces go to a new pre_restore folder, whose record says it undid the first one: a second
 * undo then answers "nothing to undo" instead of re-applying the restore. Only a completed record
 * is ever used, and every file it lists must still be there with its recorded sha256.
 */
export async function runUndo(config: Config, opts: UndoOptions): Promise<UndoResult | UndoDryRun> {
  const outcome = await runUndoIfAny(config, opts);
  if ('nothing_to_undo' in outcome) throw new WbError('not_found', outcome.reason, outcome.hint ?? undefined);
  return outcome;
}

/**
 * runUndo, answering "nothing to undo" as a result instead of an error (an undo is idempotent: the
 * MCP tool says so without failing). A token is claimed before anything else.
 * @throws WbError `consent_required`, `in_use`, `restore_refused`, and the swap's errors
 */
export async function runUndoIfAny(config: Config, opts: UndoOptions): Promise<UndoResult | UndoDryRun | NothingToUndo> {
  return withRootLock(config.root, 'restore --undo', config.backup.lock_wait_ms, async () => {
    // A dry run changes nothing: it leaves an interrupted restore to the next real command.
    if (!opts.dryRun) recoverInterruptedSwap(config.root);
    const grant = !opts.dryRun && opts.confirmToken !== undefined ? claimUndoToken(config, opts, opts.confirmToken) : null;
    const source = newestUndoable(config.root);
    if ('nothing_to_undo' in source) {
      if (grant) throw new WbError('consent_required', `The undo was not performed: there is nothing to undo any more (${source.reason}). Nothing was changed.`);
      return source;
    }
    const items = undoItems(config, source);
    const preRestoreDir = uniqueSafetyDir(config.root);
    const plan = planUndo(config, source, items, preRestoreDir);
    if (opts.dryRun) return opts.issueToken ? { ...plan, confirm_token: issueUndoToken(config, opts, items, plan) } : plan;
    if (grant) refuseIfTokenPlanChanged(config, grant, items, plan);
    await obtainUndoConsent(config, opts, items, plan, grant);
    const swapped = performSwap({ root: config.root, kind: 'undo', snapshotId: source.info.snapshot_id, preRestoreDir, incomingDir: null, items, undoes: path.basename(source.dir) });
    pruneAfterUndo(config, plan);
    return { ...plan, pre_restore_dir: displayPath(config.root, swapped.preRestoreDir) };
  });
}

/** What an undo needs of a pre-restore.json: a completed record whose databases say what goes where. */
const UsableRecordSchema = z.looseObject({
  completed: z.literal(true),
  kind: z.enum(['restore', 'undo', 'import', 'recover']),
  snapshot_id: z.string().nullable(),
  created_at: z.string(),
  databases: z.array(z.looseObject({ name: z.string().min(1), target: z.string().min(1), file: z.string().min(1), existed: z.boolean() })),
});

/**
 * What is wrong with a safety copy's record for an undo, in words; null when it can be used.
 * Never throws: a record that cannot be read is a problem to name, not a crash.
 */
function recordProblem(dir: string): string | null {
  const file = path.join(dir, RECORD_FILE);
  if (!fs.existsSync(file)) return `has no ${RECORD_FILE} (it was moved or deleted, or the operation never completed)`;
  const record = readRecord(dir);
  if (record === null) return `has a ${RECORD_FILE} that cannot be read as JSON (damaged or cut short)`;
  if ((record as { completed?: unknown }).completed !== true) return `has a ${RECORD_FILE} that does not say the operation completed`;
  const parsed = UsableRecordSchema.safeParse(record);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return `has a damaged ${RECORD_FILE} (${issue ? `${issue.path.map(String).join('.') || 'the record'}: ${issue.message}` : 'unexpected content'})`;
  }
  return null;
}

/** db.pre_restore_* folders of the root, newest first (their names carry the time they were made). */
function safetyCopyDirs(root: string): string[] {
  return rootEntries(root)
    .filter((n) => n.startsWith('db.pre_restore_'))
    .sort()
    .reverse()
    .map((n) => path.join(root, n));
}

/**
 * The newest safety copy, when its record is usable and it is not itself an undo's; else why there
 * is nothing to undo (no completed operation, or the last one was already undone). A folder that
 * holds no file is passed over (a leftover that recovery removes; it has nothing to put back).
 * @throws WbError `restore_refused` when the newest safety copy holding files has no usable record
 *   and an older one has: falling back to it would undo to the wrong point, so it says which
 *   folder, what is wrong and what to do (move it away to undo the older one, or put its record
 *   back). With no older usable copy it is "nothing to undo", saying why.
 */
function newestUndoable(root: string): UndoSource | NothingToUndo {
  const dirs = safetyCopyDirs(root);
  let newest: string | undefined;
  for (const dir of dirs) {
    const problem = recordProblem(dir);
    if (!problem) {
      newest = dir;
      break;
    }
    if (filesIn(dir).length === 0) continue;
    const older = dirs.slice(dirs.indexOf(dir) + 1).find((d) => recordProblem(d) === null);
    // With no older copy there is no wrong point to fall back to: nothing can be undone, and why.
    if (!older) {
      return {
        nothing_to_undo: true,
        reason: `Nothing to undo: there is no completed restore or import to undo; ${path.join(root, path.basename(dir))} holds files but ${problem}, so it is not used.`,
        hint: `Look inside ${displayPath(root, dir)} (each <name>/ folder holds one database's files) and put the files back by hand if they are needed, or put its ${RECORD_FILE} back.`,
      };
    }
    throw unusableNewest(root, dir, problem, older);
  }
  if (!newest) {
    return { nothing_to_undo: true, reason: `Nothing to undo: there is no completed restore or import to undo (no db.pre_restore_* folder with a completed record in ${root}).`, hint: null };
  }
  const info = UsableRecordSchema.parse(readRecord(newest)) as PreRestoreInfo;
  const from = displayPath(root, newest);
  if (info.kind === 'undo') {
    return {
      nothing_to_undo: true,
      reason: `Nothing to undo: the last ${info.snapshot_id ? `restore (${info.snapshot_id})` : 'import'} was already undone${info.undoes ? ` (${info.undoes})` : ''}; ${newest} holds what that undo replaced.`,
      hint: 'To apply it again, restore the snapshot again.',
    };
  }
  return { dir: newest, info, kind: info.kind, from };
}

/** The refusal when the newest safety copy cannot be used while an older one could (see newestUndoable). */
function unusableNewest(root: string, dir: string, problem: string, older: string): WbError {
  const shown = displayPath(root, dir);
  // An interrupted restore's own folder (its journal is still there): recovery settles it first.
  if (exists(journalPath(root))) {
    return new WbError(
      'restore_refused',
      `Refusing to undo: the newest safety copy, ${shown}, belongs to a restore or undo that was interrupted and not yet recovered (${path.basename(journalPath(root))} is still there). Nothing was changed.`,
      'Run the undo without a dry run (or any wb-backup command that changes something): it first finishes or rolls back the interrupted operation, then says what can be undone.',
    );
  }
  return new WbError(
    'restore_refused',
    `Refusing to undo: the newest safety copy, ${path.join(root, path.basename(dir))}, ${problem}, so what it would put back is unknown, and undoing the older ${displayPath(root, older)} instead would go back to the wrong point. Nothing was changed.`,
    `Look inside ${shown} (each <name>/ folder holds one database's files). To undo the operation before it (${path.basename(older)}), move ${shown} out of the data root first; or put its ${RECORD_FILE} back.`,
  );
}

/** @throws WbError `consent_required` when the token does not hold (see claimConfirmToken) */
function claimUndoToken(config: Config, opts: UndoOptions, token: string): ConsentGrant<UndoTokenPlan> {
  const claim = claimConfirmToken<UndoTokenPlan>(token, { operation: 'undo', root: config.root, request: undoRequest(opts) });
  if (!claim.ok) throw new WbError('consent_required', `The undo was not performed: ${claim.reason}. Nothing was changed.`);
  return claim.grant;
}

function tokenPlanOf(items: readonly SwapItem[], plan: UndoPlan): UndoTokenPlan {
  return { from: plan.from, databases: items.map((i) => ({ name: i.name, target: i.target })), would_prune: plan.safety.would_prune.map((p) => p.folder) };
}

function issueUndoToken(config: Config, opts: UndoOptions, items: readonly SwapItem[], plan: UndoPlan): string {
  return issueConfirmToken({ operation: 'undo', root: config.root, request: undoRequest(opts), plan: tokenPlanOf(items, plan), targets: items.map((i) => i.target) });
}

/** @throws WbError `consent_required` when the undo would now do something else than the dry run showed */
function refuseIfTokenPlanChanged(config: Config, grant: ConsentGrant<UndoTokenPlan>, items: readonly SwapItem[], plan: UndoPlan): void {
  if (JSON.stringify(tokenPlanOf(items, plan)) !== JSON.stringify(grant.plan)) {
    throw new WbError('consent_required', 'The undo was not performed: the safety copies changed since the dry run, so its plan no longer holds. Nothing was changed.', 'Run a new dry run and use its confirm_token.');
  }
  const changed = liveChangedReason(grant.fingerprints, config.root, 'the dry run');
  if (changed) throw new WbError('consent_required', `The undo was not performed: ${changed}. Nothing was changed.`);
}

/**
 * What the swap puts back: each database's kept file to its target (none for one that did not exist before).
 * @throws WbError `restore_refused` when a target's folder is gone (a moved root) or a kept file is missing or changed
 */
function undoItems(config: Config, source: UndoSource): SwapItem[] {
  const { dir: newest, from } = source;
  return source.info.databases.map((d) => {
    const kept = path.join(newest, d.name, d.file);
    // Records name targets relative to the root; an absolute one (outside the root, or written by an
    // older version) is used only while its folder exists: else the root was moved since.
    const target = path.resolve(config.root, d.target);
    if (path.isAbsolute(d.target) && !fs.existsSync(path.dirname(target))) {
      throw new WbError(
        'restore_refused',
        `Refusing to undo: ${from} says ${d.name} lived at ${d.target}, whose folder no longer exists (was the data root moved or renamed?). Nothing was changed.`,
        `Put the files of ${displayPath(config.root, newest)} back by hand (each <name>/ folder holds one database's files).`,
      );
    }
    if (d.existed) {
      const problem = keptProblem(kept, d.files);
      if (problem) {
        throw new WbError('restore_refused', `Refusing to undo: ${displayPath(config.root, kept)} ${problem}, so ${from} cannot put ${d.name} back. Nothing was changed.`, 'Look inside that folder before doing anything by hand.');
      }
    }
    return { name: d.name, target, incoming: d.existed ? kept : null };
  });
}

/** The undo's plan: what a dry run returns and consent is asked for. */
function planUndo(config: Config, source: UndoSource, items: SwapItem[], preRestoreDir: string): UndoPlan {
  const undoneAt = source.info.completed_at ?? source.info.created_at;
  const age = formatAge(Date.now() - Date.parse(undoneAt));
  // The rows after the undo are the kept file's; both sides are counted on copies (the kept file's
  // recorded sha256 must stay true, and a dry run changes nothing).
  const databases = items.map((i) => ({
    name: i.name,
    target: displayPath(config.root, i.target),
    action: i.incoming ? ('put back' as const) : ('remove (did not exist before)' as const),
    compared: compareRows(readRowsByCopy(i.target), i.incoming ? rowsOrEmpty(i.incoming) : {}),
  }));
  const what = source.kind === 'import' ? 'the import' : source.kind === 'recover' ? 'the row recovery' : `the restore of ${source.info.snapshot_id ?? 'a snapshot'}`;
  const since = `by and since ${what} (${age})`;
  const loss = databases.map((d) => `${d.name}: ${describeLoss(d.compared, since)}`).join('. ');
  return {
    from: source.from,
    kind: source.kind,
    snapshotId: source.info.snapshot_id,
    databases,
    undone_at: undoneAt,
    undone_age: age,
    what_you_lose: `${loss}. The current files are kept in ${preRestoreDir}; restore ${source.info.snapshot_id ?? 'again'} to get them back (a later undo does not).`,
    data_root: config.root,
    // The undo moves its source copy back into place, so that one is not counted as kept.
    safety: planSafetyCopies(config, { newCopy: preRestoreDir, consumes: [source.dir] }),
  };
}

function rowsOrEmpty(file: string): Record<string, number> {
  const r = readRowsByCopy(file);
  return r.state === 'read' ? r.rows : {};
}

/**
 * The undo's plan as lines for a prompt, a dry run or an elicitation: what goes back, the rows per
 * table now and after, what is lost, and the safety copies. `root` is absolute.
 */
export function describeUndoPlan(plan: UndoPlan): string {
  const before = plan.kind === 'import' ? 'importing from the mirror' : plan.kind === 'recover' ? 'recovering rows' : `restoring ${plan.snapshotId ?? 'a snapshot'}`;
  const lines = [`Undo: put back ${path.join(plan.data_root, plan.from)} (the files as they were before ${before}, ${plan.undone_age}), in ${plan.data_root}:`];
  for (const d of plan.databases) {
    lines.push(`- ${d.name} ${d.action} at ${d.target}`);
    lines.push(...describeComparison(d.compared, 'after undo').map((l) => `    ${l}`));
  }
  lines.push(`What you lose: ${plan.what_you_lose}`);
  lines.push(describeSafetyCopies(plan.safety, { undo: true, root: plan.data_root }));
  return lines.join('\n');
}

/**
 * Refuses a database in use (unless forced), asks for consent, and checks the live files did not
 * change while the question was open.
 * @throws WbError `in_use`, `consent_required`
 */
async function obtainUndoConsent(config: Config, opts: UndoOptions, items: SwapItem[], plan: UndoPlan, grant: ConsentGrant<UndoTokenPlan> | null): Promise<void> {
  if (!opts.force) {
    for (const item of items) {
      const why = whyInUse(item.target);
      if (why) throw new WbError('in_use', `Refusing to undo: ${item.name} is in use: ${why}. Nothing was changed.`, `Stop the program using it, or pass force: true.${grant ? ' The confirm_token was used: run a new dry run first.' : ''}`);
    }
  }
  if (grant) return;
  const shown = fingerprintTargets(items.map((i) => i.target));
  const decision = opts.consent ? await opts.consent(plan) : ({ granted: false, reason: 'no way to ask for consent was given' } as const);
  if (!decision.granted) throw new WbError('consent_required', `The undo was not performed: ${decision.reason}. Nothing was changed.`);
  const changed = liveChangedReason(shown, config.root, 'the plan was shown');
  if (changed) throw new WbError('consent_required', `The undo was not performed: ${changed}. Nothing was changed.`);
}

/** Removes the safety copy the consented plan named; a failure is logged (the undo is done and recorded). */
function pruneAfterUndo(config: Config, plan: UndoPlan): void {
  try {
    // Only the copy the consented plan named can go.
    prunePreRestoreDirs(
      config.root,
      plan.safety.keep,
      plan.safety.would_prune.map((p) => p.folder),
    );
  } catch (err) {
    // the undo is done and recorded; old folders are pruned next time
    logger().warn({ err: (err as Error).message }, 'old pre_restore folders could not be pruned');
  }
}

/** Why a kept file cannot be put back (missing, or not the file recorded), or null. */
function keptProblem(kept: string, files: Record<string, { size: number; sha256: string | null }> | undefined): string | null {
  if (!fs.existsSync(kept)) return 'is missing';
  for (const [role, rec] of Object.entries(files ?? {})) {
    if (rec.sha256 === null) continue;
    if (!fs.existsSync(kept + role)) return `has lost its ${role || 'main'} file`;
    if (hashFile(kept + role).sha256 !== rec.sha256) return `${role ? `(its ${role} file) ` : ''}is not the file that was set aside (its sha256 differs)`;
  }
  return null;
}
