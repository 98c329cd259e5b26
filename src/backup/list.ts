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
  let remoteInfo: SnapshotList['remote'] = { configured: false, listed: false, reason: 'No remote is configured.' };
  if (remote) {
    remoteInfo = { configured: true, label: remote.label, listed: false };
    if (where !== 'local') {
      try {
        let sum = 0;
        for (const r of await remote.list()) {
          if (!r.complete) continue; // a half-done push is not a copy anyone can restore
          if (counted(r.id)) sum += r.bytes;
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
