/**
 * The registry of sync transports (transport.ts): every kind wb-backup knows, and which of them
 * `sync:` in wb-backup.yaml configures. A new transport is one entry here.
 */
import type { Config } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { gitMirrorEntry } from './git-transport.js';
import { issuesEntry } from './issues/transport.js';
import type { SyncTransport, TransportEntry } from './transport.js';

/** Every transport kind, in the order results list them. */
export const TRANSPORTS: readonly TransportEntry[] = [gitMirrorEntry, issuesEntry];

/** The transports `config` configures (none when `sync:` is absent), in registry order. */
export function configuredTransports(config: Config): SyncTransport[] {
  return TRANSPORTS.filter((t) => t.configured(config)).map((t) => t.create(config));
}

/** One configured transport by id; WbError config_invalid naming what is configured when it is not. */
export function configuredTransport(config: Config, id: string): SyncTransport {
  const entry = TRANSPORTS.find((t) => t.id === id);
  if (!entry) throw new WbError('invalid_input', `There is no sync transport "${id}".`, `Known: ${TRANSPORTS.map((t) => t.id).join(', ')}.`);
  if (!entry.configured(config)) {
    const on = TRANSPORTS.filter((t) => t.configured(config)).map((t) => t.id);
    throw new WbError('config_invalid', `The ${entry.title} sync transport is not configured.`, `Configure it under sync: in wb-backup.yaml (docs/github-sync.md)${on.length ? `; configured: ${on.join(', ')}` : ''}.`);
  }
  return entry.create(config);
}
