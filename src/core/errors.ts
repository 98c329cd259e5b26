/**
 * An error written for the person or agent who must act on it. Three fields, kept apart until
 * printed: `code` (stable, for programs, tests and the status table below), `message` (what went
 * wrong) and `hint` (what to do). `describeError` composes message and hint for every surface
 * (CLI, MCP, the card API's clients, logs, last_run.json, health details); nothing parses them back.
 */
export class WbError extends Error {
  constructor(
    readonly code: WbErrorCode,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'WbError';
  }
}

export type WbErrorCode =
  | 'config_invalid'
  /** the data root (or a file in it) may not be written by this user or on this mount */
  | 'permission_denied'
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

/**
 * How one code shows on each surface.
 * - `exit`: the CLI's exit status.
 * - `http`: the HTTP status of the card API (`/api/*`) answering with it.
 * - `mcp.isError`: the tool result is an error result (every code today: nothing was done).
 * - `mcp.input`: the call itself was wrong (an argument, an id, a missing consent): the agent can
 *   correct the call; logged at info rather than warn, as nothing is wrong with the machine.
 */
export interface ErrorSurfaces {
  exit: number;
  http: number;
  mcp: { isError: boolean; input: boolean };
}

/** CLI exit statuses: 0 ok, 1 failed, 2 bad usage or configuration, 75 busy (EX_TEMPFAIL), 130 interrupted. */
export const EXIT = { ok: 0, failed: 1, usage: 2, busy: 75, interrupted: 130 } as const;

const failed = (http = 500): ErrorSurfaces => ({ exit: EXIT.failed, http, mcp: { isError: true, input: false } });
const input = (exit: number, http: number): ErrorSurfaces => ({ exit, http, mcp: { isError: true, input: true } });

/** Every code and how it shows on the CLI, the card's HTTP API and MCP: the one place that decides. */
export const ERROR_SURFACES: Readonly<Record<WbErrorCode, ErrorSurfaces>> = {
  config_invalid: { exit: EXIT.usage, http: 400, mcp: { isError: true, input: false } },
  // exit 2 as before it had a code of its own: a setup problem, like the configuration
  permission_denied: { exit: EXIT.usage, http: 500, mcp: { isError: true, input: false } },
  busy: { exit: EXIT.busy, http: 409, mcp: { isError: true, input: false } },
  no_databases: failed(),
  snapshot_failed: failed(),
  disk_full: failed(507),
  not_found: input(EXIT.failed, 404),
  invalid_input: input(EXIT.usage, 400),
  interrupted: { exit: EXIT.interrupted, http: 503, mcp: { isError: true, input: false } },
  manifest_invalid: failed(),
  archive_invalid: failed(),
  restore_refused: failed(),
  consent_required: input(EXIT.failed, 403),
  in_use: failed(409),
  swap_failed: failed(),
  recovery_needed: failed(),
  sync_failed: failed(),
  // a remote could not be reached, listed or read: whether it holds the snapshot is unknown
  remote_failed: failed(502),
  // a delta cannot be made against this base (page size changed, file replaced): take a full snapshot
  needs_full: failed(),
};

/** Anything that is not a WbError (a bug, a raw system error): a plain failure. */
export const UNEXPECTED_ERROR: ErrorSurfaces = failed();

/** How `err` shows on each surface: its code's entry, or UNEXPECTED_ERROR for anything else. */
export function errorSurfaces(err: unknown): ErrorSurfaces {
  return err instanceof WbError ? ERROR_SURFACES[err.code] : UNEXPECTED_ERROR;
}

/** The code of `err` for programs: its WbErrorCode, or 'internal' for anything else. */
export function errorCode(err: unknown): WbErrorCode | 'internal' {
  return err instanceof WbError ? err.code : 'internal';
}

/** The hint of any error that carries one (WbError, RemoteError, …), else undefined. */
export function errorHint(err: unknown): string | undefined {
  const hint = (err as { hint?: unknown } | null | undefined)?.hint;
  return err instanceof Error && typeof hint === 'string' && hint ? hint : undefined;
}

/**
 * The one text of an error, for printing: its message, then its hint when it has one (any error
 * with a string `hint` field: WbError, RemoteError). Anything not an Error is stringified.
 */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const hint = errorHint(err);
  return hint ? `${err.message} ${hint}` : err.message;
}
