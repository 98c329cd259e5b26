/**
 * github_sync_resolve: the conflicts a pull recorded (state.ts), listed, and resolved row by row.
 * 'theirs' writes the remote row (or deletes it when the remote deleted it) into the live database,
 * one transaction per database with pull's rules (pull-apply.ts); 'ours' keeps the live row and is
 * recorded, so the next pull no longer reports it and the next push sends it. When the last conflict
 * is resolved (and the pull rejected no file), the sync base moves to the remote commit the
 * conflicts came from. Writing needs consent (src/root/consent.ts) and is preceded by a safety copy
 * of each database written. The decisions are conflicts.ts (pure).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { WbError } from '../core/errors.js';
import type { Config, VitalDatabase } from '../root/config.js';
import { claimConfirmToken, canonicalJson, fingerprintTargets, issueConfirmToken, liveChangedReason, type TargetFingerprint } from '../root/consent.js';
import { withRootLock } from '../root/lock.js';
import { mirrorDbDir } from '../root/names.js';
import { displayPath, rootLayout } from '../root/paths.js';
import type { ConsentDecision } from '../restore/restore.js';
import { allResolved, conflictValue, keyMatches, resolveDecision } from './conflicts.js';
import { applyExactly } from './pull-apply.js';
import { keyValuesOf, tableRowsByKey, tableWriter, type TableRowsByKey } from './pull-merge.js';
import { gitRows, readSides, type RemoteSides } from './pull-remote.js';
import { fromJson, type SqlValue } from './rows.js';
import { ConflictRecordSchema, ConflictValueSchema, logOperation, readState, syncDir, writeState, type ConflictRecord, type ConflictSet } from './state.js';

export const ResolutionSchema = z.object({
  database: z.string().min(1).describe('the database of the conflict (its `database` in the list)'),
  table: z.string().min(1).describe('the table of the conflict (its `table` in the list)'),
  key: z.string().min(1).describe('the conflict\'s `key` as listed (e.g. {"id":5}); for a one-column key its value alone (5) also matches'),
  take: z.enum(['ours', 'theirs']).describe("'ours': keep the row in the local database (the next push sends it); 'theirs': write the remote's row (or delete the row, if the remote deleted it)"),
});
export type Resolution = z.infer<typeof ResolutionSchema>;

const PlannedSchema = z.object({
  database: z.string(),
  table: z.string(),
  key: z.string(),
  take: z.enum(['ours', 'theirs']),
  action: z.enum(['insert', 'update', 'delete', 'keep_ours']).describe('what happens to the live row: keep_ours changes nothing here (the next push sends it)'),
  live: ConflictValueSchema.nullable().describe('the live row now (null: absent)'),
  write: ConflictValueSchema.nullable().describe('the row written into the live database (insert/update); null for delete and keep_ours'),
});
export type PlannedResolution = z.infer<typeof PlannedSchema>;

export const SyncResolveResultSchema = z.object({
  status: z.enum(['none', 'listed', 'dry_run', 'resolved']).describe('none: no conflicts recorded; listed: the open conflicts (no resolutions given); dry_run: the plan, nothing changed; resolved: done'),
  counts: z.object({
    total: z.number().describe('conflicts the last pull recorded'),
    unresolved: z.number(),
    tables: z.record(z.string(), z.object({ unresolved: z.number(), resolved: z.number() })).describe('"db.table" -> conflicts'),
  }),
  remote_commit: z.string().nullable().describe('the remote commit the conflicting rows came from'),
  conflicts: z.array(ConflictRecordSchema).describe('the unresolved conflicts (with status listed, none or resolved)'),
  plan: z.array(PlannedSchema).describe('per resolution given: what it writes (dry_run) or wrote (resolved)'),
  safety_copies: z.array(z.object({ database: z.string(), path: z.string() })).describe('copies of the databases taken right before they were written (restore one by copying it back)'),
  base_advanced: z.boolean().describe('true when the last conflict was resolved and the sync base moved to remote_commit: the next pull and push start clean'),
  confirm_token: z.string().optional().describe('dry run: pass it back with the same resolutions to do exactly this plan (works once, 10 minutes, while the databases are unchanged)'),
  message: z.string(),
});
export type SyncResolveResult = z.infer<typeof SyncResolveResultSchema>;

export interface ResolveOptions {
  /** none: list the open conflicts */
  resolutions?: readonly Resolution[];
  dryRun?: boolean;
  /** a dry run's confirm token for exactly these resolutions */
  confirmToken?: string;
  /** ask the user (MCP elicitation, CLI prompt) when no token is given */
  consent?: (plan: readonly PlannedResolution[]) => Promise<ConsentDecision>;
}

