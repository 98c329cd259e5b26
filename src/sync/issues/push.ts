/**
 * The issues transport's push: each mapped row as an issue, each child row as a comment, sending
 * only what changed since the last sync (by the stored hash of what GitHub held). A row deleted
 * here closes its issue with the wb:deleted label. An issue changed on GitHub since the last sync
 * is left alone (pull first); so is every issue without wb:managed. Resumable: the state is saved
 * as it goes, and an issue whose creation GitHub accepted unseen is found by its hidden key before
 * a second one could be created.
 */
import { z } from 'zod';
import { WbError } from '../../core/errors.js';
import type { Config } from '../../root/config.js';
import { withRootLock } from '../../root/lock.js';
import type { IssuesSyncConfig } from '../../root/sync-issues-schema.js';
import { logOperation } from '../state.js';
import { UncertainOutcome, type IssuesApi } from './github-api.js';
import { commentHash, DELETED_LABEL, issueView, keyText, payloadHash, renderComment, renderIssue, rowView, type IssuePayload, type RowMeta } from './mapping.js';
import { findByKey, LabelMaker, listComments, listManaged, toComment, toIssue, type GhComment, type GhIssue } from './remote.js';
import { readIssuesState, writeIssuesState, type IssueEntry, type IssuesState } from './state.js';
import { keyOfValues, liveRows, mappableShape, mappedTables, openDatabase, type LiveRow } from './tables.js';

export const IssuesPushResultSchema = z.object({
  status: z.enum(['pushed', 'no_changes', 'remote_changed', 'dry_run']),
  repo: z.string(),
  issues: z.object({
    created: z.number(),
    updated: z.number(),
    closed_deleted: z.number().describe('rows deleted here: their issues closed with wb:deleted'),
    unchanged: z.number(),
    adopted: z.number().describe('issues found by their hidden key that the state did not know (an interrupted earlier push)'),
  }),
  comments: z.object({ created: z.number(), updated: z.number(), deleted: z.number() }),
  labels_created: z.number(),
  remote_changed: z.array(z.object({ table: z.string(), key: z.string(), issue: z.number() })).describe('rows left alone: their issue changed on GitHub since the last sync (pull first)'),
  remote_changed_count: z.number(),
  conflicted: z.number().describe('rows with an unresolved conflict, left alone'),
  requests: z.number().describe('GitHub API requests made'),
  rate_limit_waited_seconds: z.number(),
  message: z.string(),
});
export type IssuesPushResult = z.infer<typeof IssuesPushResultSchema>;

export interface IssuesCallOptions {
  dryRun?: boolean;
  env?: Record<string, string>;
  signal?: AbortSignal;
}

interface PushRun {
  api: IssuesApi;
  labels: LabelMaker;
  state: IssuesState;
  result: IssuesPushResult;
  dryRun: boolean;
  /** GitHub's clock when the push started reading (finding an issue created unseen looks from here) */
  startedAt: string | null;
  save: () => void;
}

/** Runs `tasks` with at most `n` in flight. */
async function pool<T>(items: readonly T[], n: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await task(items[next++]!);
  });
  await Promise.all(workers);
}

function entryFrom(issue: GhIssue, base: IssueEntry['base'], line: string, sent?: IssuePayload): IssueEntry {
  return { number: issue.number, updated_at: issue.updated_at, hash: payloadHash(issue), ...(sent ? { sent: payloadHash(sent) } : {}), base, line };
}

/** POST an issue; on an uncertain outcome, look for it by its hidden key before trying again. */
async function createIssue(run: PushRun, payload: IssuePayload, meta: RowMeta): Promise<{ issue: GhIssue; adopted: boolean }> {
  for (let attempt = 0; ; attempt++) {
    try {
      const a = await run.api.call('POST', `repos/${run.api.repo}/issues`, { body: { title: payload.title, body: payload.body, labels: payload.labels }, idempotent: false });
      const issue = toIssue(a.body);
      if (!issue) throw new WbError('sync_failed', 'GitHub answered an issue creation with something other than an issue.', 'Run the push again.');
      return { issue, adopted: false };
    } catch (err) {
      if (!(err instanceof UncertainOutcome) || attempt >= 2) throw err instanceof UncertainOutcome ? new WbError('sync_failed', `Creating an issue failed: ${err.message}`, 'Run the push again: it finds an issue GitHub did create by its hidden key.') : err;
      const found = await findByKey(run.api, run.startedAt, meta);
      if (found) return { issue: found, adopted: true };
    }
  }
}

