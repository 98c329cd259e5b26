import type { Config } from '../root/config.js';
import { describeError } from '../core/errors.js';
import type { RemoteOutcome } from './last-run.js';
import { logger } from '../core/log.js';
import { decideRetention } from '../snapshot/retention.js';
import { compareSnapshotIds, parseSnapshotId, snapshotHost } from '../snapshot/id.js';
import { configuredHost, isThisMachine } from '../root/host.js';
import { localChainSnapshots } from '../snapshot/chain-set.js';
import { protectChains, type ChainSnapshot } from '../snapshot/chain.js';
import { RemoteChainReader } from '../remote/chains.js';
import { RemoteError, type Remote } from '../remote/remote.js';

function describe(err: unknown): { reason: string; transient: boolean } {
  return { reason: describeError(err), transient: err instanceof RemoteError && err.transient };
}

/**
 * After a local snapshot: push it, backfill every kept local snapshot the remote lacks (a failed
 * push is retried by the next run), then sweep the remote with the same retention policy as the
 * local sweep, so both converge on the same set. A failing remote never fails the backup: the
 * outcome says what happened and what to do.
 *
 * Chains (docs/remotes.md): a delta is pushed only once its base is complete on the remote (bases
 * go first, so a delta is never complete there while its base is absent), and the sweep keeps every
 * snapshot a kept remote snapshot depends on, deleting newest first (deltas before their bases).
 *
 * Several machines (docs/remotes.md): only this machine's snapshots (its configured `host`; ids
 * without a host count as its own) are pushed, backfilled and swept; another machine's are never
 * touched, whatever the policy says.
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
  let deleting: Set<string>;
  try {
    const listing = await remote.list(call);
    remoteIds = new Map(listing.map((s) => [s.id, s.complete]));
    deleting = new Set(listing.filter((s) => s.deleting === true && !s.complete).map((s) => s.id));
  } catch (err) {
    const { reason } = describe(err);
    log.warn({ reason }, 'remote unavailable; the snapshot stays local and will be pushed by a later run');
    const attempts = err instanceof RemoteError && err.attempts ? err.attempts : 1;
    const what = err instanceof RemoteError && err.kind === 'cancelled' ? 'The push was cancelled' : `Could not reach the remote (${remote.label})`;
    return { status: 'failed', reason: `${what}: ${reason} The snapshot is kept locally and will be pushed by the next run.`, attempts };
  }

  const host = configuredHost(config);
  // Another machine's snapshots downloaded here (to be restored) are that machine's to push.
  const localChains = localChainSnapshots(config.root).filter((s) => snapshotHost(s.id, host) === host);
  const order = pushOrder(localChains, remoteIds, justTaken);
  for (const id of order.unpushable) log.warn({ snapshot: id }, "not pushed: its base is neither on the remote nor on this machine, so it could not be restored from there");
  const missing = order.push;
  const backfilled: string[] = [];
  let attemptsForNew = 0;
  for (const { snapshot: snap } of missing) {
    if (signal?.aborted) break;
    try {
      current = 0;
      const pushed = await remote.push({ id: snap.id, archivePath: snap.archivePath, manifestPath: snap.manifestPath, checksumPath: snap.checksumPath }, pushCall);
      before += current;
      if (snap.id === justTaken) attemptsForNew = pushed.attempts;
      else backfilled.push(snap.id);
      remoteIds.set(snap.id, true);
      deleting.delete(snap.id); // pushed again: whole, no longer being deleted
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

  let pruned: string[] = [];
  try {
    pruned = await sweepRemote(config, remote, remoteIds, deleting, justTaken, new Map(localChains.map((s) => [s.id, s.manifest])), signal);
  } catch (err) {
    // Only a cancel gets here (unreadable manifests keep their snapshots instead): the next run sweeps.
    log.warn({ reason: describe(err).reason }, 'remote sweep stopped; the next run sweeps again');
  }
  return {
    status: 'pushed',
    attempts: attemptsForNew || 1,
    ...(backfilled.length ? { backfilled } : {}),
    ...(pruned.length ? { pruned } : {}),
  };
}

type LocalChainSnapshot = ReturnType<typeof localChainSnapshots>[number];

/**
 * The local snapshots the remote lacks, in the order to push them: the just-taken one first when
 * its base (if any) is complete on the remote, then the others newest first (the most valuable copy
 * leaves first), except that each delta is preceded by every base of its chain that the remote
 * lacks, full first. A delta whose chain cannot be completed on the remote (a base neither there
 * nor here) is not pushed: `unpushable` lists it.
 */
export function pushOrder(local: readonly LocalChainSnapshot[], remoteComplete: ReadonlyMap<string, boolean>, justTaken: string): { push: LocalChainSnapshot[]; unpushable: string[] } {
  const byId = new Map(local.map((s) => [s.id, s]));
  const onRemote = (id: string) => remoteComplete.get(id) === true;
  const missing = local.filter((s) => !onRemote(s.id));
  missing.sort((a, b) => (a.id === justTaken ? -1 : b.id === justTaken ? 1 : compareSnapshotIds(b.id, a.id)));
  const push: LocalChainSnapshot[] = [];
  const state = new Map<string, 'queued' | 'unpushable' | 'visiting'>();
  /** true when `s` can be (or already is) queued after its bases */
  const queue = (s: LocalChainSnapshot): boolean => {
    const known = state.get(s.id);
    if (known === 'queued') return true;
    if (known === 'unpushable' || known === 'visiting') return false; // a loop of bases is no chain
    state.set(s.id, 'visiting');
    let ok = true;
    if (s.kind === 'delta' && s.base && !onRemote(s.base)) {
      const base = byId.get(s.base);
      ok = base !== undefined && queue(base);
    } else if (s.kind === 'delta' && !s.base) ok = false;
    state.set(s.id, ok ? 'queued' : 'unpushable');
    if (ok) push.push(s);
    return ok;
  };
  for (const s of missing) queue(s);
  return { push, unpushable: missing.filter((s) => state.get(s.id) === 'unpushable').map((s) => s.id) };
}

