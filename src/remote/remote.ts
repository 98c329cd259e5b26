import { z } from 'zod';
import type { Manifest } from '../snapshot/manifest.js';

/**
 * The Remote contract: one small interface for off-machine copies, one folder per backend
 * (remote/dir/, remote/github/), registered in registry.ts. A snapshot on a remote is the same
 * three files as locally:
 *   <id>.tar.zst|.tar.gz  (split into <name>.part001, .part002, … when larger than the part size)
 *   <id>.manifest.json
 *   <id>.sha256           (checksums of the whole archive and the manifest: parts are joined, then verified)
 *
 * Rules every method keeps (test/support/remote-suite.ts holds every backend to them):
 * - Failures of the remote are RemoteError with a `kind` (RemoteErrorKind); callers decide by the
 *   kind, never by the text. A failure of this machine's own disk (the folder download writes
 *   into, ENOSPC) is the plain Node error, and the retry wrapper does not retry it.
 * - Every method takes an optional AbortSignal. Once it fires, the method stops promptly (running
 *   child processes are killed, streams destroyed) and rejects with kind 'cancelled'; what it left
 *   half-done is never reported as complete by list(), and the next push converges.
 * - Backends do one attempt per call. Retrying transient failures is retry.ts's wrapper, applied by
 *   the registry to every backend, so methods must be safe to call again after any failure.
 * - push() and download() call `onBytes` (when given) while they transfer, with the bytes of the
 *   snapshot's files (archive or parts, manifest, checksum file) sent or received so far by this
 *   call: a running total, not increments, growing, ending at the sum of the files' sizes when
 *   something was transferred (nothing is reported when nothing had to be). A backend that cannot
 *   see its transfer (gh without a readable /proc) reports only that final total. A retried
 *   attempt starts over from 0 in the backend; the retry wrapper passes on only values above the
 *   largest already passed, so a caller of a registry remote sees a strictly increasing count.
 */
export interface SnapshotFiles {
  id: string;
  /** absolute paths of the local files */
  archivePath: string;
  manifestPath: string;
  checksumPath: string;
}

export const RemoteSnapshotSchema = z.object({
  id: z.string(),
  /** total archive bytes (all parts) */
  bytes: z.number(),
  /** true when every file of the snapshot is there (a half-done push is not complete) */
  complete: z.boolean(),
  /** true for a snapshot a delete started on and did not finish (never complete): the next sweep finishes it */
  deleting: z.boolean().optional(),
});
export type RemoteSnapshot = z.infer<typeof RemoteSnapshotSchema>;

export interface PushResult {
  /** false when the remote already had this snapshot complete: pushing is idempotent */
  uploaded: boolean;
  /** attempts it took, retries of transient faults included (1 from a backend; the retry wrapper counts) */
  attempts: number;
}

/** Options every Remote method takes. */
export interface RemoteCallOptions {
  /** stop promptly and reject with RemoteError kind 'cancelled' when this fires */
  signal?: AbortSignal;
  /** push and download: bytes transferred so far by this call, a growing running total (see the rules above) */
  onBytes?: (bytes: number) => void;
}

