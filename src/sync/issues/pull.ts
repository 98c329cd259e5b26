/**
 * The issues transport's pull: the managed issues and the comments changed on GitHub since the
 * watermark (`since=`, every page), brought into the rows through the shared three-way merge
 * (pull-merge.ts mergeTable: base = the issue view at the last sync, ours = the database, theirs =
 * the issue now), applied in one transaction per database (pull-apply.ts). A row changed on both
 * sides is a conflict, recorded row by row and left as it is on both sides.
 */
import type Database from 'better-sqlite3';
import { z } from 'zod';
import type { Config } from '../../root/config.js';
import { withRootLock } from '../../root/lock.js';
import type { IssuesSyncConfig } from '../../root/sync-issues-schema.js';
import { applyExactly } from '../pull-apply.js';
import { mergeTable, type MergeReport, type TheirRows } from '../pull-merge.js';
import { rowLine, type SqlValue } from '../rows.js';
import { logOperation } from '../state.js';
import type { IssuesApi } from './github-api.js';
import { commentHash, issueView, keyText, payloadHash, splitHiddenBlock } from './mapping.js';
import type { IssuesCallOptions } from './push.js';
import { listComments, listManaged, toIssue, type GhComment, type GhIssue } from './remote.js';
import { readIssuesState, writeIssuesState, type IssueEntry, type IssuesState } from './state.js';
import { keyOfValues, liveRows, mappableShape, mappedTables, newChildRow, openDatabase, rowFromLine, rowWithColumn, rowWithView, type LiveRow, type TaskTable } from './tables.js';


export const IssuesPullResultSchema = z.object({
  status: z.enum(['up_to_date', 'applied', 'conflicts', 'dry_run']),
  repo: z.string(),
  read: z.object({ issues: z.number(), comments: z.number() }).describe('changed on GitHub since the watermark'),
  applied: z.record(z.string(), z.object({ upserts: z.number(), deletes: z.number() })).describe('"db.table" -> rows written'),
  conflicts: z
    .array(z.object({ table: z.string(), key: z.string(), issue: z.number().nullable(), base: z.string().nullable(), ours: z.string().nullable(), theirs: z.string().nullable() }))
    .describe('rows changed on both sides since the last sync, left as they are on both'),
  conflict_count: z.number(),
  rejected: z.array(z.object({ path: z.string(), reason: z.string() })),
  watermark: z.string().nullable(),
  requests: z.number(),
  message: z.string(),
});
export type IssuesPullResult = z.infer<typeof IssuesPullResultSchema>;

interface TableSides {
  base: SqlValue[][];
  theirs: SqlValue[][];
}

/** The rows one table's changed issues (or comments) stand for, as the shared merge reads them. */
function sidesOf(where: string, sides: Map<string, TableSides>): TheirRows {
  return {
    where: () => where,
    rows: async (_db: string, table: string) => sides.get(table) ?? { base: [], theirs: [] },
  };
}

/** After the merge: per key, what the issue side held, to become the new base where nothing conflicted. */
interface Pending {
  table: string;
  key: string;
  commit: () => void;
  /** when the row is left in conflict: remember GitHub's version as read, so a poll does not report it again */
  seen?: () => void;
}

