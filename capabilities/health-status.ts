import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { ComponentReportSchema } from '../src/health/evaluate.js';
import { healthStatus } from '../src/health/service.js';

export default defineCapability({
  name: 'health_status',
  title: 'Backup setup and health',
  description:
    'Show what the backups need and whether it is in place: each component (local snapshots; off-machine copies on GitHub, which is opt-in) with its requirements (ok / warn / fail / blocked by a failing dependency), a one-line detail, and the fixer that can repair it (auto, agent_handoff with steps for you to walk the user through, or input_required with the inputs to ask for), plus checks such as backup freshness. ' +
    'Use it when the user asks whether backups work or how to set up GitHub copies; then call health_fix with a requirement id. Read-only; results are cached for a few seconds.',
  input: z.object({ component: z.string().optional().describe('one component id, e.g. github_backups; default: all') }),
  output: z.object({ components: z.array(ComponentReportSchema) }),
  annotations: { title: 'Backup setup and health', readOnlyHint: true, openWorldHint: true },
  async run(input, ctx) {
    const components = await healthStatus({ root: ctx.root }, input.component);
    const lines = components.map((c) => {
      const bad = c.requirements.filter((r) => r.status !== 'ok' && c.status !== 'unwanted').map((r) => `${r.id}: ${r.status} (${r.detail})`);
      const checks = c.checks.filter((k) => k.status !== 'ok').map((k) => `${k.id}: ${k.status} (${k.detail})`);
      return `${c.id}: ${c.status}${[...bad, ...checks].length ? ` — ${[...bad, ...checks].join('; ')}` : ''}`;
    });
    return { result: { components }, summary: lines.join('\n') };
  },
});
