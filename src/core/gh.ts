import { redactText } from './log.js';

export interface GhResult {
  ok: boolean;
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** gh itself could not be started (not installed, not on PATH) */
  missing: boolean;
  /** the caller's signal fired and gh was killed */
  cancelled?: boolean;
}

/**
 * The one place that runs gh. Never through a shell; no prompts, no update checks, no colour, so a
 * background job never hangs on a question and output parses the same everywhere.
 */
export async function runGh(
  args: readonly string[],
  opts: {
    env?: Record<string, string>;
    timeoutMs?: number;
    cwd?: string;
    signal?: AbortSignal;
    /** written to gh's stdin (e.g. a JSON body for `gh api --input -`); without it stdin is closed */
    input?: string;
    /** called once gh runs, with its pid (to watch its transfer); the stop function it returns is called when gh has exited */
    onSpawn?: (pid: number) => () => void;
  } = {},
): Promise<GhResult> {
  const env = { ...(opts.env ?? process.env), GH_PROMPT_DISABLED: '1', GH_NO_UPDATE_NOTIFIER: '1', NO_COLOR: '1' } as Record<string, string>;
  // Loaded on first use: most commands (a local snapshot or restore) never run it, and it costs ~0.1 s to load.
  const { execa } = await import('execa');
  const child = execa('gh', [...args], {
    env,
    extendEnv: !opts.env,
    reject: false,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
    timeout: opts.timeoutMs ?? 10 * 60_000,
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    // Cancelling kills gh (SIGTERM): an upload in flight stops instead of running on unseen.
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
  });
  const stopWatching = child.pid !== undefined ? opts.onSpawn?.(child.pid) : undefined;
  let result: Awaited<typeof child>;
  try {
    result = await child;
  } finally {
    stopWatching?.();
  }
  const missing = (result as { code?: string }).code === 'ENOENT' || /ENOENT/.test(String(result.message ?? ''));
  return {
    ok: result.exitCode === 0,
    exitCode: result.exitCode,
    stdout: String(result.stdout ?? ''),
    stderr: missing ? 'gh: command not found' : redactText(String(result.stderr ?? '')),
    missing,
    ...(result.isCanceled ? { cancelled: true } : {}),
  };
}

export interface GhFailure {
  /** which failure it is, for callers that map it to their own kinds (never parse the message) */
  reason: 'missing' | 'auth' | 'empty_repo' | 'repo_not_found' | 'transient' | 'refused' | 'other';
  transient: boolean;
  message: string;
  hint: string;
}

const TRANSIENT = [
  /connection reset/i,
  /broken pipe/i,
  /\bEOF\b/,
  /i\/o timeout|timeout|timed out/i,
  /no such host|lookup .* on|temporary failure in name resolution|dial tcp/i,
  /HTTP 5\d\d|status code: 5\d\d|\b50[0234] (Bad Gateway|Service Unavailable|Gateway Timeout|Internal Server Error)/i,
  /secondary rate limit|API rate limit exceeded/i,
];

/** Pure: what a failed gh run means, whether retrying can help, and what to do about it. */
export function classifyGhFailure(result: Pick<GhResult, 'stderr' | 'missing' | 'exitCode'>, repo?: string): GhFailure {
  const text = result.stderr.trim();
  const first = text.split('\n').filter(Boolean)[0] ?? `gh exited with code ${result.exitCode}`;
  if (result.missing) {
    return { reason: 'missing', transient: false, message: 'The GitHub CLI (gh) is not installed.', hint: 'Install it (https://cli.github.com; e.g. apt install gh or brew install gh), then sign in with: gh auth login --web' };
  }
  if (/HTTP 401|Bad credentials|authentication failed|not logged in|gh auth login|no longer valid|401 Unauthorized/i.test(text)) {
    return { reason: 'auth', transient: false, message: `GitHub refused the credentials: ${first}`, hint: 'Sign in again with: gh auth login --web (or gh auth refresh if the token was revoked).' };
  }
  if (/Repository is empty/i.test(text)) {
    return {
      reason: 'empty_repo',
      transient: false,
      message: `The repository ${repo ?? ''} has no commits, so it cannot hold releases.`.replace('  ', ' '),
      hint: `Add a first commit (e.g. create a README on GitHub), or create the repository with: gh repo create ${repo ?? 'OWNER/NAME'} --private --add-readme`,
    };
  }
  if (/Could not resolve to a Repository|HTTP 404|Not Found/i.test(text)) {
    return { reason: 'repo_not_found', transient: false, message: `The repository ${repo ?? ''} was not found: ${first}`.replace('  ', ' '), hint: 'Check remote.github.repo in wb-backup.yaml and that your gh account can see that repository.' };
  }
  if (TRANSIENT.some((re) => re.test(text))) return { reason: 'transient', transient: true, message: `GitHub could not be reached: ${first}`, hint: 'This is usually temporary; the next run tries again.' };
  if (/HTTP 4\d\d/.test(text)) return { reason: 'refused', transient: false, message: `GitHub refused the request: ${first}`, hint: 'See the message; this will not fix itself by retrying.' };
  return { reason: 'other', transient: false, message: `gh failed: ${first}`, hint: 'Run the same gh command by hand to see more.' };
}