export async function issuesPull(config: Config, sync: IssuesSyncConfig, api: IssuesApi, opts: IssuesCallOptions = {}): Promise<IssuesPullResult> {
  return withRootLock(config.root, 'github-sync issues pull', config.backup.lock_wait_ms, async () => {
    const state = readIssuesState(config.root, sync.repo);
    const tables = mappedTables(sync);
    const listed = await listManaged(api, state.watermark);
    // Rows left in conflict are looked at again even when their issue did not change since.
    const seen = new Set(listed.map((i) => i.number));
    for (const c of state.conflicts) {
      if (c.issue === null || seen.has(c.issue)) continue;
      const a = await api.call('GET', `repos/${api.repo}/issues/${c.issue}`, { accept: [404, 410] });
      const i = a.status === 200 ? toIssue(a.body) : null;
      if (i) listed.push(i);
      seen.add(c.issue);
    }
    const comments = tables.some((t) => t.mapping.comments) ? await listComments(api, state.watermark) : [];
    const report: MergeReport = { applied: {}, conflicts: [], rejected: [] };
    const pending: Pending[] = [];
    for (const db of new Set(tables.map((t) => t.db))) {
      const handle = openDatabase(config, db, Boolean(opts.dryRun));
      try {
        const applies: Array<() => void> = [];
        const written: string[] = [];
        for (const t of tables.filter((x) => x.db === db)) {
          const r = await mergeIssues(handle, t, state, listed, comments, report, pending);
          for (const [table, fn] of r) {
            applies.push(fn);
            written.push(table);
          }
        }
        if (!opts.dryRun && applies.length) applyExactly(handle, written, () => applies.forEach((f) => f()));
      } finally {
        handle.close();
      }
    }
    const conflictKeys = new Set(report.conflicts.map((c) => `${c.table}\n${c.key}`));
    if (!opts.dryRun) {
      for (const p of pending) {
        if (!conflictKeys.has(`${p.table}\n${p.key}`)) p.commit();
        else p.seen?.();
      }
      const now = new Date().toISOString();
      const numberOf = (table: string, key: string): number | null => state.issues[table]?.[key]?.number ?? null;
      state.conflicts = report.conflicts.map((c) => ({ table: c.table, key: c.key, issue: numberOf(c.table, c.key), base: c.base, ours: c.ours, theirs: c.theirs, recorded_at: now }));
      let newest = state.watermark ?? '';
      for (const x of [...listed, ...comments]) if (x.updated_at > newest) newest = x.updated_at;
      if (newest) state.watermark = newest;
      state.last_pull_at = now;
      writeIssuesState(config.root, state);
    }
    const upserts = Object.values(report.applied).reduce((n, a) => n + a.upserts + a.deletes, 0);
    const result: IssuesPullResult = {
      status: opts.dryRun ? 'dry_run' : report.conflicts.length ? 'conflicts' : upserts ? 'applied' : 'up_to_date',
      repo: sync.repo,
      read: { issues: listed.length, comments: comments.length },
      applied: report.applied,
      conflicts: report.conflicts.map((c) => ({ table: c.table, key: c.key, issue: state.issues[c.table]?.[c.key]?.number ?? null, base: c.base, ours: c.ours, theirs: c.theirs })),
      conflict_count: report.conflicts.length,
      rejected: report.rejected,
      watermark: state.watermark,
      requests: api.requests,
      message: '',
    };
    result.message = `${sync.repo}: read ${listed.length} changed issue(s) and ${comments.length} comment(s); ${upserts} row change(s) ${opts.dryRun ? 'would be ' : ''}applied${report.conflicts.length ? `; ${report.conflicts.length} row(s) changed on both sides left as they are (conflicts)` : ''}${report.rejected.length ? `; ${report.rejected.length} input(s) rejected` : ''}.`;
    if (!opts.dryRun) logOperation(config.root, { op: 'issues_pull', repo: sync.repo, status: result.status, applied: upserts, conflicts: report.conflicts.length, requests: api.requests });
    return result;
  });
}

