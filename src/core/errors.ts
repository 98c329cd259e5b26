/**
 * An error whose message is written for the person or agent who must act on it:
 * what went wrong, then what to do. `code` is stable for programs and tests.
 */
export class WbError extends Error {
  constructor(
    readonly code: WbErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(hint ? `${message} ${hint}` : message);
    this.name = 'WbError';
  }
}

export type WbErrorCode =
  | 'config_invalid'
  | 'busy'
  | 'no_databases'
  | 'snapshot_failed'
  | 'disk_full'
  | 'not_found'
  | 'invalid_input'
  | 'interrupted'
  | 'manifest_invalid'
  | 'archive_invalid'
  | 'restore_refused'
  | 'consent_required'
  | 'in_use'
  /** a swap step failed; everything was put back */
  | 'swap_failed'
  /** files are not where the journal says: nothing more was moved; the message says what is where */
  | 'recovery_needed'
  | 'sync_failed'
  /** the remote could not be reached, read or used (network, credentials, permissions); the snapshot may well be there */
  | 'remote_failed'
  /** a delta cannot be made against this base (page size changed, base unusable): take a full snapshot */
  | 'needs_full';

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
