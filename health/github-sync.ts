import fs from 'node:fs';
import path from 'node:path';
import { runGit } from '../src/core/git.js';
import { defineComponent } from '../src/health/types.js';
import { gitOptionsFor } from '../src/sync/git-remote.js';
import { readState, syncDir } from '../src/sync/state.js';

export default defineComponent({
  id: 'github_sync',
  title: 'Readable data mirror (github-sync)',
  description: 'The databases as readable files in a git repository you own, so a wiped machine can come back from git clone.',
  optIn: true,
  wanted: (ctx) => ctx.config.health.opt_in.includes('github_sync') || Boolean(ctx.config.sync?.github),
  requirements: [
    {
      id: 'repo-configured',
      title: 'Sync repository configured',
      async check(ctx) {
        const g = ctx.config.sync?.github;
        if (!g) return { status: 'fail', detail: 'add sync: { github: { repo: owner/name } } (or remote_url) to wb-backup.yaml; see docs/github-sync.md' };
        return { status: 'ok', detail: g.repo ?? path.basename(g.remote_url ?? '') };
      },
    },
    {
      id: 'remote-reachable',
      title: 'Sync repository reachable',
      dependsOn: ['repo-configured'],
      async check(ctx) {
        const g = ctx.config.sync!.github;
        const { url, pre } = gitOptionsFor(g);
        const dir = fs.existsSync(syncDir(ctx.root)) ? syncDir(ctx.root) : ctx.root;
        const r = await runGit([...pre, 'ls-remote', '--symref', url, 'HEAD'], { cwd: dir, timeoutMs: 30_000 });
        if (!r.ok) return { status: 'fail', detail: `git cannot reach it: ${r.stderr.split('\n')[0]}` };
        const branch = /^ref: refs\/heads\/(\S+)/m.exec(r.stdout)?.[1];
        return { status: 'ok', detail: branch ? `default branch ${branch}` : 'reachable (empty: set sync.github.branch)' };
      },
    },
  ],
  checks: [
    {
      id: 'sync-freshness',
      title: 'Recent sync',
      async check(ctx) {
        const state = readState(ctx.root);
        if (!state.last_sync_at) return { status: 'warn', detail: 'never synced: run github_sync_push' };
        const hours = (ctx.now().getTime() - Date.parse(state.last_sync_at)) / 3_600_000;
        const detail = `last sync ${hours < 1 ? `${Math.round(hours * 60)} min` : `${Math.round(hours)} h`} ago`;
        return hours <= 24 ? { status: 'ok', detail } : { status: hours <= 72 ? 'warn' : 'fail', detail: `${detail}: run github_sync_push` };
      },
    },
  ],
});
