import { z } from 'zod';
import { updateConfigFile } from '../src/root/config.js';
import { remoteSettings } from '../src/remote/registry.js';
import { runGh } from '../src/core/gh.js';
import { judgeFreshness } from '../src/health/freshness.js';
import { ghInstallSteps } from '../src/health/os-steps.js';
import { defineComponent, type HealthContext } from '../src/health/types.js';
import { readLastRun } from '../src/backup/last-run.js';

const ghHost = (ctx: HealthContext) => ctx.ghEnv?.GH_HOST ?? process.env.GH_HOST ?? 'github.com';
const gh = (ctx: HealthContext, args: string[]) => runGh(args, ctx.ghEnv ? { env: ctx.ghEnv } : {});
const firstLine = (text: string) => text.trim().split('\n').filter(Boolean).slice(0, 2).join(' ');

interface RepoView {
  name: string;
  isPrivate: boolean;
  defaultBranchRef: { name: string } | null;
}

async function viewRepo(ctx: HealthContext, repo: string): Promise<{ found: true; view: RepoView } | { found: false; detail: string }> {
  const r = await gh(ctx, ['repo', 'view', repo, '--json', 'name,isPrivate,defaultBranchRef']);
  if (r.exitCode !== 0) return { found: false, detail: firstLine(r.stderr) || `gh exited ${r.exitCode}` };
  return { found: true, view: JSON.parse(r.stdout) as RepoView };
}

const RepoInput = z.object({
  repo: z
    .string()
    .regex(/^([A-Za-z0-9_.-]+\/)?[A-Za-z0-9_.-]+$/, 'a repository name like "agent-backups" or "owner/agent-backups"')
    .describe('Private GitHub repository for the backups, "name" (under your account) or "owner/name". Created if it does not exist.'),
});

export default defineComponent({
  id: 'github_backups',
  title: 'Off-machine copies on GitHub',
  description: 'Each snapshot is also pushed as a release of a private GitHub repository you own, through the gh CLI.',
  optIn: true,
  wanted: (ctx) => ctx.config.health.opt_in.includes('github_backups') || (ctx.config.remote !== null && 'github' in ctx.config.remote),
  requirements: [
    {
      id: 'gh-cli-installed',
      title: 'GitHub CLI (gh) installed',
      async check(ctx) {
        const r = await gh(ctx, ['--version']);
        return r.exitCode === 0 ? { status: 'ok', detail: firstLine(r.stdout).split(' (')[0] ?? 'gh found' } : { status: 'fail', detail: 'gh is not installed (or not on PATH)' };
      },
      fixer: {
        kind: 'agent_handoff',
        describe: 'Install the GitHub CLI.',
        handoff: (ctx) => ({ steps: ghInstallSteps(ctx.platform), verify: 'Run `gh --version`, then call health_status: github_backups.gh-cli-installed should be ok.' }),
      },
    },
    {
      id: 'gh-authenticated',
      title: 'gh signed in to GitHub',
      dependsOn: ['gh-cli-installed'],
      async check(ctx) {
        const r = await gh(ctx, ['auth', 'status', '--hostname', ghHost(ctx)]);
        const text = `${r.stdout}\n${r.stderr}`;
        if (r.exitCode === 0) return { status: 'ok', detail: firstLine(/Logged in to .*/.exec(text)?.[0] ?? `signed in to ${ghHost(ctx)}`) };
        return { status: 'fail', detail: `not signed in to ${ghHost(ctx)}: ${firstLine(r.stderr) || 'gh auth status failed'}` };
      },
      fixer: {
        kind: 'agent_handoff',
        describe: 'Sign gh in to GitHub in the browser.',
        handoff: (ctx) => ({
          steps: [
            `Run: gh auth login --web --hostname ${ghHost(ctx)} --git-protocol https`,
            'Copy the one-time code gh prints, open the URL it shows, paste the code and approve.',
            'If gh asks about scopes, the "repo" scope is needed to create releases in a private repository.',
          ],
          verify: `Run \`gh auth status --hostname ${ghHost(ctx)}\`, then call health_status: github_backups.gh-authenticated should be ok.`,
        }),
      },
    },
    {
      id: 'repo-configured',
      title: 'Private backup repository configured',
      dependsOn: ['gh-authenticated'],
      async check(ctx) {
        const settings = remoteSettings(ctx.config, 'github');
        if (!settings) return { status: 'fail', detail: 'no repository configured for the backups' };
        const repo = settings.repo;
        const seen = await viewRepo(ctx, repo);
        if (!seen.found) return { status: 'fail', detail: `${repo} cannot be reached: ${seen.detail}` };
        if (!seen.view.isPrivate) return { status: 'fail', detail: `${repo} is public: backups go only to a private repository` };
        if (!seen.view.defaultBranchRef?.name) return { status: 'fail', detail: `${repo} is empty (no commits), so it cannot hold releases: add a README commit` };
        return { status: 'ok', detail: `${repo} (private)` };
      },
      fixer: {
        kind: 'input_required',
        describe: 'Choose the private repository for the backups; it is created (private, with a README) when it does not exist, and written to wb-backup.yaml.',
        inputs: RepoInput,
        async run(ctx, inputs) {
          const { repo: given } = RepoInput.parse(inputs);
          let repo = given;
          if (!repo.includes('/')) {
            const me = await gh(ctx, ['api', 'user', '--jq', '.login']);
            if (me.exitCode !== 0) return { status: 'failed', message: `Could not find your GitHub login: ${firstLine(me.stderr)}` };
            repo = `${me.stdout.trim()}/${repo}`;
          }
          const seen = await viewRepo(ctx, repo);
          if (seen.found) {
            if (!seen.view.isPrivate) return { status: 'failed', message: `${repo} is public. Refusing to put backups in a public repository: choose another name, or make it private on GitHub first.` };
            if (!seen.view.defaultBranchRef?.name) return { status: 'failed', message: `${repo} exists but is empty, so it cannot hold releases. Push one commit to it (e.g. add a README on GitHub), then run this fix again.` };
          } else {
            const made = await gh(ctx, ['repo', 'create', repo, '--private', '--add-readme', '--description', 'wb-backup snapshots']);
            if (made.exitCode !== 0) return { status: 'failed', message: `Creating ${repo} failed: ${firstLine(made.stderr)}` };
          }
          updateConfigFile(ctx.root, (doc) => {
            doc.setIn(['remote'], { github: { repo } });
            const current = (doc.getIn(['health', 'opt_in']) as { toJSON(): unknown } | undefined)?.toJSON() as string[] | undefined;
            doc.setIn(['health', 'opt_in'], [...new Set([...(current ?? []), 'github_backups'])]);
          });
          return { status: 'fixed', message: `${seen.found ? 'Using' : 'Created'} private repository ${repo}; backups push there from the next run.` };
        },
      },
    },
  ],
  checks: [
    {
      id: 'backup-freshness',
      title: 'Recent off-machine copy',
      async check(ctx) {
        return judgeFreshness(readLastRun(ctx.root), ctx.now(), ctx.config.backup.cadence_minutes, 'remote');
      },
    },
  ],
});
