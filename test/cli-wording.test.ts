import { describe, expect, it } from 'vitest';
import { CLI_COMMAND_FOR_TOOL, cliText } from '../src/cli/wording.js';
import { loadCapabilities } from '../src/capability/load.js';

describe('the CLI says commands where the shared messages say tools', () => {
  it('every MCP tool has a CLI command to name instead', async () => {
    const missing = (await loadCapabilities()).map((c) => c.name).filter((name) => !CLI_COMMAND_FOR_TOOL[name]);
    expect(missing).toEqual([]);
  });

  it.each([
    ['Known snapshots (newest first): a, b. Use data_backup_list to see them all.', 'Known snapshots (newest first): a, b. Use `wb-backup list` to see them all.'],
    ['There are no local snapshots yet: take one with data_backup (or `wb-backup now`).', 'There are no local snapshots yet: take one with `wb-backup now`.'],
    ['Run `gh --version`, then call health_status: github_backups.gh-cli-installed should be ok.', 'Run `gh --version`, then run `wb-backup health`: github_backups.gh-cli-installed should be ok.'],
    ['It needs inputs: call again with inputs matching inputs_schema.', 'It needs inputs: run it again with --input <name>=<value> for each input listed.'],
    ['After merging, run `wb-backup sync pull` (github_sync_pull) on the machine.', 'After merging, run `wb-backup sync pull` on the machine.'],
    ['Pull those changes first (github_sync_pull), then push again.', 'Pull those changes first (`wb-backup sync pull`), then push again.'],
    ['Stop the program using it and try again, or pass force: true to replace it anyway.', 'Stop the program using it and try again, or pass --force to replace it anyway.'],
    ['or restore fewer databases (databases: [...]), then try again.', 'or restore fewer databases (--db <name>), then try again.'],
    ['Run a new dry run and use its confirm_token.', 'Run the command again (with --dry-run first to see the new plan).'],
    [
      'Run the import with dry_run: true, show the user the plan, and if they agree call it again with the same clone_dir plus the confirm_token it returned (CLI: --force, then answer y or pass --yes).',
      'Run it with --dry-run to see the plan, then again with --force, then answer y or pass --yes.',
    ],
    [
      "Call github_sync_resolve with the same resolutions and dry_run: true, show the user the plan, and if they agree call it again with the confirm_token it returned (CLI: --yes, or answer y).",
      'Run it with --dry-run to see the plan, then again with --yes, or answer y.',
    ],
    ['Call github_sync_resolve without resolutions to list the conflicts (database, table and key as shown).', 'Run `wb-backup sync resolve` to list the conflicts (--db, --table and --key as shown).'],
    ['no *.db under <root>/db/', 'no *.db under /data/db/'],
    ['Never synced: run github_sync_push.', 'Never synced: run `wb-backup sync push`.'],
  ])('%s', (mcp, cli) => {
    expect(cliText(mcp, '/data')).toBe(cli);
  });

  it('leaves text without tool words as it is', () => {
    const plain = 'snapshot snap-2026-01-01T00-00-00Z saved: 3 database(s), data_backups_table untouched';
    expect(cliText(plain)).toBe(plain);
  });
});
