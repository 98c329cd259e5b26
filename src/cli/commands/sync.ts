import path from 'node:path';
import { Option, type Command } from 'commander';
import { SYNC_MODES, type SyncMode } from '../../sync/config.js';
import { loadConfig } from '../../root/config.js';
import { rootLayout } from '../../root/paths.js';
import { rootOf } from '../root.js';
import { cliText } from '../wording.js';
import { confirmOnTerminal } from '../prompt.js';
import { progressBar, type ProgressBar } from '../progress.js';
import type { ImportPlan } from '../../sync/import.js';
import type { ConsentDecision } from '../../restore/restore.js';
import { joinedMessage, runChosen, TRANSPORT_CHOICES, type TransportChoice } from '../../sync/issues/surfaces.js';

/** `wb-backup sync push | pull | resolve | status | poll | import <clone-dir>`: the readable mirror of the databases in git. */
export function registerSyncCommand(program: Command): void {
  const sync = program.command('sync').description('github-sync: mirror the databases as readable files in a git repository');
  registerPush(sync);
  registerPull(sync);
  registerResolve(sync);
  registerStatus(sync);
  registerPoll(sync);
  registerImport(sync);
}

/** `sync poll`: ask every configured transport now; exit 1 when a poll or its pull failed. */
function registerPoll(sync: Command): void {
  sync
    .command('poll')
    .description('check each sync remote for changes (one cheap request each) and pull those that changed')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { syncPoll } = await import('../../sync/poll.js');
      const result = await syncPoll(loadConfig(rootOf(cmd)));
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${cliText(result.message)}\n`);
      if (result.polled.some((p) => p.error)) process.exitCode = 1;
    });
}

/** `sync push`: exit 1 when the remote moved (remote_changed). */
function registerPush(sync: Command): void {
  sync
    .command('push')
    .description('commit and push the mirror (one commit, never forced; a remote that moved is refused or gets a pull request, per mode); with sync.issues, task rows as GitHub issues too')
    .option('--dry-run', 'show which files would change')
    .addOption(new Option('--mode <mode>', 'override sync.github.mode for this push').choices([...SYNC_MODES]))
    .addOption(transportOption())
    .option('--json', 'print the result as JSON')
    .action(async (opts: { dryRun?: boolean; json?: boolean; mode?: SyncMode; transport: TransportChoice }, cmd: Command) => {
      const { syncPush } = await import('../../sync/push.js');
      const { issuesTransport } = await import('../../sync/issues/transport.js');
      const config = loadConfig(rootOf(cmd));
      const ran = await runChosen(
        config,
        opts.transport,
        () => withBar(!opts.json, (bar) => syncPush(config, { dryRun: opts.dryRun ?? false, ...(opts.mode ? { mode: opts.mode } : {}), onProgress: bar.update })),
        () => issuesTransport(config).push({ dryRun: opts.dryRun ?? false }),
      );
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ...(ran.git ?? {}), message: joinedMessage(ran.git, ran.issues), ...(ran.issues ? { issues: ran.issues } : {}) }, null, 2)}\n`);
      } else {
        const result = ran.git;
        if (result) {
          const paths = result.status === 'remote_changed' ? (result.remote_changed_paths ?? []) : result.files_changed;
          // What was left out is said in the text too: a push that mirrored one database of three is not just "pushed".
          const left = [...result.skipped.map((s) => `  skipped ${s.path}: ${s.reason}`), ...result.warnings.map((w) => `  warning ${w.table}: ${w.reason}`)];
          process.stdout.write(`${result.status}: ${cliText(result.message)}\n${[...paths.map((p) => `  ${p}`), ...left].join('\n')}\n`);
        }
        if (ran.issues) process.stdout.write(`issues ${ran.issues.status}: ${cliText(ran.issues.message)}\n${ran.issues.remote_changed.map((r) => `  left alone ${r.table} ${r.key} (issue #${r.issue} changed on GitHub)`).join('\n')}${ran.issues.remote_changed.length ? '\n' : ''}`);
      }
      if (ran.git?.status === 'remote_changed') process.exitCode = 1;
    });
}

/** `--transport all|git|issues` (default all: every configured one). */
function transportOption(): Option {
  return new Option('--transport <transport>', 'which sync transport: all configured ones, the git mirror, or the GitHub issues').choices([...TRANSPORT_CHOICES]).default('all');
}

