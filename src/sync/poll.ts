/**
 * The sidecar's poll (github_sync_poll): each configured transport that is due is asked, cheaply,
 * whether its remote changed since the last pull (transport.ts, poll), and pulled when it did. The
 * outcome of each is recorded in poll-state.ts, so health and github_sync_status show it. Polls are
 * spaced by sync.poll_minutes, jittered to 80-100% of it (many machines on one remote do not all ask
 * at the same moment; a change is still noticed within one interval).
 */
import { z } from 'zod';
import { WbError, describeError } from '../core/errors.js';
import type { Config } from '../root/config.js';
import { DEFAULT_POLL_MINUTES } from '../root/sync-schema.js';
import { PollRecordSchema, readPollState, writePollRecord, type PollRecord } from './poll-state.js';
import type { SyncCallOptions, SyncTransport } from './transport.js';
import { configuredTransports } from './transports.js';

/** The health component whose being turned off stops the sidecar's sync work. */
export const SYNC_COMPONENT = 'github_sync';

export const SyncPollResultSchema = z.object({
  polled: z
    .array(
      z.object({
        transport: z.string().describe('the transport id: git, …'),
        label: z.string(),
        changed: z.boolean().nullable().describe('null when the poll failed'),
        requests: z.number(),
        pulled: z.object({ status: z.string(), conflicts: z.number(), rejected: z.number(), message: z.string() }).nullable(),
        error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional() }).nullable(),
        next_at: z.string(),
      }),
    )
    .describe('the transports asked by this call, in registry order'),
  not_due: z.array(z.string()).describe('configured transports not due yet (due_only)'),
  message: z.string(),
});
export type SyncPollResult = z.infer<typeof SyncPollResultSchema>;

export interface SyncPollOptions extends Pick<SyncCallOptions, 'env' | 'signal'> {
  /** ask only the transports whose next poll is due (the sidecar); default: all of them now */
  dueOnly?: boolean;
  now?: Date;
  /** in [0, 1): the jitter (tests pass a fixed one) */
  random?: () => number;
}

/** Milliseconds until the next poll after one: 80-100% of sync.poll_minutes. */
export function pollIntervalMs(config: Config, random: () => number = Math.random): number {
  const minutes = config.sync?.poll_minutes ?? DEFAULT_POLL_MINUTES;
  return Math.round(minutes * 60_000 * (0.8 + 0.2 * Math.min(Math.max(random(), 0), 1)));
}

/** Whether the sidecar's sync work is on: a transport is configured and github_sync is not turned off. */
export function pollingOn(config: Config): boolean {
  return !config.health.disabled.includes(SYNC_COMPONENT) && configuredTransports(config).length > 0;
}

/** Whether some configured transport's next poll is due at `now` (never polled counts as due). Reads one small file. */
export function pollDue(config: Config, now: Date): boolean {
  if (!pollingOn(config)) return false;
  const records = readPollState(config.root).transports;
  return configuredTransports(config).some((t) => isDue(records[t.id], now));
}

function isDue(record: PollRecord | undefined, now: Date): boolean {
  return !record || Date.parse(record.next_at) <= now.getTime();
}

/**
 * Poll the configured transports (those due, with dueOnly) and pull those whose remote changed.
 * A failure of one transport (unreachable, a pull refused) is recorded for it and does not stop
 * the others. Nothing is asked while github_sync is turned off.
 */
export async function syncPoll(config: Config, opts: SyncPollOptions = {}): Promise<SyncPollResult> {
  const now = opts.now ?? new Date();
  if (config.health.disabled.includes(SYNC_COMPONENT)) {
    return { polled: [], not_due: [], message: 'github_sync is turned off (health.disabled): nothing was asked. Turn it on again with health_set_enabled.' };
  }
  const transports = configuredTransports(config);
  if (!transports.length) return { polled: [], not_due: [], message: 'No sync transport is configured (sync: in wb-backup.yaml; see docs/github-sync.md).' };
  const records = readPollState(config.root).transports;
  const result: SyncPollResult = { polled: [], not_due: [], message: '' };
  for (const t of transports) {
    if (opts.dueOnly && !isDue(records[t.id], now)) {
      result.not_due.push(t.id);
      continue;
    }
    const record = await pollOne(config, t, now, opts);
    writePollRecord(config.root, t.id, record);
    result.polled.push({ transport: t.id, label: record.label, changed: record.changed, requests: record.requests, pulled: record.pulled, error: record.error, next_at: record.next_at });
  }
  result.message = describePoll(result);
  return result;
}

