import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { displayPath } from './paths.js';

/**
 * Consent for every operation that replaces live data (restore, undo, github-sync import and resolve, row
 * recovery). Three ways to consent: the user answers an MCP elicitation form, the CLI's y/N prompt
 * (or --yes), or a confirm token that a dry run returned after showing the plan.
 *
 * A confirm token is:
 * - single-use: the first call that presents it consumes it; a replay is refused ("already used");
 * - bound to the operation, the caller's request, and the plan the dry run computed (snapshot,
 *   databases, targets, which safety copy would be pruned): the real run executes that recorded
 *   plan, and refuses when its own planning comes out different;
 * - bound to the state of the live files the plan was computed on (see fingerprintTarget): when any
 *   changed since the dry run, the user saw a plan for data that no longer exists, so it is refused.
 * Tokens live only in this process's memory: a restarted server has none, and they cannot be forged.
 */
export type ConsentOperation = 'restore' | 'undo' | 'import' | 'recover_rows' | 'resolve_conflicts';

export const CONFIRM_TOKEN_TTL_MS = 10 * 60 * 1000;
/** Bounds memory when a client asks for many dry runs; the oldest tokens are forgotten first. */
const MAX_TOKENS = 256;

/** The observable state of one file: absent, or its size, mtime (ns) and inode. */
export type FileState = { size: string; mtime_ns: string; ino: string } | null;

/** A live database and its companions as a dry run saw them. Paths are absolute. */
export interface TargetFingerprint {
  target: string;
  main: FileState;
  wal: FileState;
  journal: FileState;
}

function fileState(file: string): FileState {
  try {
    const st = fs.statSync(file, { bigint: true });
    return { size: st.size.toString(), mtime_ns: st.mtimeNs.toString(), ino: st.ino.toString() };
  } catch {
    return null;
  }
}

/**
 * What a live database looks like without opening it: existence, size, mtime and inode of the file
 * and of its -wal and -journal. Any write by any program changes one of these. (-shm is left out:
 * readers rewrite it without changing the data.)
 */
export function fingerprintTarget(target: string): TargetFingerprint {
  return { target, main: fileState(target), wal: fileState(`${target}-wal`), journal: fileState(`${target}-journal`) };
}

export function fingerprintTargets(targets: readonly string[]): TargetFingerprint[] {
  return targets.map(fingerprintTarget);
}

function sameState(a: FileState, b: FileState): boolean {
  return a === null || b === null ? a === b : a.size === b.size && a.mtime_ns === b.mtime_ns && a.ino === b.ino;
}

/**
 * Which recorded live files changed since they were fingerprinted, as readable phrases (empty when
 * none did). `root` only shortens paths for the message.
 */
export function changedSince(recorded: readonly TargetFingerprint[], root: string): string[] {
  const changes: string[] = [];
  for (const before of recorded) {
    const now = fingerprintTarget(before.target);
    const shown = displayPath(root, before.target);
    for (const part of ['main', 'wal', 'journal'] as const) {
      if (sameState(before[part], now[part])) continue;
      const name = part === 'main' ? shown : `${shown}-${part}`;
      if (before[part] === null) changes.push(`${name} appeared`);
      else if (now[part] === null) changes.push(`${name} disappeared`);
      else changes.push(`${name} was written to`);
    }
  }
  return changes;
}

/** Stable JSON (object keys sorted), so equal requests and plans compare equal as text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

interface IssuedToken {
  operation: ConsentOperation;
  root: string;
  request: string;
  plan: unknown;
  fingerprints: TargetFingerprint[];
  expires: number;
  usedAt: number | null;
}

const issued = new Map<string, IssuedToken>();

function forgetOld(now: number): void {
  for (const [token, t] of issued) if (now > t.expires + CONFIRM_TOKEN_TTL_MS) issued.delete(token);
  while (issued.size >= MAX_TOKENS) issued.delete(issued.keys().next().value as string);
}

export interface IssueRequest<P> {
  operation: ConsentOperation;
  root: string;
  /** what the caller asked for (e.g. snapshot_id "latest" and databases), compared on use */
  request: unknown;
  /** what the dry run resolved and showed; handed back on use, to be executed as is */
  plan: P;
  /** the live files the operation would replace; fingerprinted now */
  targets: readonly string[];
}

/** A dry run's confirm token for exactly this plan on exactly the live files as they are now. */
export function issueConfirmToken<P>(req: IssueRequest<P>, now = Date.now()): string {
  forgetOld(now);
  const token = `wbc_${req.operation}_${randomBytes(18).toString('base64url')}`;
  issued.set(token, {
    operation: req.operation,
    root: req.root,
    request: canonicalJson(req.request),
    plan: JSON.parse(JSON.stringify(req.plan)) as unknown,
    fingerprints: fingerprintTargets(req.targets),
    expires: now + CONFIRM_TOKEN_TTL_MS,
    usedAt: null,
  });
  return token;
}

/** A consumed token: the plan the user agreed to and the live state it was computed on. */
export interface ConsentGrant<P> {
  plan: P;
  fingerprints: TargetFingerprint[];
}

export type ClaimResult<P> = { ok: true; grant: ConsentGrant<P> } | { ok: false; reason: string };

/**
 * Use a confirm token: check it was issued here for this operation and request, is unexpired and
 * unused, and that no live file it covers changed; then consume it. Call BEFORE any work (download,
 * unpacking, building). A token whose live files changed is consumed too: it can never be valid again.
 * A refusal's `reason` says what to do (always: run a new dry run).
 */
export function claimConfirmToken<P>(token: string, expect: { operation: ConsentOperation; root: string; request: unknown }, now = Date.now()): ClaimResult<P> {
  const t = issued.get(token);
  if (!t) {
    return {
      ok: false,
      reason: 'the confirm_token is not one this server issued (it is mistyped, or the server restarted since the dry run); run a new dry run and use its confirm_token',
    };
  }
  if (t.operation !== expect.operation || t.root !== expect.root) {
    return { ok: false, reason: `the confirm_token was issued for another operation (${t.operation}); run a dry run of this one and use its confirm_token` };
  }
  if (t.usedAt !== null) {
    return {
      ok: false,
      reason: `the confirm_token was already used at ${new Date(t.usedAt).toISOString()}: a token allows one ${t.operation} only; run a new dry run, show the user the new plan, and use its confirm_token`,
    };
  }
  if (now > t.expires) return { ok: false, reason: 'the confirm_token has expired (they are valid 10 minutes); run a new dry run and use its confirm_token' };
  if (t.request !== canonicalJson(expect.request)) {
    return { ok: false, reason: 'the confirm_token belongs to a different request (another snapshot, clone or set of databases); repeat exactly the request of the dry run, or run a new dry run' };
  }
  const changes = changedSince(t.fingerprints, t.root);
  t.usedAt = now;
  if (changes.length) {
    return {
      ok: false,
      reason: `the live databases changed since the dry run (${changes.join('; ')}), so the plan the user saw no longer describes them; run a new dry run`,
    };
  }
  return { ok: true, grant: { plan: t.plan as P, fingerprints: t.fingerprints } };
}

/**
 * Refusal text when live files changed since consent was given (by token, prompt or form), else
 * null. Call again right before the first live file moves.
 */
export function liveChangedReason(fingerprints: readonly TargetFingerprint[], root: string, since = 'the dry run'): string | null {
  const changes = changedSince(fingerprints, root);
  return changes.length ? `the live databases changed since ${since} (${changes.join('; ')}); run a new dry run` : null;
}
