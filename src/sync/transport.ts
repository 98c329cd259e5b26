/**
 * The SyncTransport contract: how github-sync reaches one kind of remote. Everything that does not
 * depend on the remote is shared and lives beside this file: reading a database's rows
 * (materialize.ts, rows.ts, sqlite-objects.ts), the three-way decision per row against the last
 * synced version (merge.ts, pull-merge.ts), applying a pull's rows in one transaction per database
 * (pull-apply.ts), conflicts and their resolution records (conflicts.ts, state.ts) and the poll
 * records (poll-state.ts). A transport says how rows get to the remote and back: the git mirror
 * (git-transport.ts over git-remote.ts, push*.ts, pull.ts, pull-remote.ts, mirror-*.ts,
 * tree-files.ts, status.ts) is one; each is registered in transports.ts.
 *
 * Rules every method keeps:
 * - Failures are WbError (src/core/errors.ts) with a code callers decide by ('sync_failed' when the
 *   remote could not be reached or refused, 'config_invalid' for settings, 'invalid_input' when the
 *   call cannot apply, e.g. a pull with no earlier sync), and a hint saying what to do.
 * - push, pull and status take the data root's lock only through the shared helpers they call
 *   (push and pull hold it for their whole run); poll never takes it and never writes the databases.
 * - A method that is interrupted (process killed, signal fired) leaves nothing half-applied that a
 *   later call would take as done: calling it again converges, never duplicates.
 * - Rows changed on both sides since the last sync are never overwritten on either side: pull
 *   reports them as conflicts (row by row, with base, ours and theirs) and the sync base does not move.
 * - Results are bounded for an agent (counts first, samples): a transport's own result shapes say how.
 */
import { z } from 'zod';
import type { ProgressSink } from '../core/progress.js';
import type { Config } from '../root/config.js';

/** Options every transport method takes. */
export interface SyncCallOptions {
  /** push and pull: say what would happen, change nothing (neither the databases nor the remote) */
  dryRun?: boolean;
  /** environment for git and gh (tests point them at the GitHub emulator); default: this process's */
  env?: Record<string, string>;
  /** progress of a long push or pull, in bytes, strictly increasing (src/core/progress.ts) */
  onProgress?: ProgressSink;
  /**
   * stop when this fires, where the transport can (between requests); what was left half-done
   * converges on the next call. The git mirror does not take it: its steps are bounded by git's
   * own timeouts and run under the data root's lock.
   */
  signal?: AbortSignal;
}

/** What every push result says, whatever else the transport reports. */
export interface TransportPushOutcome {
  /** e.g. 'pushed', 'no_changes', 'dry_run'; the transport's own result schema lists its values */
  status: string;
  /** one or two sentences for the agent and the person reading the transcript */
  message: string;
}

/** What every pull result says: the conflicts and rejected inputs it left untouched, and the outcome in words. */
export interface TransportPullOutcome {
  /** 'up_to_date' | 'applied' | 'conflicts' | 'dry_run' (a transport may add its own) */
  status: string;
  /** rows changed on both sides since the last sync, left as they are on both sides */
  conflicts: readonly unknown[];
  /** remote inputs that could not be used (nothing from their table was applied) */
  rejected: readonly unknown[];
  message: string;
}

/** What every status result says. */
export interface TransportStatusOutcome {
  configured: boolean;
  message: string;
}

/** The answer of poll(): did the remote change since the last pull, and what did finding out cost. */
export const PollResultSchema = z.object({
  changed: z.boolean().describe('the remote changed since the last pull: a pull would bring something (or find conflicts)'),
  requests: z.number().int().nonnegative().describe('network requests this poll made (git ls-remote, gh api calls): 1 for the git mirror when nothing changed'),
  detail: z.string().describe('one line for a person: what was compared and what it showed'),
});
export type PollResult = z.infer<typeof PollResultSchema>;

export interface SyncTransport<
  Push extends TransportPushOutcome = TransportPushOutcome,
  Pull extends TransportPullOutcome = TransportPullOutcome,
  Status extends TransportStatusOutcome = TransportStatusOutcome,
> {
  /** the registry key and the name in results and poll records: 'git' (the git mirror), 'issues', … */
  readonly id: string;
  /** for messages: "git:owner/name", "git:<remote folder name>", "issues:owner/name" (never a full user path or a token) */
  readonly label: string;
  /**
   * Send the databases' changes since the last sync to the remote: only what changed, in one
   * step the remote sees as a whole where it can (the git mirror: one commit). Never overwrites
   * what changed on the remote since the last sync: it refuses (status says so, with what changed
   * there) or proposes the change for review; pull first. Idempotent: with nothing changed it
   * sends nothing (status 'no_changes'). Records the new sync base only once the remote accepted
   * everything. Fails with WbError 'sync_failed' (unreachable, refused, credentials) or
   * 'config_invalid'.
   */
  push(opts?: SyncCallOptions): Promise<Push>;
  /**
   * Bring the remote's changes since the last sync into the databases, three-way per row against
   * the last synced version: changed only on the remote is applied (one transaction per database,
   * exactly those rows); changed on both sides is a conflict, reported and recorded for
   * github_sync_resolve, never overwritten; a remote input that cannot be read is rejected with its
   * place and reason and nothing from its table is applied. The sync base moves only when nothing
   * was left over. Fails with 'invalid_input' when there is no earlier sync to compare with,
   * 'sync_failed' when the remote cannot be read, 'manifest_invalid' when what it holds cannot be
   * trusted (before anything is applied).
   */
  pull(opts?: SyncCallOptions): Promise<Pull>;
  /**
   * How far the databases and the remote moved since the last sync, per table, without changing
   * either. `configured: false` (no error) when the transport has no settings.
   */
  status(opts?: SyncCallOptions): Promise<Status>;
  /**
   * The cheap check the sidecar makes every sync.poll_minutes: has the remote changed since the last
   * pull (or push)? It reads as little as the remote allows (the git mirror: one `git ls-remote` of
   * the branch, compared with the last synced and last pulled head), never takes the data root's
   * lock, never writes the databases or the sync state, and counts the network requests it made.
   * A change that the last pull already read (and found conflicting) is not reported again.
   * Without an earlier sync there is nothing to pull into: `changed: false` with 0 requests.
   * Fails with 'sync_failed' when the remote cannot be reached (the sidecar records it for health).
   */
  poll(opts?: SyncCallOptions): Promise<PollResult>;
}

/** One kind of transport in the registry (transports.ts): when it is configured, and how to make it. */
export interface TransportEntry {
  /** = SyncTransport.id */
  id: string;
  /** for people: "git mirror", "GitHub Issues" */
  title: string;
  /** whether `sync:` in wb-backup.yaml configures this transport */
  configured(config: Config): boolean;
  /** the transport for these settings; called only when configured(config) */
  create(config: Config): SyncTransport;
}
