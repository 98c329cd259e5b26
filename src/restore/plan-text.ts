import type { RestorePlan } from './restore.js';
import { describeComparison } from './compare.js';
import { describeSafetyCopies } from './safety-copies.js';

/**
 * A restore plan as text, the same for every place consent is asked or a plan is shown (the MCP
 * elicitation, the dry run's summary, the CLI's prompt and --dry-run): the snapshot's age and host,
 * per database the rows after against the live rows (tables that change first, capped), what is
 * lost, where the current files go and how to undo, the safety-copy rotation, and the warnings.
 * Paths are absolute. The first line is a question; each database's line starts "- <name> -> <target> (<n> rows".
 */
export function describeRestorePlan(plan: RestorePlan): string {
  const o = plan.origin;
  const host = o.this_machine ? `this machine (${o.host})` : `host ${o.host} (not this machine)`;
  const lines = [`Restore snapshot ${plan.snapshotId} (taken ${o.age}, at ${o.created_at}, on ${host})? This replaces, in ${plan.root}:`];
  for (const d of plan.databases) {
    // The rows a person counts: a full-text index's shadow tables are not rows of theirs (see foldFtsShadowTables).
    const rows = d.compared.after_total;
    const live = d.compared.live_total === null ? (d.live_exists ? 'live rows unknown' : 'no live file yet') : `${d.compared.live_total} live now`;
    const mig = d.migrations_applied.length ? `, then migrations ${d.migrations_applied.join(', ')}` : '';
    lines.push(`- ${d.name} -> ${d.target} (${rows} rows in the snapshot, ${live}; schema ${d.from_user_version}${mig})`);
    lines.push(...describeComparison(d.compared, 'snapshot').map((l) => `    ${l}`));
  }
  lines.push(`What you lose: ${plan.whatYouLose}`);
  lines.push(describeSafetyCopies(plan.safety, { root: plan.root, newCopySaid: true }));
  lines.push(...plan.warnings.map((w) => `Warning: ${w}`));
  return lines.join('\n');
}
