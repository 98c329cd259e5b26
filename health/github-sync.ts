import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { describeError } from '../src/core/errors.js';
import { runGit } from '../src/core/git.js';
import { firstLine, ghIn, qualifyRepo, viewRepo } from '../src/health/gh-requirements.js';
import { markEnabled } from '../src/health/opt-in.js';
import { defineComponent, type CheckResult, type HealthContext } from '../src/health/types.js';
import { updateConfigFile } from '../src/root/config.js';
import type { GithubSyncConfig } from '../src/root/sync-schema.js';
import { gitOptionsFor, resolveBranchFor } from '../src/sync/git-remote.js';
import { issuesStatus } from '../src/sync/issues/transport.js';
import { transportPolls } from '../src/sync/poll.js';
import { readState, syncDir } from '../src/sync/state.js';

const SyncInput = z
  .object({
    repo: z
      .string()
      .regex(/^([A-Za-z0-9_.-]+\/)?[A-Za-z0-9_.-]+$/, 'a repository name like "agent-data" or "owner/agent-data"')
      .optional()
      .describe('GitHub repository for the readable mirror, "name" (under your account) or "owner/name". Created private and empty if it does not exist. Give this or remote_url.'),
    remote_url: z
      .string()
      .min(1)
      .optional()
      .describe('Or any git remote: a URL, or the path of a bare repository (git\'s own credentials). With repo, used instead of its https URL (e.g. an SSH URL).'),
    branch: z.string().min(1).optional().describe("Branch to sync; default: the repository's default branch (on an empty repository, the one the first push creates: main)."),
  })
  .refine((i) => Boolean(i.repo) || Boolean(i.remote_url), { message: 'give repo (a GitHub repository) or remote_url (any git remote)', path: ['repo'] });

/** The remote as the sync will reach it, the folder git runs in, and whether the remote has any branch yet. */
async function probe(ctx: HealthContext, g: GithubSyncConfig): Promise<{ ok: true; heads: string; head: string | null } | { ok: false; detail: string }> {
  const { url, pre } = gitOptionsFor(g, ctx.ghEnv);
  const dir = fs.existsSync(syncDir(ctx.root)) ? syncDir(ctx.root) : ctx.root;
  const env = ctx.ghEnv ? { env: ctx.ghEnv } : {};
  const r = await runGit([...pre, 'ls-remote', '--symref', url, 'HEAD'], { cwd: dir, timeoutMs: 30_000, ...env });
  if (!r.ok) return { ok: false, detail: r.stderr.split('\n')[0] ?? 'git failed' };
  const heads = await runGit([...pre, 'ls-remote', '--heads', url], { cwd: dir, timeoutMs: 30_000, ...env });
  return { ok: true, heads: heads.ok ? heads.stdout.trim() : '', head: /^ref: refs\/heads\/(\S+)/m.exec(r.stdout)?.[1] ?? null };
}

/** The branch a push would use, exactly as push resolves it (so health never calls fine what push refuses). */
async function branchFor(ctx: HealthContext, g: GithubSyncConfig): Promise<string> {
  const dir = fs.existsSync(syncDir(ctx.root)) ? syncDir(ctx.root) : ctx.root;
  return resolveBranchFor(dir, gitOptionsFor(g, ctx.ghEnv), g);
}

/**
 * The GitHub Issues transport's own counts (sync.issues), read locally (no request): issues tracked,
 * what the next push sends, rows left in conflict (warn). Undefined when it is not configured.
 */
function issuesLine(ctx: HealthContext): CheckResult | undefined {
  if (!ctx.config.sync?.issues) return undefined;
  try {
    const s = issuesStatus(ctx.config);
    const pending = s.local_changes.new + s.local_changes.changed + s.local_changes.deleted + s.local_changes.comments;
    const detail = `issues ${s.repo}: ${s.tracked_issues} tracked, ${pending} change(s) to push${s.conflicts ? `, ${s.conflicts} row(s) in conflict: see github_sync_pull` : ''}`;
    return { status: s.conflicts ? 'warn' : 'ok', detail };
  } catch (err) {
    return { status: 'fail', detail: `issues: ${describeError(err)}` };
  }
}

const RANK: Record<CheckResult['status'], number> = { ok: 0, warn: 1, fail: 2 };

/** The git mirror's result with the issues transport's line after it; the worse status wins. */
function worst(git: CheckResult, issues: CheckResult | undefined): CheckResult {
  if (!issues) return git;
  return { status: RANK[issues.status] > RANK[git.status] ? issues.status : git.status, detail: `${git.detail}; ${issues.detail}` };
}

