import type { SyncMode } from './config.js';

/**
 * Where a push goes, pure: `direct` commits on the remote head (a fast-forward); a pull request
 * carries the commit on a branch of its own, built on the remote head, or on the last synced
 * commit when the remote moved (so the remote's edits are never reverted by our commit).
 */
export type PushRoute = { kind: 'direct' } | { kind: 'pull_request'; parent: 'remote_head' | 'last_synced' } | { kind: 'refuse_remote_changed' };

export function routePush(mode: SyncMode, remoteMoved: boolean): PushRoute {
  if (mode === 'direct') return remoteMoved ? { kind: 'refuse_remote_changed' } : { kind: 'direct' };
  if (mode === 'hybrid') return remoteMoved ? { kind: 'pull_request', parent: 'last_synced' } : { kind: 'direct' };
  return { kind: 'pull_request', parent: remoteMoved ? 'last_synced' : 'remote_head' };
}
