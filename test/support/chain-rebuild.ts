/**
 * Rebuilds a database of a snapshot from its chain, by hand, the way docs/formats.md ("Chains")
 * describes: the image from the chain's full, then each delta applied in turn with
 * src/pages/delta.ts applyDelta (which checks every link's base sha256 and the rebuilt image's).
 * Works on any folder holding `<id>.manifest.json` and `<id>.tar.zst|.tar.gz` side by side (a
 * local backups folder, or snapshots downloaded from a remote into one). Used by the incremental
 * property tests and bench/incremental.ts until restore and `wb-backup export` read chains.
 */
import fs from 'node:fs';
import path from 'node:path';
import { extractArchive } from '../../src/restore/extract.js';
import { applyDelta } from '../../src/pages/delta.js';
import { databaseChain } from '../../src/snapshot/chain-set.js';
import { validateManifest, type Manifest } from '../../src/snapshot/manifest.js';
import { archiveExtension } from '../../src/snapshot/codec.js';
import { hashFile } from '../../src/core/hash.js';

/** A snapshot's manifest copy in `dir`, validated; null when it is not there. */
export function manifestIn(dir: string, id: string): Manifest | null {
  const file = path.join(dir, `${id}.manifest.json`);
  if (!fs.existsSync(file)) return null;
  return validateManifest(JSON.parse(fs.readFileSync(file, 'utf8')));
}

/** Unpacks one archive entry of snapshot `id` (in `dir`) into `into`; returns the file's path. */
async function extractEntry(dir: string, manifest: Manifest, entry: string, into: string): Promise<string> {
  const id = manifest.snapshot_id;
  const archive = path.join(dir, `${id}${archiveExtension(manifest.codec)}`);
  const expected = new Map<string, number>([['MANIFEST.json', fs.statSync(path.join(dir, `${id}.manifest.json`)).size]]);
  for (const d of manifest.databases) {
    if (d.stored === 'delta' && d.delta) expected.set(d.delta.file, d.delta.bytes);
    else expected.set(d.file, d.bytes);
  }
  await extractArchive(archive, manifest.codec, into, { expected, wanted: new Set([entry]) });
  return path.join(into, ...entry.split('/'));
}

export interface Rebuilt {
  /** the rebuilt image */
  file: string;
  sha256: string;
  /** snapshot ids read, full first */
  chain: string[];
}

/**
 * Rebuilds database `name` of snapshot `id` into `out` (must not exist), using `work` (created,
 * then removed) for the unpacked archives. Throws what databaseChain/applyDelta throw
 * (`restore_refused` for a missing or mismatching link, `archive_invalid` for a damaged delta).
 */
export async function rebuildDatabase(dir: string, id: string, name: string, out: string, work: string): Promise<Rebuilt> {
  const links = databaseChain((sid) => manifestIn(dir, sid), id, name);
  fs.mkdirSync(work, { recursive: true });
  try {
    let current: string | null = null;
    for (const [i, link] of links.entries()) {
      const manifest = manifestIn(dir, link.snapshotId)!;
      const into = path.join(work, String(i));
      fs.mkdirSync(into);
      if (link.entry.stored !== 'delta') {
        current = await extractEntry(dir, manifest, link.entry.file, into);
        continue;
      }
      const delta = await extractEntry(dir, manifest, link.entry.delta!.file, into);
      const next = path.join(into, 'rebuilt.db');
      await applyDelta({ base: current!, delta, out: next, expectBase: { snapshotId: manifest.base!, db: name } });
      fs.rmSync(delta);
      // The previous image is no longer needed: keep at most two on disk.
      fs.rmSync(path.dirname(current!), { recursive: true, force: true });
      current = next;
    }
    fs.renameSync(current!, out);
    return { file: out, sha256: (await hashFile(out)).sha256, chain: links.map((l) => l.snapshotId) };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
