import fs from 'node:fs';
import path from 'node:path';
import { WbError } from '../core/errors.js';
import { hashFile } from '../core/hash.js';
import { applyDeltaChainInPlace } from '../pages/delta.js';
import { databaseChain, readLocalManifest } from '../snapshot/chain-set.js';
import { verifyAgainstChecksums } from '../snapshot/checksums.js';
import { storedBytes, storedEntry, type Manifest, type ManifestDatabase } from '../snapshot/manifest.js';
import { listLocalSnapshots, type LocalSnapshot } from '../snapshot/store.js';
import { extractArchive } from './extract.js';
import { crashPoint } from './journal.js';

/**
 * Rebuilding a database stored as a page delta: its chain (the snapshot holding its image, then
 * each delta up to the snapshot restored) is resolved from the local manifests before anything is
 * staged; then the image is unpacked from the first archive, each delta applied to it in place, and
 * the result hashed once against the target's sha256. From there it is an unpacked image like any
 * other (stage.ts verifies it the same way).
 */

/** One archive of a chain: the local snapshot and how it holds the database. */
export interface ChainLink {
  snapshot: LocalSnapshot;
  entry: ManifestDatabase;
}

/** Database name -> its chain, the image first, the restored snapshot's own delta last. */
export type DatabaseChains = ReadonlyMap<string, readonly ChainLink[]>;

/**
 * The chains of the `entries` of `target` that are stored as deltas (the others need none), read
 * from the local snapshots' manifests: `manifest` is the target's own, already verified. `extra`:
 * snapshots outside `root` the chains may use too (a check's links fetched from the remote).
 * @throws WbError `restore_refused` naming the missing or mismatching base (see databaseChain), before
 *   anything is staged
 */
export function resolveChains(root: string, target: LocalSnapshot, manifest: Manifest, entries: readonly ManifestDatabase[], extra: readonly LocalSnapshot[] = []): Map<string, ChainLink[]> {
  const chains = new Map<string, ChainLink[]>();
  const deltas = entries.filter((e) => e.stored === 'delta');
  if (!deltas.length) return chains;
  const local = new Map(listLocalSnapshots(root).map((s) => [s.id, s] as const));
  for (const s of extra) if (!local.has(s.id)) local.set(s.id, s);
  local.set(target.id, target);
  const manifests = new Map<string, Manifest | null>([[target.id, manifest]]);
  const manifestOf = (id: string): Manifest | null => {
    if (!manifests.has(id)) {
      const s = local.get(id);
      manifests.set(id, s ? readLocalManifest(s) : null);
    }
    return manifests.get(id)!;
  };
  for (const e of deltas) {
    const links = databaseChain(manifestOf, target.id, e.name);
    chains.set(e.name, links.map((l) => ({ snapshot: local.get(l.snapshotId)!, entry: l.entry })));
  }
  return chains;
}

/** Bytes a chain writes into staging: its image, then each delta. */
export function chainBytes(links: readonly ChainLink[]): number {
  return links.reduce((n, l) => n + storedBytes(l.entry), 0);
}

/** Where the entries of a chain archive are unpacked: `<work>/<snapshot id>/<entry>`. */
export function linkFile(workRoot: string, link: ChainLink): string {
  return path.join(workRoot, link.snapshot.id, ...storedEntry(link.entry).split('/'));
}

/**
 * Unpacks from every archive of the chains, except snapshot `skip` (the caller unpacks it), only
 * the entries the chains need, into `<workRoot>/<id>/`. Each archive's manifest checksum is checked
 * first, its archive checksum while it unpacks (a mismatch is reported as such before an unpacking
 * error), and the manifest inside it must be the one beside it.
 * @returns the sha256 of each file written, by absolute path, except the image of a chain with
 *   deltas (not hashed here: the rebuilt image's sha256 covers it)
 * @throws WbError `archive_invalid` (checksum, damaged or unsafe archive), `manifest_invalid`, `disk_full`
 */
export async function unpackChainArchives(chains: DatabaseChains, skip: string | null, workRoot: string, onBytes?: (bytes: number) => void): Promise<Map<string, string>> {
  const bySnapshot = new Map<string, { snapshot: LocalSnapshot; files: Set<string>; images: Set<string> }>();
  for (const links of chains.values()) {
    links.forEach((l, i) => {
      if (l.snapshot.id === skip) return;
      const at = bySnapshot.get(l.snapshot.id) ?? { snapshot: l.snapshot, files: new Set<string>(), images: new Set<string>() };
      at.files.add(storedEntry(l.entry));
      // A chain's image is hashed once, rebuilt (rebuildFromChain): hashing it here too would cost
      // a second pass over the largest file, and the final sha256 covers every byte of it.
      if (i === 0 && links.length > 1) at.images.add(storedEntry(l.entry));
      bySnapshot.set(l.snapshot.id, at);
    });
  }
  const shas = new Map<string, string>();
  // A few archives at a time: the deltas are small, and each unpacks beside the others (zstd runs
  // in its own process); the first problem in chain order is reported once all have stopped.
  const jobs = [...bySnapshot.values()];
  const problems: unknown[] = new Array(jobs.length).fill(null);
  let nextJob = 0;
  const worker = async () => {
    for (let i = nextJob++; i < jobs.length; i = nextJob++) {
      const { snapshot, files, images } = jobs[i]!;
      problems[i] = await unpackOne(snapshot, files, images, path.join(workRoot, snapshot.id), shas, onBytes).then(
        () => null,
        (err: unknown) => err,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(CHAIN_UNPACK_CONCURRENCY, jobs.length) }, worker));
  const problem = problems.find((p) => p !== null);
  if (problem) throw problem;
  return shas;
}

