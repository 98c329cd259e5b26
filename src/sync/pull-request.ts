import { WbError } from '../core/errors.js';
import { classifyGhFailure, runGh } from '../core/gh.js';

/** Branches wb-backup opens pull requests from; one open at a time, updated by later syncs. */
export const PR_BRANCH_PREFIX = 'wb-backup/sync-';

export interface SyncPullRequest {
  number: number;
  url: string;
  branch: string;
}

interface PullJson {
  number: number;
  html_url: string;
  head: { ref: string; repo?: { full_name?: string } | null };
  base: { ref: string };
}

function ghOpts(env?: Record<string, string>) {
  return env ? { env } : {};
}

function ghError(what: string, r: { stdout: string; stderr: string; missing: boolean; exitCode: number | undefined }, repo: string): WbError {
  const failure = classifyGhFailure(r, repo);
  // For a 422, GitHub's reasons (e.g. "No commits between trunk and …") are in the JSON body gh prints on stdout.
  let reasons = '';
  try {
    const body = JSON.parse(r.stdout) as { errors?: Array<{ message?: string; code?: string; field?: string }> };
    reasons = (body.errors ?? []).map((e) => e.message ?? `${e.field ?? ''} ${e.code ?? ''}`.trim()).filter(Boolean).join('; ');
  } catch {
    /* not JSON: stderr says it all */
  }
  return new WbError('sync_failed', `${what}: ${failure.message}${reasons ? ` (${reasons})` : ''}`, failure.hint);
}

/** The open pull request an earlier sync opened into `base`, if any. */
export async function findOpenSyncPullRequest(repo: string, base: string, env?: Record<string, string>): Promise<SyncPullRequest | null> {
  const r = await runGh(['api', `repos/${repo}/pulls?state=open&base=${encodeURIComponent(base)}&per_page=100`], ghOpts(env));
  if (!r.ok) throw ghError(`Could not list the pull requests of ${repo}`, r, repo);
  const pulls = JSON.parse(r.stdout || '[]') as PullJson[];
  const ours = pulls.find((p) => p.head.ref.startsWith(PR_BRANCH_PREFIX) && (p.head.repo?.full_name ?? repo).toLowerCase() === repo.toLowerCase());
  return ours ? { number: ours.number, url: ours.html_url, branch: ours.head.ref } : null;
}

/** Open a pull request from `head` into `base` through gh. */
export async function openPullRequest(repo: string, pr: { head: string; base: string; title: string; body: string }, env?: Record<string, string>): Promise<SyncPullRequest> {
  const r = await runGh(['api', '-X', 'POST', `repos/${repo}/pulls`, '-f', `title=${pr.title}`, '-f', `head=${pr.head}`, '-f', `base=${pr.base}`, '-f', `body=${pr.body}`], ghOpts(env));
  if (r.ok) {
    const p = JSON.parse(r.stdout) as PullJson;
    return { number: p.number, url: p.html_url, branch: p.head.ref };
  }
  // Another sync opened it meanwhile: use that one. (gh prints the 422's details on stdout.)
  if (/already exists/i.test(`${r.stdout}\n${r.stderr}`)) {
    const existing = await findOpenSyncPullRequest(repo, pr.base, env);
    if (existing) return existing;
  }
  throw ghError(`Could not open a pull request from ${pr.head} into ${pr.base} (the branch was pushed; open it by hand if needed)`, r, repo);
}
