import os from 'node:os';
import { z } from 'zod';
import { byCodeUnit } from '../core/text-order.js';

/**
 * Host names: which machine a snapshot came from. They go into snapshot ids, so into file names,
 * GitHub release tags (git ref names) and object keys: lowercase letters, digits and '-', starting
 * and ending with a letter or digit, at most 63 characters (a DNS label). Nothing a git ref refuses
 * ('~', '^', ':', '?', '*', '[', '\\', spaces, '@{', '..', '.lock') can appear, and no upper-case
 * 'T' or 'Z', so the timestamp of an id that carries a host is always found in one place.
 */
export const HOST_NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
export const MAX_HOST_NAME = 63;

export const HostNameSchema = z
  .string()
  .regex(HOST_NAME_PATTERN, 'expected lowercase letters, digits and "-" (not first or last), at most 63 characters, e.g. "laptop" or "work-desktop"');

/**
 * Whose snapshots a listing or a check covers: "all", or one host name (HOST_NAME_PATTERN). The
 * one definition behind `--host` and the MCP `host` inputs of list and check.
 */
export const HostFilterSchema = z
  .string()
  .regex(new RegExp(`^(?:all|${HOST_NAME_PATTERN.source.slice(1, -1)})$`), 'expected a host name (lowercase letters, digits and "-") or "all"');

/**
 * Which machines a listing or a check covered: this machine's name, whose snapshots were shown
 * ("all" or a host name), and how many snapshots of every other host were left out.
 */
export interface HostScope {
  this_machine: string;
  shown: string;
  others: Array<{ host: string; snapshots: number }>;
}

/**
 * Splits `ids` by host for `shown` ("all" or a host name; ids without a host are `thisHost`'s):
 * the ids shown, in their order, and the others counted per host (sorted by host name).
 */
export function scopeByHost(ids: readonly string[], hostOf: (id: string) => string, thisHost: string, shown: string): { ids: string[]; scope: HostScope } {
  if (shown === 'all') return { ids: [...ids], scope: { this_machine: thisHost, shown, others: [] } };
  const kept: string[] = [];
  const others = new Map<string, number>();
  for (const id of ids) {
    const host = hostOf(id);
    if (host === shown) kept.push(id);
    else others.set(host, (others.get(host) ?? 0) + 1);
  }
  const counted = [...others].map(([host, snapshots]) => ({ host, snapshots })).sort((a, b) => byCodeUnit(a.host, b.host));
  return { ids: kept, scope: { this_machine: thisHost, shown, others: counted } };
}

/**
 * `name` made safe for ids: lowercased, every run of other characters (dots of "mac.local",
 * underscores, spaces, non-ASCII) turned into one '-', '-' trimmed from both ends, cut to 63
 * characters. "host" when nothing is left (a hostname of only symbols).
 */
export function safeHostName(name: string): string {
  const cut = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX_HOST_NAME)
    .replace(/-+$/, '');
  return cut || 'host';
}

/** This machine's default host name: its hostname made safe for ids (safeHostName). */
export function defaultHostName(): string {
  return safeHostName(os.hostname());
}

/** The host name a configuration gives this machine: its `host`, else the default (defaultHostName). */
export function configuredHost(config: { host?: string | undefined }): string {
  return config.host ?? defaultHostName();
}

/**
 * Whether a manifest's `host` field names this machine. Manifests written before hosts were
 * configurable hold the raw hostname (os.hostname(): "Mac.local"); newer ones the configured name.
 */
export function isThisMachine(manifestHost: string, thisHost: string): boolean {
  return manifestHost === thisHost || manifestHost === os.hostname() || safeHostName(manifestHost) === thisHost;
}
