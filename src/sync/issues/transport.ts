/**
 * GitHub Issues as a SyncTransport (../transport.ts): task tables (sync.issues) kept as issues in a
 * repository, child rows as comments. push.ts, pull.ts; status and poll here.
 */
import { z } from 'zod';
import { WbError } from '../../core/errors.js';
import type { Config } from '../../root/config.js';
import type { IssuesSyncConfig } from '../../root/sync-issues-schema.js';
import type { PollResult, SyncCallOptions, SyncTransport, TransportEntry } from '../transport.js';
import { IssuesApi } from './github-api.js';
import { commentHash, MANAGED_LABEL, payloadHash, renderComment, renderIssue, rowView } from './mapping.js';
import { issuesPull, type IssuesPullResult } from './pull.js';
import { issuesPush, type IssuesPushResult } from './push.js';
import { toIssue } from './remote.js';
import { readIssuesState } from './state.js';
import { liveRows, mappableShape, mappedTables, openDatabase } from './tables.js';

export const IssuesStatusSchema = z.object({
  configured: z.boolean(),
  repo: z.string().nullable(),
  tables: z.array(z.string()).describe('the mapped "db.table"s'),
  tracked_issues: z.number().describe('rows with an issue (deleted rows\' closed issues included)'),
  local_changes: z.object({ new: z.number(), changed: z.number(), deleted: z.number(), comments: z.number() }).describe('what the next push would send'),
  conflicts: z.number().describe('rows left in conflict by the last pull'),
  watermark: z.string().nullable().describe('GitHub time of the newest change already read'),
  last_push_at: z.string().nullable(),
  last_pull_at: z.string().nullable(),
  message: z.string(),
});
export type IssuesStatus = z.infer<typeof IssuesStatusSchema>;

export type IssuesTransport = SyncTransport<IssuesPushResult, IssuesPullResult, IssuesStatus>;

function settings(config: Config): IssuesSyncConfig {
  const s = config.sync?.issues;
  if (!s) throw new WbError('config_invalid', 'The GitHub Issues sync is not configured.', 'Add sync: { issues: { repo: owner/name, tables: { "db.table": { title: column } } } } to wb-backup.yaml; see docs/github-sync.md#github-issues.');
  return s;
}

