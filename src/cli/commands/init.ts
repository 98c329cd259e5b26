import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { rootOf } from '../root.js';
import { out } from '../output.js';
import { rootLayout } from '../../root/paths.js';

/** `wb-backup init`: creates a data root (with its db/ folder) and says what to do next. */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a data root (with its db/ folder) if it does not exist yet')
    .action((_opts: unknown, cmd: Command) => {
      const root = rootOf(cmd);
      fs.mkdirSync(rootLayout(root).dbDir, { recursive: true });
      out(`data root: ${root}`);
      out(`next: put SQLite databases in ${rootLayout(root).dbDir} (or list them under databases: in ${rootLayout(root).configYaml}), then run: wb-backup --root ${root} now`);
    });
}