export default defineComponent({
  id: 'github_sync',
  title: 'Readable data mirror (github-sync)',
  description: 'The databases as readable files in a git repository you own, so a wiped machine can come back from git clone.',
  optIn: true,
  wanted: (ctx) => ctx.config.health.opt_in.includes('github_sync') || Boolean(ctx.config.sync?.github) || Boolean(ctx.config.sync?.issues),
  whenDisabled: (ctx) => {
    const g = ctx.config.sync?.github;
    const where = g ? (g.repo ?? path.basename(g.remote_url ?? '')) : null;
    return `github_sync_push and github_sync_pull still work when called.${where ? ` The mirror in ${where} and the local clone under the data root are kept as they are.` : ''}`;
  },
  requirements: [
    {
      id: 'repo-configured',
      title: 'Sync repository configured',
      async check(ctx) {
        const g = ctx.config.sync?.github;
        // GitHub Issues alone (sync.issues) needs no git repository.
        if (!g && ctx.config.sync?.issues) return { status: 'ok', detail: `no git mirror; task tables as GitHub issues in ${ctx.config.sync.issues.repo}` };
        if (!g) return { status: 'fail', detail: 'add sync: { github: { repo: owner/name } } (or remote_url) to wb-backup.yaml; see docs/github-sync.md' };
        return { status: 'ok', detail: g.repo ?? path.basename(g.remote_url ?? '') };
      },
      fixer: {
        kind: 'input_required',
        describe:
          'Choose the git repository for the readable mirror: a GitHub repository (created private and empty when it does not exist; credentials through gh) or any git remote URL. Written to sync.github in wb-backup.yaml; on an empty repository the branch the first push creates is written too.',
        inputs: SyncInput,
        async run(ctx, inputs) {
          const given = SyncInput.parse(inputs);
          let repo: string | undefined;
          let created = false;
          if (given.repo) {
            const qualified = await qualifyRepo(ctx, given.repo);
            if ('error' in qualified) return { status: 'failed', message: `${qualified.error}. A GitHub repository needs gh signed in (gh auth login --web); or give remote_url for a plain git remote.` };
            repo = qualified.repo;
            const seen = await viewRepo(ctx, repo);
            if (seen.found && !seen.view.isPrivate) {
              return { status: 'failed', message: `${repo} is public, and the mirror holds your data as readable files. Refusing: choose another name, or make it private on GitHub first.` };
            }
            if (!seen.found) {
              const made = await ghIn(ctx, ['repo', 'create', repo, '--private', '--description', 'wb-backup readable data mirror']);
              if (made.exitCode !== 0) return { status: 'failed', message: `Creating ${repo} failed: ${firstLine(made.stderr)}` };
              created = true;
            }
          }
          const previous = ctx.config.sync?.github;
          const mode = previous?.mode ?? 'direct';
          const candidate: GithubSyncConfig = {
            ...(previous ?? { documents: {}, exclude_tables: [], max_file_bytes: 50 * 1024 * 1024, max_push_bytes: 200 * 1024 * 1024 }),
            mode: repo ? mode : 'direct',
            repo,
            remote_url: given.remote_url,
            branch: given.branch,
          };
          const where = repo ?? given.remote_url!;
          const seen = await probe(ctx, candidate);
          if (!seen.ok) return { status: 'failed', message: `git cannot reach ${where}: ${seen.detail}. Check the name or URL (and for GitHub, that gh is signed in), then run this fix again; nothing was written.` };
          let branch: string;
          try {
            branch = await branchFor(ctx, candidate);
          } catch (err) {
            return { status: 'failed', message: `${describeError(err)} Nothing was written.` };
          }
          // Record the branch of an empty plain-git remote: nothing on it says which branch it will have.
          const empty = !seen.heads;
          const record = given.branch ?? (empty && !repo ? branch : undefined);
          updateConfigFile(ctx.root, (doc) => {
            for (const [key, value] of [['repo', repo], ['remote_url', given.remote_url], ['branch', record]] as const) {
              if (value !== undefined) doc.setIn(['sync', 'github', key], value);
              else if (doc.hasIn(['sync', 'github', key])) doc.deleteIn(['sync', 'github', key]);
            }
            if (!repo && mode !== 'direct') doc.setIn(['sync', 'github', 'mode'], 'direct');
            markEnabled(doc, 'github_sync');
          });
          const modeNote = !repo && mode !== 'direct' ? ` Mode ${mode} needs a GitHub repository (pull requests), so mode is now direct.` : '';
          const branchNote = empty
            ? `It has no commits yet: the first push (github_sync_push) creates branch ${branch}${record ? ', written to sync.github.branch' : ''}.`
            : `Syncing branch ${branch}; push with github_sync_push.`;
          return { status: 'fixed', message: `${created ? `Created private repository ${repo} for the mirror` : `The mirror goes to ${where}`}. ${branchNote}${modeNote}` };
        },
      },
    },
    {
      id: 'remote-reachable',
      title: 'Sync repository reachable',
      dependsOn: ['repo-configured'],
      async check(ctx) {
        if (!ctx.config.sync?.github) return { status: 'ok', detail: 'no git mirror to reach (GitHub Issues only)' };
        const g = ctx.config.sync.github;
        const seen = await probe(ctx, g);
        if (!seen.ok) return { status: 'fail', detail: `git cannot reach it: ${seen.detail} (to use another, run the fix of github_sync.repo-configured again)` };
        let branch: string;
        try {
          branch = await branchFor(ctx, g);
        } catch (err) {
          // Reachable, but a push would stop here: say so rather than call it fine.
          return { status: 'fail', detail: `reachable, but a push cannot pick its branch: ${describeError(err)}` };
        }
        if (!seen.heads) return { status: 'ok', detail: `reachable and empty: the first push creates branch ${branch}` };
        return { status: 'ok', detail: seen.head ? `default branch ${seen.head}` : `branch ${branch}` };
      },
    },
  ],
  checks: [
    {
      id: 'sync-freshness',
      title: 'Recent sync',
      async check(ctx) {
        const state = readState(ctx.root);
        const issues = issuesLine(ctx);
        if (!ctx.config.sync?.github && issues) return issues;
        if (!state.last_sync_at) return worst({ status: 'warn', detail: 'never synced: run github_sync_push' }, issues);
        const hours = (ctx.now().getTime() - Date.parse(state.last_sync_at)) / 3_600_000;
        const detail = `last sync ${hours < 1 ? `${Math.round(hours * 60)} min` : `${Math.round(hours)} h`} ago`;
        return worst(hours <= 24 ? { status: 'ok', detail } : { status: hours <= 72 ? 'warn' : 'fail', detail: `${detail}: run github_sync_push` }, issues);
      },
    },
    {
      id: 'remote-poll',
      title: 'Remote changes noticed',
      async check(ctx) {
        // What the sidecar's last poll of each transport found (sync/poll.json); no request is made here.
        const polls = transportPolls(ctx.config);
        const minutes = ctx.config.sync?.poll_minutes;
        const ago = (at: string) => `${Math.max(0, Math.round((ctx.now().getTime() - Date.parse(at)) / 60_000))} min ago`;
        const failed = polls.filter((p) => p.last_poll?.error && p.last_poll.error.code !== 'busy');
        if (failed.length) {
          return {
            status: 'fail',
            detail: failed.map((p) => `${p.label}: the ${p.last_poll!.changed === null ? 'poll' : 'pull after a change'} ${ago(p.last_poll!.at)} failed: ${p.last_poll!.error!.message}${p.last_poll!.error!.hint ? ` ${p.last_poll!.error!.hint}` : ''}`).join('; '),
          };
        }
        const busy = polls.filter((p) => p.last_poll?.error?.code === 'busy');
        if (busy.length) return { status: 'warn', detail: busy.map((p) => `${p.label}: changed on the remote; the pull ${ago(p.last_poll!.at)} found the data root busy and is tried again at the next poll`).join('; ') };
        const left = polls.filter((p) => (p.last_poll?.pulled?.conflicts ?? 0) + (p.last_poll?.pulled?.rejected ?? 0) > 0);
        if (left.length) {
          return {
            status: 'warn',
            detail: left.map((p) => `${p.label}: changes pulled ${ago(p.last_poll!.at)} left ${p.last_poll!.pulled!.conflicts} conflict(s) and ${p.last_poll!.pulled!.rejected} rejected file(s): resolve them with github_sync_resolve`).join('; '),
          };
        }
        const polled = polls.filter((p) => p.last_poll);
        if (!polled.length) return { status: 'ok', detail: polls.length ? `not polled yet: the sidecar checks every ${minutes ?? 15} min while it runs` : 'no sync transport configured' };
        return {
          status: 'ok',
          detail: polled.map((p) => `${p.label}: checked ${ago(p.last_poll!.at)}, ${p.last_poll!.changed ? (p.last_poll!.pulled ? `changed and pulled (${p.last_poll!.pulled.status})` : 'changed') : 'no change'}`).join('; '),
        };
      },
    },
    {
      id: 'open-conflicts',
      title: 'No rows left conflicting',
      async check(ctx) {
        const set = readState(ctx.root).conflicts;
        const open = set?.items.filter((i) => !i.resolved).length ?? 0;
        if (!open) return { status: 'ok', detail: 'no conflicts from the last pull' };
        return { status: 'warn', detail: `${open} row(s) changed both here and on the remote are left as they are on both sides: list and resolve them with github_sync_resolve` };
      },
    },
  ],
});