function apiFor(s: IssuesSyncConfig, opts: SyncCallOptions): IssuesApi {
  return new IssuesApi(s.repo, { maxWaitSeconds: s.max_wait_seconds, ...(opts.env ? { env: opts.env } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
}

const callOpts = (opts: SyncCallOptions) => ({ ...(opts.dryRun ? { dryRun: true } : {}), ...(opts.env ? { env: opts.env } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });

/** What the next push would send, read from the databases and the state only (no request). */
export function issuesStatus(config: Config): IssuesStatus {
  const s = config.sync?.issues;
  if (!s) return { configured: false, repo: null, tables: [], tracked_issues: 0, local_changes: { new: 0, changed: 0, deleted: 0, comments: 0 }, conflicts: 0, watermark: null, last_push_at: null, last_pull_at: null, message: 'The GitHub Issues sync is not configured (sync.issues in wb-backup.yaml).' };
  const state = readIssuesState(config.root, s.repo);
  const changes = { new: 0, changed: 0, deleted: 0, comments: 0 };
  let tracked = 0;
  for (const t of mappedTables(s)) {
    const db = openDatabase(config, t.db, true);
    try {
      const shape = mappableShape(db, t.label, t.table, [t.mapping.title, t.mapping.body, t.mapping.state?.column, t.mapping.priority, t.mapping.type, t.mapping.labels]);
      const rows = liveRows(db, shape);
      const entries = state.issues[t.label] ?? {};
      tracked += Object.keys(entries).length;
      for (const row of rows.values()) {
        const e = entries[row.key];
        const payload = renderIssue(rowView(row.record, t.mapping), { db: t.db, table: t.table, key: JSON.parse(row.key) as Record<string, unknown> }, t.mapping);
        if (!e) changes.new++;
        else if (e.deleted || (payloadHash(payload) !== e.hash && payloadHash(payload) !== e.sent)) changes.changed++;
      }
      changes.deleted += Object.entries(entries).filter(([k, e]) => !e.deleted && !rows.has(k)).length;
      const c = t.mapping.comments;
      if (c) {
        const childShape = mappableShape(db, `${t.db}.${c.table}`, c.table, [c.parent, c.body]);
        const centries = state.comments[`${t.db}.${c.table}`] ?? {};
        for (const row of liveRows(db, childShape).values()) {
          const e = centries[row.key];
          if (e?.origin === 'github') continue;
          const text = row.record[c.body];
          const rendered = renderComment(typeof text === 'string' ? text : text === null ? '' : String(text), { db: t.db, table: c.table, key: JSON.parse(row.key) as Record<string, unknown> });
          if (!e || e.hash !== commentHash(rendered)) changes.comments++;
        }
      }
    } finally {
      db.close();
    }
  }
  const pending = changes.new + changes.changed + changes.deleted + changes.comments;
  return {
    configured: true,
    repo: s.repo,
    tables: mappedTables(s).map((t) => t.label),
    tracked_issues: tracked,
    local_changes: changes,
    conflicts: state.conflicts.length,
    watermark: state.watermark,
    last_push_at: state.last_push_at,
    last_pull_at: state.last_pull_at,
    message: `${s.repo}: ${tracked} issue(s) tracked; the next push sends ${pending} change(s)${state.conflicts.length ? `; ${state.conflicts.length} row(s) in conflict` : ''}.`,
  };
}

/**
 * One request: the managed issues updated at or after the watermark, newest first (100 at most).
 * Changed when one of them is not at the version the last sync left (a person's edit, a new
 * comment, which bumps its issue). Without an earlier sync: no request, not changed.
 */
export async function issuesPoll(config: Config, opts: SyncCallOptions = {}): Promise<PollResult> {
  const s = settings(config);
  const state = readIssuesState(config.root, s.repo);
  if (!state.watermark) return { changed: false, requests: 0, detail: 'never synced: nothing to compare with yet (run github_sync_push)' };
  const api = apiFor(s, opts);
  const q = new URLSearchParams({ labels: MANAGED_LABEL, state: 'all', since: state.watermark, sort: 'updated', direction: 'desc', per_page: '100' });
  const a = await api.call('GET', `repos/${s.repo}/issues?${q.toString()}`);
  const versions = new Map<number, string>();
  for (const t of Object.values(state.issues)) for (const e of Object.values(t)) versions.set(e.number, e.updated_at);
  const items = (Array.isArray(a.body) ? a.body : []).map(toIssue).filter((i) => i !== null);
  const moved = items.filter((i) => versions.get(i.number) !== i.updated_at);
  return {
    changed: moved.length > 0,
    requests: api.requests,
    detail: moved.length ? `${moved.length} issue(s) changed on GitHub since ${state.watermark} (e.g. #${moved[0]!.number})` : `no issue changed since ${state.watermark}`,
  };
}

export function issuesTransport(config: Config): IssuesTransport {
  const s = settings(config);
  return {
    id: 'issues',
    label: `issues:${s.repo}`,
    push: async (opts = {}) => {
      const api = apiFor(s, opts);
      return issuesPush(config, s, api, callOpts(opts));
    },
    pull: async (opts = {}) => issuesPull(config, s, apiFor(s, opts), callOpts(opts)),
    status: async () => issuesStatus(config),
    poll: (opts = {}) => issuesPoll(config, opts),
  };
}

/** The registry entry (../transports.ts): configured by sync.issues. */
export const issuesEntry: TransportEntry = {
  id: 'issues',
  title: 'GitHub Issues',
  configured: (config) => Boolean(config.sync?.issues),
  create: issuesTransport,
};