export interface Remote {
  /** for messages: "github:owner/name" or "dir:<name>" (never a full user path) */
  readonly label: string;
  /**
   * Every snapshot the remote holds something of, in any order: complete ones and half-pushed ones
   * (complete: false, bytes: what of the archive is there). Entries whose name is not a snapshot id
   * are left out. An empty remote is []. Fails with 'transient' (unreachable), 'auth', 'refused'.
   */
  list(opts?: RemoteCallOptions): Promise<RemoteSnapshot[]>;
  /**
   * Make the remote hold this snapshot completely. Idempotent: when the remote already has it
   * complete (same checksum file), nothing is sent and `uploaded` is false. After a partial or
   * cancelled push, the next push completes or replaces what is there (never a duplicate), so
   * calling it again converges. A snapshot counts as pushed only when this resolves. Fails with
   * 'transient', 'auth', 'refused', 'full' (no space on the remote) or 'cancelled'.
   */
  push(snapshot: SnapshotFiles, opts?: RemoteCallOptions): Promise<PushResult>;
  /**
   * Fetch the snapshot's files into `dir` (created if needed; parts joined into the archive) and
   * return their paths. The checksums are not verified here: restore verifies them. Fails with
   * 'not_found' only when the remote answered that it has no such snapshot; 'incomplete' when it
   * holds part of it; 'transient' when it could not be read (network, I/O), which is never 'not_found'.
   */
  download(id: string, dir: string, opts?: RemoteCallOptions): Promise<SnapshotFiles>;
  /**
   * The snapshot's manifest (<id>.manifest.json), read without fetching its archive: what a chain
   * walk needs (kind, base) costs one small file. Validated (snapshot/manifest.ts validateManifest)
   * and checked to name `id`. Fails with RemoteError 'not_found' when the remote has no such
   * snapshot; 'incomplete' when it holds the snapshot without a manifest; 'transient' when it could
   * not be read; 'auth', 'refused', 'cancelled' as the other methods. A manifest that was read but
   * is not a valid one for `id` (damaged, tampered with, larger than MAX_MANIFEST_BYTES) is a
   * WbError 'manifest_invalid': the remote answered, so retrying does not help.
   */
  manifest(id: string, opts?: RemoteCallOptions): Promise<Manifest>;
  /**
   * Remove the snapshot (complete or not) from the remote. Deleting one that is not there
   * succeeds: it is already gone. Fails with 'transient', 'auth', 'refused' or 'cancelled'.
   */
  delete(id: string, opts?: RemoteCallOptions): Promise<void>;
}

/**
 * What a remote failure means, so callers decide without reading the text:
 * - not_found: the remote answered that it has no such snapshot (download only)
 * - incomplete: the snapshot is there but lacks files (a half-done push); push it again or use another
 * - transient: the remote could not be reached or read (network, 5xx, unmounted folder, I/O);
 *   retrying later may help, and the retry wrapper does
 * - auth: credentials were refused; a person must sign in again
 * - refused: the remote refused the request for good (missing repository, bad setting, gh missing)
 * - full: the remote has no space left
 * - cancelled: the caller's AbortSignal fired
 */
export type RemoteErrorKind = 'not_found' | 'incomplete' | 'transient' | 'auth' | 'refused' | 'full' | 'cancelled';

/** Why a remote operation failed, what kind of failure it is, and what to do about it. */
export class RemoteError extends Error {
  constructor(
    readonly kind: RemoteErrorKind,
    message: string,
    /** what the user or agent should do about it */
    readonly hint: string,
    /** attempts made before giving up, retries included (set by the retry wrapper) */
    readonly attempts?: number,
  ) {
    super(message);
    this.name = 'RemoteError';
  }

  /** true when trying again later could help (only kind 'transient') */
  get transient(): boolean {
    return this.kind === 'transient';
  }

  /** The same error with the attempt count the retry wrapper made. */
  withAttempts(attempts: number): RemoteError {
    return new RemoteError(this.kind, this.message, this.hint, attempts);
  }
}

/** The RemoteError a cancelled call rejects with. */
export function cancelledError(label: string, what: string): RemoteError {
  return new RemoteError('cancelled', `${what} on ${label} was cancelled.`, 'Nothing half-done counts as on the remote; the next run converges.');
}

/** Throw the 'cancelled' RemoteError when `signal` has fired; call between steps. */
export function throwIfCancelled(signal: AbortSignal | undefined, label: string, what: string): void {
  if (signal?.aborted) throw cancelledError(label, what);
}

/** Default part size: GitHub release assets must stay under 2 GiB. */
export const DEFAULT_PART_BYTES = 2 * 1024 ** 3 - 64 * 1024 ** 2;

export function partName(fileName: string, index: number): string {
  return `${fileName}.part${String(index + 1).padStart(3, '0')}`;
}