/** POST a comment; on an uncertain outcome, look for it on the issue by its hidden key before trying again. */
async function createComment(run: PushRun, issue: number, rendered: string): Promise<GhComment> {
  for (let attempt = 0; ; attempt++) {
    try {
      const a = await run.api.call('POST', `repos/${run.api.repo}/issues/${issue}/comments`, { body: { body: rendered }, idempotent: false });
      const c = toComment(a.body);
      if (!c) throw new WbError('sync_failed', 'GitHub answered a new comment with something other than a comment.', 'Run the push again.');
      return c;
    } catch (err) {
      if (!(err instanceof UncertainOutcome) || attempt >= 2) throw err instanceof UncertainOutcome ? new WbError('sync_failed', `Adding a comment to issue #${issue} failed: ${err.message}`, 'Run the push again.') : err;
      const since = run.startedAt ? `?since=${run.startedAt}` : '';
      const found = (await run.api.all<unknown>(`repos/${run.api.repo}/issues/${issue}/comments${since}`)).map(toComment).find((c) => c && commentHash(c.body) === commentHash(rendered));
      if (found) return found;
    }
  }
}

async function patchIssue(run: PushRun, number: number, payload: IssuePayload): Promise<GhIssue> {
  const a = await run.api.call('PATCH', `repos/${run.api.repo}/issues/${number}`, { body: { title: payload.title, body: payload.body, labels: payload.labels, state: payload.state } });
  const issue = toIssue(a.body);
  if (!issue) throw new WbError('sync_failed', `GitHub answered the update of issue #${number} with something other than an issue.`, 'Run the push again.');
  return issue;
}

/** The state's view of which rows have unresolved conflicts, "db.table\n{key}". */
function conflicted(state: IssuesState): Set<string> {
  return new Set(state.conflicts.map((c) => `${c.table}\n${c.key}`));
}

/**
 * Push the mapped tables as issues. `sync` is sync.issues. Fails with WbError sync_failed (GitHub
 * unreachable or refusing, a rate limit longer than max_wait_seconds: run again to resume),
 * config_invalid (a mapped table or column that does not exist).
 */
export async function issuesPush(config: Config, sync: IssuesSyncConfig, api: IssuesApi, opts: IssuesCallOptions = {}): Promise<IssuesPushResult> {
  return withRootLock(config.root, 'github-sync issues push', config.backup.lock_wait_ms, async () => {
    const state = readIssuesState(config.root, sync.repo);
    const result: IssuesPushResult = {
      status: 'no_changes',
      repo: sync.repo,
      issues: { created: 0, updated: 0, closed_deleted: 0, unchanged: 0, adopted: 0 },
      comments: { created: 0, updated: 0, deleted: 0 },
      labels_created: 0,
      remote_changed: [],
      remote_changed_count: 0,
      conflicted: 0,
      requests: 0,
      rate_limit_waited_seconds: 0,
      message: '',
    };
    let writes = 0;
    const save = (): void => {
      if (opts.dryRun) return;
      if (++writes % 25 === 0) writeIssuesState(config.root, state);
    };
    const run: PushRun = { api, labels: new LabelMaker(api), state, result, dryRun: Boolean(opts.dryRun), startedAt: null, save };
    try {
      await pushAll(config, sync, run);
      state.last_push_at = new Date().toISOString();
    } finally {
      result.requests = api.requests;
      result.labels_created = run.labels.created;
      result.rate_limit_waited_seconds = api.waitedSeconds;
      if (!opts.dryRun) writeIssuesState(config.root, state);
    }
    const sent = result.issues.created + result.issues.updated + result.issues.closed_deleted + result.comments.created + result.comments.updated + result.comments.deleted;
    result.status = opts.dryRun ? 'dry_run' : result.remote_changed_count ? 'remote_changed' : sent ? 'pushed' : 'no_changes';
    result.message = pushMessage(result);
    if (!opts.dryRun) logOperation(config.root, { op: 'issues_push', repo: sync.repo, status: result.status, issues: result.issues, comments: result.comments, remote_changed: result.remote_changed_count, requests: result.requests });
    return result;
  });
}

