import fs from 'node:fs';
import { z } from 'zod';
import type { Config } from '../root/config.js';
import { describeError } from '../core/errors.js';
import { remoteFromConfig } from '../remote/registry.js';
import type { Remote } from '../remote/remote.js';
import { compareSnapshotIds, parseSnapshotId, snapshotHost } from '../snapshot/id.js';
import { HostFilterSchema, configuredHost } from '../root/host.js';
import { byCodeUnit } from '../core/text-order.js';
import { listLocalSnapshots } from '../snapshot/store.js';
import { readLocalManifest } from '../snapshot/chain-set.js';
import { zstdArchiveProblem } from '../snapshot/archive-frames.js';
import type { Manifest } from '../snapshot/manifest.js';
import { readLastCheck } from '../check/record.js';

export const SnapshotListEntrySchema = z.object({
  id: z.string(),
  host: z.string().describe('the machine that took it (the host in its id; ids older than hosts belong to this machine)'),
  manual: z.boolean(),
  created_at: z.string(),
  bytes: z.number().describe("bytes stored for this snapshot alone: its archive (a delta's archive holds only the pages that changed since its base, so restoring it also reads its base's)"),
  kind: z
    .enum(['full', 'delta'])
    .optional()
    .describe("full: restores on its own; delta: restores with its chain (its base, the base's base, … down to a full). Absent when only the remote has the snapshot (reading each remote manifest would cost a download per snapshot) or its manifest does not read"),
  base: z.string().nullable().optional().describe('for a delta, the snapshot it was stored against (null for a full); absent when kind is'),
  local: z.boolean(),
  remote: z.boolean().describe('a complete copy is on the remote'),
  restorable: z
    .boolean()
    .optional()
    .describe('false when this machine knows the snapshot cannot be restored: a link of its chain (itself, its base, …) is missing here and on the remote, its manifest does not read, or its archive is empty, of another size than the remote copy, or was found damaged by the last check. Found from file sizes and manifests, no archive is read; absent for snapshots only the remote has'),
  not_restorable_reason: z.string().optional().describe('when restorable is false: which link and what is wrong with it'),
});
export type SnapshotListEntry = z.infer<typeof SnapshotListEntrySchema>;

export const SnapshotListSchema = z.object({
  snapshots: z.array(SnapshotListEntrySchema).describe('newest first'),
  remote: z.object({
    configured: z.boolean(),
    label: z.string().optional(),
    listed: z.boolean(),
    reason: z.string().optional(),
  }),
  host: z
    .object({
      this_machine: z.string().describe("this machine's host name (the `host` setting, default its hostname made safe for ids)"),
      shown: z.string().describe('whose snapshots are listed: a host name, or "all"'),
      others: z
        .array(z.object({ host: z.string(), snapshots: z.number() }))
        .describe('snapshots of other machines that the listing left out (host "all" shows them), by host'),
    })
    .describe('which machines the list covers: several machines can share one remote'),
  totals: z
    .object({
      local_bytes: z.number().nullable().describe('archive bytes of every local snapshot listed together (null when the local copies were not listed)'),
      remote_bytes: z.number().nullable().describe('archive bytes of every complete snapshot listed that is on the remote, together (null when the remote was not listed)'),
    })
    .describe('bytes stored, locally and on the remote: deltas count what they store, not what they restore'),
});
export type SnapshotList = z.infer<typeof SnapshotListSchema>;

export type ListWhere = 'all' | 'local' | 'remote';

/** Whose snapshots to list: "all", or one host name (default: this machine's). */
export const ListHostSchema = HostFilterSchema;

/**
 * Local and remote snapshots merged by id (the remote is asked unless where = local), each with its
 * host, its kind (full or delta) and base when this machine has its manifest, and the bytes stored
 * in total on each side (of the snapshots shown). Only the remote's listing is asked: no remote
 * manifest or archive is read. `host` picks whose snapshots are shown: this machine's by default
 * (its configured host), a host name, or "all"; the others are counted per host in `host.others`.
 */
export async function listSnapshots(
  config: Config,
  where: ListWhere,
  remote: Remote | null = remoteFromConfig(config),
  opts: { host?: string } = {},
): Promise<SnapshotList> {
  const thisHost = configuredHost(config);
  const shown = opts.host ?? thisHost;
  const hostOf = (id: string) => snapshotHost(id, thisHost) ?? thisHost;
  // Totals are of what is shown: another machine's bytes are its own.
  const counted = (id: string) => shown === 'all' || hostOf(id) === shown;
  const merged = new Map<string, SnapshotListEntry>();
  let localBytes: number | null = null;
  let remoteBytes: number | null = null;
  if (where !== 'remote') {
    localBytes = 0;
    for (const s of listLocalSnapshots(config.root)) {
      const manifest = readLocalManifest(s);
      // A version 1 manifest has no kind: every version 1 snapshot is a full.
      const chain = manifest ? { kind: manifest.kind ?? 'full', base: manifest.kind === 'delta' ? (manifest.base ?? null) : null } : {};
      merged.set(s.id, { id: s.id, host: hostOf(s.id), manual: s.manual, created_at: s.created_at, bytes: s.bytes, ...chain, local: true, remote: false });
      if (counted(s.id)) localBytes += s.bytes;
    }
  }
  const remoteSizes = new Map<string, number>();
  let remoteInfo: SnapshotList['remote'] = { configured: false, listed: false, reason: 'No remote is configured.' };
  if (remote) {
    remoteInfo = { configured: true, label: remote.label, listed: false };
    if (where !== 'local') {
      try {
        let sum = 0;
        for (const r of await remote.list()) {
          if (!r.complete) continue; // a half-done push is not a copy anyone can restore
          if (counted(r.id)) sum += r.bytes;
          remoteSizes.set(r.id, r.bytes);
          const known = merged.get(r.id);
          const parsed = parseSnapshotId(r.id);
          if (known) known.remote = true;
          else if (parsed) merged.set(r.id, { id: r.id, host: hostOf(r.id), manual: parsed.manual, created_at: parsed.time.toISOString(), bytes: r.bytes, local: false, remote: true });
        }
        remoteInfo.listed = true;
        remoteBytes = sum;
      } catch (err) {
        remoteInfo.reason = `The remote could not be listed: ${describeError(err)}`;
      }
    }
  }
  if (where !== 'remote') markBrokenChains(config, merged, remoteInfo.listed ? remoteSizes : null, remoteInfo.configured);
  const all = [...merged.values()].sort((a, b) => compareSnapshotIds(b.id, a.id));
  const snapshots = shown === 'all' ? all : all.filter((s) => s.host === shown);
  const others = new Map<string, number>();
  for (const s of all) if (shown !== 'all' && s.host !== shown) others.set(s.host, (others.get(s.host) ?? 0) + 1);
  return {
    snapshots,
    remote: remoteInfo,
    host: { this_machine: thisHost, shown, others: [...others].map(([host, n]) => ({ host, snapshots: n })).sort((a, b) => byCodeUnit(a.host, b.host)) },
    totals: { local_bytes: localBytes, remote_bytes: remoteBytes },
  };
}

