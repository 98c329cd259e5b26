#!/usr/bin/env node
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { runBackup, type BackupResult } from '../backup/pipeline.js';
import { loadConfig, type Config } from '../root/config.js';
import { createDemoDatabases } from './demo.js';
import { EXIT, WbError, describeError, errorSurfaces } from '../core/errors.js';
import { configureLogging } from '../core/log.js';
import { formatBytes } from '../core/size-format.js';
import { toolVersion } from '../backup/provenance.js';
import { addShutdownHook, installSignalHandlers, shutdownSignal, track } from '../core/shutdown.js';
import { listSnapshots, type SnapshotList } from '../backup/list.js';
import { runRestore, type ConsentDecision, type RestoreResult } from '../restore/restore.js';
import { runUndo, type UndoPlan } from '../restore/undo.js';
import { describeSafetyCopies } from '../restore/safety-copies.js';
import { recoverOnStart } from '../restore/startup.js';
import { registerHealthCommands } from './health-command.js';
import { registerSidecarCommands } from './sidecar-command.js';
import { registerSyncCommand } from './sync-command.js';
import { folderBytes, progressReporter } from './progress.js';
import { expandHome, rootLayout } from '../root/paths.js';
import { rootOf } from './root.js';
import { askYesNo } from './prompt.js';
import { cliText } from './wording.js';


function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** The data root of this run, once known: `<root>` in shared messages is replaced by it. */
let currentRoot: string | undefined;

function fail(err: unknown): void {
  // Usage errors: commander has already printed what was wrong (exitOverride below).
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
  let message = cliText(describeError(err), currentRoot);
  // A raw ENOSPC (e.g. writing the lock's owner file at 0 bytes free) says what, not what to do.
  if (!(err instanceof WbError) && (err as NodeJS.ErrnoException | null)?.code === 'ENOSPC') message = `The disk is full (${message}). Free some space, then run the command again.`;
  process.stderr.write(`wb-backup: ${message}\n`);
  // Stopping on a signal: the shutdown path exits with the signal's code once cleanup is done.
  if (shutdownSignal.aborted) return;
  // The status comes from the one table of codes (src/core/errors.ts).
  process.exit(errorSurfaces(err).exit);
}

/** stderr, in the CLI's words. */
function note(text: string): void {
  process.stderr.write(`wb-backup: ${cliText(text, currentRoot)}\n`);
}

function printBackup(result: BackupResult): void {
  out(`snapshot ${result.snapshot_id}  ${formatBytes(result.archive.bytes)} ${result.archive.codec}  ${result.duration_ms} ms`);
  for (const db of result.databases) {
    const rows = Object.values(db.rows).reduce((a, b) => a + b, 0);
    out(`  ${db.name.padEnd(24)} ${formatBytes(db.bytes).padStart(10)}  ${rows} rows  user_version ${db.user_version}${db.via_link ? '  (via link)' : ''}`);
  }
  for (const s of result.skipped) out(`  skipped ${s.name}: ${cliText(s.reason, currentRoot)}`);
  if (result.pruned.length) out(`  pruned ${result.pruned.length}: ${result.pruned.join(', ')}`);
  out(`  remote: ${result.remote.status}${result.remote.reason ? ` (${cliText(result.remote.reason, currentRoot)})` : ''}`);
}

function printList(list: SnapshotList): void {
  if (!list.snapshots.length) out('no snapshots yet (take one with: wb-backup now)');
  for (const s of list.snapshots) {
    const where = [s.local ? 'local' : '', s.remote ? 'remote' : ''].filter(Boolean).join('+');
    out(`${s.id.padEnd(36)} ${formatBytes(s.bytes).padStart(10)}  ${where}${s.manual ? '  manual' : ''}`);
  }
  if (list.remote.reason) process.stderr.write(`note: ${cliText(list.remote.reason, currentRoot)}\n`);
}

