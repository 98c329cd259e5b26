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
  /** for opt-in components: has the user asked for it (config) */
  wanted(ctx: HealthContext): boolean;
  requirements: Requirement[];
  checks: CustomCheck[];
}

export function defineComponent(c: Component): Component {
  return c;
}
