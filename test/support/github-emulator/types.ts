/**
 * Public types of the GitHub emulator. Kept apart from the implementation so a test (or the docs)
 * can read the whole contract in one place.
 */

export interface EmulatorOptions {
  /** Login of the user the token belongs to. Default 'octo'. */
  login?: string;
  /** The one token the emulator accepts. Default 'test-token'. */
  token?: string;
  /**
   * Scopes reported in X-OAuth-Scopes. Default: what `gh auth login` asks for (repo, read:org, gist,
   * workflow). gh 2.23's `auth status` fails a token without read:org; [] sends no header at all,
   * as GitHub does for fine-grained tokens (gh then skips its scope check).
   */
  scopes?: readonly string[];
  /**
   * Default branch of repositories created through the API (`gh repo create`), GitHub's per-account
   * "repository default branch" setting. Default 'main'. (`createRepo` takes its own.)
   */
  defaultBranch?: string;
}

/** What a fault applies to. Every given field must match; an empty matcher matches every request. */
export interface FaultMatch {
  method?: string;
  /** Tested against the request path as logged in `requests` (path + query, GHES `/api/v3` prefix kept). */
  path?: RegExp;
  /** Exact host, e.g. 'uploads.github.localhost' or 'api.github.localhost'. */
  host?: string;
  /** GraphQL operation name, e.g. 'RepositoryReleaseByTag'. Only GraphQL requests can match. */
  graphqlOperation?: string;
}

export type FaultAction =
  /** Destroy the socket without answering (the client sees a reset / EOF). */
  | { kind: 'drop' }
  /** Answer with this status. `body`: string sent verbatim (HTML if it starts with '<'), anything else as JSON; default GitHub-like. */
  | { kind: 'status'; status: number; body?: unknown }
  /** Hold the request this long, then handle it normally. */
  | { kind: 'delay'; ms: number }
  /**
   * Handle it normally, but move an asset's bytes (an upload's body read in, a download's body
   * sent) at most `bytesPerSecond`, as over a slow link: a transfer lasts long enough to be watched.
   */
  | { kind: 'slow'; bytesPerSecond: number }
  /**
   * A rate-limit answer instead of handling the request. `primary`: GitHub's hourly limit is used up
   * (`X-RateLimit-Remaining: 0`, `X-RateLimit-Reset` `resetInSeconds` from now, default 60; body "API
   * rate limit exceeded for user ID N."). `secondary`: GitHub's abuse limit ("You have exceeded a
   * secondary rate limit…"), with `Retry-After: retryAfterSeconds` when given (GitHub sends it only
   * sometimes). `status`: 403 (default, what GitHub mostly sends) or 429.
   */
  | { kind: 'rate_limit'; limit: 'primary' | 'secondary'; status?: 403 | 429; retryAfterSeconds?: number; resetInSeconds?: number }
  /**
   * Handle the request normally (its change takes effect), then drop the connection instead of
   * answering: the client cannot tell whether GitHub accepted it (a creation interrupted after the fact).
   */
  | { kind: 'lose_response' };

export type Fault = {
  match: FaultMatch;
  /** How many matching requests this fault affects. Default 1; Infinity to persist. */
  times?: number;
} & FaultAction;

export interface RequestLogEntry {
  method: string;
  host: string;
  /** Path and query exactly as the client sent them. */
  path: string;
  /** HTTP status sent; 0 when the connection was dropped by a fault or the client went away. */
  status: number;
  /** GraphQL operation name, for requests to the GraphQL endpoint. */
  graphqlOperation?: string;
  /** Set by fault injection: which fault kind touched this request. */
  fault?: FaultAction['kind'];
  /** True when no route matched: a hint that the emulator lacks coverage for something gh sent. */
  unhandled?: boolean;
  /** Set for requests that came through the TLS tunnel (git over https). */
  scheme?: 'https';
}

export interface EmulatedAsset {
  readonly id: number;
  readonly name: string;
  readonly label: string;
  readonly content_type: string;
  readonly size: number;
  /** Hex sha256 of the stored bytes. */
  readonly sha256: string;
  readonly state: 'uploaded';
  readonly download_count: number;
}

export interface EmulatedRelease {
  readonly id: number;
  readonly tag_name: string;
  readonly name: string | null;
  readonly body: string | null;
  readonly draft: boolean;
  readonly prerelease: boolean;
  readonly target_commitish: string;
  readonly created_at: string;
  readonly published_at: string | null;
  readonly assets: readonly EmulatedAsset[];
}

export interface EmulatedPull {
  readonly number: number;
  readonly title: string;
  readonly body: string | null;
  readonly state: 'open' | 'closed';
  readonly draft: boolean;
  /** `label` is `owner:branch`; `sha` follows pushes to the branch while the pull request is open. */
  readonly head: { readonly ref: string; readonly sha: string; readonly label: string };
  readonly base: { readonly ref: string; readonly sha: string };
  /** Login of the author. */
  readonly user: string;
  readonly html_url: string;
  readonly created_at: string;
  readonly closed_at: string | null;
  /** Always false: the emulator has no merge route. */
  readonly merged: boolean;
}