/** What a confirm token records: the plan, compared with the real run's own planning. */
interface ResolveTokenPlan {
  plan: PlannedResolution[];
  remote_commit: string;
}

const tableName = (c: { database: string; table: string }) => `${c.database}.${c.table}`;

function counts(set: ConflictSet | null | undefined): SyncResolveResult['counts'] {
  const tables: Record<string, { unresolved: number; resolved: number }> = {};
  for (const i of set?.items ?? []) {
    const t = (tables[tableName(i)] ??= { unresolved: 0, resolved: 0 });
    if (i.resolved) t.resolved++;
    else t.unresolved++;
  }
  const total = set?.items.length ?? 0;
  return { total, unresolved: (set?.items ?? []).filter((i) => !i.resolved).length, tables };
}

function base(set: ConflictSet | null | undefined): Omit<SyncResolveResult, 'status' | 'message'> {
  return { counts: counts(set), remote_commit: set?.remote_commit ?? null, conflicts: (set?.items ?? []).filter((i) => !i.resolved), plan: [], safety_copies: [], base_advanced: false };
}

/** Each resolution matched to exactly one recorded conflict; throws invalid_input (saying which) otherwise. */
function matchResolutions(set: ConflictSet, resolutions: readonly Resolution[]): Array<{ item: ConflictRecord; take: 'ours' | 'theirs' }> {
  const out: Array<{ item: ConflictRecord; take: 'ours' | 'theirs' }> = [];
  const given = new Set<ConflictRecord>();
  // Keys as recorded, indexed once: 20,000 conflicts resolved at once stay linear. A key given in
  // another spelling (keyMatches: JSON of the key columns) falls back to a scan of its table.
  const exact = new Map<string, ConflictRecord[]>();
  const byTable = new Map<string, ConflictRecord[]>();
  for (const i of set.items) {
    const t = `${i.database}\u0000${i.table}`;
    exact.set(`${t}\u0000${i.key}`, [...(exact.get(`${t}\u0000${i.key}`) ?? []), i]);
    const list = byTable.get(t);
    if (list) list.push(i);
    else byTable.set(t, [i]);
  }
  for (const r of resolutions) {
    const t = `${r.database}\u0000${r.table}`;
    const hits = exact.get(`${t}\u0000${r.key}`) ?? (byTable.get(t) ?? []).filter((i) => keyMatches(i.key, r.key));
    if (hits.length !== 1) {
      throw new WbError(
        'invalid_input',
        hits.length ? `${r.database}.${r.table} key ${r.key} matches ${hits.length} conflicts.` : `No recorded conflict is ${r.database}.${r.table} key ${r.key}.`,
        hits.length ? 'Give the key exactly as the list shows it.' : 'Call github_sync_resolve without resolutions to list the conflicts (database, table and key as shown).',
      );
    }
    const item = hits[0]!;
    if (item.resolved) throw new WbError('invalid_input', `${tableName(item)} key ${item.key} was already resolved (${item.resolved.take}, ${item.resolved.at}).`, 'Leave it out; call github_sync_resolve without resolutions to list what is still open.');
    if (given.has(item)) throw new WbError('invalid_input', `${tableName(item)} key ${item.key} is given twice.`, 'Give each conflict once.');
    given.add(item);
    out.push({ item, take: r.take });
  }
  return out;
}

