#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { EXIT, WbError, describeError, errorSurfaces } from '../core/errors.js';
import { toolVersion } from '../backup/provenance.js';
import { installSignalHandlers, shutdownSignal } from '../core/shutdown.js';
import { beforeCommand } from './before-command.js';
import { currentRoot } from './output.js';
import { cliText } from './wording.js';
import { registerInit } from './commands/init.js';
import { registerNow } from './commands/now.js';
import { registerList } from './commands/list.js';
import { registerCheck } from './commands/check.js';
import { registerRestore } from './commands/restore.js';
import { registerExport } from './commands/export.js';
import { registerServe } from './commands/serve.js';
import { registerDemo } from './commands/demo.js';
import { registerHealthCommands } from './commands/health.js';
import { registerSidecarCommands } from './commands/sidecar.js';
import { registerSyncCommand } from './commands/sync.js';

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

/**
 * The commands, one file each under commands/, in the order `--help` lists them. Adding a
 * command is adding its file and its line here.
 */
const COMMANDS: ReadonlyArray<(program: Command) => void> = [
  registerInit,
  registerNow,
  registerList,
  registerRestore,
  registerExport,
  registerCheck,
  registerServe,
  registerDemo,
  registerHealthCommands, // health, fix
  registerSidecarCommands, // sidecar, install-commands
  registerSyncCommand, // sync push | pull | status | poll | import
];

/** The wb-backup program: global options, the checks before every command, and the commands. */
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
    .hook('preAction', (_program, action) => beforeCommand(action));
  for (const register of COMMANDS) register(program);
  return program;
}

installSignalHandlers();
buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => fail(err));
