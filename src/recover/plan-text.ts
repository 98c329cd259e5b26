import type { RecoverConsentPlan } from './recover.js';
import type { RecoverPlan } from './plan.js';

const keyText = (k: unknown) => JSON.stringify(k);

/**
 * A recovery plan as text, the same wherever consent is asked or a plan is shown (the MCP
 * elicitation, the dry run's summary, the CLI's prompt and --dry-run): what is written per table,
 * what is already there, conflicts, what the rows need and what depends on them, what blocks it.
 * The first line is the question.
 */
export function describeRecoverPlan(p: RecoverConsentPlan): string {
  const plan = p.plan;
  const lines = [`Put back rows of ${p.database}.${plan.table} from snapshot ${p.snapshotId} into ${p.target}?`];
  lines.push(...describePlanCounts(plan));
  lines.push('A manual snapshot of every database is taken first; restoring it (wb-backup restore <its id> --db ' + p.database + ') undoes this.');
  return lines.join('\n');
}

/** The counts and samples of a plan, one line each. */
export function describePlanCounts(plan: RecoverPlan): string[] {
  const c = plan.counts;
  const lines: string[] = [];
  lines.push(`- ${plan.chosen} row(s) chosen in the snapshot (by ${plan.key_columns.join(', ')}); ${c.to_insert} to insert, ${c.to_update} to overwrite with the snapshot's values, ${c.already_there} already there as they were${c.kept_live ? `, ${c.kept_live} left as they are live` : ''}.`);
  for (const t of plan.tables.slice(0, 10)) if (t.table !== plan.table || plan.tables.length > 1) lines.push(`    ${t.table}: ${t.to_insert} to insert, ${t.to_update} to overwrite, ${t.already_there} already there${t.conflicts ? `, ${t.conflicts} conflicts` : ''}`);
  if (c.parents_included) lines.push(`- ${c.parents_included} parent row(s) they need come back too.`);
  if (c.children_included) lines.push(`- ${c.children_included} child row(s) that depend on them (removed with them) come back too.`);
  if (plan.keys_not_in_snapshot.length) lines.push(`- Keys the snapshot does not hold: ${plan.keys_not_in_snapshot.slice(0, 5).map(keyText).join(', ')}.`);
  if (plan.conflicts.count) lines.push(`- ${plan.conflicts.count} conflict(s): rows live with other values, e.g. ${plan.conflicts.sample.slice(0, 3).map((x) => `${x.table} ${keyText(x.key)}`).join(', ')}.`);
  if (plan.parents_missing.count) lines.push(`- ${plan.parents_missing.count} parent row(s) needed and missing live (${plan.parents_missing.not_in_snapshot} not in the snapshot either), e.g. ${plan.parents_missing.sample.slice(0, 3).map((x) => `${x.table} ${keyText(x.values)} for ${x.needed_by.table} ${keyText(x.needed_by.key)}`).join(', ')}.`);
  if (plan.children_missing.count) lines.push(`- ${plan.children_missing.count} row(s) in the snapshot depend on them and are missing live (not included), e.g. ${plan.children_missing.sample.slice(0, 3).map((x) => `${x.table} ${keyText(x.key)}`).join(', ')}.`);
  for (const b of plan.blocked_by) lines.push(`- Blocked: ${b}.`);
  return lines;
}