/**
 * The remote sweep: the retention policy over this machine's ids on the remote (another machine's
 * are neither counted nor deleted), widened to whole chains
 * (protectChains), each kept snapshot's chain read from this machine's manifests or, for snapshots
 * only the remote has, from remote.manifest (once per run). A kept snapshot whose manifest cannot
 * be read (the remote failed to answer) may depend on any older snapshot: none older than it is
 * deleted this run. Deletes newest first, so an interrupted sweep never leaves a delta without its
 * base. A snapshot an earlier sweep started deleting (`deleting`: listed broken) is not weighed by
 * retention again: its delete is finished first, unless a kept chain reaches it (then it is left,
 * listed broken). Returns the ids deleted; a delete that fails is retried by the next run.
 * @throws RemoteError 'cancelled' when `signal` fires while manifests are read
 */
async function sweepRemote(
  config: Config,
  remote: Remote,
  remoteIds: ReadonlyMap<string, boolean>,
  deleting: ReadonlySet<string>,
  justTaken: string,
  localManifests: ReadonlyMap<string, LocalChainSnapshot['manifest']>,
  signal?: AbortSignal,
): Promise<string[]> {
  const log = logger().child({ remote: remote.label });
  const call = signal ? { signal } : {};
  const host = configuredHost(config);
  // Only this machine's snapshots: another machine's are its own to keep or sweep; one half deleted
  // is finished by the sweep, never counted as kept.
  const ids = [...remoteIds.keys()].filter((id) => !deleting.has(id) && snapshotHost(id, host) === host);
  const decision = decideRetention(ids, config.retention);
  const keepIds = new Set([...decision.keep, justTaken]);
  const present = new Map([...remoteIds.keys()].map((id) => [id, 0]));
  const reader = new RemoteChainReader(remote, localManifests, signal);
  const chains = await reader.chainsOf(keepIds, present);
  // Only the kept chains need their links; the rest are deletable whatever they are.
  const all: ChainSnapshot[] = ids.map((id) => chains.get(id) ?? { id, kind: 'full', base: null, bytes: 0, at: 0 });
  const { deletable } = protectChains(all, keepIds);
  const unknown = [...chains.values()].filter((s) => !s.known).map((s) => s.id);
  const newestUnknown = unknown.sort((a, b) => compareSnapshotIds(b, a))[0];
  const pruned: string[] = [];
  const unfinished = [...deleting].filter((id) => !chains.has(id)).sort((a, b) => compareSnapshotIds(b, a));
  for (const id of deleting) if (chains.has(id)) log.warn({ snapshot: id }, 'remote sweep leaves a half-deleted snapshot a kept snapshot depends on (listed broken)');
  const candidates = [...unfinished, ...deletable.filter((id) => id !== justTaken && !deleting.has(id)).sort((a, b) => compareSnapshotIds(b, a))];
  for (const id of candidates) {
    if (signal?.aborted) break; // the sweep is redone by the next run
    if (newestUnknown && compareSnapshotIds(id, newestUnknown) < 0) {
      log.warn({ snapshot: id, unknown: newestUnknown }, 'remote sweep keeps it: a kept snapshot whose manifest could not be read may depend on it');
      continue;
    }
    if (await anotherMachines(reader, remote, id, host)) {
      log.info({ snapshot: id }, "remote sweep keeps it: its id has no host and its manifest does not show it is this machine's");
      continue;
    }
    try {
      await remote.delete(id, call);
      pruned.push(id);
    } catch (err) {
      log.warn({ snapshot: id, reason: describe(err).reason }, 'remote sweep could not delete; the next run retries');
    }
  }
  return pruned;
}

/** Ids without a host already found (by manifest) to be another machine's, per remote: manifests never change. */
const foreignLegacy = new Map<string, Set<string>>();

/**
 * Whether snapshot `id`, about to be swept, is another machine's although its id has no host
 * (written before hosts existed, when two machines sharing a remote were indistinguishable by
 * name): its manifest's host decides (root/host.ts isThisMachine). A manifest that cannot be read
 * for a transient reason keeps it too; a damaged one counts as this machine's, as before hosts.
 * Ids with a host are never asked about: their host was checked before.
 */
async function anotherMachines(reader: RemoteChainReader, remote: Remote, id: string, host: string): Promise<boolean> {
  if (parseSnapshotId(id)?.host !== undefined) return false;
  const known = foreignLegacy.get(remote.label);
  if (known?.has(id)) return true;
  const { manifest, known: answered } = await reader.manifestOf(id);
  if (!answered) return true;
  if (!manifest || isThisMachine(manifest.host, host)) return false;
  foreignLegacy.set(remote.label, (known ?? new Set()).add(id));
  return true;
}
