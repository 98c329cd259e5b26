import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { describeError, WbError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { withRootLock, type RootLock } from '../root/lock.js';
import { claimConfirmToken, canonicalJson, fingerprintTarget, fingerprintTargets, issueConfirmToken, liveChangedReason, type ConsentGrant } from '../root/consent.js';
import { displayPath, rootLayout } from '../root/paths.js';
import { cachedSnapshotDatabase } from '../inspect/cache.js';
import { journalPath } from '../restore/journal.js';
import { recoverInterruptedSwap } from '../restore/recovery.js';
import { mkdir, unlink, writeFileDurable } from '../restore/fs-steps.js';
import type { ConsentDecision } from '../restore/restore.js';
import { runBackupLocked } from '../backup/pipeline.js';
import { computePlan, foreignKeyViolations, type ComputedPlan, type IncludeKind, type OnConflict, type RecoverPlan } from './plan.js';
import { PENDING_MEANS, recordCheck, resolvePendingRecords } from './records.js';
import { RowReader, RowWriter, sameValues, showKey, TriggerWatch, type SqlValue } from './rows.js';

const Shown = z.union([z.string(), z.number(), z.null()]);
const ShownKey = z.union([Shown, z.array(Shown)]);
const ShownRow = z.record(z.string(), Shown);

export const RecoverPlanSchema = z.object({
  table: z.string(),
  key_columns: z.array(z.string()).describe('what identifies a row: the primary key, or rowid'),
  chosen: z.number().describe('rows the keys or the where expression chose in the snapshot'),
  keys_not_in_snapshot: z.array(ShownKey).describe('keys asked for that the snapshot does not hold (sample)'),
  counts: z.object({
    to_insert: z.number().describe('rows missing live that will be inserted (all tables)'),
    to_update: z.number().describe('rows present live with other values that will get the snapshot values back (on_conflict use_snapshot)'),
    already_there: z.number().describe('rows live exactly as in the snapshot: nothing to do'),
    conflicts: z.number().describe('rows present live with other values, not resolved: they block the recovery'),
    kept_live: z.number().describe('conflicting rows left as they are live (on_conflict keep_live)'),
    parents_included: z.number().describe('parent rows written because include has "parents"'),
    children_included: z.number().describe('child rows written because include has "children"'),
  }),
  tables: z.array(z.object({ table: z.string(), to_insert: z.number(), to_update: z.number(), already_there: z.number(), conflicts: z.number(), kept_live: z.number() })).describe('the counts per table written'),
  conflicts: z.object({ count: z.number(), sample: z.array(z.object({ table: z.string(), key: ShownKey, live: ShownRow, snapshot: ShownRow })) }),
  parents_missing: z
    .object({
      count: z.number().describe('parent rows the recovered rows need that are missing live and not brought along'),
      not_in_snapshot: z.number().describe('of those, parents the snapshot does not hold either'),
      sample: z.array(z.object({ table: z.string(), key: ShownKey.nullable(), values: ShownRow, in_snapshot: z.boolean(), needed_by: z.object({ table: z.string(), key: ShownKey }) })),
    })
    .describe('what else the rows need; include ["parents"] brings those the snapshot holds'),
  children_missing: z
    .object({
      count: z.number().describe('rows in the snapshot that depend on the chosen rows and are missing live (e.g. removed by ON DELETE CASCADE), not brought along'),
      sample: z.array(z.object({ table: z.string(), key: ShownKey, child_of: z.object({ table: z.string(), key: ShownKey }), on_delete: z.string() })),
    })
    .describe('include ["children"] brings them back too'),
  sample: z.array(z.object({ table: z.string(), role: z.enum(['chosen', 'parent', 'child']), action: z.string(), key: ShownKey, row: ShownRow })).describe('rows that will be written, as the snapshot holds them (sample)'),
  blocked_by: z.array(z.string()).describe('empty when the plan can be applied; else why not, and what to pass to resolve it'),
  rows_sha256: z.string().describe('hash of the rows to write: a confirm_token is bound to exactly these'),
});

export const RecoverResultSchema = z.object({
  snapshot_id: z.string(),
  database: z.string(),
  target: z.string().describe('the live file, relative to the data root when inside it'),
  dry_run: z.boolean(),
  applied: z.boolean().describe('true when rows were written to the live database'),
  confirm_token: z.string().optional().describe('dry run only, when nothing blocks: pass it back with the same arguments to apply exactly this plan; works once, while the live database is unchanged'),
  plan: RecoverPlanSchema,
  safety_snapshot_id: z.string().nullable().describe('the manual snapshot taken right before writing: `wb-backup restore <id> --db <database>` (data_restore) puts the database back as it was'),
  record: z.string().nullable().describe('the record of this recovery under the data root (which rows, which snapshot, the safety snapshot)'),
  data_root: z.string(),
  warnings: z.array(z.string()),
});
export type RecoverResult = z.infer<typeof RecoverResultSchema>;

export interface RecoverOptions {
  /** a snapshot id, or "latest" */
  snapshotId: string;
  /** the database's logical name */
  database: string;
  table: string;
  keys?: ReadonlyArray<SqlValue | readonly SqlValue[]> | undefined;
  where?: string | undefined;
  include?: readonly IncludeKind[] | undefined;
  onConflict?: OnConflict | undefined;
  dryRun?: boolean;
  /** a dry run's token: checked and consumed before any work; takes the place of `consent` */
  confirmToken?: string | undefined;
  /** asked with the plan right before the safety snapshot; never for a dry run */
  consent?: (plan: RecoverConsentPlan) => Promise<ConsentDecision>;
  signal?: AbortSignal;
  lockWaitMs?: number;
  /** the safety snapshot's clock (tests) */
  now?: () => Date;
}

/** What a person is asked to agree to. */
export interface RecoverConsentPlan {
  snapshotId: string;
  database: string;
  target: string;
  plan: RecoverPlan;
}

/** What a confirm token records of a dry run: the rows it showed, from which snapshot image. */
interface RecoverTokenPlan {
  snapshot_id: string;
  sha256: string;
  rows_sha256: string;
}

/** The caller's request a token is bound to. */
function recoverRequest(opts: RecoverOptions): unknown {
  return {
    snapshot_id: opts.snapshotId,
    database: opts.database,
    table: opts.table,
    keys: opts.keys ? canonicalJson(opts.keys.map((k) => (Array.isArray(k) ? k : [k]).map(jsonValue))) : null,
    where: opts.where ?? null,
    include: [...new Set(opts.include ?? [])].sort(),
    on_conflict: opts.onConflict ?? 'refuse',
  };
}

function jsonValue(v: SqlValue): unknown {
  if (typeof v === 'bigint') return `${v}n`;
  if (Buffer.isBuffer(v)) return { blob: v.toString('hex') };
  return v;
}

/**
 * data_recover_rows: puts chosen rows of one table back from a snapshot into the live database,
 * with the parents they need and the children a cascade removed when asked, in one transaction.
 *
 * The steps: a token is claimed first (a replayed, foreign or stale one costs nothing); the
 * snapshot's database is rebuilt and verified into the snapshot cache (inspect/cache); under the
 * root lock the plan is computed against a copy of the live files (a dry run stops here, with a
 * token bound to the plan and the live files); consent; a manual safety snapshot of every database;
 * then one transaction on the live database with foreign keys on: the plan is computed again inside
 * it and must be the consented one, the rows are written, foreign_key_check must find nothing new,
 * the record is written durably under the root, and only then is it committed. Any failure rolls
 * the transaction back: the live database holds all the recovered rows or none.
 * @throws WbError `consent_required` (no consent, a token that does not hold, live data changed),
 *   `restore_refused` (conflicts, missing parents, a schema that differs, a foreign key broken),
 *   `invalid_input` (unknown database or table, a refused where, keys of the wrong shape),
 *   and what the snapshot cache (the export's checks) and runBackup throw
 */
export async function runRecover(config: Config, opts: RecoverOptions): Promise<RecoverResult> {
  const vital = config.databases.find((d) => d.name === opts.database);
  if (!vital) {
    throw new WbError('invalid_input', `There is no database named ${opts.database} in this setup.`, `Databases: ${config.databases.map((d) => d.name).join(', ') || 'none'} (data_backup_list shows each snapshot's).`);
  }
  let grant: ConsentGrant<RecoverTokenPlan> | null = null;
  if (!opts.dryRun && opts.confirmToken !== undefined) {
    const claim = claimConfirmToken<RecoverTokenPlan>(opts.confirmToken, { operation: 'recover_rows', root: config.root, request: recoverRequest(opts) });
    if (!claim.ok) throw new WbError('consent_required', `The rows were not recovered: ${claim.reason}. Nothing was changed.`);
    grant = claim.grant;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'wb-recover-'));
  try {
    // The snapshot's image, rebuilt and checked into the snapshot cache (inspect/cache, under its
    // own lock: a snapshot never changes, so it is read before ours is taken); its bytes are hashed
    // against the manifest each time (verify), since these values are written into live data.
    const cached = await cachedSnapshotDatabase(config, grant ? grant.plan.snapshot_id : opts.snapshotId, opts.database, { verify: true, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (grant && cached.sha256 !== grant.plan.sha256) {
      throw new WbError('consent_required', 'The rows were not recovered: the snapshot is not the one the dry run read. Nothing was changed.', 'Run a new dry run and use its confirm_token.');
    }
    const snapDb = new Database(cached.file, { readonly: true, fileMustExist: true });
    try {
      const run: RecoverRun = { config, opts, grant, target: vital.path, snapshotId: cached.snapshot_id, sha256: cached.sha256, snapDb, work, warnings: [] };
      return await withRootLock(config.root, opts.dryRun ? 'recover dry run' : 'recover', opts.lockWaitMs ?? config.backup.lock_wait_ms, (lock) => recoverLocked(run, lock));
    } finally {
      snapDb.close();
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

interface RecoverRun {
  config: Config;
  opts: RecoverOptions;
  grant: ConsentGrant<RecoverTokenPlan> | null;
  /** the live file, absolute */
  target: string;
  snapshotId: string;
  sha256: string;
  snapDb: Database.Database;
  work: string;
  warnings: string[];
}

function request(opts: RecoverOptions) {
  return { table: opts.table, keys: opts.keys, where: opts.where, include: opts.include ?? [], onConflict: opts.onConflict ?? 'refuse' };
}

async function recoverLocked(run: RecoverRun, lock: RootLock): Promise<RecoverResult> {
  const { config, opts } = run;
  if (!fs.existsSync(run.target)) {
    throw new WbError('invalid_input', `The live database ${opts.database} (${displayPath(config.root, run.target)}) does not exist: there is nothing to put rows back into.`, 'Restore the whole database with data_restore.');
  }
  if (opts.dryRun) {
    if (fs.existsSync(journalPath(config.root))) run.warnings.push('an interrupted restore left restore-journal.json: the next command that changes data completes or rolls it back first, so the live database may differ from this plan by then');
  } else {
    recoverInterruptedSwap(config.root);
    // A crash between a record and its commit left it pending: say now whether it happened.
    resolvePendingRecords(config);
  }
  if (run.grant) return applyConsented(run, lock, run.grant.plan.rows_sha256);
  const computed = planOnCopy(run);
  if (opts.dryRun) return dryRunResult(run, computed);
  refuseIfBlocked(run, computed.plan);
  if (computed.writes.length === 0) return result(run, computed.plan, { dryRun: false, applied: false, safety: null, record: null });
  const shown = fingerprintTargets([run.target]);
  const decision = opts.consent ? await opts.consent({ snapshotId: run.snapshotId, database: opts.database, target: displayPath(config.root, run.target), plan: computed.plan }) : ({ granted: false, reason: 'no way to ask for consent was given' } as const);
  if (!decision.granted) throw new WbError('consent_required', `The rows were not recovered: ${decision.reason}. Nothing was changed.`);
  const changed = liveChangedReason(shown, config.root, 'the plan was shown');
  if (changed) throw new WbError('consent_required', `The rows were not recovered: ${changed}. Nothing was changed.`, 'Ask again on the database as it is now.');
  return applyConsented(run, lock, computed.plan.rows_sha256);
}

/**
 * The plan against a copy of the live files (the database and its -wal and -journal, copied into
 * the work folder and retried while a writer changes them), so that no byte of the live files
 * changes before consent: opening them could roll back a hot journal or fold the -wal in.
 */
function planOnCopy(run: RecoverRun): ComputedPlan {
  let lastErr: unknown = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = fs.mkdtempSync(path.join(run.work, 'live-'));
    try {
      const before = canonicalJson(fingerprintTarget(run.target));
      const copy = path.join(dir, 'live.db');
      for (const suffix of ['', '-wal', '-journal']) {
        if (fs.existsSync(run.target + suffix)) fs.copyFileSync(run.target + suffix, copy + suffix, fs.constants.COPYFILE_FICLONE);
      }
      if (canonicalJson(fingerprintTarget(run.target)) !== before) continue;
      const liveDb = new Database(copy, { fileMustExist: true });
      try {
        return computePlan(run.snapDb, liveDb, request(run.opts));
      } finally {
        liveDb.close();
      }
    } catch (err) {
      if (err instanceof WbError) throw err;
      lastErr = err;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  throw new WbError('busy', `The live database ${run.opts.database} kept changing while it was read${lastErr ? ` (${describeError(lastErr)})` : ''}. Nothing was changed.`, 'Try again when the program writing it is idle.');
}

/** @throws WbError `restore_refused` naming what blocks the plan and what to pass */
function refuseIfBlocked(run: RecoverRun, plan: RecoverPlan): void {
  if (!plan.blocked_by.length) return;
  throw new WbError('restore_refused', `The rows of ${plan.table} were not recovered: ${plan.blocked_by.join('; ')}. Nothing was changed.`, 'Run a dry run to see the conflicts and missing rows (samples), then call again with on_conflict or include as it says.');
}

function dryRunResult(run: RecoverRun, computed: ComputedPlan): RecoverResult {
  const { config, opts } = run;
  let token: string | undefined;
  if (!computed.plan.blocked_by.length && computed.writes.length) {
    const tokenPlan: RecoverTokenPlan = { snapshot_id: run.snapshotId, sha256: run.sha256, rows_sha256: computed.plan.rows_sha256 };
    token = issueConfirmToken({ operation: 'recover_rows', root: config.root, request: recoverRequest(opts), plan: tokenPlan, targets: [run.target] });
  }
  return { ...result(run, computed.plan, { dryRun: true, applied: false, safety: null, record: null }), ...(token ? { confirm_token: token } : {}) };
}

function result(run: RecoverRun, plan: RecoverPlan, r: { dryRun: boolean; applied: boolean; safety: string | null; record: string | null }): RecoverResult {
  return {
    snapshot_id: run.snapshotId,
    database: run.opts.database,
    target: displayPath(run.config.root, run.target),
    dry_run: r.dryRun,
    applied: r.applied,
    plan,
    safety_snapshot_id: r.safety,
    record: r.record,
    data_root: run.config.root,
    warnings: run.warnings,
  };
}

/**
 * After consent: the safety snapshot, then the one transaction. The plan is computed again inside
 * the transaction (the write lock held) and must have the consented rows; otherwise nothing is
 * written and the safety snapshot stays.
 */
async function applyConsented(run: RecoverRun, lock: RootLock, consentedRows: string): Promise<RecoverResult> {
  const { config, opts } = run;
  if (opts.signal?.aborted) throw new WbError('interrupted', 'The recovery was cancelled before anything changed.');
  // No connection to the live file is open while the snapshot reads it (its descriptors share our locks).
  let safetyId: string;
  try {
    safetyId = (await runBackupLocked(config, { manual: true, ...(opts.now ? { now: opts.now } : {}), ...(opts.signal ? { signal: opts.signal } : {}) }, lock)).snapshot_id;
  } catch (err) {
    const e = err instanceof WbError ? err : null;
    throw new WbError(e?.code ?? 'snapshot_failed', `The rows were not recovered: the safety snapshot taken first failed (${e ? e.message : describeError(err)}). Nothing was changed.`, e?.hint ?? 'Fix the cause and try again.');
  }
  const kept = `The safety snapshot ${safetyId} taken before it is kept.`;
  const live = new Database(run.target, { fileMustExist: true, timeout: 10_000 });
  try {
    live.pragma('foreign_keys = ON');
    live.exec('BEGIN IMMEDIATE');
    try {
      const computed = computePlan(run.snapDb, live, request(opts));
      if (computed.plan.rows_sha256 !== consentedRows || computed.plan.blocked_by.length) {
        throw new WbError('consent_required', `The rows were not recovered: the live database changed since the plan was shown (${computed.plan.blocked_by.length ? computed.plan.blocked_by.join('; ') : 'other rows would be written now'}). Nothing was changed. ${kept}`, 'Run a new dry run on the database as it is now.');
      }
      const tables = [...new Set(computed.writes.map((w) => w.shape.name))];
      const before = foreignKeyViolations(live, tables);
      live.pragma('defer_foreign_keys = ON');
      const writer = new RowWriter(live);
      const watch = TriggerWatch.start(live);
      for (const w of computed.writes) {
        if (w.action === 'insert') writer.insert(w.shape, w.row);
        else writer.update(w.shape, w.row);
      }
      refuseTriggerDamage(run, live, computed, watch, kept);
      const added = [...foreignKeyViolations(live, tables)].filter((v) => !before.has(v));
      if (added.length) {
        throw new WbError('restore_refused', `The rows were not recovered: they would break foreign keys (${added.slice(0, 5).join('; ')}${added.length > 5 ? `; and ${added.length - 5} more` : ''}). Nothing was changed. ${kept}`, 'Pass include ["parents"] (and "children"), or choose other rows.');
      }
      const record = recordPath(run);
      const body = recordBody(run, computed, safetyId);
      try {
        writeRecord(record, { status: 'pending', ...body }, true);
        live.exec('COMMIT');
      } catch (err) {
        // The record must not outlive a transaction that was rolled back.
        if (!removeRecord(record)) throw new WbError('restore_refused', `The rows were not recovered: ${describeError(err)}. The transaction was rolled back: nothing was changed. ${kept} The record ${displayPath(config.root, record)} could not be removed: it describes a recovery that did not happen (it is marked pending); delete it.`, 'Fix the cause (a full disk, a failing disk) and try again.');
        throw err;
      }
      // Committed: the record says so now. A failure here changes nothing about the rows (they
      // are back); the record stays pending, which tells its reader to check the live data.
      try {
        writeRecord(record, { status: 'completed', ...body, completed_at: new Date().toISOString() }, false);
      } catch (err) {
        run.warnings.push(`the rows were recovered, but the record ${displayPath(config.root, record)} could not be durably marked completed (${describeError(err)}): it may still read "pending" (the rows are back all the same)`);
      }
      logger().info({ snapshot: run.snapshotId, database: opts.database, table: opts.table, rows: computed.writes.length, safety: safetyId }, 'rows recovered');
      return result(run, computed.plan, { dryRun: false, applied: true, safety: safetyId, record: displayPath(config.root, record) });
    } catch (err) {
      if (live.inTransaction) live.exec('ROLLBACK');
      if (err instanceof WbError) throw err;
      throw new WbError('restore_refused', `The rows were not recovered: ${describeError(err)}. The transaction was rolled back: nothing was changed. ${kept}`, 'Fix the cause (a full disk, a constraint named above) and try again.');
    }
  } finally {
    live.close();
  }
}

/**
 * The live database's own triggers run while the rows are written. The recovery holds only if
 * afterwards every written row reads back with the snapshot's values and no live row was deleted;
 * otherwise the transaction is rolled back (the caller's catch). Rows other triggers added or
 * updated (an audit log, a counter, a full-text index) are said in the warnings.
 * @throws WbError `restore_refused` naming the triggers
 */
function refuseTriggerDamage(run: RecoverRun, live: Database.Database, computed: ComputedPlan, watch: TriggerWatch, kept: string): void {
  const updates = computed.writes.filter((w) => w.action === 'update').length;
  const fx = watch.effects(computed.writes.length, updates);
  const tablesWritten = [...new Set(computed.writes.map((w) => w.shape.name))];
  const triggers = () => {
    const names = live.prepare("SELECT name, tbl_name AS tbl FROM main.sqlite_schema WHERE type = 'trigger' ORDER BY name").all() as Array<{ name: string; tbl: string }>;
    const on = names.filter((t) => tablesWritten.includes(t.tbl)).map((t) => `${t.name} on ${t.tbl}`);
    return on.length ? `triggers of the live database: ${on.slice(0, 5).join(', ')}${on.length > 5 ? ', …' : ''}` : 'a trigger or foreign-key action of the live database';
  };
  const hint = 'The live database runs its own triggers on every insert: restore the whole table or database with data_restore, or drop or change the trigger and try again.';
  if (fx.deleted.size) {
    const what = [...fx.deleted].map(([t, n]) => `${n} row(s) of ${t}`).join(', ');
    throw new WbError('restore_refused', `The rows were not recovered: writing them made ${triggers()} delete ${what}. The transaction was rolled back: nothing was changed. ${kept}`, hint);
  }
  const reader = new RowReader(live);
  const altered = computed.writes.filter((w) => {
    const now = reader.byId(w.shape, w.row.id);
    return !now || !sameValues(now, w.row);
  });
  if (altered.length) {
    const first = altered[0]!;
    throw new WbError(
      'restore_refused',
      `The rows were not recovered: after they were written, ${altered.length} of them no longer held the snapshot's values (first: ${first.shape.name} ${JSON.stringify(showKey(first.row.id))}); ${triggers()} changed them. The transaction was rolled back: nothing was changed. ${kept}`,
      hint,
    );
  }
  if (fx.extraUpdates || fx.otherChanges) {
    run.warnings.push(`${triggers()} also wrote ${fx.otherChanges + fx.extraUpdates} other row(s) (${fx.otherChanges} inserted, ${fx.extraUpdates} updated) while the rows were put back; the safety snapshot has the database as it was`);
  }
}

/** Where this recovery's record goes: <root>/recovered/<time>_<database>.json. */
function recordPath(run: RecoverRun): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return path.join(rootLayout(run.config.root).recoveredDir, `${stamp}_${run.opts.database.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60)}.json`);
}

/** The record's content apart from its status: which rows, from which snapshot, the safety snapshot and how to undo. */
function recordBody(run: RecoverRun, computed: ComputedPlan, safetyId: string): Record<string, unknown> {
  return {
    operation: 'recover_rows',
    at: new Date().toISOString(),
    snapshot_id: run.snapshotId,
    database: run.opts.database,
    target: displayPath(run.config.root, run.target),
    table: run.opts.table,
    include: run.opts.include ?? [],
    on_conflict: run.opts.onConflict ?? 'refuse',
    safety_snapshot_id: safetyId,
    undo: `wb-backup restore ${safetyId} --db ${run.opts.database}`,
    counts: computed.plan.counts,
    rows: computed.writes.map((w) => ({ table: w.shape.name, action: w.action, key: showKey(w.row.id) })),
    check: computed.writes.map((w) => recordCheck(w.row)),
  };
}

/**
 * The record of the recovery, written durably and atomically (fs-steps: every step can be failed
 * by tests): first with status "pending" right before the commit (a failure to write it rolls the
 * transaction back, and the caller removes it), then rewritten with status "completed" after the
 * commit. So a crash between the two leaves a record that says it may not have happened.
 */
function writeRecord(file: string, record: Record<string, unknown>, first: boolean): void {
  const text = JSON.stringify(record.status === 'pending' ? { status: record.status, pending_means: PENDING_MEANS, ...record } : record, null, 2);
  if (first) mkdir(path.dirname(file));
  writeFileDurable(file, `${text}\n`);
}

/** @returns false when a record that exists could not be removed */
function removeRecord(file: string): boolean {
  if (!fs.existsSync(file)) return true;
  try {
    unlink(file);
    return true;
  } catch (err) {
    logger().warn({ err: describeError(err) }, 'the record of a recovery that was rolled back could not be removed');
    return false;
  }
}