/** A planned resolution and what applying it needs. */
interface Step {
  planned: PlannedResolution;
  item: ConflictRecord;
  vital: VitalDatabase;
  rows: TableRowsByKey;
  /** the remote row's values (insert/update) or the key's values (delete) */
  values: SqlValue[] | null;
}

function keyValuesFromLine(rows: TableRowsByKey, key: string): SqlValue[] {
  const parsed = JSON.parse(key) as Record<string, unknown>;
  return rows.shape.pk.map((c) => fromJson(parsed[c] ?? null, `key ${key}`));
}

/** Plan every resolution against the live databases and the remote commit; stale rows throw (pull again). */
async function planSteps(config: Config, set: ConflictSet, matched: ReadonlyArray<{ item: ConflictRecord; take: 'ours' | 'theirs' }>): Promise<Step[]> {
  const repo = path.join(syncDir(config.root), 'repo');
  let sides: RemoteSides;
  try {
    if (!fs.existsSync(path.join(repo, '.git'))) throw new Error('the sync clone is missing');
    sides = await readSides(repo, set.base_commit, set.remote_commit, set.branch);
  } catch (err) {
    throw new WbError('sync_failed', `The commits the conflicts came from cannot be read (${err instanceof Error ? err.message : String(err)}). Nothing was changed.`, 'Run github_sync_pull again; it records the conflicts anew.');
  }
  const steps: Step[] = [];
  const stale: string[] = [];
  const byTable = new Map<string, TableRowsByKey>();
  for (const { item, take } of matched) {
    const vital = config.databases.find((d) => d.name === item.database);
    if (!vital || !fs.existsSync(vital.path)) throw new WbError('not_found', `The database ${item.database} is not on this machine any more. Nothing was changed.`, 'Run github_sync_pull again.');
    let rows = byTable.get(tableName(item));
    if (!rows) {
      const db = new Database(vital.path, { readonly: true, fileMustExist: true, timeout: 5000 });
      db.defaultSafeIntegers(true);
      try {
        const read = await tableRowsByKey(gitRows(sides), db, item.database, item.table);
        if ('rejected' in read) throw new WbError('sync_failed', `${tableName(item)} cannot be read as the pull read it: ${read.rejected}. Nothing was changed.`, 'Run github_sync_pull again.');
        rows = read;
      } finally {
        db.close();
      }
      byTable.set(tableName(item), rows);
    }
    const live = rows.ours.get(item.key) ?? null;
    const remote = rows.theirs.get(item.key) ?? null;
    const d = resolveDecision(item, take, live?.line ?? null, remote?.line ?? null);
    if (d.kind === 'stale') {
      stale.push(`${tableName(item)} key ${item.key}: ${d.reason}`);
      continue;
    }
    const action = d.kind === 'write' ? d.action : d.kind;
    const values = d.kind === 'write' ? remote!.row : d.kind === 'delete' ? (live ? keyValuesOf(rows.shape, live.row) : keyValuesFromLine(rows, item.key)) : null;
    steps.push({
      planned: { database: item.database, table: item.table, key: item.key, take, action, live: conflictValue(live?.line), write: d.kind === 'write' ? conflictValue(d.line) : null },
      item,
      vital,
      rows,
      values,
    });
  }
  if (stale.length) throw new WbError('invalid_input', `Nothing was resolved: ${stale.join('; ')}.`, 'Run github_sync_pull again, then resolve what it reports.');
  return steps;
}