/** One mapped table and its comments table: the changed issues as base/theirs rows, merged. */
async function mergeIssues(
  db: Database.Database,
  t: TaskTable,
  state: IssuesState,
  listed: readonly GhIssue[],
  comments: readonly GhComment[],
  report: MergeReport,
  pending: Pending[],
): Promise<Array<[string, () => void]>> {
  const m = t.mapping;
  const shape = mappableShape(db, t.label, t.table, [m.title, m.body, m.state?.column, m.priority, m.type, m.labels]);
  const ours = liveRows(db, shape);
  const entries = (state.issues[t.label] ??= {});
  const byNumber = new Map<number, [string, IssueEntry]>();
  for (const [k, e] of Object.entries(entries)) byNumber.set(e.number, [k, e]);
  const sides: TableSides = { base: [], theirs: [] };
  for (const issue of listed) {
    const known = byNumber.get(issue.number);
    if (!known) {
      // A managed issue with this table's key the state does not know (an interrupted push created it): adopt it as synced.
      if (!issue.meta || issue.meta.db !== t.db || issue.meta.table !== t.table) continue;
      const key = keyText(issue.meta.key);
      const row = ours.get(key);
      entries[key] = { number: issue.number, updated_at: issue.updated_at, hash: payloadHash(issue), base: issueView(issue, m).view, line: row?.line ?? '' };
      continue;
    }
    const [key, entry] = known;
    if (issue.deleted || entry.deleted) continue;
    if (payloadHash(issue) === entry.hash) {
      entry.updated_at = issue.updated_at;
      continue;
    }
    const theirsView = issueView(issue, m).view;
    const src = ours.get(key) ?? rowFromLine(shape, entry.line);
    if (!src) {
      report.rejected.push({ path: `issue #${issue.number}`, reason: `the row ${key} is gone here and its last synced values are unknown` });
      continue;
    }
    sides.base.push(rowWithView(shape, src, entry.base, m));
    sides.theirs.push(rowWithView(shape, src, theirsView, m));
    pending.push({
      table: t.label,
      key,
      commit: () => {
        entries[key] = { number: issue.number, updated_at: issue.updated_at, hash: payloadHash(issue), base: theirsView, line: rowLine(shape.columns, rowWithView(shape, src, theirsView, m)) };
      },
      seen: () => {
        entry.updated_at = issue.updated_at;
      },
    });
  }
  const out: Array<[string, () => void]> = [];
  const fn = await mergeTable(sidesOf(`issues of ${t.label}`, new Map([[t.table, sides]])), report, db, t.db, t.table);
  if (fn) out.push([t.table, fn]);

  const c = m.comments;
  if (!c) return out;
  const childShape = mappableShape(db, `${t.db}.${c.table}`, c.table, [c.parent, c.body]);
  const childLabel = `${t.db}.${c.table}`;
  const childOurs = liveRows(db, childShape);
  const centries = (state.comments[childLabel] ??= {});
  const byId = new Map<number, string>();
  for (const [k, e] of Object.entries(centries)) byId.set(e.id, k);
  const csides: TableSides = { base: [], theirs: [] };
  const taken = new Set<string>();
  for (const cm of comments) {
    const parent = byNumber.get(cm.issue);
    if (!parent) continue; // not on one of this table's issues
    if (parent[1].deleted || !ours.has(parent[0])) continue; // its task was deleted here: the comment has no row to hang on
    const { body, meta } = splitHiddenBlock(cm.body);
    const key = byId.get(cm.id) ?? (meta && meta.db === t.db && meta.table === c.table ? keyText(meta.key) : undefined);
    if (key && centries[key] && commentHash(cm.body) === centries[key].hash) continue;
    if (!key) {
      // A comment a person wrote on GitHub: a new child row.
      const pkValue = parent[0] ? (JSON.parse(parent[0]) as Record<string, unknown>)[shape.pk[0]!] : null;
      const parentValue = typeof pkValue === 'number' ? BigInt(pkValue) : ((pkValue ?? null) as SqlValue);
      const made = newChildRow(db, childShape, c.parent, parentValue, c.body, body, cm.id, taken);
      if ('reason' in made) {
        report.rejected.push({ path: `comment ${cm.id} on issue #${cm.issue}`, reason: made.reason });
        continue;
      }
      csides.theirs.push(made);
      const newKey = keyOfValues(childShape, made);
      pending.push({ table: childLabel, key: newKey, commit: () => (centries[newKey] = { id: cm.id, issue: cm.issue, hash: commentHash(cm.body), base: body, origin: 'github' }) });
      continue;
    }
    const entry = centries[key];
    const src = childOurs.get(key);
    if (!src || !entry) continue; // deleted here: the push deletes the comment
    csides.base.push(rowWithColumn(childShape, src, c.body, entry.base));
    csides.theirs.push(rowWithColumn(childShape, src, c.body, body));
    const k = key;
    pending.push({ table: childLabel, key: k, commit: () => (centries[k] = { ...entry, hash: commentHash(cm.body), base: body }) });
  }
  const cfn = await mergeTable(sidesOf(`comments of ${t.label}`, new Map([[c.table, csides]])), report, db, t.db, c.table);
  if (cfn) out.push([c.table, cfn]);
  return out;
}

