import { z } from 'zod';
import { defineCapability } from '../src/capability/capability.js';
import { CheckResultSchema, runCheck, type ReadData } from '../src/check/run.js';
import { parseReadData } from '../src/check/sample.js';
import { readLastCheck } from '../src/check/record.js';
import { WbError } from '../src/core/errors.js';
import { HostFilterSchema } from '../src/root/host.js';

export default defineCapability({
  name: 'data_backup_check',
  title: 'Prove the backups restore',
  description:
    'Check that the stored snapshots would restore, without restoring anything: every snapshot\'s files, checksums and manifest, and for a delta its whole chain of bases. ' +
    'With read_data, the chosen snapshots are also rebuilt in a temporary folder (downloaded first when remote: true) and checked as a restore checks them: the image\'s sha256, integrity_check, foreign_key_check and the manifest\'s row counts. ' +
    'Several machines can share one remote: by default only this machine\'s snapshots are checked (host.others counts the rest per host); host "all" or a host name checks others\', e.g. before restoring another machine\'s snapshot on a new one. ' +
    'Use it when the user asks whether the backups are good, after moving or copying the backups folder, or before relying on an old snapshot. A daily sidecar job reads a rolling sample so that every snapshot is proven within backup.check_period_days. ' +
    'Returns counts first (checked, read, failed_count), then the failed snapshots with what failed, by name (a file, a database, a missing base). ' +
    'Changes nothing in the data: writes only backups/last_check.json (health shows it as "copies proven restorable"). Next: for a failed snapshot, restore another one (data_backup_list), or take a fresh snapshot with data_backup (full: true starts a new chain).',
  input: z.object({
    remote: z.union([z.boolean(), z.literal('auto')]).default(false).describe('true checks the copies on the configured remote; false (default) the local ones; auto: the remote when one is configured'),
    read_data: z
      .union([z.boolean(), z.string().max(20)])
      .optional()
      .describe('rebuild and check snapshots in full: true for all, "N%" for a random share (e.g. "10%"), "rolling" for the least recently proven ones (what the daily job does); absent: listings, checksums and chains only'),
    ids: z.array(z.string().max(200)).max(100).optional().describe('only these snapshot ids, whatever their host (default: every snapshot of host)'),
    host: HostFilterSchema.optional().describe('whose snapshots: a host name, or "all"; default: this machine\'s'),
  }),
  output: CheckResultSchema,
  annotations: { title: 'Prove the backups restore', readOnlyHint: true, openWorldHint: false },
  scheduled: {
    defaults: { remote: 'auto', read_data: 'rolling' },
    lastDoneAt(root) {
      const last = readLastCheck(root);
      return last ? new Date(last.finished_at) : null;
    },
  },
  async run(input, ctx) {
    const config = ctx.loadConfig();
    const readData: ReadData = input.read_data === 'rolling' ? { kind: 'rolling', runsPerPeriod: config.backup.check_period_days } : asReadData(input.read_data);
    const remote = input.remote === 'auto' ? config.remote !== null : input.remote;
    const result = await runCheck(config, {
      remote,
      readData,
      ...(input.ids ? { ids: input.ids } : {}),
      ...(input.host !== undefined ? { host: input.host } : {}),
      signal: ctx.signal,
      onProgress: (done, total, message) => ctx.progress(done, total, message),
    });
    const whose = result.host.shown === 'all' || result.host.shown === 'named' || result.host.shown === result.host.this_machine ? '' : ` of host ${result.host.shown}`;
    const where = result.where === 'remote' ? 'remote' : 'local';
    const others = result.host.others.reduce((n, o) => n + o.snapshots, 0);
    const left = others ? ` Not checked: ${others} snapshot(s) of other machines (${result.host.others.map((o) => o.host).join(', ')}); host "all" checks them.` : '';
    const verdict = result.ok
      ? `All ${result.checked} ${where} snapshot(s)${whose} passed; ${result.read} read in full and proven restorable.`
      : `${result.failed_count} of ${result.checked} ${where} snapshot(s)${whose} failed: ${result.failed.slice(0, 3).map((f) => `${f.id} (${f.problems[0] ?? 'failed'})`).join('; ')}${result.failed_count > 3 ? '; …' : ''}.`;
    const summary = `${verdict}${left}`;
    return { result, summary, ...(result.ok ? {} : { isError: true }) };
  },
});

function asReadData(value: string | boolean | undefined): ReadData {
  const parsed = parseReadData(value);
  if (parsed.kind === 'invalid') throw new WbError('invalid_input', `read_data: ${parsed.why}.`, 'Use true, "rolling", or a percentage such as "10%".');
  return parsed;
}
