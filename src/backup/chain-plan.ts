import fs from 'node:fs';
import type { Config } from '../root/config.js';
import { logger } from '../core/log.js';
import { describeError } from '../core/errors.js';
import { chainOf, decideNext, type ChainPolicy, type FullReason } from '../snapshot/chain.js';
import { localChainSnapshots } from '../snapshot/chain-set.js';
import { snapshotHost } from '../snapshot/id.js';
import { configuredHost } from '../root/host.js';
import { fileStamp, stillVerified, verifyAgainstChecksums, type VerifiedArchive } from '../snapshot/checksums.js';
import { readPageSet, type PageSet } from '../pages/page-set.js';
import { readLastCheck } from '../check/record.js';
import { encodePageIndex } from '../pages/page-index.js';
import type { FileIdentity } from './hot-copy-core.js';

/** What the next snapshot is: a full, or a delta against `base` with each database's base index. */
export interface ChainPlan {
  kind: 'full' | 'delta';
  /** the base snapshot of a delta; null for a full */
  base: string | null;
  reason?: FullReason;
  /** for a full: why, in words */
  why?: string;
  /** per database name: what its delta is made against (absent: stored whole) */
  bases: Map<string, { snapshotId: string; db: string; index: Uint8Array; file: FileIdentity | null }>;
  /** the archives of the newest snapshot's chain found whole now (recorded in the new snapshot's `.pages`) */
  verified: VerifiedArchive[];
  /** archives of that chain read in full to find them whole (the others' files had not changed since) */
  reread: number;
}

const WHY: Record<FullReason, string> = {
  no_base: 'there is no earlier snapshot to build on',
  base_damaged: "the newest snapshot's chain is damaged or incomplete",
  full_too_old: 'the last full snapshot is older than backup.incremental.full_every_hours',
  deltas_too_big: "the deltas since the last full add up to backup.incremental.max_delta_share of the full's size",
  chain_too_long: 'the chain already has backup.incremental.max_deltas deltas',
  vacuum: 'a database was vacuumed',
  page_size_changed: "a database's page size changed",
  file_replaced: 'a database file was replaced',
  forced: 'a full snapshot was asked for',
};

/** The chain rule's policy from the configuration (backup.incremental). */
export function chainPolicy(config: Config): ChainPolicy {
  const inc = config.backup.incremental;
  return { maxFullAgeMs: Math.round(inc.full_every_hours * 3600_000), maxDeltas: inc.max_deltas, maxDeltaShare: inc.max_delta_share };
}

/**
 * Decides the next snapshot (snapshot/chain.ts decideNext) from the local snapshots, checking the
 * base's whole chain first: each archive against its checksums (a damaged or missing base makes
 * this one a full), and the base's page-hash indexes (`<id>.pages`; none or damaged: a full).
 * An archive is read in full only when the newest snapshot's `.pages` does not vouch for it: not
 * recorded there as found whole, its file changed since (inode, size, mtime), its checksum line
 * changed, or the last `check` (last_check.json) failed it. So each archive is read once, not at
 * every snapshot; `check --read-data` reads them all again (and a failure it finds is read again here).
 * Each database gets a base only when the base snapshot holds it with the same image sha256 as
 * its index. Never throws for a damaged base: that is what a full snapshot is for.
 */
export async function planChain(config: Config, now: Date, opts: { full: boolean; signal?: AbortSignal }): Promise<ChainPlan> {
  const verified: VerifiedArchive[] = [];
  let reread = 0;
  const full = (reason: FullReason, why = WHY[reason]): ChainPlan => ({ kind: 'full', base: null, reason, why, bases: new Map(), verified: [], reread });
  if (!config.backup.incremental.enabled) return full('forced', 'incremental snapshots are turned off (backup.incremental.enabled: false)');
  if (opts.full) return full('forced');
  // Only this machine's snapshots are bases: another machine's (downloaded to be restored) is
  // neither pushed nor swept by this one, so a chain through it could not be kept whole.
  const host = configuredHost(config);
  const snapshots = localChainSnapshots(config.root).filter((s) => snapshotHost(s.id, host) === host);
  const newest = snapshots[0];
  if (!newest) return full('no_base');
  let newestPages: PageSet | null = null;
  let pagesProblem: unknown = null;
  if (fs.existsSync(newest.snapshot.pagesPath)) {
    try {
      newestPages = readPageSet(newest.snapshot.pagesPath, newest.id);
    } catch (err) {
      pagesProblem = err;
    }
  }
  const vouched = new Map((newestPages?.verified ?? []).map((v) => [v.id, v]));
  const failedByCheck = new Set((readLastCheck(config.root)?.failed ?? []).filter((f) => f.where === 'local').map((f) => f.id));
  // The chain a delta would extend must be whole: every archive there and matching its checksums.
  const chain = chainOf(snapshots, newest.id);
  for (const id of chain.ids) {
    if (opts.signal?.aborted) break;
    const s = snapshots.find((x) => x.id === id)!;
    const record = vouched.get(id);
    if (record && !failedByCheck.has(id) && stillVerified(record, s.snapshot.checksumPath, s.snapshot.archivePath)) {
      verified.push(record);
      continue;
    }
    try {
      reread++;
      const stamp = fileStamp(s.snapshot.archivePath);
      const sha256 = await verifyAgainstChecksums(s.snapshot.checksumPath, s.snapshot.archivePath);
      const after = fileStamp(s.snapshot.archivePath);
      // Recorded only when the file did not change while it was read.
      if (stamp && after && JSON.stringify(stamp) === JSON.stringify(after)) verified.push({ id, sha256, stamp });
    } catch (err) {
      s.intact = false;
      logger().warn({ snapshot: id, reason: describeError(err) }, 'a snapshot of the chain is damaged; the next snapshot is a full one');
    }
  }
  const decision = decideNext(snapshots, now.getTime(), {}, chainPolicy(config));
  if (decision.kind === 'full') return full(decision.reason);
  const base = snapshots.find((s) => s.id === decision.base)!;
  if (!fs.existsSync(base.snapshot.pagesPath)) return full('no_base', `the newest snapshot ${base.id} has no page-hash indexes (taken by an older wb-backup or downloaded from a remote)`);
  if (pagesProblem || !newestPages || base.id !== newest.id) return full('base_damaged', pagesProblem ? describeError(pagesProblem) : undefined);
  const pageSet = newestPages;
  const bases: ChainPlan['bases'] = new Map();
  for (const d of base.manifest?.databases ?? []) {
    const entry = pageSet.databases.get(d.name);
    if (!entry || entry.index.imageSha256 !== d.sha256) continue;
    bases.set(d.name, { snapshotId: base.id, db: d.name, index: encodePageIndex(entry.index), file: entry.file });
  }
  if (bases.size === 0) return full('no_base', `the newest snapshot ${base.id} has no usable page-hash index for any database`);
  return { kind: 'delta', base: base.id, bases, verified, reread };
}
