import { WbError } from '../core/errors.js';
import { codecFromFileName } from '../snapshot/codec.js';
import { validateManifest, type Manifest } from '../snapshot/manifest.js';
import { partsOf } from './parts.js';
import { RemoteError, type RemoteSnapshot } from './remote.js';

/** Which of a snapshot's stored files make up its archive. */
export interface ArchiveLayout {
  /** the archive's file name once joined (<id>.tar.zst or <id>.tar.gz) */
  archiveName: string;
  /** the stored names holding it, in order: [archiveName] when whole, else every part; null when a part is missing */
  pieces: string[] | null;
}

/**
 * The archive among a snapshot's stored file names (whole or split into .partNNN), or null when
 * there is none. Only a name starting with the snapshot id counts (a remote's listing is untrusted).
 */
export function archiveLayout(id: string, names: readonly string[]): ArchiveLayout | null {
  const archiveName = names.map((n) => n.replace(/\.part\d{3}$/, '')).find((n) => n.startsWith(id) && codecFromFileName(n) !== null);
  if (!archiveName) return null;
  return { archiveName, pieces: names.includes(archiveName) ? [archiveName] : partsOf(archiveName, names) };
}

/**
 * The archive of a snapshot about to be downloaded, from its stored file names, checked once for
 * every backend: the whole archive (or every part), the manifest and the checksum file must be there.
 * @throws RemoteError `incomplete` naming what is missing
 */
export function downloadableLayout(label: string, id: string, names: readonly string[]): { archiveName: string; pieces: string[] } {
  const layout = archiveLayout(id, names);
  if (!layout) throw new RemoteError('incomplete', `${label} holds no archive for ${id}.`, 'Use another snapshot.');
  if (!layout.pieces) throw new RemoteError('incomplete', `${label} holds an incomplete set of parts for ${id}.`, 'Use another snapshot.');
  if (!names.includes(`${id}.manifest.json`) || !names.includes(`${id}.sha256`)) {
    throw new RemoteError('incomplete', `${label} holds ${id} without its manifest or checksum file.`, 'Use another snapshot; the next backup run re-pushes it if it is still kept locally.');
  }
  return { archiveName: layout.archiveName, pieces: layout.pieces };
}

/**
 * What list() reports for one snapshot, from its stored file names, written once for every
 * backend: bytes are the archive's (all parts; `sizeOf` is asked only for those); complete needs
 * the whole archive (or every part), the manifest and the checksum file, and whatever the backend
 * adds (`published`: a GitHub release that is still a draft is not complete).
 */
export function describeStoredSnapshot(id: string, names: readonly string[], sizeOf: (name: string) => number, published = true): RemoteSnapshot {
  const pieces = archiveLayout(id, names)?.pieces ?? null;
  const bytes = (pieces ?? []).reduce((n, f) => n + sizeOf(f), 0);
  const complete = published && pieces !== null && names.includes(`${id}.manifest.json`) && names.includes(`${id}.sha256`);
  return { id, bytes, complete };
}

/** A manifest larger than this is not one wb-backup wrote (a remote's files are untrusted): refused unread. */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/**
 * A manifest's text read from a remote, parsed and validated for snapshot `id`, written once for
 * every backend's manifest().
 * @throws WbError `manifest_invalid` when it is not JSON, not a valid manifest, or names another snapshot
 */
export function parseRemoteManifest(label: string, id: string, text: string): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new WbError('manifest_invalid', `The manifest of ${id} on ${label} is not JSON.`, 'The copy on the remote is damaged; pick another snapshot.');
  }
  const manifest = validateManifest(raw);
  if (manifest.snapshot_id !== id) {
    throw new WbError('manifest_invalid', `The manifest stored as ${id} on ${label} describes ${manifest.snapshot_id}.`, 'The copy on the remote is damaged or was tampered with; pick another snapshot.');
  }
  return manifest;
}

/** The WbError for a manifest larger than MAX_MANIFEST_BYTES. */
export function manifestTooLarge(label: string, id: string, bytes: number): WbError {
  return new WbError('manifest_invalid', `The manifest of ${id} on ${label} is ${bytes} bytes, more than any wb-backup writes.`, 'The copy on the remote is damaged or was tampered with; pick another snapshot.');
}
