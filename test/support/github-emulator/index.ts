/**
 * An in-process emulator of the GitHub REST + GraphQL API, for running the real `gh` binary in
 * tests. gh reaches it as its HTTP proxy (see ghEnv); see docs/testing-github-emulator.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WEB_HOST } from './hosts.js';
import { startServer } from './server.js';
import { snapshotRepo, World } from './state.js';
import type { CreateRepoOptions, EmulatedRepo, EmulatorOptions, Fault, GhEnvOptions, GithubEmulator } from './types.js';

export type * from './types.js';
export { KNOWN_OPERATIONS } from './graphql/handler.js';
export { API_HOST, OBJECTS_HOST, UPLOADS_HOST, WEB_HOST } from './hosts.js';

/** Variables that would let the user's own gh/git setup leak into a test run. All blanked or redirected. */
const TOKEN_VARS = ['GH_TOKEN', 'GITHUB_TOKEN', 'GH_ENTERPRISE_TOKEN', 'GITHUB_ENTERPRISE_TOKEN'] as const;

export async function startGithubEmulator(opts: EmulatorOptions = {}): Promise<GithubEmulator> {
  const world = new World(opts.login ?? 'octo', opts.token ?? 'test-token', opts.scopes ?? ['gist', 'read:org', 'repo', 'workflow']);
  const server = await startServer(world);
  const proxyUrl = `http://127.0.0.1:${server.port}`;
  // One config dir per emulator: gh must never read the user's hosts.yml or write next to it.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-emulator-'));
  const configDir = path.join(home, 'config');
  fs.mkdirSync(configDir);

  return {
    proxyUrl,

    ghEnv(extra: GhEnvOptions = {}): Record<string, string> {
      const token = extra.token === undefined ? world.token : extra.token;
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
        HOME: process.env.HOME ?? home,
        LANG: 'C.UTF-8',
        GH_HOST: WEB_HOST,
        GH_CONFIG_DIR: configDir,
        XDG_CONFIG_HOME: path.join(home, 'xdg-config'),
        XDG_STATE_HOME: path.join(home, 'xdg-state'),
        XDG_DATA_HOME: path.join(home, 'xdg-data'),
        XDG_CACHE_HOME: path.join(home, 'xdg-cache'),
        // gh talks plain http to github.localhost, so HTTP_PROXY carries everything. HTTPS_PROXY is
        // set too so a stray https request shows up in the log (as a refused CONNECT) instead of
        // trying the network.
        HTTP_PROXY: proxyUrl,
        http_proxy: proxyUrl,
        HTTPS_PROXY: proxyUrl,
        https_proxy: proxyUrl,
        NO_PROXY: '',
        no_proxy: '',
        GH_REPO: '',
        GH_NO_UPDATE_NOTIFIER: '1',
        GH_PROMPT_DISABLED: '1',
        GH_PAGER: 'cat',
        PAGER: 'cat',
        NO_COLOR: '1',
        CLICOLOR: '0',
        GH_DEBUG: '',
        DEBUG: '',
      };
      // gh treats an empty token variable as unset, so '' means "logged out" even when spread over process.env.
      for (const v of TOKEN_VARS) env[v] = '';
      if (token !== null) env.GH_TOKEN = token;
      return env;
    },

    createRepo(fullName: string, o: CreateRepoOptions = {}): void {
      const [owner, name, ...rest] = fullName.split('/');
      if (!owner || !name || rest.length) throw new Error(`createRepo wants OWNER/NAME, got ${JSON.stringify(fullName)}`);
      world.addRepo(owner, name, { private: o.private ?? true, empty: o.empty ?? false, defaultBranch: o.defaultBranch ?? 'main' });
    },

    repo(fullName: string): EmulatedRepo | undefined {
      const [owner, name] = fullName.split('/');
      const r = owner && name ? world.findRepo(owner, name) : undefined;
      return r ? snapshotRepo(world, r) : undefined;
    },

    revokeToken(): void {
      world.tokenRevoked = true;
    },

    inject(fault: Fault): void {
      server.faults.add(fault);
    },

    clearFaults(): void {
      server.faults.clear();
    },

    get requests() {
      return server.log;
    },

    async close(): Promise<void> {
      await server.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
