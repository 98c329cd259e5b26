import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * A dry run returns a token bound to exactly what it showed (root, snapshot, databases) and valid
 * for a few minutes. The key lives only in this process: a token cannot be forged or replayed by
 * another process, and a restart simply asks for a new dry run.
 */
const KEY = randomBytes(32);
export const CONFIRM_TOKEN_TTL_MS = 10 * 60 * 1000;

export interface ConsentSubject {
  root: string;
  snapshotId: string;
  databases: readonly string[];
}

function mac(subject: ConsentSubject, expires: number): string {
  const canonical = JSON.stringify([subject.root, subject.snapshotId, [...subject.databases].sort(), expires]);
  return createHmac('sha256', KEY).update(canonical).digest('base64url');
}

export function issueConfirmToken(subject: ConsentSubject, now = Date.now()): string {
  const expires = now + CONFIRM_TOKEN_TTL_MS;
  return `${expires.toString(36)}.${mac(subject, expires)}`;
}

export type TokenCheck = { ok: true } | { ok: false; reason: string };

export function checkConfirmToken(token: string, subject: ConsentSubject, now = Date.now()): TokenCheck {
  const [expiresText, given] = token.split('.');
  const expires = Number.parseInt(expiresText ?? '', 36);
  if (!given || !Number.isFinite(expires)) return { ok: false, reason: 'the confirm_token is malformed' };
  const expected = Buffer.from(mac(subject, expires));
  const got = Buffer.from(given);
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
    return { ok: false, reason: 'the confirm_token belongs to a different request (another snapshot or set of databases) or to another server process' };
  }
  if (now > expires) return { ok: false, reason: 'the confirm_token has expired' };
  return { ok: true };
}
