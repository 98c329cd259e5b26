/**
 * The issues transport's GitHub calls: every one is `gh api -i` through src/core/gh.ts (the one
 * place that runs gh), so credentials, hosts and proxies are gh's. Each answer's status and headers
 * are read: rate-limit answers (primary: `X-RateLimit-Remaining: 0` until `X-RateLimit-Reset`;
 * secondary: `Retry-After`, or a minute and more when GitHub gives none) are waited out up to
 * `maxWaitSeconds` per wait, then the call fails resumably. Pages are followed by their `Link`
 * headers. Requests are counted (poll reports what it cost).
 */
import { WbError } from '../../core/errors.js';
import { classifyGhFailure, runGh } from '../../core/gh.js';

export interface ApiAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** A call whose outcome is unknown (the connection dropped, GitHub answered 5xx): it may or may not have taken effect. */
export class UncertainOutcome extends Error {}

export interface IssuesApiOptions {
  env?: Record<string, string>;
  /** the longest single rate-limit wait before the call fails (seconds) */
  maxWaitSeconds: number;
  signal?: AbortSignal;
}

/** Splits `gh api -i` output into status, headers (lower-case names) and the parsed JSON body. */
export function parseIncluded(out: string): ApiAnswer | null {
  const m = /^HTTP\/[\d.]+ (\d{3})[^\n]*\n/.exec(out);
  if (!m) return null;
  const crlf = out.indexOf('\r\n\r\n');
  const lf = out.indexOf('\n\n');
  const cut = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
  const head = (cut >= 0 ? out.slice(0, cut) : out).split(/\r?\n/).slice(1);
  const headers: Record<string, string> = {};
  for (const line of head) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const text = cut >= 0 ? out.slice(cut).trim() : '';
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  return { status: Number(m[1]), headers, body };
}

/**
 * How long to wait before retrying a refused request, per GitHub's rate-limit rules; null when the
 * answer is not a rate limit. `attempt` counts earlier waits for this request (secondary limits
 * without Retry-After back off: 60 s, 120 s, …). `nowSeconds`: epoch seconds.
 */
export function rateLimitWait(a: ApiAnswer, nowSeconds: number, attempt: number): { seconds: number; kind: 'primary' | 'secondary' } | null {
  if (a.status !== 403 && a.status !== 429) return null;
  const retryAfter = Number.parseInt(a.headers['retry-after'] ?? '', 10);
  const message = typeof a.body === 'object' && a.body !== null ? String((a.body as { message?: unknown }).message ?? '') : String(a.body ?? '');
  const secondary = /secondary rate limit/i.test(message);
  if (Number.isFinite(retryAfter) && retryAfter >= 0) return { seconds: retryAfter, kind: secondary ? 'secondary' : 'primary' };
  if (a.headers['x-ratelimit-remaining'] === '0') {
    const reset = Number.parseInt(a.headers['x-ratelimit-reset'] ?? '', 10);
    return { seconds: Number.isFinite(reset) ? Math.max(0, reset - nowSeconds) + 1 : 60, kind: 'primary' };
  }
  if (secondary || a.status === 429) return { seconds: 60 * 2 ** attempt, kind: 'secondary' };
  return null;
}

/** The `rel="next"` URL of a Link header, as a path gh api takes. */
export function nextLink(link: string | undefined): string | null {
  if (!link) return null;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="next"/.exec(part);
    if (m) {
      const u = new URL(m[1]!);
      return `${u.pathname.replace(/^\/api\/v3/, '').replace(/^\//, '')}${u.search}`;
    }
  }
  return null;
}

const MAX_RATE_LIMIT_WAITS = 5;
const MAX_TRANSIENT_TRIES = 3;

export class IssuesApi {
  /** network requests made so far (every gh api run, retries included) */
  requests = 0;
  /** GitHub's clock (the Date header of the latest answer), ISO 8601 without milliseconds */
  serverTime: string | null = null;
  /** rate-limit waits sat out so far, in seconds */
  waitedSeconds = 0;

  constructor(
    readonly repo: string,
    private readonly opts: IssuesApiOptions,
  ) {}

