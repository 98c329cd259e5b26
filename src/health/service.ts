import { z } from 'zod';
import { loadConfig } from '../root/config.js';
import { rootLayout } from '../root/paths.js';
import { updateConfigFile } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { loadComponents } from './components.js';
import { enableInConfig, markDisabled } from './opt-in.js';
import { evaluateComponent, type ComponentReport } from './evaluate.js';
import { isDisabled, isWanted, type Component, type HealthContext, type Requirement } from './types.js';

export interface HealthOptions {
  root: string;
  ghEnv?: Record<string, string> | undefined;
  /** results are reused this long, so a card refresh never stampedes gh */
  cacheMs?: number;
  /**
   * healthStatus: refuse (config_invalid) when health.opt_in or health.disabled names no component
   * (default true). The sidecar passes false: a mistyped name must not stop the hourly snapshots.
   */
  checkNames?: boolean;
  now?: () => Date;
}

export const FixResultSchema = z.object({
  requirement: z.string(),
  status: z.enum(['fixed', 'failed', 'needs_input', 'handoff', 'blocked']),
  message: z.string(),
  blocked_by: z
    .array(z.object({ id: z.string(), title: z.string() }))
    .optional()
    .describe('for blocked: the failing requirements it waits for, nearest first; the last one is what to fix first'),
  handoff: z.object({ steps: z.array(z.string()), verify: z.string() }).optional(),
  inputs_schema: z.record(z.string(), z.unknown()).optional().describe('for needs_input: the JSON schema of the inputs to pass back'),
  asks: z.string().optional().describe('for needs_input: what the fixer does with the inputs, in words for the person filling them in'),
  input_problems: z.array(z.string()).optional().describe('for needs_input: what was wrong with the inputs given ("field: problem"); empty when none were given'),
});
export type FixResult = z.infer<typeof FixResultSchema>;

const cache = new Map<string, { at: number; reports: ComponentReport[] }>();

/**
 * The context every check and fixer gets. With `components`, the configuration's health names are
 * checked too (health_status reports a mistyped one; turning components on or off and fixing still
 * work, so the graph is never a dead end).
 * @throws WbError `config_invalid` (from loadConfig, or see checkHealthNames)
 */
function contextFor(opts: HealthOptions, components?: readonly Component[]): HealthContext {
  const config = loadConfig(opts.root);
  if (components) checkHealthNames(components, config.health, opts.root);
  return { root: opts.root, config, ghEnv: opts.ghEnv, now: opts.now ?? (() => new Date()), platform: process.platform };
}

/**
 * health.opt_in and health.disabled in wb-backup.yaml may name only health components (the
 * health/ plug-in folder, which the configuration's own schema in src/root cannot see): a mistyped
 * name would otherwise be ignored without a word, leaving on what the user meant to turn off.
 * @throws WbError `config_invalid` naming the unknown names, where, and the known ones
 */
export function checkHealthNames(components: readonly Component[], health: { opt_in: readonly string[]; disabled: readonly string[] }, root: string): void {
  const known = components.map((c) => c.id).sort();
  const switchable = components.filter((c) => c.optIn).map((c) => c.id).sort();
  for (const key of ['disabled', 'opt_in'] as const) {
    const unknown = [...new Set(health[key].filter((n) => !known.includes(n)))];
    if (!unknown.length) continue;
    const names = unknown.map((n) => `"${n}"`).join(', ');
    throw new WbError(
      'config_invalid',
      `health.${key} in ${rootLayout(root).configYaml} names ${names}, which ${unknown.length === 1 ? 'is not a health component' : 'are not health components'}. Known components: ${known.join(', ')}.`,
      `Correct or remove ${unknown.length === 1 ? 'that name' : 'those names'} under health.${key} (components that can be turned on or off: ${switchable.join(', ')}).`,
    );
  }
}

export function inputsJsonSchema(req: Requirement): Record<string, unknown> | undefined {
  if (req.fixer?.kind !== 'input_required') return undefined;
  const schema = z.toJSONSchema(req.fixer.inputs) as Record<string, unknown>;
  delete schema.$schema;
  return schema;
}

export function invalidateHealth(root: string): void {
  for (const key of cache.keys()) if (key.startsWith(`${root}\0`)) cache.delete(key);
}