/** Consent for the real run: a dry run's token (its plan must be this plan) or the user's answer; throws consent_required. */
async function obtainConsent(config: Config, request: unknown, steps: readonly Step[], set: ConflictSet, opts: ResolveOptions): Promise<TargetFingerprint[]> {
  const targets = [...new Set(steps.map((s) => s.vital.path))];
  if (opts.confirmToken !== undefined) {
    const claim = claimConfirmToken<ResolveTokenPlan>(opts.confirmToken, { operation: 'resolve_conflicts', root: config.root, request });
    if (!claim.ok) throw new WbError('consent_required', `Nothing was resolved: ${claim.reason}. Nothing was changed.`);
    if (canonicalJson(claim.grant.plan) !== canonicalJson({ plan: steps.map((s) => s.planned), remote_commit: set.remote_commit })) {
      throw new WbError('consent_required', 'Nothing was resolved: the conflicts or the rows changed since the dry run, so its plan no longer holds. Nothing was changed.', 'Run a new dry run and use its confirm_token.');
    }
    return claim.grant.fingerprints;
  }
  if (!opts.consent) {
    throw new WbError(
      'consent_required',
      'Resolving conflicts changes the live databases or what the next push overwrites on the remote, which needs the user\'s consent. Nothing was changed.',
      'Call github_sync_resolve with the same resolutions and dry_run: true, show the user the plan, and if they agree call it again with the confirm_token it returned (CLI: --yes, or answer y).',
    );
  }
  const shown = fingerprintTargets(targets);
  const decision = await opts.consent(steps.map((s) => s.planned));
  if (!decision.granted) throw new WbError('consent_required', `Nothing was resolved: ${decision.reason}. Nothing was changed.`);
  return shown;
}

function stamp(now: Date): string {
  return now.toISOString().replace(/[:.]/g, '-');
}

/**
 * Write the 'theirs' steps of one database in one transaction (pull's rules: foreign-key actions do
 * not run, violations the writes introduce roll it all back, triggers fire), after copying the
 * database to `copyDir`. Returns the copy's path. Throws sync_failed with the reason on a violation.
 */
async function applyDatabase(vital: VitalDatabase, steps: readonly Step[], copyDir: string): Promise<string> {
  const db = new Database(vital.path, { fileMustExist: true, timeout: 5000 });
  db.defaultSafeIntegers(true);
  try {
    fs.mkdirSync(copyDir, { recursive: true });
    const copy = path.join(copyDir, `${mirrorDbDir(vital.name)}.db`);
    // SQLite's online backup: a consistent copy of the whole database, its -wal included.
    await db.backup(copy);
    const tables = [...new Set(steps.map((s) => s.item.table))];
    try {
      applyExactly(db, tables, () => {
        for (const t of tables) {
          const mine = steps.filter((s) => s.item.table === t);
          const shape = mine[0]!.rows.shape;
          tableWriter(db, t, shape, mine.filter((s) => s.planned.action === 'insert' || s.planned.action === 'update').map((s) => s.values!), mine.filter((s) => s.planned.action === 'delete').map((s) => s.values!))();
        }
      });
    } catch (err) {
      throw new WbError(
        'sync_failed',
        `Taking the remote rows into ${vital.name} breaks a constraint of the database (${(err as Error).message}); nothing in ${vital.name} was changed.`,
        'Resolve the rows they depend on first (e.g. take the remote parent row too), or keep ours.',
      );
    }
    return copy;
  } finally {
    db.close();
  }
}

/**
 * List (no resolutions), preview (dryRun: the plan and a confirm_token) or apply resolutions of
 * the conflicts the last github_sync_pull recorded. Throws invalid_input for a resolution that
 * matches no open conflict or a row changed since the pull (pull again), consent_required without
 * consent, sync_failed when the remote rows break a constraint (nothing of that database written).
 */
