import fs from 'node:fs';
import path from 'node:path';
import { readMirrorManifestIn, replacedManifestIn } from './mirror-manifest.js';
import { nameOfSegment, tableLabel, tableOfMirrorPath, tablePathsOf } from './mirror-paths.js';
import { listFiles, sameBytes } from './tree-files.js';
import { formatBytes } from '../core/size-format.js';

/** One table's change in a push: its key ("db/table") and the bytes of its new or changed files. */
export interface TableChange {
  table: string;
  bytes: number;
}

/**
 * Which changed tables wait for a later push so that this one stays under `budget` bytes, pure:
 * tables are taken in name order while they fit; a table that does not fit waits, and smaller ones
 * after it may still go. Every sync pushes the next tables in line, so a large first mirror arrives
 * over several syncs instead of never.
 */
export function tablesOverBudget(changes: readonly TableChange[], budget: number): TableChange[] {
  let used = 0;
  const deferred: TableChange[] = [];
  for (const c of [...changes].sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0))) {
    if (used + c.bytes <= budget) used += c.bytes;
    else deferred.push(c);
  }
  return deferred;
}

/** Why a table waits: for its turn, or for a larger cap (it cannot fit in any single push). */
export function deferralReason(c: TableChange, budget: number): string {
  return c.bytes > budget
    ? `its changes (${formatBytes(c.bytes)}) are larger than the per-push cap of ${formatBytes(budget)} on their own, so no sync can push them: raise sync.github.max_push_bytes or exclude the table (the mirror keeps its previous version)`
    : `over the per-push cap of ${formatBytes(budget)} with the other changes; a later sync pushes it (the mirror keeps its previous version until then)`;
}

/** "db/table" of a mirror file (`<db>/<table>.jsonl` or `<db>/<table>/<file>`, see mirror-paths.ts), or null for schema.sql, manifest.json, README.md. */
export function tableOfPath(file: string): string | null {
  const t = tableOfMirrorPath(file);
  return t ? tableLabel(t) : null;
}

/** The tables that must wait for a later push so that laying `fresh` over the clone stays under `budget` bytes. Reads only. */
export function planDeferral(repo: string, fresh: string, budget: number): TableChange[] {
  const files = listFiles(fresh);
  // Usually the whole mirror is under the cap: sizes alone say so, without reading any file
  // (applyMirror compares the bytes right after this).
  if (files.reduce((n, f) => n + fs.statSync(path.join(fresh, f)).size, 0) <= budget) return [];
  const changes = new Map<string, number>();
  for (const file of files) {
    const table = tableOfPath(file);
    if (!table) continue;
    const bytes = !sameBytes(path.join(fresh, file), path.join(repo, file)) ? fs.statSync(path.join(fresh, file)).size : 0;
    changes.set(table, (changes.get(table) ?? 0) + bytes);
  }
  return tablesOverBudget(
    [...changes].filter(([, bytes]) => bytes > 0).map(([table, bytes]) => ({ table, bytes })),
    budget,
  );
}

/**
 * Put `deferred` tables in `view` (a copy of the fresh materialization) back to what the clone's
 * parent commit holds: their files and their manifest entry (or nothing when the parent has none),
 * and list them in the manifest's `skipped`. The commit stays self-consistent: every manifest entry
 * describes the files beside it.
 */
export function applyDeferral(repo: string, view: string, deferred: readonly TableChange[], budget: number): void {
  const manifestFile = path.join(view, 'manifest.json');
  // The fresh mirror's manifest is ours: one that cannot be read is a bug, thrown as is.
  const manifest = readMirrorManifestIn(view, { where: 'of the fresh mirror', hint: 'Report this as a wb-backup bug.' });
  if (!manifest) throw new Error('the fresh mirror has no manifest.json');
  const parent = replacedManifestIn(repo);
  for (const change of deferred) {
    const { table } = change;
    const cut = table.indexOf('/');
    const segments = { db: table.slice(0, cut), table: table.slice(cut + 1) };
    // Both shapes a table can take (JSONL file, documents folder) go back to the parent's.
    const paths = tablePathsOf(segments);
    for (const rel of [paths.jsonl, paths.folder]) {
      fs.rmSync(path.join(view, rel), { recursive: true, force: true });
      if (fs.existsSync(path.join(repo, rel))) fs.cpSync(path.join(repo, rel), path.join(view, rel), { recursive: true });
    }
    // The paths hold segments (names.ts); the manifests are keyed by the names they stand for.
    const db = nameOfSegment(segments.db, Object.keys(manifest.databases)) ?? nameOfSegment(segments.db, Object.keys(parent?.databases ?? {}));
    const name = nameOfSegment(segments.table, [...Object.keys((db && manifest.databases[db]?.tables) || {}), ...Object.keys((db && parent?.databases[db]?.tables) || {})]);
    if (db === undefined || name === undefined) {
      manifest.skipped.push({ path: table, reason: deferralReason(change, budget) });
      continue;
    }
    const entries = manifest.databases[db]?.tables;
    const parentTables = parent?.databases[db]?.tables;
    const before = parentTables && Object.hasOwn(parentTables, name) ? parentTables[name] : undefined;
    if (entries) {
      if (before) Object.defineProperty(entries, name, { value: before, enumerable: true, writable: true, configurable: true });
      else delete entries[name];
    }
    manifest.skipped.push({ path: table, reason: deferralReason(change, budget) });
  }
  fs.writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
}