const MAX_REASON = 300;

/**
 * Marks each local snapshot restorable or not, from what this machine knows without reading an
 * archive: following each manifest's base (only while some database is stored as a delta), every
 * link must be here with a manifest that reads and an archive that is not empty, of the size the
 * remote lists for its copy, whose zstd frames end where the file does (archive-frames.ts: block
 * headers only), and not failed by the last local check; or, missing here, be on the
 * remote (a restore fetches it; what lies beyond it is the remote's, which `check --remote` proves).
 * @param remoteSizes the remote's complete snapshots and their archive bytes; null when not listed
 */
function markBrokenChains(config: Config, merged: Map<string, SnapshotListEntry>, remoteSizes: ReadonlyMap<string, number> | null, remoteConfigured: boolean): void {
  const local = new Map(listLocalSnapshots(config.root).map((s) => [s.id, s] as const));
  const lastCheck = readLastCheck(config.root);
  // Only what the last check found wrong with a snapshot's own files (not its chain, which is
  // followed here as it is now), and only for archives not replaced since.
  const checkedAt = lastCheck ? Date.parse(lastCheck.started_at) : NaN;
  const failedByCheck = new Map<string, string>();
  for (const f of lastCheck?.failed ?? []) {
    const own = f.where === 'local' ? f.problems.find((p) => p.startsWith('archive:') || p.startsWith('manifest:')) : undefined;
    const s = own ? local.get(f.id) : undefined;
    if (own && s && !(archiveMtime(s.archivePath) > checkedAt)) failedByCheck.set(f.id, own);
  }
  const manifests = new Map<string, Manifest | null>();
  const manifestOf = (id: string): Manifest | null => {
    if (!manifests.has(id)) manifests.set(id, local.has(id) ? readLocalManifest(local.get(id)!) : null);
    return manifests.get(id)!;
  };
  /** What is wrong with local snapshot `id`'s own files, or null. */
  const ownProblem = (id: string): string | null => {
    const s = local.get(id)!;
    if (!manifestOf(id)) return 'its manifest is missing or does not read';
    if (s.bytes === 0) return 'its archive is empty';
    const remoteBytes = remoteSizes?.get(id);
    if (remoteBytes !== undefined && remoteBytes !== s.bytes) return `its archive is ${s.bytes} bytes here but ${remoteBytes} on the remote (damaged or cut short here)`;
    // The zstd frames must end where the file does: an archive cut short is found without decompressing it.
    const framing = s.codec === 'zstd' ? zstdArchiveProblem(s.archivePath) : null;
    if (framing) return `its archive is damaged: ${framing}`;
    const failed = failedByCheck.get(id);
    if (failed !== undefined) return `the last check found it damaged (${failed})`;
    return null;
  };
  for (const entry of merged.values()) {
    if (!entry.local) continue;
    const problem = chainProblem(entry.id);
    entry.restorable = problem === null;
    if (problem !== null) entry.not_restorable_reason = problem.length > MAX_REASON ? `${problem.slice(0, MAX_REASON - 1)}…` : problem;
  }

  function chainProblem(id: string): string | null {
    const own = ownProblem(id);
    if (own) return own;
    let current = manifestOf(id)!;
    let names = new Set(current.databases.filter((d) => d.stored === 'delta').map((d) => d.name));
    const seen = new Set([id]);
    while (current.kind === 'delta' && names.size) {
      const base = current.base;
      if (!base) return `it is a delta that names no base`;
      if (seen.has(base) || seen.size > 1000) return `its chain of bases loops`;
      seen.add(base);
      if (!local.has(base)) {
        if (remoteSizes?.has(base)) return null; // a restore fetches it from the remote
        if (remoteSizes) return `its chain needs ${base}, which is neither on this machine nor on the remote`;
        return `its chain needs ${base}, which is not on this machine ${remoteConfigured ? '(the remote was not listed)' : '(no remote is configured)'}`;
      }
      const baseProblem = ownProblem(base);
      if (baseProblem) return `its chain needs ${base}: ${baseProblem}`;
      const next = manifestOf(base)!;
      names = new Set([...names].filter((n) => next.databases.find((d) => d.name === n)?.stored === 'delta'));
      current = next;
    }
    return null;
  }
}

function archiveMtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return NaN;
  }
}
