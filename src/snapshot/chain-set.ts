import fs from 'node:fs';
import { WbError } from '../core/errors.js';
import { chainOf, type ChainSnapshot } from './chain.js';
import { validateManifest, type Manifest, type ManifestDatabase } from './manifest.js';
import { listLocalSnapshots, type LocalSnapshot } from './store.js';

/**
 * The chains of the local snapshots, read from their manifest copies (small files; no archive is
 * opened). A version 1 snapshot is a full. A snapshot whose manifest does not read counts as a
 * damaged full: nothing is based on it, and a delta based on it has a damaged chain.
 */

/** The manifest copy of a local snapshot, validated; null when it is missing or does not read. */
export function readLocalManifest(snapshot: LocalSnapshot): Manifest | null {
  try {
    const m = validateManifest(JSON.parse(fs.readFileSync(snapshot.manifestPath, 'utf8')));
    return m.snapshot_id === snapshot.id ? m : null;
  } catch {
    return null;
  }
}

/** What the chain rule (chain.ts) needs of a snapshot, from its manifest (null: unreadable). */
export function chainSnapshotOf(id: string, manifest: Manifest | null, bytes: number, at: number): ChainSnapshot {
  if (!manifest) return { id, kind: 'full', base: null, bytes, at, intact: false };
  const delta = manifest.kind === 'delta' && manifest.base;
  return { id, kind: delta ? 'delta' : 'full', base: delta ? manifest.base! : null, bytes, at };
}

/** Every local snapshot as the chain rule sees it, newest first, with its manifest. */
export function localChainSnapshots(root: string, snapshots: readonly LocalSnapshot[] = listLocalSnapshots(root)): Array<ChainSnapshot & { snapshot: LocalSnapshot; manifest: Manifest | null }> {
  return snapshots.map((s) => {
    const manifest = readLocalManifest(s);
    return { ...chainSnapshotOf(s.id, manifest, s.bytes, Date.parse(s.created_at)), snapshot: s, manifest };
  });
}

/** One archive a database's image is rebuilt from: the snapshot and how it holds the database. */
export interface DatabaseLink {
  snapshotId: string;
  entry: ManifestDatabase;
}

/**
 * The archives needed to rebuild database `name` of snapshot `id`, in the order a restore applies
 * them: the snapshot holding its image first, then each delta up to `id`. Follows each delta's base
 * snapshot and checks every link (the base holds the database, its image sha256 is the one the delta
 * was made against). `manifestOf` returns a snapshot's validated manifest or null when it is not
 * available.
 * @throws WbError `restore_refused` naming the missing or mismatching link, before anything is staged
 */
export function databaseChain(manifestOf: (id: string) => Manifest | null, id: string, name: string, maxLinks = 1000): DatabaseLink[] {
  const links: DatabaseLink[] = [];
  let current = manifestOf(id);
  if (!current) throw new WbError('not_found', `Snapshot ${id} is not available.`, 'List the snapshots with data_backup_list (or `wb-backup list`) and pick one that is.');
  let entry = current.databases.find((d) => d.name === name);
  if (!entry) throw new WbError('not_found', `Snapshot ${id} does not hold database ${name}.`);
  for (;;) {
    links.push({ snapshotId: current.snapshot_id, entry });
    if (entry.stored !== 'delta') return links.reverse();
    if (links.length > maxLinks) throw refused(id, name, `its chain is longer than ${maxLinks} snapshots (a loop?)`);
    const baseId: string | null | undefined = current.base;
    if (!baseId) throw refused(id, name, `${current.snapshot_id} stores it as a delta but names no base`);
    const base = manifestOf(baseId);
    if (!base) throw refused(id, name, `its base snapshot ${baseId} (needed by ${current.snapshot_id}) is missing or its manifest is damaged`);
    const baseEntry = base.databases.find((d) => d.name === name);
    if (!baseEntry) throw refused(id, name, `its base snapshot ${baseId} does not hold ${name}`);
    if (baseEntry.sha256 !== entry.delta!.base_sha256) throw refused(id, name, `the delta in ${current.snapshot_id} was made against another image of ${name} than the one ${baseId} holds (sha256 differs)`);
    current = base;
    entry = baseEntry;
  }
}

function refused(id: string, name: string, why: string): WbError {
  return new WbError('restore_refused', `Cannot rebuild ${name} from snapshot ${id}: ${why}. Nothing was changed.`, 'Restore an older snapshot whose chain is whole (data_backup_list shows each snapshot\'s base), or fetch the missing snapshot from the remote.');
}

/** The chain (full first) of snapshot `id` among the local snapshots, for messages and retention. */
export function localChainIds(root: string, id: string): string[] {
  return chainOf(localChainSnapshots(root), id).ids;
}
