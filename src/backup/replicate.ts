import type { Config } from '../root/config.js';
import { describeError } from '../core/errors.js';
import type { RemoteOutcome } from './last-run.js';
import { logger } from '../core/log.js';
import { decideRetention } from '../snapshot/retention.js';
import { compareSnapshotIds } from '../snapshot/id.js';
import { listLocalSnapshots } from '../snapshot/store.js';
import { RemoteError, type Remote } from '../remote/remote.js';

function describe(err: unknown): { reason: string; transient: boolean } {
  return { reason: describeError(err), transient: err instanceof RemoteError && err.transient };
}

/**
 * After a local snapshot: push it, backfill every kept local snapshot the remote lacks (a failed
 * push is retried by the next run), then sweep the remote with the same retention policy as the
 * local sweep, so both converge on the same set. A failing remote never fails the backup: the
 * outcome says what happened and what to do.
 * @param onBytes bytes sent so far by this whole call (every push of it, backfills included): a
 *   growing running total, reported while each push sends (see RemoteCallOptions.onBytes)
 */
export async function replicate(config: Config, remote: Remote, justTaken: string, signal?: AbortSignal, onBytes?: (bytes: number) => void): Promise<RemoteOutcome> {
  const log = logger().child({ remote: remote.label });
  // Cancelling stops the transfer under way (a half-pushed snapshot never counts as pushed).
  const call = signal ? { signal } : {};
  // Bytes of the pushes finished so far, and the most the push under way has reported.
  let before = 0;
  let current = 0;
  const pushCall = onBytes
    ? {
        ...call,
        onBytes: (bytes: number) => {
          current = Math.max(current, bytes);
          onBytes(before + current);
        },
      }
    : call;
  let remoteIds: Map<string, boolean>;
  try {
    remoteIds = new Map((await remote.list(call)).map((s) => [s.id, s.complete]));
  } catch (err) {
    const { reason } = describe(err);
    log.warn({ reason }, 'remote unavailable; the snapshot stays local and will be pushed by a later run');
    const attempts = err instanceof RemoteError && err.attempts ? err.attempts : 1;
    const what = err instanceof RemoteError && err.kind === 'cancelled' ? 'The push was cancelled' : `Could not reach the remote (${remote.label})`;
    return { status: 'failed', reason: `${what}: ${reason} The snapshot is kept locally and will be pushed by the next run.`, attempts };
  }

  const local = listLocalSnapshots(config.root);
  const missing = local.filter((s) => remoteIds.get(s.id) !== true);
  // The new snapshot first, then older ones newest first: the most valuable copy leaves first.
  missing.sort((a, b) => (a.id === justTaken ? -1 : b.id === justTaken ? 1 : compareSnapshotIds(b.id, a.id)));
  const backfilled: string[] = [];
  let attemptsForNew = 0;
  for (const snap of missing) {
    if (signal?.aborted) break;
    try {
      current = 0;
      const pushed = await remote.push({ id: snap.id, archivePath: snap.archivePath, manifestPath: snap.manifestPath, checksumPath: snap.checksumPath }, pushCall);
      before += current;
      if (snap.id === justTaken) attemptsForNew = pushed.attempts;
      else backfilled.push(snap.id);
      remoteIds.set(snap.id, true);
      log.info({ snapshot: snap.id, attempts: pushed.attempts }, 'pushed');
    } catch (err) {
      const { reason } = describe(err);
      const attempts = err instanceof RemoteError ? err.attempts : 1;
      log.warn({ snapshot: snap.id, reason }, 'push failed; the snapshot stays local and will be pushed by a later run');
      return {
        status: 'failed',
        reason: `Pushing ${snap.id} to ${remote.label} failed: ${reason} The snapshot is kept locally and will be pushed by the next run.`,
        ...(attempts ? { attempts } : {}),
        ...(backfilled.length ? { backfilled } : {}),
      };
    }
  }

  const decision = decideRetention([...remoteIds.keys()], config.retention);
  const pruned: string[] = [];
  for (const id of decision.prune) {
    if (id === justTaken) continue;
    if (signal?.aborted) break; // the sweep is redone by the next run
    try {
      await remote.delete(id, call);
      pruned.push(id);
    } catch (err) {
      log.warn({ snapshot: id, reason: describe(err).reason }, 'remote sweep could not delete; the next run retries');
    }
  }
  return {
    status: 'pushed',
    attempts: attemptsForNew || 1,
    ...(backfilled.length ? { backfilled } : {}),
    ...(pruned.length ? { pruned } : {}),
  };
}