/** The health graph, every component or one. */
export async function healthStatus(opts: HealthOptions, componentId?: string): Promise<ComponentReport[]> {
  const components = await loadComponents();
  // Core components first, then the opt-in ones.
  const ordered = [...components].sort((a, b) => Number(a.optIn) - Number(b.optIn));
  const chosen = componentId ? ordered.filter((c) => c.id === componentId) : ordered;
  if (componentId && !chosen.length) {
    throw new WbError('invalid_input', `There is no health component "${componentId}".`, `Components: ${components.map((c) => c.id).join(', ')}.`);
  }
  const key = `${opts.root}\0${componentId ?? '*'}`;
  const hit = cache.get(key);
  const ttl = opts.cacheMs ?? 5000;
  if (hit && Date.now() - hit.at < ttl) return hit.reports;
  const ctx = contextFor(opts, opts.checkNames === false ? undefined : components);
  const reports: ComponentReport[] = [];
  for (const c of chosen) reports.push(await evaluateComponent(c, ctx, inputsJsonSchema));
  cache.set(key, { at: Date.now(), reports });
  return reports;
}

function findRequirement(components: Component[], id: string): { component: Component; requirement: Requirement } | null {
  const [componentId, ...rest] = id.split('.');
  const component = components.find((c) => c.id === componentId);
  const requirement = component?.requirements.find((r) => r.id === rest.join('.'));
  return component && requirement ? { component, requirement } : null;
}

/** What keeps a requirement's fixer from running: the failing requirements it waits for. */
export interface FixBlocker {
  target: { id: string; title: string };
  /** nearest first, down to the requirement that actually fails (the last one) */
  chain: Array<{ id: string; title: string }>;
}

/**
 * The blocker of requirement `id` in an evaluated component, or null when its fixer may run. Walks
 * down the first failing dependency to the requirement that actually fails: fixing a requirement
 * that waits for another could only fail with that one's raw error (gh says "not logged in").
 */
export function blockerIn(component: ComponentReport, id: string): FixBlocker | null {
  const byId = new Map(component.requirements.map((r) => [r.id, r]));
  const target = byId.get(id);
  if (component.status === 'unwanted' || !target || target.status !== 'blocked') return null;
  const chain: FixBlocker['chain'] = [];
  let current = target;
  const seen = new Set<string>([id]);
  for (;;) {
    const dep = current.depends_on.map((d) => byId.get(d)).find((d) => d && (d.status === 'fail' || d.status === 'blocked'));
    if (!dep || seen.has(dep.id)) break;
    seen.add(dep.id);
    chain.push({ id: dep.id, title: dep.title });
    if (dep.status !== 'blocked') break;
    current = dep;
  }
  return { target: { id: target.id, title: target.title }, chain };
}

/**
 * The blocker in words. `withIds` names the requirement ids to pass to health_fix (agents and the
 * CLI); without, titles only (the card, where a person reads it).
 */
export function describeBlocker(b: FixBlocker, withIds: boolean): string {
  const q = (r: { id: string; title: string }) => `“${r.title}”${withIds ? ` (${r.id})` : ''}`;
  const target = `“${b.target.title}”`;
  if (!b.chain.length) return `${target} is blocked: fix the requirements above it first.`;
  const cause = b.chain[b.chain.length - 1]!;
  const then = withIds ? ` with health_fix ${cause.id}, then run this fix again. Nothing was asked or changed.` : '.';
  return b.chain.length === 1
    ? `${target} is blocked by ${q(cause)}: fix that first${then}`
    : `${target} is blocked by ${q(b.chain[0]!)}, which waits for ${q(cause)}: fix “${cause.title}” first${then}`;
}

/**
 * The blocker of requirement `id` ("<component>.<requirement>"), evaluated fresh (a stale cache
 * must not refuse a fix whose blocker was just repaired in a terminal), or null when its fixer may
 * run, the id is not a requirement, or its component is not enabled (then nothing is checked and
 * its fixer runs as it always did: enabling the component is part of what a setup fixer does).
 */
export async function fixBlocker(opts: HealthOptions, id: string): Promise<FixBlocker | null> {
  const [componentId, ...rest] = id.split('.');
  if (!componentId || !rest.length) return null;
  const component = (await loadComponents()).find((c) => c.id === componentId);
  if (!component || !component.requirements.some((r) => r.id === rest.join('.'))) return null;
  const [report] = await healthStatus({ ...opts, cacheMs: 0 }, componentId);
  return report ? blockerIn(report, id) : null;
}

export const SetEnabledResultSchema = z.object({
  component: z.string(),
  enabled: z.boolean().describe('whether the component is on now'),
  changed: z.boolean().describe('false when it already was as asked'),
  message: z.string().describe('what changed, what stops or starts, and what is kept'),
});
export type SetEnabledResult = z.infer<typeof SetEnabledResultSchema>;

/**
 * Turn an opt-in component on or off (`health.opt_in` / `health.disabled` in wb-backup.yaml, comments
 * kept). Off: not checked (status unwanted), sidecar jobs that require it skip, and its own work
 * stops (see each component's whenDisabled); its settings and any data stay, so turning it on again
 * picks up where it was. Throws WbError invalid_input (an unknown id, or a core component).
 */
