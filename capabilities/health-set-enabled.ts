import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { SetEnabledResultSchema, setComponentEnabled } from '../src/health/service.js';

export default defineCapability({
  name: 'health_set_enabled',
  title: 'Turn an opt-in backup component on or off',
  description:
    'Turn an opt-in component from health_status (e.g. github_backups, github_sync) off with enabled: false, or on again with enabled: true. ' +
    'Off: it is no longer checked or reported as a problem (health_status shows it unwanted, disabled: true), sidecar jobs that need it skip, and its own work stops (for github_backups: new snapshots are no longer pushed to GitHub). ' +
    'Nothing is deleted: its settings stay in wb-backup.yaml and the data already on GitHub stays; the result says plainly what stops and what is kept. ' +
    'Use it when the user enabled a component by mistake or wants it paused; the core component (local_backups) cannot be turned off.',
  input: z.object({
    component: z.string().min(1).describe('an opt-in component id from health_status, e.g. github_sync'),
    enabled: z.boolean().describe('false to turn it off, true to turn it on again'),
  }),
  output: SetEnabledResultSchema,
  annotations: { title: 'Turn an opt-in backup component on or off', readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(input, ctx) {
    const result = await setComponentEnabled({ root: ctx.root }, input.component, input.enabled);
    return { result, summary: `${result.component}: ${result.enabled ? 'on' : 'off'}${result.changed ? '' : ' (unchanged)'} — ${result.message}` };
  },
});
