import type { z } from 'zod';
import { WbError } from '../core/errors.js';
import type { Config } from '../root/config.js';
import { setRemoteSectionCheck } from '../root/remote-section.js';
import type { RemoteBackend } from './backend.js';
import { dirBackend } from './dir/index.js';
import { githubBackend } from './github/index.js';
import { s3Backend } from './s3/index.js';
import type { Remote } from './remote.js';
import { withRetry, type RetryPolicy } from './retry.js';

/** Every remote backend, by the key it has under `remote:` in wb-backup.yaml. A new backend: one folder, one line here. */
export const BACKENDS = {
  github: githubBackend,
  dir: dirBackend,
  s3: s3Backend,
} as const satisfies Record<string, RemoteBackend>;

export type BackendName = keyof typeof BACKENDS;
export type BackendSettings<N extends BackendName> = z.infer<(typeof BACKENDS)[N]['schema']>;

function backendOf(name: string): RemoteBackend | null {
  return Object.hasOwn(BACKENDS, name) ? (BACKENDS as Record<string, RemoteBackend>)[name]! : null;
}

// Config loading (src/root, a layer below) validates each backend's settings with its own schema.
setRemoteSectionCheck({
  backends: Object.keys(BACKENDS),
  problems(name, settings) {
    const result = backendOf(name)?.schema.safeParse(settings);
    return result && !result.success ? result.error.issues.map((i) => ({ path: i.path, message: i.message })) : [];
  },
});

export interface RemoteOverrides {
  /** environment for gh (tests point it at the GitHub emulator) */
  ghEnv?: Record<string, string>;
  /** retry policy (tests shorten the pauses); default 3 attempts, pauses from 1 s */
  retry?: RetryPolicy;
}

/**
 * The Remote for a `remote:` section (`{ <backend>: settings }`), with retries. Throws WbError
 * config_invalid naming the field when the section is not valid for its backend. `root` resolves
 * relative paths in the settings.
 */
export function createRemote(section: Record<string, unknown>, root: string, overrides: RemoteOverrides = {}): Remote {
  const [name, ...more] = Object.keys(section);
  const backend = name !== undefined && !more.length ? backendOf(name) : null;
  if (!backend || name === undefined) {
    throw new WbError('config_invalid', `The remote section names ${Object.keys(section).join(', ') || 'no backend'}; expected exactly one of: ${Object.keys(BACKENDS).join(', ')}.`, 'Fix remote: in wb-backup.yaml (docs/remotes.md).');
  }
  const parsed = backend.schema.safeParse(section[name]);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - ${['remote', name, ...i.path.map(String)].join('.')}: ${i.message}`);
    throw new WbError('config_invalid', `The remote configuration is invalid:\n${lines.join('\n')}`, '\nFix these fields (docs/remotes.md), then run the command again.');
  }
  const remote = backend.create(parsed.data, { root, ...(overrides.ghEnv ? { ghEnv: overrides.ghEnv } : {}) });
  return withRetry(remote, overrides.retry);
}

/** The configured remote (with retries), or null for local-only snapshots. */
export function remoteFromConfig(config: Config, overrides: RemoteOverrides = {}): Remote | null {
  return config.remote ? createRemote(config.remote, config.root, overrides) : null;
}

/** The configured remote's settings when it is the `name` backend, typed by its schema; else null. */
export function remoteSettings<N extends BackendName>(config: Pick<Config, 'remote'>, name: N): BackendSettings<N> | null {
  const raw = config.remote?.[name];
  if (raw === undefined) return null;
  const parsed = BACKENDS[name].schema.safeParse(raw);
  return parsed.success ? (parsed.data as BackendSettings<N>) : null;
}