function pushMessage(r: IssuesPushResult): string {
  const verb = r.status === 'dry_run' ? 'would' : '';
  const parts = [
    `${r.issues.created} issue(s) ${verb ? 'would be ' : ''}created`,
    `${r.issues.updated} updated`,
    `${r.issues.closed_deleted} closed as deleted`,
    `${r.comments.created + r.comments.updated + r.comments.deleted} comment change(s)`,
  ];
  const tail = r.remote_changed_count ? ` ${r.remote_changed_count} row(s) were left alone because their issue changed on GitHub: run github_sync_pull, then push again.` : '';
  const conflicts = r.conflicted ? ` ${r.conflicted} row(s) with an unresolved conflict were left alone.` : '';
  return `${r.repo}: ${parts.join(', ')} (${r.requests} request(s)).${tail}${conflicts}`;
}

async function pushAll(config: Config, sync: IssuesSyncConfig, run: PushRun): Promise<void> {
  const { api, state, result } = run;
  // What changed on GitHub since the last pull: those issues are not overwritten. Managed issues
  // the state does not know but whose hidden key names a row were created by an interrupted push:
  // adopted, never created twice.
  const listed = await listManaged(api, state.watermark);
  run.startedAt = api.serverTime;
  const byNumber = new Map(listed.map((i) => [i.number, i]));
  const known = new Set<number>();
  for (const t of Object.values(state.issues)) for (const e of Object.values(t)) known.add(e.number);
  const blocked = conflicted(state);

  for (const t of mappedTables(sync)) {
    const db = openDatabase(config, t.db, true);
    let rows: Map<string, LiveRow>;
    let childRows: Map<string, LiveRow> | null = null;
    let parentOf: ((r: LiveRow) => string) | null = null;
    try {
      const shape = mappableShape(db, t.label, t.table, [t.mapping.title, t.mapping.body, t.mapping.state?.column, t.mapping.priority, t.mapping.type, t.mapping.labels]);
      rows = liveRows(db, shape);
      const c = t.mapping.comments;
      if (c) {
        if (shape.pk.length !== 1) throw new WbError('config_invalid', `${t.label} maps comments, which needs a single-column primary key.`, 'Remove comments from its mapping.');
        const childShape = mappableShape(db, `${t.db}.${c.table}`, c.table, [c.parent, c.body]);
        childRows = liveRows(db, childShape);
        const pi = childShape.columns.indexOf(c.parent);
        parentOf = (r) => keyOfValues(shape, shape.columns.map((col) => (col === shape.pk[0] ? (r.values[pi] ?? null) : null)));
      }
    } finally {
      db.close();
    }
    const entries = (state.issues[t.label] ??= {});
    for (const issue of listed) {
      if (known.has(issue.number) || !issue.meta || issue.meta.db !== t.db || issue.meta.table !== t.table) continue;
      const key = keyText(issue.meta.key);
      if (entries[key]) continue;
      entries[key] = entryFrom(issue, issueView(issue, t.mapping).view, '');
      known.add(issue.number);
      result.issues.adopted++;
    }
    const remoteChanged = (e: IssueEntry): boolean => {
      const now = byNumber.get(e.number);
      return Boolean(now && now.updated_at !== e.updated_at && payloadHash(now) !== e.hash);
    };
    const leaveAlone = (key: string, e: IssueEntry): void => {
      result.remote_changed_count++;
      result.remote_changed.push({ table: t.label, key, issue: e.number });
    };

    await pool([...rows.values()], sync.parallel, async (row) => {
      if (blocked.has(`${t.label}\n${row.key}`)) {
        result.conflicted++;
        return;
      }
      const view = rowView(row.record, t.mapping);
      const meta: RowMeta = { db: t.db, table: t.table, key: JSON.parse(row.key) as Record<string, unknown> };
      const payload = renderIssue(view, meta, t.mapping);
      const entry = entries[row.key];
      if (!entry) {
        result.issues.created++;
        if (run.dryRun) return;
        await run.labels.ensure(payload.labels);
        const made = await createIssue(run, payload, meta);
        let issue = made.issue;
        if (made.adopted) result.issues.adopted++;
        // GitHub creates issues open: a closed state is a second request.
        if (payload.state === 'closed' && issue.state !== 'closed') issue = await patchIssue(run, issue.number, payload);
        entries[row.key] = entryFrom(issue, view, row.line, payload);
        run.save();
        return;
      }
      if (remoteChanged(entry)) return leaveAlone(row.key, entry);
      if (!entry.deleted && (payloadHash(payload) === entry.hash || payloadHash(payload) === entry.sent)) {
        result.issues.unchanged++;
        if (entry.line !== row.line) entry.line = row.line;
        return;
      }
      result.issues.updated++;
      if (run.dryRun) return;
      await run.labels.ensure(payload.labels);
      const issue = await patchIssue(run, entry.number, payload);
      entries[row.key] = entryFrom(issue, view, row.line, payload);
      run.save();
    });

    // Rows deleted here: their issues are closed with wb:deleted, never deleted.
    const gone = Object.entries(entries).filter(([key, e]) => !rows.has(key) && !e.deleted);
    await pool(gone, sync.parallel, async ([key, e]) => {
      if (blocked.has(`${t.label}\n${key}`)) {
        result.conflicted++;
        return;
      }
      if (remoteChanged(e)) return leaveAlone(key, e);
      result.issues.closed_deleted++;
      if (run.dryRun) return;
      const meta: RowMeta = { db: t.db, table: t.table, key: JSON.parse(key) as Record<string, unknown> };
      const last = renderIssue(e.base, meta, t.mapping);
      const payload: IssuePayload = { ...last, labels: [...last.labels, DELETED_LABEL], state: 'closed' };
      await run.labels.ensure(payload.labels);
      const issue = await patchIssue(run, e.number, payload);
      entries[key] = { ...entryFrom(issue, e.base, e.line), deleted: true };
      run.save();
    });

    if (childRows && parentOf && t.mapping.comments) await pushComments(run, `${t.db}.${t.mapping.comments.table}`, t.mapping.comments.body, childRows, parentOf, entries, sync.parallel);
  }
  if (!run.dryRun && !result.remote_changed_count && !state.conflicts.length) await settle(run, mappedTables(sync).some((t) => t.mapping.comments));
}