async function backupCommand(root: string, opts: { manual?: boolean; json?: boolean }): Promise<BackupResult> {
  const config = loadConfig(root);
  // Bytes: what the copies in the snapshot's .partial folder hold so far (not its archive being
  // written), of the live files' sizes.
  const total = config.databases.reduce((n, d) => n + (fs.statSync(d.path, { throwIfNoEntry: false })?.size ?? 0), 0);
  const copies = folderBytes(rootLayout(root).backupsDir, (n) => n.endsWith('.partial'), (n) => n.startsWith('archive.'));
  const bar = progressReporter(!opts.json, { written: () => Math.min(copies(), total), total });
  // Shown from the start: the first step ends only when the first database is copied.
  bar.update(0, config.databases.length + 2, 'copying');
  try {
    return await track(
      runBackup(config, { manual: opts.manual ?? true, signal: shutdownSignal, onProgress: (p) => bar.update(p.done, p.total, p.message) }),
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

/** --port: a whole number 0-65535 (0 picks a free port), checked before anything starts. */
function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value.trim()) || Number(value) > 65535) throw new InvalidArgumentError('expected a port number from 0 to 65535 (0 picks a free one).');
  return Number(value);
}

/** --host: an IP address or a host name, checked before anything starts. */
function parseHost(value: string): string {
  if (net.isIP(value) || /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(value)) return value;
  throw new InvalidArgumentError('expected an IP address (e.g. 127.0.0.1 or ::1) or a host name.');
}

/** A listen failure in words: the port is taken, or binding it needs privileges. */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new WbError('invalid_input', `Port ${port} on ${host} is already in use.`, 'Stop the program using it, or pass --port with another port (0 picks a free one).');
  if (code === 'EACCES') return new WbError('invalid_input', `Binding port ${port} on ${host} needs privileges this user does not have.`, 'Pass --port with a port above 1023.');
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new WbError('invalid_input', `${host} is not an address of this machine.`, 'Pass --host with one of its addresses (127.0.0.1 by default).');
  return err;
}

/**
 * Commands that may create a missing data root (saying so): `init`, a first snapshot, and an
 * import that rebuilds the databases on a new machine. Every other command needs it to exist.
 */
const CREATES_ROOT = new Set(['now', 'init', 'sync import']);
/** Commands that do not use the data root of --root / WB_BACKUP_HOME. */
const NO_ROOT = new Set(['demo', 'install-commands']);

/** "sync push" for `wb-backup sync push`: the command's words after the program name. */
function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * The data root must exist, so a mistyped --root is an error rather than an empty new root that
 * "has no snapshots yet". `now`, `init` and `sync import` create it (not in a dry run) and say so on stderr.
 * @throws WbError `invalid_input` (exit 2) naming the root and how to create it
 */
function ensureRoot(root: string, command: string, dryRun: boolean): void {
  const stat = fs.statSync(root, { throwIfNoEntry: false });
  if (stat?.isDirectory()) return;
  if (stat) throw new WbError('invalid_input', `The data root ${root} is not a folder.`, 'Pass --root (or set WB_BACKUP_HOME) to the folder that holds wb-backup.yaml, db/ and backups/.');
  if (!CREATES_ROOT.has(command)) {
    throw new WbError(
      'invalid_input',
      `The data root ${root} does not exist.`,
      'Check --root (or WB_BACKUP_HOME; the default is ./.data), or create a new data root with `wb-backup --root <dir> init`.',
    );
  }
  // A dry run creates nothing, not even the root: it plans against the empty one.
  if (dryRun) return;
  fs.mkdirSync(path.join(root, 'db'), { recursive: true });
  process.stderr.write(`wb-backup: created the data root ${root} (put databases in ${path.join(root, 'db')}, or list them in ${path.join(root, 'wb-backup.yaml')})\n`);
}

/**
 * Where this command's logs go. Servers (serve, sidecar): stderr, as before (stdout is MCP).
 * Other commands print for people: their logs go to <root>/logs/wb-backup.log, or to stderr when
 * asked for with -v/--verbose (info; -vv debug) or WB_BACKUP_LOG_LEVEL. A dry run writes no file.
 */
function setUpLogging(command: string, verbose: number, logFile: string | null): void {
  const level = verbose >= 2 ? 'debug' : verbose === 1 ? 'info' : undefined;
  if (command === 'serve' || command === 'sidecar' || verbose > 0 || process.env.WB_BACKUP_LOG_LEVEL) {
    configureLogging({ target: { kind: 'stderr' }, ...(level ? { level } : {}) });
  } else configureLogging({ target: logFile ? { kind: 'file', file: logFile } : { kind: 'none' } });
}

