import { runGh } from '../core/gh.js';
import { ghInstallSteps } from './os-steps.js';
import type { HealthContext, Requirement } from './types.js';

/* The gh requirements that GitHub-backed components share: installed, then signed in. One place,
   so the backups' remote and github-sync hand off the same steps. */

/** The GitHub host gh talks to (GH_HOST; tests point it at the emulator). */
export const ghHost = (ctx: HealthContext): string => ctx.ghEnv?.GH_HOST ?? process.env.GH_HOST ?? 'github.com';
/** gh with the context's environment. */
export const ghIn = (ctx: HealthContext, args: string[]) => runGh(args, ctx.ghEnv ? { env: ctx.ghEnv } : {});
/** The first lines of a tool's output, joined: enough to say what went wrong in one line. */
export const firstLine = (text: string): string => text.trim().split('\n').filter(Boolean).slice(0, 2).join(' ');

export interface GhRequirementOptions {
  /** the component id, for the verify texts ("<component>.gh-cli-installed should be ok") */
  component: string;
  /** requirements gh-cli-installed waits for (none by default) */
  dependsOn?: string[];
  /** when this returns a reason, gh is not needed and both requirements are ok with that reason */
  notNeeded?(ctx: HealthContext): string | null;
}

/** `gh-cli-installed` and `gh-authenticated` (which depends on it), with their agent_handoff fixers. */
export function ghRequirements(opts: GhRequirementOptions): Requirement[] {
  const { component } = opts;
  return [
    {
      id: 'gh-cli-installed',
      title: 'GitHub CLI (gh) installed',
      ...(opts.dependsOn ? { dependsOn: opts.dependsOn } : {}),
      async check(ctx) {
        const skip = opts.notNeeded?.(ctx);
        if (skip) return { status: 'ok', detail: skip };
        const r = await ghIn(ctx, ['--version']);
        return r.exitCode === 0 ? { status: 'ok', detail: firstLine(r.stdout).split(' (')[0] ?? 'gh found' } : { status: 'fail', detail: 'gh is not installed (or not on PATH)' };
      },
      fixer: {
        kind: 'agent_handoff',
        describe: 'Install the GitHub CLI.',
        handoff: (ctx) => ({ steps: ghInstallSteps(ctx.platform), verify: `Run \`gh --version\`, then call health_status: ${component}.gh-cli-installed should be ok.` }),
      },
    },
    {
      id: 'gh-authenticated',
      title: 'gh signed in to GitHub',
      dependsOn: ['gh-cli-installed'],
      async check(ctx) {
        const skip = opts.notNeeded?.(ctx);
        if (skip) return { status: 'ok', detail: skip };
        const r = await ghIn(ctx, ['auth', 'status', '--hostname', ghHost(ctx)]);
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
          verify: `Run \`gh auth status --hostname ${ghHost(ctx)}\`, then call health_status: ${component}.gh-authenticated should be ok.`,
        }),
      },
    },
  ];
}

interface RepoView {
  name: string;
  isPrivate: boolean;
  defaultBranchRef: { name: string } | null;
}

/** `gh repo view` of owner/name: found with what matters here, or why it cannot be seen. */
export async function viewRepo(ctx: HealthContext, repo: string): Promise<{ found: true; view: RepoView } | { found: false; detail: string }> {
  const r = await ghIn(ctx, ['repo', 'view', repo, '--json', 'name,isPrivate,defaultBranchRef']);
  if (r.exitCode !== 0) return { found: false, detail: firstLine(r.stderr) || `gh exited ${r.exitCode}` };
  return { found: true, view: JSON.parse(r.stdout) as RepoView };
}

/** "name" under the signed-in account becomes "login/name"; "owner/name" is kept. */
export async function qualifyRepo(ctx: HealthContext, repo: string): Promise<{ repo: string } | { error: string }> {
  if (repo.includes('/')) return { repo };
  const me = await ghIn(ctx, ['api', 'user', '--jq', '.login']);
  if (me.exitCode !== 0) return { error: `Could not find your GitHub login: ${firstLine(me.stderr)}` };
  return { repo: `${me.stdout.trim()}/${repo}` };
}