/**
 * After a clean push: when everything GitHub changed since the watermark is this transport's own
 * writing (same hashes), remember GitHub's updated_at of each and move the watermark past them,
 * so the next poll sees nothing new. Anything else (a person's edit or comment in the meantime)
 * keeps the watermark where it was: the next pull reads it.
 */
async function settle(run: PushRun, withComments: boolean): Promise<void> {
  const { api, state } = run;
  const byNumber = new Map<number, IssueEntry>();
  for (const t of Object.values(state.issues)) for (const e of Object.values(t)) byNumber.set(e.number, e);
  const issues = await listManaged(api, state.watermark);
  let newest = state.watermark ?? '';
  for (const i of issues) {
    const e = byNumber.get(i.number);
    if (!e) {
      if (i.meta) return; // a managed issue with a key the state does not hold: let pull look at it
      continue; // labelled wb:managed by hand, no key: never touched
    }
    if (payloadHash(i) !== e.hash) return;
    if (i.updated_at > newest) newest = i.updated_at;
  }
  if (withComments) {
    const ours = new Map<number, string>();
    for (const t of Object.values(state.comments)) for (const c of Object.values(t)) ours.set(c.id, c.hash);
    for (const c of await listComments(api, state.watermark)) {
      if (!byNumber.has(c.issue)) continue; // not on a managed issue
      if (ours.get(c.id) !== commentHash(c.body)) return;
      if (c.updated_at > newest) newest = c.updated_at;
    }
  }
  for (const i of issues) {
    const e = byNumber.get(i.number);
    if (e) e.updated_at = i.updated_at;
  }
  if (newest) state.watermark = newest;
}

