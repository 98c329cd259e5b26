import type { z } from 'zod';
import type { Config } from '../root/config.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';
export type RequirementStatus = CheckStatus | 'blocked';
export type ComponentStatus = RequirementStatus | 'unwanted';

export interface CheckResult {
  status: CheckStatus;
  /** one line for a person: what is true now */
  detail: string;
}

/** What checks and fixers may use. `ghEnv` lets tests point gh at the GitHub emulator. */
export interface HealthContext {
  root: string;
  config: Config;
  ghEnv?: Record<string, string> | undefined;
  now(): Date;
  platform: NodeJS.Platform;
}

export interface FixOutcome {
  status: 'fixed' | 'failed' | 'needs_input' | 'handoff';
  message: string;
}

export interface Handoff {
  /** ordered steps for the calling agent to walk the user through */
  steps: string[];
  /** how to confirm it worked */
  verify: string;
}

export type Fixer =
  | { kind: 'auto'; describe: string; run(ctx: HealthContext): Promise<FixOutcome> }
  | { kind: 'agent_handoff'; describe: string; handoff(ctx: HealthContext): Handoff }
  | { kind: 'input_required'; describe: string; inputs: z.ZodObject; run(ctx: HealthContext, inputs: Record<string, unknown>): Promise<FixOutcome> };

export interface Requirement {
  /** unique within its component; addressed as "<component>.<id>" */
  id: string;
  title: string;
  dependsOn?: string[];
  check(ctx: HealthContext): Promise<CheckResult>;
  fixer?: Fixer;
}

export interface CustomCheck {
  id: string;
  title: string;
  check(ctx: HealthContext): Promise<CheckResult>;
}

/** A Component groups what one feature needs. Opt-in components report "unwanted" until enabled. */
export interface Component {
  id: string;
  title: string;
  description: string;
  optIn: boolean;
  /** for opt-in components: has the user asked for it (config); `health.disabled` overrides it (see isWanted) */
  wanted(ctx: HealthContext): boolean;
  /**
   * For opt-in components: what turning it off stops and what it keeps, said plainly to whoever
   * disables it (e.g. "new snapshots stay on this machine; the releases already on GitHub are kept").
   */
  whenDisabled?(ctx: HealthContext): string;
  requirements: Requirement[];
  checks: CustomCheck[];
}

/**
 * Whether the component is checked and does its work: core components always; an opt-in one when
 * the user asked for it and has not turned it off (`health.disabled` wins over everything else,
 * so a component enabled by configuring it can still be turned off without losing that setting).
 */
export function isWanted(component: Component, ctx: HealthContext): boolean {
  if (!component.optIn) return true;
  if (ctx.config.health.disabled.includes(component.id)) return false;
  return component.wanted(ctx);
}

/** True when the user turned this opt-in component off (`health.disabled` in wb-backup.yaml). */
export function isDisabled(component: Component, ctx: HealthContext): boolean {
  return component.optIn && ctx.config.health.disabled.includes(component.id);
}

export function defineComponent(c: Component): Component {
  return c;
}
