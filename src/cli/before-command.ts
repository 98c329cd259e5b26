import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { WbError, describeError } from '../core/errors.js';
import { configureLogging } from '../core/log.js';
import { recoverOnStart } from '../restore/startup.js';
import { rootOf } from './root.js';
import { note, setCurrentRoot } from './output.js';
import { rootLayout } from '../root/paths.js';

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
  const layout = rootLayout(root);
  fs.mkdirSync(layout.dbDir, { recursive: true });
  process.stderr.write(`wb-backup: created the data root ${root} (put databases in ${layout.dbDir}, or list them in ${layout.configYaml})\n`);
}

/**
 * Where this command's logs go. Servers (serve, sidecar): stderr, as before (stdout is MCP).
 * Other commands print for people: their logs go to <root>/logs/wb-backup.log, or to stderr when
 * asked for with -v/--verbose (info; -vv debug) or WB_BACKUP_LOG_LEVEL. A dry run writes no file.
 */
export function setUpLogging(command: string, verbose: number, logFile: string | null): void {
  const level = verbose >= 2 ? 'debug' : verbose === 1 ? 'info' : undefined;
  if (command === 'serve' || command === 'sidecar' || verbose > 0 || process.env.WB_BACKUP_LOG_LEVEL) {
    configureLogging({ target: { kind: 'stderr' }, ...(level ? { level } : {}) });
  } else configureLogging({ target: logFile ? { kind: 'file', file: logFile } : { kind: 'none' } });
}

/** The log file of a data root (see setUpLogging). */
export function logFileOf(root: string): string {
  return rootLayout(root).logFile;
}

/**
 * Finishes an interrupted restore or import before the command runs, and says what it did.
 * @throws WbError `recovery_needed` when it cannot (a server still starts: every tool that
 *   touches the databases reports the same error)
 */
async function recoverInterrupted(root: string, command: string): Promise<void> {
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
}

/**
 * The program's preAction hook: before any command runs, its data root is checked (or created),
 * its logging set up and an interrupted restore finished. A dry run changes nothing.
 * @throws WbError `invalid_input` for a missing root, `recovery_needed` (see recoverInterrupted)
 */
export async function beforeCommand(action: Command): Promise<void> {
  const command = commandPath(action);
  const verbose = action.optsWithGlobals<{ verbose?: number }>().verbose ?? 0;
  const dryRun = Boolean((action.opts() as { dryRun?: boolean }).dryRun);
  if (NO_ROOT.has(command)) {
    setUpLogging(command, verbose, null);
    return;
  }
  const root = rootOf(action);
  setCurrentRoot(root);
  ensureRoot(root, command, dryRun);
  setUpLogging(command, verbose, dryRun ? null : logFileOf(root));
  // A dry run changes nothing, not even by finishing an interrupted restore; its plan says so.
  if (dryRun) return;
  await recoverInterrupted(root, command);
}