async function pushComments(
  run: PushRun,
  childLabel: string,
  bodyColumn: string,
  childRows: Map<string, LiveRow>,
  parentOf: (r: LiveRow) => string,
  parents: Record<string, IssueEntry>,
  parallel: number,
): Promise<void> {
  const { api, state, result } = run;
  const blocked = conflicted(state);
  const entries = (state.comments[childLabel] ??= {});
  const [db, table] = childLabel.split('.') as [string, string];
  // One task's comments in their rows' order (sequentially), tasks side by side.
  const groups = new Map<string, LiveRow[]>();
  for (const row of childRows.values()) {
    const k = parentOf(row);
    const g = groups.get(k);
    if (g) g.push(row);
    else groups.set(k, [row]);
  }
  await pool([...groups.values()], parallel, async (group) => {
    for (const row of group) await pushComment(row);
  });
  async function pushComment(row: LiveRow): Promise<void> {
    const parent = parents[parentOf(row)];
    if (!parent || parent.deleted) return; // its task is not (or no longer) an issue
    const text = row.record[bodyColumn];
    const body = typeof text === 'string' ? text : text === null ? '' : String(text);
    if (blocked.has(`${childLabel}\n${row.key}`)) {
      result.conflicted++;
      return;
    }
    const entry = entries[row.key];
    if (entry?.origin === 'github') {
      // A person's comment brought in as a row: edited here, the comment is not ours to rewrite.
      return;
    }
    const rendered = renderComment(body, { db, table, key: JSON.parse(row.key) as Record<string, unknown> });
    if (entry && entry.hash === commentHash(rendered)) return;
    if (run.dryRun) {
      if (entry) result.comments.updated++;
      else result.comments.created++;
      return;
    }
    if (!entry) {
      const c = await createComment(run, parent.number, rendered);
      entries[row.key] = { id: c.id, issue: parent.number, hash: commentHash(c.body), base: body, origin: 'row' };
      result.comments.created++;
    } else {
      // Edited on GitHub since the last sync: left alone (pull first), like an issue.
      const now = await api.call('GET', `repos/${api.repo}/issues/comments/${entry.id}`, { accept: [404] });
      const current = now.status === 200 ? toComment(now.body) : null;
      if (current && commentHash(current.body) !== entry.hash) {
        result.remote_changed_count++;
        result.remote_changed.push({ table: childLabel, key: row.key, issue: entry.issue });
        return;
      }
      const a = await api.call('PATCH', `repos/${api.repo}/issues/comments/${entry.id}`, { body: { body: rendered }, accept: [404] });
      if (a.status === 404) {
        delete entries[row.key]; // deleted on GitHub: made again by the next push
        return;
      }
      const c = toComment(a.body);
      entries[row.key] = { ...entry, hash: commentHash(c?.body ?? rendered), base: body };
      result.comments.updated++;
    }
    run.save();
  }
  // Child rows deleted here: their comments are deleted (only the ones this transport wrote).
  for (const [key, e] of Object.entries(entries)) {
    if (childRows.has(key)) continue;
    if (e.origin === 'github') {
      delete entries[key];
      continue;
    }
    result.comments.deleted++;
    if (run.dryRun) continue;
    await api.call('DELETE', `repos/${api.repo}/issues/comments/${e.id}`, { accept: [404] });
    delete entries[key];
    run.save();
  }
}