async function pollOne(config: Config, t: SyncTransport, now: Date, opts: SyncPollOptions): Promise<PollRecord> {
  const call: SyncCallOptions = { ...(opts.env ? { env: opts.env } : {}), ...(opts.signal ? { signal: opts.signal } : {}) };
  const next_at = new Date(now.getTime() + pollIntervalMs(config, opts.random)).toISOString();
  const base = { label: t.label, at: now.toISOString(), next_at };
  let polled;
  try {
    polled = await t.poll(call);
  } catch (err) {
    return { ...base, changed: null, requests: 0, detail: `the poll failed: ${describeError(err)}`, pulled: null, error: errorRecord(err) };
  }
  if (!polled.changed) return { ...base, ...polled, pulled: null, error: null };
  try {
    const pull = await t.pull(call);
    return { ...base, ...polled, pulled: { status: pull.status, conflicts: pull.conflicts.length, rejected: pull.rejected.length, message: pull.message }, error: null };
  } catch (err) {
    // A backup or restore holding the data root: the change is still there, so ask again at the next tick.
    const busy = err instanceof WbError && err.code === 'busy';
    return { ...base, ...(busy ? { next_at: new Date(now.getTime() + BUSY_RETRY_MS).toISOString() } : {}), ...polled, pulled: null, error: errorRecord(err) };
  }
}

/** After a pull that found the data root busy, the next poll (the sidecar ticks every minute). */
const BUSY_RETRY_MS = 60_000;

function errorRecord(err: unknown): NonNullable<PollRecord['error']> {
  if (err instanceof WbError) return { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) };
  return { code: 'internal', message: describeError(err) };
}

function describePoll(r: SyncPollResult): string {
  if (!r.polled.length) return `No transport is due yet (${r.not_due.join(', ')}).`;
  return r.polled
    .map((p) => {
      if (p.error) return `${p.label}: ${p.pulled === null && p.changed === null ? 'the poll failed' : 'the pull failed'}: ${p.error.message}`;
      if (!p.changed) return `${p.label}: no change (${p.requests} request(s)).`;
      return `${p.label}: changed; ${p.pulled?.message ?? ''}`;
    })
    .join(' ');
}

export const TransportPollsSchema = z
  .array(
    z.object({
      transport: z.string().describe('the transport id: git, …'),
      label: z.string(),
      last_poll: PollRecordSchema.nullable().describe('what the last poll found (null: never polled)'),
    }),
  )
  .describe('each configured sync transport and its last poll (the sidecar polls every sync.poll_minutes)');
export type TransportPolls = z.infer<typeof TransportPollsSchema>;

/** Each configured transport with its last poll record, for github_sync_status. Reads local files only. */
export function transportPolls(config: Config): TransportPolls {
  const records = readPollState(config.root).transports;
  return configuredTransports(config).map((t) => ({ transport: t.id, label: t.label, last_poll: records[t.id] ?? null }));
}

/** One sentence on the last polls, for a status summary; empty when nothing was polled yet. */
export function describeLastPolls(polls: TransportPolls, now: Date): string {
  const said = polls.flatMap((p) => {
    const r = p.last_poll;
    if (!r) return [];
    const ago = Math.max(0, Math.round((now.getTime() - Date.parse(r.at)) / 60_000));
    const what = r.error ? `failed: ${r.error.message}` : r.changed ? (r.pulled ? `changed, pulled (${r.pulled.status})` : 'changed') : 'no change';
    return [`${p.label} last polled ${ago} min ago: ${what}.`];
  });
  return said.join(' ');
}