export async function resolveConflicts(config: Config, opts: ResolveOptions = {}): Promise<SyncResolveResult> {
  const listed = readState(config.root).conflicts;
  if (!listed?.items.length) return { ...base(listed), status: 'none', message: 'No sync conflicts are recorded: the last pull found none (or they were resolved).' };
  if (!opts.resolutions?.length) {
    const c = counts(listed);
    return {
      ...base(listed),
      status: 'listed',
      message: `${c.unresolved} of ${c.total} conflict(s) open, in ${Object.entries(c.tables).filter(([, t]) => t.unresolved).map(([t, n]) => `${t} (${n.unresolved})`).join(', ') || 'no table'}. Resolve each with take 'ours' (keep this database's row) or 'theirs' (take the remote's); dry_run first shows what each writes.`,
    };
  }
  return withRootLock(config.root, 'github-sync resolve', config.backup.lock_wait_ms, async () => {
    const state = readState(config.root);
    const set = state.conflicts;
    if (!set?.items.length) return { ...base(set), status: 'none', message: 'No sync conflicts are recorded any more.' };
    const matched = matchResolutions(set, opts.resolutions!);
    const request = { resolutions: matched.map((m) => ({ database: m.item.database, table: m.item.table, key: m.item.key, take: m.take })), remote_commit: set.remote_commit };
    const steps = await planSteps(config, set, matched);
    const plan = steps.map((s) => s.planned);
    const writes = (s: Step) => s.planned.action !== 'keep_ours';
    if (opts.dryRun) {
      const token = issueConfirmToken<ResolveTokenPlan>({ operation: 'resolve_conflicts', root: config.root, request, plan: { plan, remote_commit: set.remote_commit }, targets: [...new Set(steps.map((s) => s.vital.path))] });
      const n = steps.filter(writes).length;
      return {
        ...base(set),
        status: 'dry_run',
        plan,
        confirm_token: token,
        message: `Would write ${n} row(s) from the remote into the live databases and keep ${steps.length - n} local row(s) (the next push sends them); nothing was changed. ${n ? 'A safety copy of each database written is taken first. ' : ''}To do exactly this, pass the confirm_token with the same resolutions (it works once).`,
      };
    }
    const fingerprints = await obtainConsent(config, request, steps, set, opts);
    const changed = liveChangedReason(fingerprints, config.root, 'the plan was made');
    if (changed) throw new WbError('consent_required', `Nothing was resolved: ${changed}. Nothing was changed.`);

    const now = new Date();
    const copyDir = path.join(rootLayout(config.root).syncResolvedDir, stamp(now));
    const safety: Array<{ database: string; path: string }> = [];
    const mark = (done: readonly Step[]) => {
      for (const s of done) s.item.resolved = { take: s.planned.take, at: now.toISOString() };
    };
    // One transaction per database (as pull); each database's conflicts are marked once its rows are in.
    for (const vital of [...new Set(steps.map((s) => s.vital))]) {
      const mine = steps.filter((s) => s.vital === vital);
      const toWrite = mine.filter(writes);
      if (toWrite.length) safety.push({ database: vital.name, path: displayPath(config.root, await applyDatabase(vital, toWrite, copyDir)) });
      mark(mine);
      writeState(config.root, { ...state, conflicts: set });
    }
    const advanced = allResolved(set) && set.rejected === 0;
    if (advanced) {
      writeState(config.root, { ...state, last_synced_sha: set.remote_commit, last_remote_sha: set.remote_commit, last_sync_at: now.toISOString(), conflicts: null });
    }
    logOperation(config.root, { op: 'resolve', resolved: steps.length, theirs: steps.filter(writes).length, base_advanced: advanced, remote: set.remote_commit });
    const left = set.items.filter((i) => !i.resolved).length;
    return {
      ...base(advanced ? null : set),
      remote_commit: set.remote_commit,
      status: 'resolved',
      plan,
      safety_copies: safety,
      base_advanced: advanced,
      message: `Resolved ${steps.length} conflict(s): ${steps.filter(writes).length} row(s) taken from the remote, ${steps.filter((s) => !writes(s)).length} kept as they are here. ${
        advanced
          ? 'No conflict is left: the sync base moved to the remote commit. Run github_sync_push to send the rows kept here (a pull now has nothing to do).'
          : left
            ? `${left} conflict(s) still open: resolve them too (the sync base moves when the last one is resolved).`
            : `The same pull rejected ${set.rejected} remote file(s): fix them on the remote and run github_sync_pull; the rows resolved here stay resolved.`
      }`,
    };
  });
}
