#!/usr/bin/env node
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { runBackup, type BackupResult } from '../backup.js';
import { loadConfig } from '../config.js';
import { createDemoDatabases } from '../demo.js';
import { WbError, errorMessage } from '../errors.js';
import { toolVersion } from '../provenance.js';
import { addShutdownHook, installSignalHandlers, shutdownSignal, track } from '../shutdown.js';
import { listSnapshots, type SnapshotList } from '../snapshot-list.js';
import { runRestore, type ConsentDecision, type RestoreResult } from '../restore/restore.js';
import { runUndo, type UndoPlan } from '../restore/undo.js';
import { describeSafetyCopies } from '../restore/safety-copies.js';
import { recoverOnStart } from '../startup.js';
import { registerHealthCommands } from './health-command.js';
import { registerSidecarCommands } from './sidecar-command.js';
import { registerSyncCommand } from './sync-command.js';
import { progressReporter } from './progress.js';
import { rootOf } from './root.js';
import { askYesNo } from './prompt.js';

/** Exit codes: 0 ok, 1 failed, 2 bad usage or config, 75 busy (try again later), 130/143 interrupted. */
const EXIT = { failed: 1, usage: 2, busy: 75, interrupted: 130 } as const;

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function fail(err: unknown): void {
  let message = errorMessage(err);
  // A raw ENOSPC (e.g. writing the lock's owner file at 0 bytes free) says what, not what to do.
  if (!(err instanceof WbError) && (err as NodeJS.ErrnoException | null)?.code === 'ENOSPC') message = `The disk is full (${message}). Free some space, then run the command again.`;
  process.stderr.write(`wb-backup: ${message}\n`);
  // Stopping on a signal: the shutdown path exits with the signal's code once cleanup is done.
  if (shutdownSignal.aborted) return;
  if (err instanceof WbError) {
    if (err.code === 'busy') process.exit(EXIT.busy);
    if (err.code === 'interrupted') process.exit(EXIT.interrupted);
    if (err.code === 'config_invalid' || err.code === 'invalid_input') process.exit(EXIT.usage);
  }
  process.exit(EXIT.failed);
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function printBackup(result: BackupResult): void {
  out(`snapshot ${result.snapshot_id}  ${formatBytes(result.archive.bytes)} ${result.archive.codec}  ${result.duration_ms} ms`);
  for (const db of result.databases) {
    const rows = Object.values(db.rows).reduce((a, b) => a + b, 0);
    out(`  ${db.name.padEnd(24)} ${formatBytes(db.bytes).padStart(10)}  ${rows} rows  user_version ${db.user_version}${db.via_link ? '  (via link)' : ''}`);
  }
  for (const s of result.skipped) out(`  skipped ${s.name}: ${s.reason}`);
  if (result.pruned.length) out(`  pruned ${result.pruned.length}: ${result.pruned.join(', ')}`);
  out(`  remote: ${result.remote.status}${result.remote.reason ? ` (${result.remote.reason})` : ''}`);
}

function printList(list: SnapshotList): void {
  if (!list.snapshots.length) out('no snapshots yet (take one with: wb-backup now)');
  for (const s of list.snapshots) {
    const where = [s.local ? 'local' : '', s.remote ? 'remote' : ''].filter(Boolean).join('+');
    out(`${s.id.padEnd(36)} ${formatBytes(s.bytes).padStart(10)}  ${where}${s.manual ? '  manual' : ''}`);
  }
  if (list.remote.reason) process.stderr.write(`note: ${list.remote.reason}\n`);
}

async function backupCommand(root: string, opts: { manual?: boolean; json?: boolean }): Promise<BackupResult> {
  const bar = progressReporter(!opts.json);
  try {
    return await track(
      runBackup(loadConfig(root), { manual: opts.manual ?? false, signal: shutdownSignal, onProgress: (p) => bar.update(p.done, p.total, p.message) }),
    );
  } finally {
    bar.stop();
  }
}

function describeUndo(plan: UndoPlan): string {
  const before = plan.kind === 'import' ? 'importing from the mirror' : `restoring ${plan.snapshotId ?? 'a snapshot'}`;
  return `${plan.from} (before ${before}): ${plan.databases.map((d) => `${d.name} ${d.action} at ${d.target}`).join('; ')}\n${describeSafetyCopies(plan.safety, { undo: true })}`;
}

/** y/N on a terminal; --yes for scripts; never a silent yes. */
async function confirmOnTerminal(question: string, yes: boolean): Promise<ConsentDecision> {
  if (yes) return { granted: true };
  if (!process.stdin.isTTY) return { granted: false, reason: 'there is no terminal to ask on; pass --yes to confirm in a script' };
  process.stderr.write(`${question}\n`);
  return (await askYesNo('Proceed? [y/N] ')) ? { granted: true } : { granted: false, reason: 'you answered no' };
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('wb-backup')
    .description('Hot snapshots, retention and safe restores for your local SQLite databases.')
    .version(toolVersion())
    .option('--root <dir>', 'data root (default: $WB_BACKUP_HOME or ./.data)')
    .showHelpAfterError('(run with --help for usage)')
    .hook('preAction', async (_program, action) => {
      if (action.name() === 'demo') return;
      // A dry run changes nothing, not even by finishing an interrupted restore; its plan says so.
      if ((action.opts() as { dryRun?: boolean }).dryRun) return;
      let outcome: Awaited<ReturnType<typeof recoverOnStart>>;
      try {
        outcome = await recoverOnStart(rootOf(action));
      } catch (err) {
        // A server still starts: every tool that touches the databases reports the same error.
        if (!(['serve', 'sidecar'].includes(action.name()) && err instanceof WbError && err.code === 'recovery_needed')) throw err;
        process.stderr.write(`wb-backup: ${err.message}\n`);
        return;
      }
      if (outcome.action !== 'none') {
        const done = outcome.action === 'rolled_forward' ? 'completed' : 'rolled back: the live databases are as before it (checked by sha256)';
        process.stderr.write(`wb-backup: an interrupted ${outcome.kind} of ${outcome.databases.join(', ')} was ${done}.\n`);
      }
      for (const note of outcome.notes) process.stderr.write(`wb-backup: ${note}\n`);
    });

  program
    .command('now')
    .description('take a snapshot of every vital database now')
    .option('--manual', 'a manual anchor snapshot (kept in the manual retention bucket)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { manual?: boolean; json?: boolean }, cmd: Command) => {
      const result = await backupCommand(rootOf(cmd), opts);
      if (opts.json) out(JSON.stringify(result, null, 2));
      else printBackup(result);
    });

  program
    .command('list')
    .description('list snapshots, newest first')
    .addOption(new Option('--where <where>', 'which copies to list').choices(['all', 'local', 'remote']).default('all'))
    .option('--json', 'print the list as JSON')
    .action(async (opts: { where: 'all' | 'local' | 'remote'; json?: boolean }, cmd: Command) => {
      const list = await listSnapshots(loadConfig(rootOf(cmd)), opts.where);
      if (opts.json) out(JSON.stringify(list, null, 2));
      else printList(list);
    });

  program
    .command('restore')
    .description('restore databases from a snapshot (verified in staging first; live files are kept in db.pre_restore_*)')
    .argument('[snapshot-id]', 'a snapshot id from `wb-backup list`, or "latest"')
    .option('--db <name...>', 'only these databases (default: all in the snapshot)')
    .option('--dry-run', 'verify everything and show the plan; change nothing')
    .option('--force', 'replace databases even when another process has them open')
    .option('-y, --yes', 'do not ask for confirmation (for scripts)')
    .option('--undo', 'put back the files the most recent restore replaced')
    .option('--json', 'print the result as JSON')
    .action(async (id: string | undefined, opts: { db?: string[]; dryRun?: boolean; force?: boolean; yes?: boolean; undo?: boolean; json?: boolean }, cmd: Command) => {
      const root = rootOf(cmd);
      const config = loadConfig(root);
      if (opts.undo) {
        const result = await track(
          runUndo(config, {
            force: opts.force ?? false,
            dryRun: opts.dryRun ?? false,
            consent: (plan) => confirmOnTerminal(describeUndo(plan), opts.yes ?? false),
          }),
        );
        if (opts.json) out(JSON.stringify(result, null, 2));
        else out(`${opts.dryRun ? 'would undo' : 'undone'}: ${describeUndo(result)}`);
        return;
      }
      if (!id) throw new WbError('invalid_input', 'Which snapshot? Pass a snapshot id (see `wb-backup list`) or "latest".');
      const bar = progressReporter(!opts.json);
      let result: RestoreResult;
      try {
        result = await track(
          runRestore(config, {
            snapshotId: id,
            databases: opts.db,
            dryRun: opts.dryRun ?? false,
            force: opts.force ?? false,
            signal: shutdownSignal,
            onProgress: (done, total, message) => bar.update(done, total, message),
            consent: (plan) => {
              bar.stop();
              const lines = plan.databases.map((d) => `  ${d.name} -> ${d.target}${d.migrations_applied.length ? ` (migrations: ${d.migrations_applied.join(', ')})` : ''}`);
              return confirmOnTerminal([`Restore ${plan.snapshotId} over:`, ...lines, describeSafetyCopies(plan.safety), ...plan.warnings.map((w) => `warning: ${w}`)].join('\n'), opts.yes ?? false);
            },
          }),
        );
      } finally {
        bar.stop();
      }
      if (opts.json) return out(JSON.stringify(result, null, 2));
      out(`${result.dry_run ? 'dry run (nothing changed): would restore' : 'restored'} ${result.snapshot_id}`);
      for (const d of result.databases) {
        const rows = Object.values(d.rows).reduce((a, b) => a + b, 0);
        out(`  ${d.name.padEnd(24)} -> ${d.target}  ${rows} rows  schema ${d.from_user_version}->${d.to_user_version}${d.migrations_applied.length ? `  migrations: ${d.migrations_applied.join(', ')}` : ''}`);
      }
      if (!result.dry_run) out(`  previous files: ${result.pre_restore_dir} (undo with: wb-backup restore --undo)`);
      if (result.dry_run) out(`  ${describeSafetyCopies(result.safety_copies)}`);
      else if (result.pruned.length) out(`  removed old safety copies, as the plan said: ${result.pruned.join(', ')}`);
      for (const w of result.warnings) out(`  warning: ${w}`);
    });

  program
    .command('serve')
    .description('run the MCP server (stdio by default; --http for Streamable HTTP)')
    .option('--http', 'serve Streamable HTTP at /mcp instead of stdio')
    .option('--host <host>', 'address to bind with --http (default 127.0.0.1; others need WB_BACKUP_HTTP_TOKEN)')
    .option('--port <port>', 'port with --http (default 8787; 0 picks a free one)', (v) => Number.parseInt(v, 10))
    .option('--no-sidecar', 'do not run the scheduled jobs (hourly snapshots) in this process')
    .action(async (opts: { http?: boolean; host?: string; port?: number; sidecar: boolean }, cmd: Command) => {
      const root = rootOf(cmd);
      const config = loadConfig(root);
      if (opts.sidecar) {
        // Imported here: the server's modules (express, the MCP SDK) are not needed by `now` and `list`.
        const { startSidecar } = await import('../sidecar/service.js');
        const runner = await startSidecar(root);
        addShutdownHook(() => runner.stop());
      }
      if (!opts.http) {
        const { serveStdio } = await import('../mcp/stdio.js');
        const server = await serveStdio(root);
        addShutdownHook(() => server.close());
        return;
      }
      const token = process.env.WB_BACKUP_HTTP_TOKEN || undefined;
      const { startHttpServer } = await import('../mcp/http.js');
      const running = await startHttpServer({
        root,
        host: opts.host ?? config.http.host,
        port: opts.port ?? config.http.port,
        ...(token ? { token } : {}),
        ...(config.http.allowed_hosts ? { allowedHosts: config.http.allowed_hosts } : {}),
      });
      addShutdownHook(() => running.close());
      // The one line a script needs to find the server; logs stay on stderr.
      process.stderr.write(`wb-backup: serving MCP at ${running.url}/mcp\n`);
    });

  program
    .command('demo')
    .description('make example databases in a folder of their own, snapshot them twice and list the snapshots')
    .option('--dir <dir>', 'demo folder (its own data root; never your real one)', 'wb-backup-demo')
    .action(async (opts: { dir: string }) => {
      const root = path.resolve(opts.dir);
      if (fs.existsSync(path.join(root, 'db')) && !fs.existsSync(path.join(root, '.wb-backup-demo'))) {
        throw new WbError('invalid_input', `${opts.dir} already holds a db/ folder that the demo did not make.`, 'Pass --dir with an empty or new folder.');
      }
      fs.mkdirSync(root, { recursive: true });
      fs.writeFileSync(path.join(root, '.wb-backup-demo'), 'made by wb-backup demo\n');
      const made = createDemoDatabases(path.join(root, 'db'));
      out(`demo data root: ${root}`);
      out(`example databases: ${made.map((f) => path.relative(root, f)).join(', ')}\n`);
      printBackup(await backupCommand(root, {}));
      out('');
      printBackup(await backupCommand(root, { manual: true }));
      out('\n$ wb-backup list');
      printList(await listSnapshots(loadConfig(root), 'all'));
      out(`\nTry: npx wb-backup --root ${path.relative(process.cwd(), root) || '.'} list --json`);
    });

  registerHealthCommands(program);
  registerSidecarCommands(program);
  registerSyncCommand(program);
  return program;
}

installSignalHandlers();
buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => fail(err));
