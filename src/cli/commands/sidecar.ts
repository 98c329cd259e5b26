import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { rootOf } from '../root.js';
import { addShutdownHook } from '../../core/shutdown.js';

/** `wb-backup sidecar` (the scheduler alone) and `wb-backup install-commands`. */
export function registerSidecarCommands(program: Command): void {
  program
    .command('sidecar')
    .description('run the scheduled jobs (hourly snapshots) until stopped with SIGINT/SIGTERM')
    .option('--jobs <dir>', 'folder of job files (default: the sidecar-jobs/ folder shipped with wb-backup)')
    .action(async (opts: { jobs?: string }, cmd: Command) => {
      const root = rootOf(cmd);
      const { startSidecar } = await import('../../sidecar/service.js');
      const runner = await startSidecar(root, opts.jobs ? path.resolve(opts.jobs) : undefined);
      addShutdownHook(() => runner.stop());
      process.stderr.write('wb-backup: sidecar running (stop with Ctrl-C or SIGTERM)\n');
      // Keep the process alive; the cron tasks and the signal handlers do the rest.
      setInterval(() => undefined, 1 << 30);
    });

  program
    .command('install-commands')
    .description('copy the slash commands (/wb-backup-now, /wb-backup-restore) where Claude Code reads them')
    .option('--project', 'into ./.claude/commands of the current project (default)')
    .option('--user', 'into ~/.claude/commands for every project')
    .action(async (opts: { project?: boolean; user?: boolean }) => {
      const { commandsDir, loadSlashCommands } = await import('../../mcp/prompts.js');
      const target = opts.user ? path.join(os.homedir(), '.claude', 'commands') : path.join(process.cwd(), '.claude', 'commands');
      fs.mkdirSync(target, { recursive: true });
      for (const c of loadSlashCommands(commandsDir())) {
        fs.copyFileSync(c.file, path.join(target, path.basename(c.file)));
        process.stdout.write(`installed /${c.name} -> ${path.join(opts.user ? '~/.claude/commands' : '.claude/commands', path.basename(c.file))}\n`);
      }
    });
}
