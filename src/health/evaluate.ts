import { z } from 'zod';
import { isDisabled, isWanted, type CheckResult, type Component, type ComponentStatus, type HealthContext, type Requirement, type RequirementStatus } from './types.js';

export const RequirementReportSchema = z.object({
  id: z.string().describe('"<component>.<requirement>": pass it to health_fix'),
  title: z.string(),
  status: z.enum(['ok', 'warn', 'fail', 'blocked']),
  detail: z.string(),
  depends_on: z.array(z.string()),
  fixer: z.object({ kind: z.enum(['auto', 'agent_handoff', 'input_required']), describe: z.string(), inputs: z.record(z.string(), z.unknown()).optional() }).optional(),
});
export const CheckReportSchema = z.object({ id: z.string(), title: z.string(), status: z.enum(['ok', 'warn', 'fail']), detail: z.string() });
export const ComponentReportSchema = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string(),
  opt_in: z.boolean(),
  status: z.enum(['ok', 'warn', 'fail', 'blocked', 'unwanted']),
  disabled: z.boolean().optional().describe('true when the user turned this opt-in component off (status unwanted); enable it again with health_set_enabled'),
  requirements: z.array(RequirementReportSchema),
  checks: z.array(CheckReportSchema),
});
export type RequirementReport = z.infer<typeof RequirementReportSchema>;
export type ComponentReport = z.infer<typeof ComponentReportSchema>;

const RANK: Record<RequirementStatus, number> = { ok: 0, warn: 1, blocked: 2, fail: 3 };

async function safeCheck(fn: () => Promise<CheckResult>): Promise<CheckResult> {
  try {
    return await fn();
  } catch (err) {
    // A check that throws is a failing check, never a crashed health page.
    return { status: 'fail', detail: `the check failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Requirements in dependency order (dependencies first); unknown or cyclic dependencies are errors of the component. */
export function dependencyOrder(requirements: readonly Requirement[]): Requirement[] {
  const byId = new Map(requirements.map((r) => [r.id, r]));
  const ordered: Requirement[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (r: Requirement, path: string[]) => {
    if (state.get(r.id) === 'done') return;
    if (state.get(r.id) === 'visiting') throw new Error(`dependency cycle: ${[...path, r.id].join(' -> ')}`);
    state.set(r.id, 'visiting');
    for (const dep of r.dependsOn ?? []) {
      const d = byId.get(dep);
      if (!d) throw new Error(`${r.id} depends on unknown requirement ${dep}`);
      visit(d, [...path, r.id]);
    }
    state.set(r.id, 'done');
    ordered.push(r);
  };
  for (const r of requirements) visit(r, []);
  return ordered;
}

/**
 * Evaluate one component: requirements in dependency order; a requirement whose dependency is not
 * ok/warn is "blocked" and not checked (no point asking gh for auth when gh is missing).
 */
export async function evaluateComponent(component: Component, ctx: HealthContext, inputsSchemaOf: (req: Requirement) => Record<string, unknown> | undefined): Promise<ComponentReport> {
  const qualified = (id: string) => `${component.id}.${id}`;
  const fixerOf = (r: Requirement): RequirementReport['fixer'] => {
    if (!r.fixer) return undefined;
    const inputs = r.fixer.kind === 'input_required' ? inputsSchemaOf(r) : undefined;
    return { kind: r.fixer.kind, describe: r.fixer.describe, ...(inputs ? { inputs } : {}) };
  };
  if (!isWanted(component, ctx)) {
    const disabled = isDisabled(component, ctx);
    return {
      id: component.id,
      title: component.title,
      description: component.description,
      opt_in: true,
      status: 'unwanted',
      ...(disabled ? { disabled: true } : {}),
      requirements: component.requirements.map((r) => ({
        id: qualified(r.id),
        title: r.title,
        status: 'blocked' as const,
        detail: `not checked: ${component.title} is ${disabled ? 'turned off' : 'not enabled'}`,
        depends_on: (r.dependsOn ?? []).map(qualified),
        ...(r.fixer ? { fixer: fixerOf(r) } : {}),
      })),
      checks: [],
    };
  }
  const results = new Map<string, RequirementStatus>();
  const reports: RequirementReport[] = [];
  for (const r of dependencyOrder(component.requirements)) {
    const failedDep = (r.dependsOn ?? []).find((d) => {
      const s = results.get(d);
      return s === 'fail' || s === 'blocked';
    });
    let status: RequirementStatus;
    let detail: string;
    if (failedDep) {
      status = 'blocked';
      detail = `blocked by ${qualified(failedDep)}`;
    } else {
      ({ status, detail } = await safeCheck(() => r.check(ctx)));
    }
    results.set(r.id, status);
    const fixer = fixerOf(r);
    reports.push({ id: qualified(r.id), title: r.title, status, detail, depends_on: (r.dependsOn ?? []).map(qualified), ...(fixer ? { fixer } : {}) });
  }
  const checks = [];
  for (const c of component.checks) checks.push({ id: qualified(c.id), title: c.title, ...(await safeCheck(() => c.check(ctx))) });
  const worst = [...reports.map((r) => r.status), ...checks.map((c) => c.status)].reduce<RequirementStatus>((a, b) => (RANK[b] > RANK[a] ? b : a), 'ok');
  const order = new Map(component.requirements.map((r, i) => [qualified(r.id), i]));
  reports.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0));
  return { id: component.id, title: component.title, description: component.description, opt_in: component.optIn, status: worst as ComponentStatus, requirements: reports, checks };
}
