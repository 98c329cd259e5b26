import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { ListHostSchema, SnapshotListSchema, listSnapshots } from '../src/backup/list.js';
import { formatBytes } from '../src/core/size-format.js';

export default defineCapability({
  name: 'data_backup_list',
  title: 'List backup snapshots',
  description:
    'List the backup snapshots, newest first, with id, whether it was manual, creation time (UTC), the bytes stored for it, and whether a copy exists locally and on the remote. ' +
    'Each snapshot is a full (kind "full": restores on its own) or a delta (kind "delta", with its base: it stores only what changed since the base, and restores with its chain, the base, the base\'s base, … down to a full, which data_restore fetches from the remote when needed); kind is absent for snapshots only the remote has. ' +
    'restorable: false (with not_restorable_reason) marks a local snapshot whose chain is broken: a link missing here and on the remote, or an archive known damaged; pick another. ' +
    'totals gives the bytes stored locally and on the remote. ' +
    'Several machines can share one remote: each snapshot has the host it came from; by default only this machine\'s are listed (host.others counts the rest per host); host "all" or a host name lists others, e.g. to restore another machine\'s snapshot when moving to a new one. ' +
    'Use it to answer "when was the last backup?", or to pick a snapshot id for data_restore. Read-only.',
  input: z.object({
    where: z.enum(['all', 'local', 'remote']).default('all').describe('all (default) merges local and remote; local or remote limits the listing'),
    host: ListHostSchema.optional().describe('whose snapshots: a host name, or "all"; default: this machine\'s'),
  }),
  output: SnapshotListSchema,
  annotations: { title: 'List backup snapshots', readOnlyHint: true, openWorldHint: false },
  async run(input, ctx) {
    const result = await listSnapshots(ctx.loadConfig(), input.where, undefined, input.host !== undefined ? { host: input.host } : {});
    const newest = result.snapshots[0];
    const deltas = result.snapshots.filter((s) => s.kind === 'delta').length;
    const broken = result.snapshots.filter((s) => s.restorable === false);
    const stored = [
      result.totals.local_bytes !== null ? `${formatBytes(result.totals.local_bytes)} stored locally` : '',
      result.totals.remote_bytes !== null ? `${formatBytes(result.totals.remote_bytes)} on the remote` : '',
    ].filter(Boolean);
    const summary = newest
      ? `${result.snapshots.length} snapshot(s)${deltas ? `, ${deltas} of them deltas` : ''}; newest ${newest.id} (${newest.kind ? `${newest.kind}, ` : ''}${formatBytes(newest.bytes)})${stored.length ? `; ${stored.join(', ')}` : ''}.`
      : result.host.shown === result.host.this_machine
        ? 'No snapshots yet. Take one with data_backup.'
        : `No snapshots of ${result.host.shown === 'all' ? 'any machine' : `host ${result.host.shown}`}.`;
    const others = result.host.others.reduce((n, o) => n + o.snapshots, 0);
    const hosts = others ? ` Not listed: ${others} snapshot(s) of other machines (${result.host.others.map((o) => o.host).join(', ')}); host "all" lists them.` : '';
    const warning = broken.length ? ` ${broken.length} cannot be restored (restorable: false), e.g. ${broken[0]!.id}: ${broken[0]!.not_restorable_reason ?? 'its chain is broken'}.` : '';
    const whole = `${summary}${hosts}${warning}`;
    return { result, summary: result.remote.reason && input.where !== 'local' ? `${whole} ${result.remote.reason}` : whole };
  },
});
