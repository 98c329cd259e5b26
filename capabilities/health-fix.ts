import { z } from 'zod';
import { defineCapability, type ElicitSchema } from '../src/capability/capability.js';
import { FixResultSchema, runFix } from '../src/health/service.js';

export default defineCapability({
  name: 'health_fix',
  title: 'Fix a backup setup requirement',
  description:
    'Run the fixer of one requirement from health_status, by its id ("github_backups.repo-configured"), or pass an opt-in component id ("github_backups") to enable that component. ' +
    'auto fixers repair it directly; agent_handoff returns ordered steps and a verify action for you to walk the user through (e.g. installing gh, `gh auth login --web`); input_required fixers need `inputs`: when missing, the user is asked through an elicitation form if the client supports it, otherwise the result has status needs_input and the inputs_schema to fill in and call again. ' +
    'A requirement that waits for a failing one (status blocked in health_status) is not run: the result has status blocked, names the requirement to fix first in blocked_by, and asks for nothing. ' +
    'A fix that fails, is blocked, has no fixer, or that the user declines or cancels is an error result (isError) whose structured content has status failed (or blocked) and the reason; needs_input and handoff are not errors. ' +
    'To turn an opt-in component off again, use health_set_enabled. ' +
    'May change the configuration and create a private GitHub repository (github_backups.repo-configured, github_sync.repo-configured).',
  input: z.object({
    requirement: z.string().min(1).describe('requirement id from health_status, or an opt-in component id to enable it'),
    inputs: z.record(z.string(), z.unknown()).optional().describe('answers for an input_required fixer, matching its inputs_schema'),
  }),
  output: FixResultSchema,
  annotations: { title: 'Fix a backup setup requirement', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: true },
  async run(input, ctx) {
    let result = await runFix({ root: ctx.root }, input.requirement, input.inputs);
    if (result.status === 'needs_input' && ctx.elicit && result.inputs_schema) {
      const answer = await ctx.elicit(result.message.replace(/ call again.*$/, ''), result.inputs_schema as unknown as ElicitSchema);
      if (answer.action === 'accept') result = await runFix({ root: ctx.root }, input.requirement, answer.content);
      else result = { ...result, status: 'failed', message: `The user ${answer.action === 'decline' ? 'declined' : 'cancelled'}; nothing was changed.` };
    }
    const steps = result.handoff ? `\n${result.handoff.steps.map((s, i) => `${i + 1}. ${s}`).join('\n')}\nVerify: ${result.handoff.verify}` : '';
    // failed covers a fixer that failed, a requirement without fixer and a declined form; blocked, one that cannot run yet: all errors.
    return { result, summary: `${result.requirement}: ${result.status} — ${result.message}${steps}`, isError: result.status === 'failed' || result.status === 'blocked' };
  },
});
