import type { ElicitRequestFormParams, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import type { Config } from '../root/config.js';

/** What a capability handler may use; the same for MCP calls, the CLI and the sidecar. */
export interface CapabilityContext {
  root: string;
  /** read fresh on every call, so a fixer's config change applies at once */
  loadConfig(): Config;
  signal: AbortSignal;
  /**
   * Progress of a long call, in bytes: `done` so far of `total` (undefined when unknown; an
   * estimate may grow), and the step ("copying notes.db"). Values should come from one
   * ProgressReporter (src/core/progress.ts); the MCP server drops any that does not increase.
   */
  progress(done: number, total: number | undefined, message: string): void;
  /**
   * Ask the user a question through the client (MCP elicitation). Undefined when the client cannot,
   * so the capability must offer another way (a dry-run token, an input schema).
   */
  elicit?: (message: string, schema: ElicitSchema) => Promise<ElicitAnswer>;
}

/** The flat form schema MCP elicitation allows (primitive fields only). */
export type ElicitSchema = ElicitRequestFormParams['requestedSchema'];

export type ElicitAnswer = { action: 'accept'; content: Record<string, unknown> } | { action: 'decline' | 'cancel' };

export interface CapabilityOutcome<Out> {
  result: Out;
  /** one or two sentences for the model and the person reading the transcript */
  summary: string;
  /**
   * The call did not do what was asked (a fix that failed, was declined or has no fixer; a push
   * that pushed nothing): sent as `isError: true`, with the result still as structured content.
   */
  isError?: boolean;
}

/**
 * One MCP tool: the name and description the model reads, zod input/output schemas, annotations,
 * and a small handler that calls into the engine. Capabilities live one per file in capabilities/.
 */
export interface Capability<In extends z.ZodObject = z.ZodObject, Out extends z.ZodObject = z.ZodObject> {
  name: string;
  title: string;
  description: string;
  input: In;
  output: Out;
  annotations: ToolAnnotations;
  run(input: z.infer<In>, ctx: CapabilityContext): Promise<CapabilityOutcome<z.infer<Out>>>;
  /** How the sidecar treats a scheduled job that runs this capability (optional). */
  scheduled?: ScheduledBehaviour;
}

/**
 * What a capability tells the sidecar, so a new job file needs no code elsewhere: the arguments a
 * scheduled run gets unless its job file says otherwise, and when the capability's work was last
 * done (for the catch-up run at start; without it the sidecar uses the job's own run history).
 */
export interface ScheduledBehaviour {
  /** merged under the job file's `args` */
  defaults?: Record<string, unknown>;
  /** when this work was last done for the data root, or null if never */
  lastDoneAt?(root: string): Date | null;
  /**
   * For work that keeps its own cadence from the configuration (github_sync_poll:
   * sync.poll_minutes, jittered): the job file's schedule is then a tick, and a tick at which this
   * says false neither runs nor is recorded. Must be cheap (no network). Absent: every tick runs.
   */
  due?(root: string, now: Date): boolean;
}

export function defineCapability<In extends z.ZodObject, Out extends z.ZodObject>(c: Capability<In, Out>): Capability<In, Out> {
  return c;
}
