import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import type { GithubSyncConfig } from '../root/sync-schema.js';

export type { DocumentMapping, GithubSyncConfig, SyncConfig, SyncMode } from '../root/sync-schema.js';
export { SYNC_MODES } from '../root/sync-schema.js';

/** The sync settings, or an error that says how to configure them. */
export function syncConfig(config: Config): GithubSyncConfig {
  const sync = config.sync?.github;
  if (!sync) {
    throw new WbError('config_invalid', 'github-sync is not configured.', 'Add sync: { github: { repo: owner/name } } (or remote_url) to wb-backup.yaml; see docs/github-sync.md.');
  }
  return sync;
}