/** `sync pull`: exit 1 when rows conflict. */
function registerPull(sync: Command): void {
  sync
    .command('pull')
    .description('apply row edits made on the remote (three-way per row; conflicts are reported, not overwritten); with sync.issues, edits made to the issues too')
    .option('--dry-run', 'show what would be applied')
    .addOption(transportOption())
    .option('--json', 'print the result as JSON')
    .action(async (opts: { dryRun?: boolean; json?: boolean; transport: TransportChoice }, cmd: Command) => {
      const { syncPull } = await import('../../sync/pull.js');
      const { issuesTransport } = await import('../../sync/issues/transport.js');
      const config = loadConfig(rootOf(cmd));
      const ran = await runChosen(
        config,
        opts.transport,
        () => withBar(!opts.json, (bar) => syncPull(config, { dryRun: opts.dryRun ?? false, onProgress: bar.update })),
        () => issuesTransport(config).pull({ dryRun: opts.dryRun ?? false }),
      );
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ ...(ran.git ?? {}), message: joinedMessage(ran.git, ran.issues), ...(ran.issues ? { issues: ran.issues } : {}) }, null, 2)}\n`);
      } else {
        const result = ran.git;
        if (result) process.stdout.write(`${result.status}: ${cliText(result.message)}\n${[...result.conflicts.map((c) => `  conflict ${c.table} ${c.key}`), ...result.rejected.map((r) => `  rejected ${r.path}: ${r.reason}`)].join('\n')}\n`);
        const i = ran.issues;
        if (i) {
          const lines = [...i.conflicts.map((c) => `  conflict ${c.table} ${c.key}${c.issue === null ? '' : ` (issue #${c.issue})`}`), ...i.rejected.map((r) => `  rejected ${r.path}: ${r.reason}`)];
          process.stdout.write(`issues ${i.status}: ${cliText(i.message)}\n${lines.join('\n')}${lines.length ? '\n' : ''}`);
        }
      }
      if (ran.git?.status === 'conflicts' || ran.issues?.status === 'conflicts') process.exitCode = 1;
    });
}

/**
 * `sync resolve`: without --ours/--theirs, list the conflicts the last pull recorded; with one,
 * resolve every open conflict --db/--table/--key select (asks y/N, or --yes).
 */
function registerResolve(sync: Command): void {
  sync
    .command('resolve')
    .description('list the conflicts the last pull recorded, or resolve them row by row (--ours keeps the local row, --theirs takes the remote one)')
    .option('--ours', 'keep the local rows (the next push sends them)')
    .option('--theirs', 'take the remote rows into the database (a row the remote deleted is deleted)')
    .option('--db <name>', 'only conflicts of this database')
    .option('--table <name>', 'only conflicts of this table')
    .option('--key <key>', 'only this row: its key as listed ({"id":5}), or the value of a one-column key (5)')
    .option('--dry-run', 'show what each resolution would write, changing nothing')
    .option('-y, --yes', 'do not ask (for scripts)')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { ours?: boolean; theirs?: boolean; db?: string; table?: string; key?: string; dryRun?: boolean; yes?: boolean; json?: boolean }, cmd: Command) => {
      const { resolveConflicts } = await import('../../sync/resolve.js');
      const { keyMatches } = await import('../../sync/conflicts.js');
      const { readState } = await import('../../sync/state.js');
      if (opts.ours && opts.theirs) cmd.error('error: pass either --ours or --theirs, not both', { exitCode: 2 });
      const root = rootOf(cmd);
      const config = loadConfig(root);
      const take = opts.ours ? 'ours' : opts.theirs ? 'theirs' : undefined;
      // The open conflicts the filters select; with --ours/--theirs each of them is resolved that way.
      const open = (readState(root).conflicts?.items ?? []).filter(
        (i) => !i.resolved && (opts.db === undefined || i.database === opts.db) && (opts.table === undefined || i.table === opts.table) && (opts.key === undefined || keyMatches(i.key, opts.key)),
      );
      if (take && !open.length && (opts.db !== undefined || opts.table !== undefined || opts.key !== undefined)) {
        process.stderr.write('No open conflict matches --db/--table/--key. Run `wb-backup sync resolve` to list them.\n');
        process.exitCode = 1;
        return;
      }
      const result = await resolveConflicts(config, {
        resolutions: take ? open.map((i) => ({ database: i.database, table: i.table, key: i.key, take })) : [],
        dryRun: opts.dryRun ?? false,
        consent: (plan) =>
          confirmOnTerminal(
            `Resolve:\n${plan.map((p) => `  ${p.database}.${p.table} ${p.key}: ${p.action}${p.write ? ` ${p.write.line}` : ''}`).join('\n')}\nA safety copy of each database written goes to ${rootLayout(root).syncResolvedDir}/.`,
            opts.yes ?? false,
          ),
      });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const rows =
        result.status === 'dry_run' || result.status === 'resolved'
          ? result.plan.map((p) => `  ${p.database}.${p.table} ${p.key}: ${p.action}${p.write ? ` -> ${p.write.line}` : ''}`)
          : result.conflicts.map((c) => `  ${c.database}.${c.table} ${c.key}\n    ours:   ${c.ours?.line ?? '(deleted)'}\n    theirs: ${c.theirs?.line ?? '(deleted)'}`);
      // The dry run's token is for MCP callers; on the CLI the same command without --dry-run asks.
      const message = result.status === 'dry_run' ? result.message.replace(/ To do exactly this, pass the confirm_token with the same resolutions \(it works once\)\./, ' Run the command again without --dry-run to do it.') : result.message;
      process.stdout.write(`${result.status}: ${cliText(message, root)}\n${rows.join('\n')}${rows.length ? '\n' : ''}`);
    });
}

function registerStatus(sync: Command): void {
  sync
    .command('status')
    .description('rows changed here and on the remote since the last sync (with sync.issues: what the next push sends to the issues)')
    .option('--json', 'print the status as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const { syncStatus } = await import('../../sync/status.js');
      const { issuesStatus } = await import('../../sync/issues/transport.js');
      const { describeLastPolls, transportPolls } = await import('../../sync/poll.js');
      const config = loadConfig(rootOf(cmd));
      const status = await syncStatus(config);
      // As github_sync_status: each configured transport with its last poll, and the issues transport's counts.
      const transports = transportPolls(config);
      const polls = describeLastPolls(transports, new Date());
      const issues = config.sync?.issues ? issuesStatus(config) : undefined;
      const text = issues ? joinedMessage(status.configured ? status : undefined, issues) : status.message;
      process.stdout.write(opts.json ? `${JSON.stringify({ ...status, transports, ...(issues ? { issues, message: text } : {}) }, null, 2)}\n` : `${cliText(text)}${polls ? `\n${cliText(polls)}` : ''}\n`);
    });
}

/** `sync import <clone-dir>`: replacing existing databases needs --force, then a yes. */
function registerImport(sync: Command): void {
  sync
    .command('import')
    .description('rebuild the databases from a clone of the sync repository')
    .argument('<clone-dir>', 'folder of a git clone of the sync repository')
    .option('--dry-run', 'show what would be rebuilt')
    .option('--force', 'replace existing databases (asks y/N on a terminal; the old files go to a new db.pre_restore_* folder: restore --undo puts them back)')
    .option('-y, --yes', 'with --force: do not ask (for scripts)')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, opts: { dryRun?: boolean; force?: boolean; yes?: boolean; json?: boolean }, cmd: Command) => {
      const { syncImport } = await import('../../sync/import.js');
      const config = loadConfig(rootOf(cmd));
      const result = await withBar(!opts.json, (bar) =>
        syncImport(config, path.resolve(dir), {
          dryRun: opts.dryRun ?? false,
          force: opts.force ?? false,
          onProgress: bar.update,
          // Replacing needs --force (intent) and then a yes (consent): never a silent yes. The bar stops before the question.
          ...(opts.force
            ? {
                consent: (plan: ImportPlan) => {
                  bar.stop();
                  return confirmImport(plan, opts.yes ?? false);
                },
              }
            : {}),
        }),
      );
      process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : `${cliText(result.message)}\n${result.databases.map((d) => `  ${d.name} -> ${d.target}`).join('\n')}\n`);
    });
}

/** The y/N question before an import replaces databases (what it replaces, the safety copies, warnings). */
async function confirmImport(plan: ImportPlan, yes: boolean): Promise<ConsentDecision> {
  const { describeSafetyCopies } = await import('../../restore/safety-copies.js');
  const replaced = plan.databases.filter((d) => d.replaced).map((d) => `  ${d.name} -> ${d.target}`);
  const warnings = plan.warnings.map((w) => `\nwarning: ${cliText(w)}`).join('');
  return confirmOnTerminal(`Import replaces:\n${replaced.join('\n')}\n${describeSafetyCopies(plan.safety)}${warnings}`, yes);
}

/**
 * Runs a sync step with the CLI's progress bar on a terminal (stderr; nothing for --json or a
 * pipe), fed by the sync's own progress (src/sync/sync-progress.ts: bytes written and read, and
 * what git adds to the clone), stopped before the result is printed.
 */
async function withBar<T>(enabled: boolean, run: (bar: ProgressBar) => Promise<T>): Promise<T> {
  const bar = progressBar(enabled);
  try {
    return await run(bar);
  } finally {
    bar.stop();
  }
}