  private async sleep(seconds: number): Promise<void> {
    if (seconds <= 0) return;
    this.waitedSeconds += seconds;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, seconds * 1000);
      this.opts.signal?.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          reject(new WbError('interrupted', 'The sync was cancelled while waiting out a GitHub rate limit.', 'Run it again: it resumes where it stopped.'));
        },
        { once: true },
      );
    });
  }

  /** One gh api run; null answer when gh printed no HTTP status (not reached, connection dropped). */
  private async once(method: string, path: string, body: unknown): Promise<{ answer: ApiAnswer | null; stderr: string; missing: boolean; exitCode: number | undefined }> {
    if (this.opts.signal?.aborted) throw new WbError('interrupted', 'The sync was cancelled.', 'Run it again: it resumes where it stopped.');
    this.requests++;
    const args = ['api', '-i', '-X', method, path, '-H', 'Accept: application/vnd.github+json'];
    if (body !== undefined) args.push('--input', '-');
    const r = await runGh(args, { ...(this.opts.env ? { env: this.opts.env } : {}), ...(body !== undefined ? { input: JSON.stringify(body) } : {}), ...(this.opts.signal ? { signal: this.opts.signal } : {}), timeoutMs: 120_000 });
    const answer = parseIncluded(r.stdout);
    const date = answer?.headers.date;
    if (date && !Number.isNaN(Date.parse(date))) this.serverTime = new Date(Date.parse(date)).toISOString().replace(/\.\d{3}Z$/, 'Z');
    return { answer, stderr: r.stderr, missing: r.missing, exitCode: r.exitCode };
  }

  /**
   * One request, rate limits waited out (bounded). 2xx answers are returned; so are `accept`ed
   * statuses (e.g. 404, 422). Anything else is a WbError sync_failed, except an uncertain outcome
   * of a non-idempotent request (`idempotent: false`): UncertainOutcome, for the caller to check
   * what GitHub holds before trying again. Idempotent requests are retried on transient failures.
   */
  async call(method: string, path: string, opts: { body?: unknown; accept?: readonly number[]; idempotent?: boolean } = {}): Promise<ApiAnswer> {
    const idempotent = opts.idempotent ?? (method === 'GET' || method === 'PATCH' || method === 'DELETE');
    let waits = 0;
    let transient = 0;
    for (;;) {
      const { answer, stderr, missing, exitCode } = await this.once(method, path, opts.body);
      if (answer && answer.status >= 200 && answer.status < 300) return answer;
      if (answer && opts.accept?.includes(answer.status)) return answer;
      if (answer) {
        const wait = rateLimitWait(answer, Math.floor(Date.now() / 1000), waits);
        if (wait) {
          if (wait.seconds > this.opts.maxWaitSeconds || waits >= MAX_RATE_LIMIT_WAITS) {
            const until = new Date(Date.now() + wait.seconds * 1000).toISOString();
            throw new WbError(
              'sync_failed',
              `GitHub's ${wait.kind} rate limit stopped the issues sync (it asks to wait ${wait.seconds} s, until about ${until}).`,
              `Run the sync again after that: it resumes where it stopped, without duplicating issues (sync.issues.max_wait_seconds is ${this.opts.maxWaitSeconds}).`,
            );
          }
          waits++;
          await this.sleep(wait.seconds);
          continue;
        }
      }
      const failure = classifyGhFailure({ stderr, missing, exitCode }, this.repo);
      const uncertain = !answer || answer.status >= 500;
      if (uncertain && !failure.transient && failure.reason !== 'other') {
        throw new WbError('sync_failed', failure.message, failure.hint);
      }
      if (uncertain) {
        if (!idempotent) throw new UncertainOutcome(failure.message);
        if (++transient < MAX_TRANSIENT_TRIES) {
          await this.sleep(transient);
          continue;
        }
      }
      throw new WbError('sync_failed', `GitHub refused ${method} ${path.split('?')[0]}: ${failure.message}`, failure.hint);
    }
  }

  /** Every item of a list, page after page (per_page=100, following Link rel="next"). */
  async all<T>(path: string): Promise<T[]> {
    const out: T[] = [];
    let next: string | null = path.includes('per_page=') ? path : `${path}${path.includes('?') ? '&' : '?'}per_page=100`;
    while (next) {
      const a = await this.call('GET', next);
      if (!Array.isArray(a.body)) throw new WbError('sync_failed', `GitHub answered ${next.split('?')[0]} with something other than a list.`, 'Run the sync again; if it persists, check the repository in sync.issues.repo.');
      out.push(...(a.body as T[]));
      next = nextLink(a.headers.link);
    }
    return out;
  }
}
