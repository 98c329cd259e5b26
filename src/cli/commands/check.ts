import type { Command } from 'commander';
import { loadConfig } from '../../root/config.js';
import { HostFilterSchema } from '../../root/host.js';
import { WbError } from '../../core/errors.js';
import { runCheck, type CheckResult, type ReadData } from '../../check/run.js';
import { parseReadData } from '../../check/sample.js';
import { shutdownSignal, track } from '../../core/shutdown.js';
import { rootOf } from '../root.js';
import { currentRoot, out } from '../output.js';
import { cliText } from '../wording.js';
import { progressBar } from '../progress.js';

/** `wb-backup check [--remote] [--read-data[=N%]] [--host NAME|all] [id...]`: proof that stored copies restore, without restoring. */
export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('prove that the stored snapshots would restore: checksums, manifests and chains; with --read-data, rebuild and check them in a temporary folder')
    .argument('[id...]', 'only these snapshots (default: every one)')
    .option('--remote', "check the remote's copies (with --read-data they are downloaded into a temporary folder) instead of the local ones")
    .option('--read-data [share]', 'also rebuild each snapshot (or a random share, e.g. --read-data=10%) and run integrity_check, foreign_key_check and the row counts on it')
    .option('--host <name>', "whose snapshots: a host name, or all (default: this machine's; ids named are checked whatever their host)")
    .option('--json', 'print the result as JSON')
    .action(async (ids: string[], opts: { remote?: boolean; readData?: string | boolean; host?: string; json?: boolean }, cmd: Command) => {
      const host = opts.host === undefined ? undefined : HostFilterSchema.safeParse(opts.host);
      if (host && !host.success) {
        throw new WbError('invalid_input', `--host ${JSON.stringify(opts.host)} is not a host name.`, 'Give a host name as `wb-backup list --host all` shows them (lowercase letters, digits and "-"), or all.');
      }
      // `--read-data <id>`: an optional option value takes the next word, which is then a snapshot id.
      if (typeof opts.readData === 'string' && /^snap-/.test(opts.readData)) {
        ids = [opts.readData, ...ids];
        opts.readData = true;
      }
      const parsed = parseReadData(opts.readData);
      if (parsed.kind === 'invalid') cmd.error(`error: --read-data: ${parsed.why}; use --read-data or --read-data=10%`, { exitCode: 2 });
      const readData = parsed as ReadData;
      const bar = progressBar(!opts.json);
      let result: CheckResult;
      try {
        result = await track(runCheck(loadConfig(rootOf(cmd)), { remote: opts.remote ?? false, readData, ids, ...(host ? { host: host.data } : {}), signal: shutdownSignal, onProgress: (done, total, message) => bar.update(done, total, message) }));
      } finally {
        bar.stop();
      }
      if (opts.json) out(JSON.stringify(result, null, 2));
      else printCheck(result);
      if (!result.ok) process.exitCode = 1;
    });
}

function printCheck(r: CheckResult): void {
  const whose = r.host.shown === 'all' || r.host.shown === 'named' || r.host.shown === r.host.this_machine ? '' : ` of host ${r.host.shown}`;
  out(`${r.where} snapshots${whose}: ${r.checked} checked, ${r.read} read in full, ${r.failed_count} failed`);
  for (const f of r.failed) {
    out(`  FAILED ${f.id}`);
    for (const p of f.problems.slice(0, 5)) out(`    ${cliText(p, currentRoot)}`);
  }
  if (r.failed_count > r.failed.length) out(`  … and ${r.failed_count - r.failed.length} more (--json, or backups/last_check.json)`);
  const others = r.host.others.reduce((n, o) => n + o.snapshots, 0);
  if (others) out(`not checked: ${others} snapshot(s) of another machine (${r.host.others.map((o) => `${o.host}: ${o.snapshots}`).join(', ')}); check them with --host all or --host <name>`);
  if (r.ok) out(r.read ? 'ok: every snapshot checked is sound, and those read in full restore' : 'ok: every snapshot checked is sound (add --read-data to rebuild them too)');
}
