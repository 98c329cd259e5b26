import fs from 'node:fs';
import type { Config } from '../root/config.js';
import { listLocalSnapshots } from '../snapshot/store.js';
import { decideRetention } from '../snapshot/retention.js';
import type { SnapshotDiff } from './diff.js';

/** One snapshot on the card's timeline. */
export interface TimelineEntry {
  id: string;
  created_at: string;
  manual: boolean;
  /** bytes of its archive */
  bytes: number;
  kind: 'full' | 'delta' | null;
  /** why retention keeps it: 'manual', 'hourly', 'daily', …; empty when the next prune removes it */
  tiers: string[];
  /** the machine that took it, from its manifest; null when unreadable */
  host: string | null;
}

/** At most this many snapshots on the timeline (newest first). */
export const TIMELINE_MAX = 200;

/**
 * The local snapshots, newest first, with the retention tiers that keep each one and the host
 * its manifest names. Reads manifests only (no archive).
 */
export function snapshotTimeline(config: Config): { snapshots: TimelineEntry[]; more: number } {
  const all = listLocalSnapshots(config.root);
  const decision = decideRetention(all.map((s) => s.id), config.retention);
  const snapshots = all.slice(0, TIMELINE_MAX).map((s) => {
    let host: string | null = null;
    let kind: TimelineEntry['kind'] = null;
    try {
      const m = JSON.parse(fs.readFileSync(s.manifestPath, 'utf8')) as { host?: unknown; kind?: unknown };
      host = typeof m.host === 'string' ? m.host.slice(0, 200) : null;
      kind = m.kind === 'delta' ? 'delta' : 'full';
    } catch {
      /* an unreadable manifest: shown without host */
    }
    return { id: s.id, created_at: s.created_at, manual: s.manual, bytes: s.bytes, kind, tiers: decision.reasons[s.id] ?? [], host };
  });
  return { snapshots, more: Math.max(0, all.length - TIMELINE_MAX) };
}

/** A diff reduced to its counts, for a person's page: no row values, at most 50 tables per database. */
export function diffCounts(d: SnapshotDiff) {
  return {
    from: d.from,
    to: d.to,
    totals: d.totals,
    databases: d.databases.map((db) => ({
      name: db.name,
      status: db.status,
      counts: db.counts,
      schema_changes: db.schema ? Object.values(db.schema).reduce((n, v) => n + (v as unknown[]).length, 0) : 0,
      tables: db.tables.slice(0, 50).map((t) => ({ table: t.table, added: t.added, deleted: t.deleted, changed: t.changed, compared: t.compared })),
      more_tables: Math.max(0, db.tables.length - 50),
    })),
  };
}