/** The log file of a data root (see setUpLogging). */
export function logFileOf(root: string): string {
  return path.join(root, 'logs', 'wb-backup.log');
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('wb-backup')
    .description('Hot snapshots, retention and safe restores for your local SQLite databases.')
    .version(toolVersion())
    .option('--root <dir>', 'data root (default: $WB_BACKUP_HOME or ./.data)')
    .option('-v, --verbose', 'print logs on stderr (-vv: debug); without it they go to <root>/logs/wb-backup.log', (_v: string, n: number) => n + 1, 0)
    .showHelpAfterError('(run with --help for usage)')
    // Bad usage exits 2 (README), not commander's 1: fail() maps the CommanderError it throws.
    .exitOverride()
    .hook('preAction', async (_program, action) => {
      const command = commandPath(action);
      const verbose = action.optsWithGlobals<{ verbose?: number }>().verbose ?? 0;
      const dryRun = Boolean((action.opts() as { dryRun?: boolean }).dryRun);
      if (NO_ROOT.has(command)) {
        setUpLogging(command, verbose, null);
        return;
      }
      const root = rootOf(action);
      currentRoot = root;
      ensureRoot(root, command, dryRun);
      setUpLogging(command, verbose, dryRun ? null : logFileOf(root));
      // A dry run changes nothing, not even by finishing an interrupted restore; its plan says so.
      if (dryRun) return;
      let outcome: Awaited<ReturnType<typeof recoverOnStart>>;
      try {
        outcome = await recoverOnStart(root);
      } catch (err) {
        // A server still starts: every tool that touches the databases reports the same error.
        if (!(['serve', 'sidecar'].includes(command) && err instanceof WbError && err.code === 'recovery_needed')) throw err;
        note(describeError(err));
        return;
      }
      if (outcome.action !== 'none') {
        const done = outcome.action === 'rolled_forward' ? 'completed' : 'rolled back: the live databases are as before it (checked by sha256)';
        note(`an interrupted ${outcome.kind} of ${outcome.databases.join(', ')} was ${done}.`);
      }
      for (const n of outcome.notes) note(n);
    });

  program
    .command('init')
    .description('create a data root (with its db/ folder) if it does not exist yet')
    .action((_opts: unknown, cmd: Command) => {
      const root = rootOf(cmd);
      fs.mkdirSync(path.join(root, 'db'), { recursive: true });
      out(`data root: ${root}`);
      out(`next: put SQLite databases in ${path.join(root, 'db')} (or list them under databases: in ${path.join(root, 'wb-backup.yaml')}), then run: wb-backup --root ${root} now`);
    });

  program
    .command('now')
    .description('take a snapshot of every vital database now')
    .option('--manual', 'a manual anchor snapshot, kept in the manual retention bucket (the default)')
    .option('--no-manual', 'a routine snapshot, thinned like the hourly ones')
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
        // --undo always acts on the newest completed restore; an id here would be silently ignored.
        if (id || opts.db?.length) {
          throw new WbError('invalid_input', `--undo takes no snapshot id or --db: it puts back what the most recent restore replaced${id ? ` (it cannot undo ${id} in particular)` : ''}.`, 'Run `wb-backup restore --undo` alone (add --dry-run to see what it would put back).');
        }
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
      // Bytes: what the staging folder holds so far (the verified copies about to be swapped in).
      const bar = progressReporter(!opts.json, { written: folderBytes(root, (n) => n.startsWith('db.staging_')) });
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
              return confirmOnTerminal([`Restore ${plan.snapshotId} over:`, ...lines, describeSafetyCopies(plan.safety), ...plan.warnings.map((w) => `warning: ${cliText(w, currentRoot)}`)].join('\n'), opts.yes ?? false);
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
      for (const w of result.warnings) out(`  warning: ${cliText(w, currentRoot)}`);
    });

  program
    .command('serve')
    .description('run the MCP server (stdio by default; --http for Streamable HTTP)')
    .option('--http', 'serve Streamable HTTP at /mcp instead of stdio')
    .option('--host <host>', 'address to bind with --http (default 127.0.0.1; others need WB_BACKUP_HTTP_TOKEN)', parseHost)
    .option('--port <port>', 'port with --http (default 8787; 0 picks a free one)', parsePort)
    .option('--no-sidecar', 'do not run the scheduled jobs (hourly snapshots) in this process')
    .action(async (opts: { http?: boolean; host?: string; port?: number; sidecar: boolean }, cmd: Command) => {
      const root = rootOf(cmd);
      // Every option and setting is checked before anything starts, so a bad one never leaves a
      // sidecar running behind a server that then fails.
      if ((opts.host !== undefined || opts.port !== undefined) && !opts.http) throw new WbError('invalid_input', '--host and --port apply to --http only.', 'Add --http, or leave them out for stdio.');
      let config: Config | null = null;
      try {
        config = loadConfig(root);
      } catch (err) {
        // The HTTP server's address comes from the configuration: it does not guess one.
        if (opts.http || !(err instanceof WbError && err.code === 'config_invalid')) throw err;
        // stdio: the client would only see "Connection closed". Serve anyway; every tool, and
        // health_status, answers with this error until the file is fixed (each call reloads it).
        note(`${describeError(err)}\nServing anyway: every tool reports this configuration error until the file is fixed.`);
      }
      const startSidecarHere = async () => {
        if (!opts.sidecar) return;
        // Imported here: the server's modules (express, the MCP SDK) are not needed by `now` and `list`.
        const { startSidecar } = await import('../sidecar/service.js');
        const runner = await startSidecar(root);
        addShutdownHook(() => runner.stop());
      };
      if (!opts.http) {
        await startSidecarHere();
        const { serveStdio } = await import('../mcp/stdio.js');
        const server = await serveStdio(root);
        addShutdownHook(() => server.close());
        return;
      }
      const token = process.env.WB_BACKUP_HTTP_TOKEN || undefined;
      const { startHttpServer, assertUsableToken } = await import('../mcp/http.js');
      if (token !== undefined) assertUsableToken(token);
      const host = opts.host ?? config!.http.host;
      const port = opts.port ?? config!.http.port;
      let running: Awaited<ReturnType<typeof startHttpServer>>;
      try {
        running = await startHttpServer({ root, host, port, ...(token ? { token } : {}), ...(config!.http.allowed_hosts ? { allowedHosts: config!.http.allowed_hosts } : {}) });
      } catch (err) {
        throw listenError(err, host, port);
      }
      addShutdownHook(() => running.close());
      // The sidecar starts once the server listens: a port in use or a refused token leaves nothing running.
      await startSidecarHere();
      // The one line a script needs to find the server; logs stay on stderr.
      process.stderr.write(`wb-backup: serving MCP at ${running.url}/mcp\n`);
    });

  program
    .command('demo')
    .description('make example databases in a folder of their own, snapshot them twice and list the snapshots')
    .option('--dir <dir>', 'demo folder (its own data root; never your real one)', 'wb-backup-demo')
    .action(async (opts: { dir: string }, cmd: Command) => {
      const root = path.resolve(expandHome(opts.dir));
      if (fs.existsSync(path.join(root, 'db')) && !fs.existsSync(path.join(root, '.wb-backup-demo'))) {
        throw new WbError('invalid_input', `${opts.dir} already holds a db/ folder that the demo did not make.`, 'Pass --dir with an empty or new folder.');
      }
      fs.mkdirSync(root, { recursive: true });
      fs.writeFileSync(path.join(root, '.wb-backup-demo'), 'made by wb-backup demo\n');
      currentRoot = root;
      setUpLogging('demo', cmd.optsWithGlobals<{ verbose?: number }>().verbose ?? 0, logFileOf(root));
      const made = createDemoDatabases(path.join(root, 'db'));
      out(`demo data root: ${root}`);
      out(`example databases: ${made.map((f) => path.relative(root, f)).join(', ')}\n`);
      printBackup(await backupCommand(root, { manual: false }));
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