const CHAIN_UNPACK_CONCURRENCY = 3;

/** One chain archive: its manifest's checksum, then its entries `files` into `into`, checked against its checksum as they unpack. */
async function unpackOne(snapshot: LocalSnapshot, files: ReadonlySet<string>, images: ReadonlySet<string>, into: string, shas: Map<string, string>, onBytes?: (bytes: number) => void): Promise<void> {
  await verifyAgainstChecksums(snapshot.checksumPath, snapshot.manifestPath);
  const manifest = readLocalManifest(snapshot);
  if (!manifest || manifest.codec !== snapshot.codec) {
    throw new WbError('manifest_invalid', `The manifest of ${snapshot.id}, a snapshot the restore's chain needs, does not read or names another snapshot or codec. Nothing was restored.`, 'Restore an older snapshot whose chain is whole.');
  }
  const expected = new Map([...manifest.databases.map((d) => [storedEntry(d), storedBytes(d)] as const), ['MANIFEST.json', fs.statSync(snapshot.manifestPath).size] as const]);
  const archiveChecked = verifyAgainstChecksums(snapshot.checksumPath, snapshot.archivePath).then(
    () => null,
    (err: unknown) => err,
  );
  const unpackProblem = await extractArchive(snapshot.archivePath, snapshot.codec, into, {
    expected,
    wanted: new Set([...files, 'MANIFEST.json']),
    unhashed: images,
    onFile: (file, sha) => {
      if (sha !== null) shas.set(path.join(into, ...file.split('/')), sha);
    },
    ...(onBytes ? { onBytes } : {}),
  }).then(
    () => null,
    (err: unknown) => err,
  );
  const archiveProblem = await archiveChecked;
  if (archiveProblem) throw archiveProblem;
  if (unpackProblem) throw unpackProblem;
  if (fs.readFileSync(path.join(into, 'MANIFEST.json'), 'utf8') !== fs.readFileSync(snapshot.manifestPath, 'utf8')) {
    throw new WbError('archive_invalid', `The manifest inside the archive of ${snapshot.id} differs from the one beside it. Nothing was restored.`, 'Restore an older snapshot whose chain is whole.');
  }
}

/**
 * Rebuilds one database from its chain into `out` (which must not exist): the first link's image
 * (when its sha256 was taken as it was unpacked, it must be its manifest's) is moved there, then
 * the deltas are applied in place in one pass (applyDeltaChainInPlace: each changed page written
 * once), each checked to describe the image its manifest does (page count and the sha256 its
 * trailer records; its header names the previous link's sha256). The
 * rebuilt file is then hashed once: that sha256 covers the image's bytes and every delta's, so the
 * image is not hashed on its own (a second pass over the largest file).
 * @param fileOf where each link's stored entry was unpacked
 * @param shas the sha256 of unpacked files, by path (unpackChainArchives)
 * @returns the sha256 of the rebuilt image: the caller compares it with the restored entry's
 * @throws WbError `restore_refused` (an image or base that is not what the manifests say),
 *   `archive_invalid` (a damaged delta); the caller discards the staged file either way
 */
export async function rebuildFromChain(links: readonly ChainLink[], fileOf: (link: ChainLink) => string, shas: ReadonlyMap<string, string>, out: string): Promise<string> {
  const first = links[0]!;
  const name = first.entry.name;
  const image = fileOf(first);
  const unpacked = shas.get(image);
  if (unpacked !== undefined && unpacked !== first.entry.sha256) {
    throw new WbError('restore_refused', `Refusing to restore ${name}: its image in ${first.snapshot.id}, the full copy its chain starts from, does not match the checksum in that snapshot's manifest. Nothing was changed.`, 'Restore an older snapshot whose chain is whole.');
  }
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.renameSync(image, out);
  // An image alone (a full snapshot's, for export) was hashed as it was unpacked.
  if (links.length === 1 && unpacked !== undefined) return unpacked;
  const deltas = links.slice(1);
  const steps = deltas.map((link, i) => {
    const prev = links[i]!;
    return { file: fileOf(link), base: { snapshotId: prev.snapshot.id, db: name, baseSha256: prev.entry.sha256, basePageCount: prev.entry.page_count }, label: `snapshot ${link.snapshot.id}` };
  });
  const applied = await applyDeltaChainInPlace(out, steps, () => crashPoint('after-delta-applied')).catch((err: unknown) => {
    // The restore stops there; the staged file is discarded.
    if (err instanceof WbError && err.code === 'archive_invalid') throw new WbError('archive_invalid', `${err.message.replace(/\.$/, '')} (${name}). Nothing was restored.`, err.hint);
    throw err;
  });
  applied.steps.forEach((step, i) => {
    const link = deltas[i]!;
    if (step.imageSha256 !== link.entry.sha256 || step.pageCount !== link.entry.page_count) {
      throw new WbError('archive_invalid', `The delta of ${name} in ${link.snapshot.id} rebuilds another image than its manifest describes. Nothing was restored.`, 'Restore an older snapshot whose chain is whole.');
    }
  });
  for (const step of steps) fs.rmSync(step.file, { force: true });
  return (await hashFile(out)).sha256;
}
