import { runBackup, type BackupResult } from '../backup/pipeline.js';
import type { SnapshotList } from '../backup/list.js';
import { loadConfig } from '../root/config.js';
import { formatBytes } from '../core/size-format.js';
import { shutdownSignal, track } from '../core/shutdown.js';
import { progressBar } from './progress.js';
import { currentRoot, out } from './output.js';
import { cliText } from './wording.js';

/** What `now` and `demo` print for one snapshot taken: its size, each database, skips, prunes, the remote. */
export function printBackup(result: BackupResult): void {
  const kind = result.kind === 'delta' ? `delta on ${result.base}` : `full (${result.full_because ?? 'full'})`;
  out(`snapshot ${result.snapshot_id}  ${kind}  ${formatBytes(result.archive.bytes)} stored ${result.archive.codec}  ${result.duration_ms} ms`);
  for (const db of result.databases) {
    const rows = Object.values(db.rows).reduce((a, b) => a + b, 0);
    const stored = db.stored === 'delta' ? `delta ${formatBytes(db.stored_bytes)}` : 'whole';
    out(`  ${db.name.padEnd(24)} ${formatBytes(db.bytes).padStart(10)}  ${stored}  ${rows} rows  user_version ${db.user_version}${db.via_link ? '  (via link)' : ''}${db.whole_because ? `  (whole: ${db.whole_because})` : ''}`);
  }
  for (const s of result.skipped) out(`  skipped ${s.name}: ${cliText(s.reason, currentRoot)}`);
  if (result.pruned.length) out(`  pruned ${result.pruned.length}: ${result.pruned.join(', ')}`);
  out(`  remote: ${result.remote.status}${result.remote.reason ? ` (${cliText(result.remote.reason, currentRoot)})` : ''}`);
}

/**
 * What `list` and `demo` print: one line per snapshot, newest first (id, host, bytes stored for it
 * alone, full or delta with its base, where the copies are), how many snapshots of other machines
 * were left out, then the bytes stored locally and on the remote (of those listed); a remote that could not be read is a note on stderr. Sizes in one unit system (formatBytes).
 */
export function printList(list: SnapshotList): void {
  const whose = list.host.shown === 'all' ? '' : list.host.shown === list.host.this_machine ? ` of this machine (${list.host.shown})` : ` of host ${list.host.shown}`;
  if (!list.snapshots.length) out(list.host.shown === list.host.this_machine ? 'no snapshots yet (take one with: wb-backup now)' : `no snapshots${whose}`);
  const idWidth = Math.max(36, ...list.snapshots.map((s) => s.id.length));
  const hostWidth = Math.max(4, ...list.snapshots.map((s) => s.host.length));
  for (const s of list.snapshots) {
    const where = [s.local ? 'local' : '', s.remote ? 'remote' : ''].filter(Boolean).join('+');
    // A remote-only snapshot's kind is not read (it would cost a download): shown as "?".
    const kind = s.kind === 'delta' ? `delta of ${s.base ?? '?'}` : (s.kind ?? '?');
    out(`${s.id.padEnd(idWidth)} ${s.host.padEnd(hostWidth)} ${formatBytes(s.bytes).padStart(10)}  ${kind.padEnd(5)}  ${where}${s.manual ? '  manual' : ''}`);
    if (s.restorable === false) out(`    not restorable: ${cliText(s.not_restorable_reason ?? 'its chain is broken', currentRoot)}`);
  }
  const others = list.host.others;
  if (others.length) {
    const n = others.reduce((a, o) => a + o.snapshots, 0);
    out(`not shown: ${n} snapshot(s) of ${others.length === 1 ? 'another machine' : `${others.length} other machines`} (${others.map((o) => `${o.host}: ${o.snapshots}`).join(', ')}); list them with --host all or --host <name>`);
  }
  const totals = [
    list.totals.local_bytes !== null ? `${formatBytes(list.totals.local_bytes)} stored locally` : '',
    list.totals.remote_bytes !== null ? `${formatBytes(list.totals.remote_bytes)} on the remote` : '',
  ].filter(Boolean);
  if (list.snapshots.length && totals.length) out(`total: ${totals.join(', ')} (a delta stores only what changed since its base, and restores with its chain)`);
  if (list.remote.reason) process.stderr.write(`note: ${cliText(list.remote.reason, currentRoot)}\n`);
}

/**
 * Takes a snapshot of the root's databases with a progress bar on stderr (none with `json`).
 * @throws whatever runBackup throws (WbError), after the bar is stopped
 */
export async function backupCommand(root: string, opts: { manual?: boolean; full?: boolean; json?: boolean }): Promise<BackupResult> {
  const config = loadConfig(root);
  // Bytes copied and archived, as the pipeline measures them (src/backup/pipeline.ts).
  const bar = progressBar(!opts.json);
  try {
    return await track(
      runBackup(config, { manual: opts.manual ?? true, full: opts.full ?? false, signal: shutdownSignal, onProgress: (p) => bar.update(p.done, p.total, p.message) }),
    );
  } finally {
    bar.stop();
  }
}
