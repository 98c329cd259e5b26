import { logger } from '../core/log.js';
import { cancelledError, RemoteError, type Remote, type RemoteCallOptions, type SnapshotFiles } from './remote.js';

/** How the retry wrapper retries: `attempts` in all (1 = no retry), pauses growing from `baseDelayMs`. */
export interface RetryPolicy {
  attempts?: number;
  baseDelayMs?: number;
}

export const DEFAULT_RETRY = { attempts: 3, baseDelayMs: 1000 } as const;

/**
 * Run `op` until it succeeds, fails with a kind other than 'transient', or `attempts` are used.
 * Pause before attempt n+1: baseDelayMs·3^(n-1), ±20 % jitter (so machines that failed together do
 * not retry together). The pause ends at once when `signal` fires (rejecting 'cancelled'). Returns
 * the value and the attempts it took; a RemoteError it rethrows carries the attempts made.
 */
export async function retrying<T>(
  label: string,
  what: string,
  op: () => Promise<T>,
  policy: RetryPolicy = {},
  signal?: AbortSignal,
): Promise<{ value: T; attempts: number }> {
  const attempts = Math.max(1, policy.attempts ?? DEFAULT_RETRY.attempts);
  const baseDelayMs = policy.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs;
  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw cancelledError(label, what).withAttempts(attempt - 1 || 1);
    try {
      return { value: await op(), attempts: attempt };
    } catch (err) {
      if (!(err instanceof RemoteError)) throw err;
      if (!err.transient || attempt >= attempts) throw err.withAttempts(attempt);
      const delay = Math.round(baseDelayMs * 3 ** (attempt - 1) * (0.8 + Math.random() * 0.4));
      logger().warn({ remote: label, what, attempt, delay }, 'transient remote failure; retrying');
      if (!(await pause(delay, signal))) throw cancelledError(label, what).withAttempts(attempt);
    }
  }
}

/** Wait `ms`; false when `signal` fired first (the timer is cleared, nothing keeps running). */
function pause(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The caller's options for one attempt of a wrapped call: the same signal, and `onBytes` passed
 * on only when it exceeds what was passed before (a retried attempt counts from 0 again).
 */
function monotonicBytes(opts: RemoteCallOptions): RemoteCallOptions {
  const { onBytes } = opts;
  if (!onBytes) return opts;
  let passed = 0;
  return {
    ...opts,
    onBytes: (bytes) => {
      if (!(bytes > passed)) return;
      passed = bytes;
      onBytes(bytes);
    },
  };
}

/**
 * The same remote with transient failures retried (retrying() on every method), the one retry
 * loop every backend gets through the registry. push() reports the attempts it took; push and
 * download pass `onBytes` on strictly increasing across attempts.
 */
export function withRetry(remote: Remote, policy: RetryPolicy = {}): Remote {
  const label = remote.label;
  return {
    label,
    async list(opts: RemoteCallOptions = {}) {
      return (await retrying(label, 'list', () => remote.list(opts), policy, opts.signal)).value;
    },
    async push(snapshot: SnapshotFiles, opts: RemoteCallOptions = {}) {
      const call = monotonicBytes(opts);
      const { value, attempts } = await retrying(label, `push ${snapshot.id}`, () => remote.push(snapshot, call), policy, opts.signal);
      return { uploaded: value.uploaded, attempts };
    },
    async download(id: string, dir: string, opts: RemoteCallOptions = {}) {
      const call = monotonicBytes(opts);
      return (await retrying(label, `download ${id}`, () => remote.download(id, dir, call), policy, opts.signal)).value;
    },
    async manifest(id: string, opts: RemoteCallOptions = {}) {
      return (await retrying(label, `manifest of ${id}`, () => remote.manifest(id, opts), policy, opts.signal)).value;
    },
    async delete(id: string, opts: RemoteCallOptions = {}) {
      await retrying(label, `delete ${id}`, () => remote.delete(id, opts), policy, opts.signal);
    },
  };
}
