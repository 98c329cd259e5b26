import type { ConsentDecision } from '../restore/restore.js';
import type { CapabilityContext } from './capability.js';

/** What the confirmation form shows: the checkbox's title and description, and the operation's name for refusals. */
export interface ConfirmForm {
  /** the checkbox's title, e.g. "Replace the live databases with this snapshot" */
  title: string;
  /** one or two sentences under it (the safety copies, what happens to the other side) */
  description: string;
  /** the operation in "the user declined the <operation>" */
  operation: string;
}

/**
 * Ask the user, through MCP elicitation, to confirm `message` (the plan) with one checkbox; the
 * one form every destructive capability uses. Granted only when the user accepts with the box
 * ticked; a decline, a cancel or an unticked box is a refusal whose reason says which.
 */
export async function askToConfirm(elicit: NonNullable<CapabilityContext['elicit']>, message: string, form: ConfirmForm): Promise<ConsentDecision> {
  const answer = await elicit(message, {
    type: 'object',
    properties: { confirm: { type: 'boolean', title: form.title, description: form.description } },
    required: ['confirm'],
  });
  if (answer.action !== 'accept') return { granted: false, reason: `the user ${answer.action === 'decline' ? 'declined' : 'cancelled'} the ${form.operation}` };
  return answer.content.confirm === true ? { granted: true } : { granted: false, reason: 'the user did not confirm' };
}
