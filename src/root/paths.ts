import os from 'node:os';
import path from 'node:path';

/** Where everything lives under one data root. One place, so no module invents its own layout. */
export interface RootLayout {
  root: string;
  configYaml: string;
  configJson: string;
  dbDir: string;
  backupsDir: string;
  lastRunFile: string;
  /** what the last `check` (or the verify sidecar job) found, and when each snapshot was last read in full */
  lastCheckFile: string;
  lockTarget: string;
  /** the journal of a restore, undo or import swap in progress (restore/swap) */
  restoreJournal: string;
  /** github-sync's working clone and state (sync/) */
  syncDir: string;
  /** the safety copies github_sync_resolve takes before writing, one <time>/ folder per call (sync/resolve) */
  syncResolvedDir: string;
  /** whole MCP results that were cut to fit a reply (mcp/bounded) */
  mcpResultsDir: string;
  /** databases of snapshots rebuilt for diff and query (inspect/cache), one <id>/<db>/ folder each, bounded in size */
  snapshotCacheDir: string;
  /** one JSON record per row recovery: which rows, from which snapshot, the safety snapshot taken first (recover/) */
  recoveredDir: string;
  /** the CLI's log file (without -v) */
  logFile: string;
  /** every sidecar run, skip and overlap, one JSON line each */
  sidecarHistory: string;
  /** written by `wb-backup demo` so it only ever refills a root it made */
  demoMarker: string;
}

export function rootLayout(root: string): RootLayout {
  const backupsDir = path.join(root, 'backups');
  return {
    root,
    configYaml: path.join(root, 'wb-backup.yaml'),
    configJson: path.join(root, 'wb-backup.json'),
    dbDir: path.join(root, 'db'),
    backupsDir,
    lastRunFile: path.join(backupsDir, 'last_run.json'),
    lastCheckFile: path.join(backupsDir, 'last_check.json'),
    // The root lock is the folder "<target>.lock" with its owner record inside (src/lock.ts).
    lockTarget: path.join(root, '.wb-backup'),
    restoreJournal: path.join(root, 'restore-journal.json'),
    syncDir: path.join(root, 'sync'),
    syncResolvedDir: path.join(root, 'sync', 'resolved'),
    mcpResultsDir: path.join(root, 'mcp-results'),
    snapshotCacheDir: path.join(root, 'cache', 'snapshots'),
    recoveredDir: path.join(root, 'recovered'),
    logFile: path.join(root, 'logs', 'wb-backup.log'),
    sidecarHistory: path.join(backupsDir, 'sidecar-history.jsonl'),
    demoMarker: path.join(root, '.wb-backup-demo'),
  };
}

/**
 * `~` and `~/...` as the user's home folder, as a shell would (a shell does not expand them in
 * `--root=~/x`, in WB_BACKUP_HOME="~/x" or in wb-backup.yaml). `~user` is left as it is.
 */
export function expandHome(p: string, home = os.homedir()): string {
  if (p === '~') return home;
  if (p.startsWith('~/') || (path.sep === '\\' && p.startsWith('~\\'))) return path.join(home, p.slice(2));
  return p;
}

/** Root from --root, then WB_BACKUP_HOME, then ./.data (`~` expanded); always absolute. */
export function resolveRoot(cliRoot?: string, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string {
  const chosen = cliRoot ?? env.WB_BACKUP_HOME ?? '.data';
  return path.resolve(cwd, expandHome(chosen));
}

/** A path for logs and messages: relative to the root when inside it, so user paths stay out of logs. */
export function displayPath(root: string, target: string): string {
  const rel = path.relative(root, target);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : path.basename(target);
}
