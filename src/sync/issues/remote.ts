/**
 * The issues transport's view of the repository: GitHub's issue and comment JSON narrowed to what
 * the mapping reads, the listing of managed issues changed since a watermark, labels created on
 * first use, and finding an issue by its hidden key (resuming an interrupted creation).
 */
import { DELETED_LABEL, MANAGED_LABEL, PREFIX, splitHiddenBlock, type IssueFields, type RowMeta } from './mapping.js';
import type { IssuesApi } from './github-api.js';

export interface GhIssue extends IssueFields {
  number: number;
  updated_at: string;
  meta: RowMeta | null;
  deleted: boolean;
}

export interface GhComment {
  id: number;
  issue: number;
  body: string;
  updated_at: string;
  user: string;
}

/** GitHub's issue JSON, narrowed; null for a pull request (the issues list carries them too). */
export function toIssue(raw: unknown): GhIssue | null {
  const o = raw as { number?: unknown; title?: unknown; body?: unknown; state?: unknown; labels?: unknown; updated_at?: unknown; pull_request?: unknown };
  if (!o || typeof o.number !== 'number' || o.pull_request) return null;
  const labels = Array.isArray(o.labels) ? o.labels.map((l) => (typeof l === 'string' ? l : String((l as { name?: unknown }).name ?? ''))).filter(Boolean) : [];
  const body = typeof o.body === 'string' ? o.body : null;
  return {
    number: o.number,
    title: String(o.title ?? ''),
    body,
    state: o.state === 'closed' ? 'closed' : 'open',
    labels,
    updated_at: String(o.updated_at ?? ''),
    meta: splitHiddenBlock(body).meta,
    deleted: labels.includes(DELETED_LABEL),
  };
}

export function toComment(raw: unknown): GhComment | null {
  const o = raw as { id?: unknown; body?: unknown; updated_at?: unknown; issue_url?: unknown; user?: { login?: unknown } };
  const issue = Number(/\/issues\/(\d+)$/.exec(String(o?.issue_url ?? ''))?.[1]);
  if (!o || typeof o.id !== 'number' || !Number.isFinite(issue)) return null;
  return { id: o.id, issue, body: String(o.body ?? ''), updated_at: String(o.updated_at ?? ''), user: String(o.user?.login ?? '') };
}

/** Managed issues (open and closed) updated at or after `since` (all of them without one), oldest change first. */
export async function listManaged(api: IssuesApi, since: string | null): Promise<GhIssue[]> {
  const q = new URLSearchParams({ labels: MANAGED_LABEL, state: 'all', sort: 'updated', direction: 'asc', per_page: '100' });
  if (since) q.set('since', since);
  const raw = await api.all<unknown>(`repos/${api.repo}/issues?${q.toString()}`);
  return raw.map(toIssue).filter((i): i is GhIssue => i !== null && i.labels.includes(MANAGED_LABEL));
}

/** Comments on any issue of the repository updated at or after `since`. */
export async function listComments(api: IssuesApi, since: string | null): Promise<GhComment[]> {
  const q = new URLSearchParams({ sort: 'updated', direction: 'asc', per_page: '100' });
  if (since) q.set('since', since);
  const raw = await api.all<unknown>(`repos/${api.repo}/issues/comments?${q.toString()}`);
  return raw.map(toComment).filter((c): c is GhComment => c !== null);
}

const COLORS: Array<[string, string]> = [
  ['wb:', '5319e7'],
  [PREFIX.state, '0e8a16'],
  [PREFIX.priority, 'd93f0b'],
  [PREFIX.type, '1d76db'],
];

/** Creates labels on first use (once per name per run); the repository's existing ones are read once. */
export class LabelMaker {
  private known: Promise<Set<string>> | null = null;
  private making = new Map<string, Promise<void>>();
  created = 0;

  constructor(private readonly api: IssuesApi) {}

  async ensure(names: readonly string[]): Promise<void> {
    this.known ??= this.api.all<{ name: string }>(`repos/${this.api.repo}/labels`).then((ls) => new Set(ls.map((l) => l.name.toLowerCase())));
    const known = await this.known;
    await Promise.all(
      names.map((name) => {
        const k = name.toLowerCase();
        if (known.has(k)) return undefined;
        let p = this.making.get(k);
        if (!p) {
          const color = COLORS.find(([prefix]) => name.startsWith(prefix))?.[1] ?? 'c5def5';
          p = this.api.call('POST', `repos/${this.api.repo}/labels`, { body: { name, color, description: 'kept by wb-backup (sync.issues)' }, accept: [422], idempotent: true }).then((a) => {
            if (a.status === 201) this.created++;
            known.add(k);
          });
          this.making.set(k, p);
        }
        return p;
      }),
    );
  }
}

/** The managed issue carrying this hidden key, among those changed since `since` (a creation GitHub accepted unseen). */
export async function findByKey(api: IssuesApi, since: string | null, meta: RowMeta): Promise<GhIssue | null> {
  const want = JSON.stringify(meta);
  for (const issue of await listManaged(api, since)) if (issue.meta && JSON.stringify(issue.meta) === want) return issue;
  return null;
}