export async function setComponentEnabled(opts: HealthOptions, id: string, enabled: boolean): Promise<SetEnabledResult> {
  const components = await loadComponents();
  const component = components.find((c) => c.id === id);
  const optIn = components.filter((c) => c.optIn).map((c) => c.id);
  // Bad usage (exit 2 on the CLI), like a mistyped option: the name is not one of the components.
  if (!component) throw new WbError('invalid_input', `There is no health component "${id}".`, `Components that can be turned on or off: ${optIn.join(', ')}.`);
  if (!component.optIn) {
    throw new WbError('invalid_input', `${component.title} (${id}) is the core of wb-backup and cannot be turned off or on.`, `Components that can be: ${optIn.join(', ')}.`);
  }
  const ctx = contextFor(opts);
  try {
    if (enabled) {
      if (isWanted(component, ctx)) return { component: id, enabled: true, changed: false, message: `${component.title} is already on.` };
      enableInConfig(opts.root, id);
      return { component: id, enabled: true, changed: true, message: `${component.title} is on: its requirements are checked and its work runs.` };
    }
    if (isDisabled(component, ctx)) return { component: id, enabled: false, changed: false, message: `${component.title} is already off.` };
    const note = component.whenDisabled?.(ctx);
    updateConfigFile(opts.root, (doc) => markDisabled(doc, id));
    return {
      component: id,
      enabled: false,
      changed: true,
      message: `${component.title} is off: it is no longer checked or reported, and sidecar jobs that need it skip.${note ? ` ${note}` : ''} Nothing was deleted; its settings stay in wb-backup.yaml (health.disabled lists it), so turning it on again picks up where it was.`,
    };
  } finally {
    invalidateHealth(opts.root);
  }
}

/**
 * Run the fixer of "<component>.<requirement>"; a bare opt-in component id enables that component.
 * A requirement that waits for a failing one is not fixed: the result has status blocked and names
 * what to fix first (blocked_by), before any input is asked for or any tool is run.
 */
export async function runFix(opts: HealthOptions, id: string, inputs?: Record<string, unknown>): Promise<FixResult> {
  const components = await loadComponents();
  const ctx = contextFor(opts);
  try {
    const optIn = components.find((c) => c.id === id && c.optIn);
    if (optIn) {
      if (isWanted(optIn, ctx)) return { requirement: id, status: 'fixed', message: `${optIn.title} is already enabled.` };
      enableInConfig(opts.root, id);
      return { requirement: id, status: 'fixed', message: `${optIn.title} is enabled; its requirements are now checked.` };
    }
    const found = findRequirement(components, id);
    if (!found) {
      const known = components.flatMap((c) => [...(c.optIn ? [c.id] : []), ...c.requirements.map((r) => `${c.id}.${r.id}`)]);
      throw new WbError('invalid_input', `There is no requirement "${id}".`, `Known: ${known.join(', ')}.`);
    }
    const { requirement } = found;
    const fixer = requirement.fixer;
    const blocker = fixer ? await fixBlocker(opts, id) : null;
    if (blocker) return { requirement: id, status: 'blocked', message: describeBlocker(blocker, true), blocked_by: blocker.chain };
    if (!fixer) return { requirement: id, status: 'failed', message: `${requirement.title} has no fixer; its detail in health_status says what to do.` };
    if (fixer.kind === 'agent_handoff') {
      const handoff = fixer.handoff(ctx);
      return { requirement: id, status: 'handoff', message: `${fixer.describe} Walk the user through these steps, then verify.`, handoff };
    }
    if (fixer.kind === 'auto') return { requirement: id, ...(await fixer.run(ctx)) };
    const parsed = fixer.inputs.safeParse(inputs ?? {});
    if (!parsed.success) {
      const schema = inputsJsonSchema(requirement) ?? {};
      const problems = inputs && Object.keys(inputs).length ? parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) : [];
      const detail = problems.length ? ` (${problems.join('; ')})` : '';
      // asks and input_problems as fields: the elicitation form and the card show them without parsing the message.
      return { requirement: id, status: 'needs_input', message: `${fixer.describe} It needs inputs${detail}: call again with inputs matching inputs_schema.`, inputs_schema: schema, asks: fixer.describe, input_problems: problems };
    }
    const outcome = await fixer.run(ctx, parsed.data as Record<string, unknown>);
    logger().info({ requirement: id, status: outcome.status }, 'health fixer ran');
    return { requirement: id, ...outcome };
  } finally {
    invalidateHealth(opts.root);
  }
}
