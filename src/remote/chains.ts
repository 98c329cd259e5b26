import { WbError } from '../core/errors.js';
import { chainSnapshotOf } from '../snapshot/chain-set.js';
import type { ChainSnapshot } from '../snapshot/chain.js';
import { parseSnapshotId } from '../snapshot/id.js';
import type { Manifest } from '../snapshot/manifest.js';
import { RemoteError, type Remote } from './remote.js';

/**
 * Chains of the snapshots on a remote, as the chain rule (snapshot/chain.ts) sees them. A
 * snapshot's kind and base come from this machine's manifest copy when it has one (no remote call),
 * else from remote.manifest(id), asked at most once per reader (one reader per run).
 *
 * Three outcomes per snapshot:
 * - known: its manifest was read (kind and base as it says);
 * - damaged: the remote answered, but without a usable manifest (not there, incomplete, invalid):
 *   a damaged full, as the local sweep treats a local snapshot whose manifest does not read;
 * - unknown: the manifest could not be read (network, auth, …): whether it is a delta, and on
 *   what, is not known, so callers must not delete anything it may depend on (anything older).
 */
export interface RemoteChainSnapshot extends ChainSnapshot {
  /** false when its manifest could not be read (transient failure): its base is unknown */
  known: boolean;
  manifest: Manifest | null;
}

export class RemoteChainReader {
  private readonly cache = new Map<string, Promise<{ manifest: Manifest | null; known: boolean }>>();

  /**
   * @param local this machine's manifests by snapshot id (null: the local copy's manifest does not read)
   * @param signal cancels the remote reads (a cancelled read rejects: never taken as "unknown")
   */
  constructor(
    private readonly remote: Remote,
    private readonly local: ReadonlyMap<string, Manifest | null>,
    private readonly signal?: AbortSignal,
  ) {}

  /** Snapshot `id` as the chain rule sees it; `bytes` is what the remote stores for it. Rejects only when cancelled. */
  async snapshot(id: string, bytes: number): Promise<RemoteChainSnapshot> {
    const { manifest, known } = await this.manifestOf(id);
    const at = parseSnapshotId(id)?.time.getTime() ?? 0;
    return { ...chainSnapshotOf(id, manifest, bytes, at), known, manifest };
  }

  /** The manifest of `id` (local copy first), null when damaged or unknown; cached. */
  manifestOf(id: string): Promise<{ manifest: Manifest | null; known: boolean }> {
    let hit = this.cache.get(id);
    if (!hit) {
      hit = this.read(id);
      this.cache.set(id, hit);
    }
    return hit;
  }

  private async read(id: string): Promise<{ manifest: Manifest | null; known: boolean }> {
    if (this.local.has(id)) return { manifest: this.local.get(id) ?? null, known: true };
    try {
      return { manifest: await this.remote.manifest(id, this.signal ? { signal: this.signal } : {}), known: true };
    } catch (err) {
      if (err instanceof RemoteError && err.kind === 'cancelled') throw err;
      // The remote answered that there is no usable manifest: a damaged snapshot, nothing is based on it.
      if (err instanceof RemoteError && (err.kind === 'not_found' || err.kind === 'incomplete')) return { manifest: null, known: true };
      if (err instanceof WbError && err.code === 'manifest_invalid') return { manifest: null, known: true };
      return { manifest: null, known: false };
    }
  }

  /**
   * The snapshots of the chains of `ids` among `present` (id → stored bytes): each id and, following
   * bases, every snapshot they depend on that is present. Reads only what the walk reaches.
   */
  async chainsOf(ids: Iterable<string>, present: ReadonlyMap<string, number>): Promise<Map<string, RemoteChainSnapshot>> {
    const seen = new Map<string, RemoteChainSnapshot>();
    const queue = [...ids].filter((id) => present.has(id));
    while (queue.length) {
      const id = queue.shift()!;
      if (seen.has(id)) continue;
      const s = await this.snapshot(id, present.get(id) ?? 0);
      seen.set(id, s);
      if (s.kind === 'delta' && s.base && present.has(s.base) && !seen.has(s.base)) queue.push(s.base);
    }
    return seen;
  }
}
