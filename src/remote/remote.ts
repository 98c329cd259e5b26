import { z } from 'zod';

/**
 * One small interface for off-machine copies; one module per backend (github-remote.ts,
 * dir-remote.ts). A snapshot on a remote is the same three files as locally:
 *   <id>.tar.zst|.tar.gz  (split into <name>.part001, .part002, … when larger than the part size)
 *   <id>.manifest.json
 *   <id>.sha256           (checksums of the whole archive and the manifest: parts are joined, then verified)
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
});
export type RemoteSnapshot = z.infer<typeof RemoteSnapshotSchema>;

export interface PushResult {
  /** false when the remote already had this snapshot complete: pushing is idempotent */
  uploaded: boolean;
  /** attempts it took, retries of transient faults included */
  attempts: number;
}

export interface Remote {
  /** for messages: "github:owner/name" or "dir:<name>" (never a full user path) */
  readonly label: string;
  /** snapshots on the remote (any order) */
  list(): Promise<RemoteSnapshot[]>;
  /** make the remote hold this snapshot completely; converges when retried after a partial push */
  push(snapshot: SnapshotFiles): Promise<PushResult>;
  /** fetch the snapshot's files into `dir` (joined when split); returns their paths */
  download(id: string, dir: string): Promise<SnapshotFiles>;
  /** remove the snapshot from the remote (no error when it is already gone) */
  delete(id: string): Promise<void>;
}

/** Why a remote operation failed, and whether trying again could help. */
export class RemoteError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    /** what the user or agent should do about it */
    readonly hint: string,
    /** attempts made before giving up, retries included */
    readonly attempts?: number,
  ) {
    super(message);
    this.name = 'RemoteError';
  }
}

/** Default part size: GitHub release assets must stay under 2 GiB. */
export const DEFAULT_PART_BYTES = 2 * 1024 ** 3 - 64 * 1024 ** 2;

export function partName(fileName: string, index: number): string {
  return `${fileName}.part${String(index + 1).padStart(3, '0')}`;
}
