/**
 * The sync surfaces (github_sync_push/pull/status, `wb-backup sync …`) run the git mirror and the
 * GitHub Issues transport side by side: each when it is configured and chosen. Their results stay
 * apart (the git mirror's fields as before, the issues transport's under `issues`).
 */
import type { Config } from '../../root/config.js';

export const TRANSPORT_CHOICES = ['all', 'git', 'issues'] as const;
export type TransportChoice = (typeof TRANSPORT_CHOICES)[number];

/**
 * Runs `git` and/or `issues` for `choice`. 'all': every configured one; with none configured, the
 * git mirror's call (which says how to configure it, as before). 'git' or 'issues': that one only
 * (its own config_invalid error when it is not configured).
 */
export async function runChosen<G, I>(config: Config, choice: TransportChoice, git: () => Promise<G>, issues: () => Promise<I>): Promise<{ git?: G; issues?: I }> {
  const gitOn = Boolean(config.sync?.github);
  const issuesOn = Boolean(config.sync?.issues);
  if (choice === 'git') return { git: await git() };
  if (choice === 'issues') return { issues: await issues() };
  if (!gitOn && issuesOn) return { issues: await issues() };
  const g = await git();
  return issuesOn ? { git: g, issues: await issues() } : { git: g };
}

/** One message for both: the git mirror's, then the issues transport's. */
export function joinedMessage(git: { message: string } | undefined, issues: { message: string } | undefined): string {
  return [git?.message, issues ? `GitHub Issues: ${issues.message}` : undefined].filter(Boolean).join(' ');
}
