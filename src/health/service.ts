import { z } from 'zod';
import { loadConfig } from '../root/config.js';
import { updateConfigFile } from '../root/config.js';
import { WbError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { loadComponents } from './components.js';
import { evaluateComponent, type ComponentReport } from './evaluate.js';
import type { Component, HealthContext, Requirement } from './types.js';

export interface HealthOptions {
  root: string;
  ghEnv?: Record<string, string> | undefined;
  /** results are reused this long, so a card refresh never stampedes gh */
  cacheMs?: number;
  now?: () => Date;
}

export const FixResultSchema = z.object({
  requirement: z.string(),
  status: z.enum(['fixed', 'failed', 'needs_input', 'handoff']),
  message: z.string(),
  handoff: z.object({ steps: z.array(z.string()), verify: z.string() }).optional(),
  inputs_schema: z.record(z.string(), z.unknown()).optional().describe('for needs_input: the JSON schema of the inputs to pass back'),
  asks: z.string().optional().describe('for needs_input: what the fixer does with the inputs, in words for the person filling them in'),
  input_problems: z.array(z.string()).optional().describe('for needs_input: what was wrong with the inputs given ("field: problem"); empty when none were given'),
});
export type FixResult = z.infer<typeof FixResultSchema>;

const cache = new Map<string, { at: number; reports: ComponentReport[] }>();

function contextFor(opts: HealthOptions): HealthContext {
  return { root: opts.root, config: loadConfig(opts.root), ghEnv: opts.ghEnv, now: opts.now ?? (() => new Date()), platform: process.platform };
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
    throw new WbError('not_found', `There is no health component "${componentId}".`, `Components: ${components.map((c) => c.id).join(', ')}.`);
  }
  const key = `${opts.root}\0${componentId ?? '*'}`;
  const hit = cache.get(key);
  const ttl = opts.cacheMs ?? 5000;
  if (hit && Date.now() - hit.at < ttl) return hit.reports;
  const ctx = contextFor(opts);
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

/**
 * Run the fixer of "<component>.<requirement>"; a bare opt-in component id enables that component.
 */
export async function runFix(opts: HealthOptions, id: string, inputs?: Record<string, unknown>): Promise<FixResult> {
  const components = await loadComponents();
  const ctx = contextFor(opts);
  try {
    const optIn = components.find((c) => c.id === id && c.optIn);
    if (optIn) {
      if (optIn.wanted(ctx)) return { requirement: id, status: 'fixed', message: `${optIn.title} is already enabled.` };
      updateConfigFile(opts.root, (doc) => {
        const current = (doc.getIn(['health', 'opt_in']) as { toJSON(): unknown } | undefined)?.toJSON() as string[] | undefined;
        doc.setIn(['health', 'opt_in'], [...new Set([...(current ?? []), id])]);
      });
      return { requirement: id, status: 'fixed', message: `${optIn.title} is enabled; its requirements are now checked.` };
    }
    const found = findRequirement(components, id);
    if (!found) {
      const known = components.flatMap((c) => [...(c.optIn ? [c.id] : []), ...c.requirements.map((r) => `${c.id}.${r.id}`)]);
      throw new WbError('not_found', `There is no requirement "${id}".`, `Known: ${known.join(', ')}.`);
    }
    const { requirement } = found;
    const fixer = requirement.fixer;
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