export interface EmulatedIssue {
  readonly number: number;
  readonly title: string;
  readonly body: string | null;
  readonly state: 'open' | 'closed';
  readonly state_reason: 'completed' | 'not_planned' | 'reopened' | null;
  /** label names in the order they were set */
  readonly labels: readonly string[];
  readonly user: string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly closed_at: string | null;
}

export interface EmulatedComment {
  readonly id: number;
  readonly issue_number: number;
  readonly body: string;
  readonly user: string;
  readonly created_at: string;
  readonly updated_at: string;
}

/** A change made "by a person" in GitHub's web UI (see `GithubEmulator.editIssue`). */
export interface PersonIssueEdit {
  title?: string;
  body?: string;
  /** replace every label */
  labels?: readonly string[];
  addLabels?: readonly string[];
  removeLabels?: readonly string[];
  state?: 'open' | 'closed';
  stateReason?: 'completed' | 'not_planned';
  /** who made it (default: a login other than the token's, 'hubber') */
  by?: string;
}

/** A snapshot of a repository's state, for assertions. Mutating it changes nothing. */
export interface EmulatedRepo {
  readonly id: number;
  readonly fullName: string;
  readonly owner: string;
  readonly name: string;
  readonly isPrivate: boolean;
  readonly defaultBranch: string;
  /** True while the repository has no commit (created without auto_init). */
  readonly empty: boolean;
  /** Git tags that exist (a published release creates its tag; deleting a release keeps it). */
  readonly tags: readonly string[];
  /** branch name -> commit sha, as in the bare repository (empty while the repository is empty). */
  readonly branches: Readonly<Record<string, string>>;
  /** Newest first, drafts included. */
  readonly releases: readonly EmulatedRelease[];
  /** By number, oldest first (pull requests are not in it; they share the numbers). */
  readonly issues: readonly EmulatedIssue[];
  /** Label names, sorted. */
  readonly labels: readonly string[];
  /** Every issue comment, oldest first. */
  readonly comments: readonly EmulatedComment[];
  /** By number, oldest first (`pulls[n - 1]` is #n). */
  readonly pulls: readonly EmulatedPull[];
  /** The bare repository on disk. Read it (`git --git-dir … log`); changing it bypasses the emulator's caches. */
  readonly gitDir: string;
}

export interface CreateRepoOptions {
  /** Default true: backups go to private repositories. */
  private?: boolean;
  /** No commits yet: publishing a release then fails with 422 "Repository is empty." as on GitHub. */
  empty?: boolean;
  /** Default 'main'. */
  defaultBranch?: string;
}

export interface GhEnvOptions {
  /** Token gh sends. Default: the emulator's token. null: no token at all (gh is logged out). */
  token?: string | null;
}

export interface GitEnvOptions extends GhEnvOptions {
  /**
   * Also configure `gh auth git-credential` as the credential helper for https://github.localhost
   * (through GIT_CONFIG_COUNT/KEY/VALUE), as `gh auth setup-git` would. Default false: the code
   * under test passes `-c credential.helper=…` itself.
   */
  credentialHelper?: boolean;
}

export interface GithubEmulator {
  /** http://127.0.0.1:PORT — what gh gets as HTTP_PROXY, and git as HTTPS_PROXY. */
  readonly proxyUrl: string;
  /** The self-signed certificate (PEM) the emulator serves https://github.localhost with. */
  readonly caCertFile: string;
  /**
   * A complete environment for a gh child process (pass it with execa's `extendEnv: false`, or
   * spread it over process.env: every variable that could leak the user's gh setup is set here).
   */
  ghEnv(extra?: GhEnvOptions): Record<string, string>;
  /**
   * ghEnv plus what git needs to reach https://github.localhost through the emulator: HTTPS_PROXY,
   * GIT_SSL_CAINFO, a temporary HOME with a .gitconfig holding only user.name/email, no system
   * config, no prompts. gh stays usable in it (as git's credential helper). Use `extendEnv: false`.
   */
  gitEnv(extra?: GitEnvOptions): Record<string, string>;
  /** `https://github.localhost/OWNER/NAME.git`, the URL git clones and pushes. */
  cloneUrl(fullName: string): string;
  createRepo(fullName: string, opts?: CreateRepoOptions): void;
  repo(fullName: string): EmulatedRepo | undefined;
  /** Later requests with the emulator's token get 401 Bad credentials. */
  revokeToken(): void;
  inject(fault: Fault): void;
  clearFaults(): void;
  /**
   * Changes an issue as a person would in the web UI (title, body, labels, open/closed), bumping
   * `updated_at`; labels that do not exist are created. Throws when the issue does not exist.
   */
  editIssue(fullName: string, number: number, edit: PersonIssueEdit): void;
  /** An issue created by a person (no labels unless given); returns its number. */
  createIssue(fullName: string, issue: { title: string; body?: string; labels?: readonly string[]; by?: string }): number;
  /** A comment added by a person (bumps the issue's `updated_at`, as GitHub does); returns its id. */
  addComment(fullName: string, number: number, body: string, by?: string): number;
  readonly requests: ReadonlyArray<RequestLogEntry>;
  close(): Promise<void>;
}
