/**
 * An in-process emulator of the GitHub REST + GraphQL API and of git over https, for running the
 * real `gh` and `git` binaries in tests. gh reaches it as its HTTP proxy (see ghEnv), git as its
 * HTTPS proxy (see gitEnv); see docs/testing-github-emulator.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GitStore } from './git-repos.js';
import { WEB_HOST } from './hosts.js';
import { startServer } from './server.js';
import { newComment, newIssue, setIssueState } from './rest-issues.js';
import { type Repo, snapshotRepo, World } from './state.js';
import { type Certificate, makeCertificate } from './tls.js';
import type { CreateRepoOptions, EmulatedRepo, EmulatorOptions, Fault, GhEnvOptions, GitEnvOptions, GithubEmulator, PersonIssueEdit } from './types.js';

export type * from './types.js';
export { KNOWN_OPERATIONS } from './graphql/handler.js';
export { API_HOST, OBJECTS_HOST, UPLOADS_HOST, WEB_HOST } from './hosts.js';

/** Variables that would let the user's own gh/git setup leak into a test run. All blanked or redirected. */
/** Who edits issues "by hand" in tests: a person other than the token's login. */
const PERSON = 'hubber';

const TOKEN_VARS = ['GH_TOKEN', 'GITHUB_TOKEN', 'GH_ENTERPRISE_TOKEN', 'GITHUB_ENTERPRISE_TOKEN'] as const;

export async function startGithubEmulator(opts: EmulatorOptions = {}): Promise<GithubEmulator> {
  // One temp home per emulator: gh's config dir, git's HOME, the bare repositories, the TLS key.
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-emulator-'));
  const configDir = path.join(home, 'config');
  fs.mkdirSync(configDir);
  const world = new World(
    opts.login ?? 'octo',
    opts.token ?? 'test-token',
    opts.scopes ?? ['gist', 'read:org', 'repo', 'workflow'],
    new GitStore(path.join(home, 'repos'), path.join(home, 'git-server-home')),
    opts.defaultBranch ?? 'main',
  );
  // Without openssl the API still works; only git over https (gitEnv) is unavailable.
  let cert: Certificate | undefined;
  let certError: unknown;
  try {
    cert = await makeCertificate(path.join(home, 'tls'));
  } catch (err) {
    certError = err;
  }
  const server = await startServer(world, cert);
  const proxyUrl = `http://127.0.0.1:${server.port}`;
  // git's HOME: a .gitconfig with an identity and nothing else, so the user's config never applies.
  const gitHome = path.join(home, 'git-home');
  fs.mkdirSync(gitHome);
  const me = world.viewer;
  const gitconfig = ['[user]', `\tname = ${me.login}`, `\temail = ${me.id}+${me.login}@users.noreply.github.com`, '[init]', '\tdefaultBranch = main', ''];
  fs.writeFileSync(path.join(gitHome, '.gitconfig'), gitconfig.join('\n'));

  function mustRepo(fullName: string): Repo {
    const [owner, name] = fullName.split('/');
    const r = owner && name ? world.findRepo(owner, name) : undefined;
    if (!r) throw new Error(`no repository ${fullName} in the emulator`);
    return r;
  }

  function ghEnv(extra: GhEnvOptions = {}): Record<string, string> {
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
  }

  function gitEnv(extra: GitEnvOptions = {}): Record<string, string> {
    if (!cert) throw new Error(`github-emulator: no certificate for https://${WEB_HOST}, git cannot reach it (openssl failed: ${String(certError)})`);
    const env: Record<string, string> = {
      // gh stays usable: git runs `gh auth git-credential` as its credential helper with this env.
      ...ghEnv(extra),
      HOME: gitHome,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      // Empty GIT_ASKPASS also stops git from falling back to SSH_ASKPASS.
      GIT_ASKPASS: '',
      SSH_ASKPASS: '',
      GCM_INTERACTIVE: 'never',
      GIT_PAGER: 'cat',
      // git/libcurl sends `CONNECT github.localhost:443` to HTTPS_PROXY (set by ghEnv, NO_PROXY
      // empty) and checks the emulator's certificate against this file.
      GIT_SSL_CAINFO: cert.certFile,
    };
    if (extra.credentialHelper) {
      // What `gh auth setup-git` writes: reset the helper list for the host, then add gh.
      const key = `credential.https://${WEB_HOST}.helper`;
      Object.assign(env, { GIT_CONFIG_COUNT: '2', GIT_CONFIG_KEY_0: key, GIT_CONFIG_VALUE_0: '', GIT_CONFIG_KEY_1: key, GIT_CONFIG_VALUE_1: '!gh auth git-credential' });
    }
    return env;
  }

  return {
    proxyUrl,
    caCertFile: cert?.certFile ?? '',
    ghEnv,
    gitEnv,

    cloneUrl(fullName: string): string {
      return `https://${WEB_HOST}/${fullName}.git`;
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

    editIssue(fullName: string, number: number, edit: PersonIssueEdit): void {
      const repo = mustRepo(fullName);
      const issue = repo.issues.find((i) => i.number === number);
      if (!issue) throw new Error(`editIssue: ${fullName} has no issue #${number}`);
      world.account(edit.by ?? PERSON, 'User');
      if (edit.title !== undefined) issue.title = edit.title;
      if (edit.body !== undefined) issue.body = edit.body;
      let labels = edit.labels ? [...edit.labels] : [...issue.labels];
      for (const l of edit.addLabels ?? []) if (!labels.some((x) => x.toLowerCase() === l.toLowerCase())) labels.push(l);
      labels = labels.filter((x) => !(edit.removeLabels ?? []).some((r) => r.toLowerCase() === x.toLowerCase()));
      issue.labels = labels.map((n) => world.ensureLabel(repo, n).name);
      if (edit.state) setIssueState(world, issue, edit.state, edit.stateReason);
      issue.updatedAt = world.bump(issue.updatedAt);
    },

    createIssue(fullName: string, fields: { title: string; body?: string; labels?: readonly string[]; by?: string }): number {
      const repo = mustRepo(fullName);
      const by = fields.by ?? PERSON;
      world.account(by, 'User');
      return newIssue(world, repo, { title: fields.title, body: fields.body ?? null, labels: fields.labels ?? [], author: by }).number;
    },

    addComment(fullName: string, number: number, body: string, by = PERSON): number {
      const repo = mustRepo(fullName);
      const issue = repo.issues.find((i) => i.number === number);
      if (!issue) throw new Error(`addComment: ${fullName} has no issue #${number}`);
      world.account(by, 'User');
      return newComment(world, repo, issue, body, by).id;
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
