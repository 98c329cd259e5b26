import path from 'node:path';
import type { Config } from '../root/config.js';
import { expandHome } from '../root/paths.js';
import { DirRemote } from './dir/dir-remote.js';
import { GithubRemote } from './github/github-remote.js';
import type { Remote } from './remote.js';

export interface RemoteOverrides {
  /** environment for gh (tests point it at the GitHub emulator) */
  ghEnv?: Record<string, string>;
  retry?: { attempts?: number; baseDelayMs?: number };
}

/** The configured remote, or null for local-only snapshots. One backend module per kind. */
export function remoteFromConfig(config: Config, overrides: RemoteOverrides = {}): Remote | null {
  const remote = config.remote;
  if (!remote) return null;
  if ('github' in remote) {
    return new GithubRemote({
      repo: remote.github.repo,
      ...(remote.github.part_bytes ? { partBytes: remote.github.part_bytes } : {}),
      ...(overrides.ghEnv ? { env: overrides.ghEnv } : {}),
      ...(overrides.retry ? { retry: overrides.retry } : {}),
    });
  }
  return new DirRemote(path.resolve(config.root, expandHome(remote.dir.path)), remote.dir.part_bytes);
}
