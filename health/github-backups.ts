import { z } from 'zod';
import { updateConfigFile } from '../src/root/config.js';
import { firstLine, ghIn as gh, ghRequirements, qualifyRepo, viewRepo } from '../src/health/gh-requirements.js';
import { markEnabled } from '../src/health/opt-in.js';
import { remoteSettings } from '../src/remote/registry.js';
import { judgeFreshness } from '../src/health/freshness.js';
import { defineComponent } from '../src/health/types.js';
import { readLastRun } from '../src/backup/last-run.js';

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
  whenDisabled: (ctx) => {
    const repo = remoteSettings(ctx.config, 'github')?.repo ?? null;
    return repo
      ? `New snapshots are no longer pushed to ${repo}: they stay on this machine only. The releases already on ${repo} are kept, and list and restore still read them.`
      : 'No snapshot is pushed to GitHub while it is off.';
  },
  requirements: [
    ...ghRequirements({ component: 'github_backups' }),
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
          const qualified = await qualifyRepo(ctx, RepoInput.parse(inputs).repo);
          if ('error' in qualified) return { status: 'failed', message: qualified.error };
          const { repo } = qualified;
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
            markEnabled(doc, 'github_backups');
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
