/**
 * The CLI speaks in commands and flags. Messages and hints from the shared core (WbError, fix
 * results, health details, sync results) are written for both surfaces and often name MCP tools
 * and their arguments ("use data_backup_list", "pass force: true"); this maps them to what a
 * person types at the boundary, so the core and the MCP wording stay as they are.
 */

/** Every MCP tool and the CLI command that does the same. A new tool needs an entry (tested). */
export const CLI_COMMAND_FOR_TOOL: Record<string, string> = {
  data_backup: 'wb-backup now',
  data_backup_list: 'wb-backup list',
  data_backup_check: 'wb-backup check',
  data_restore: 'wb-backup restore',
  data_restore_undo: 'wb-backup restore --undo',
  health_status: 'wb-backup health',
  health_fix: 'wb-backup fix',
  health_set_enabled: 'wb-backup health enable/disable',
  github_sync_status: 'wb-backup sync status',
  github_sync_push: 'wb-backup sync push',
  github_sync_pull: 'wb-backup sync pull',
  github_sync_import: 'wb-backup sync import',
  github_sync_resolve: 'wb-backup sync resolve',
  github_sync_poll: 'wb-backup sync poll',
};

const TOOL = new RegExp(`\\b(${Object.keys(CLI_COMMAND_FOR_TOOL).sort((a, b) => b.length - a.length).join('|')})\\b`, 'g');
const cmd = (tool: string) => `\`${CLI_COMMAND_FOR_TOOL[tool]}\``;

// Whole phrases first (they read better than word-by-word swaps), then arguments, then tool names.
const PHRASES: Array<[RegExp, string | ((...m: string[]) => string)]> = [
  // "`wb-backup sync pull` (github_sync_pull)": the CLI command is already there.
  [/(`wb-backup [^`]+`) \((?:data|health|github_sync)_\w+\)/g, '$1'],
  // "take one with data_backup (or `wb-backup now`)"
  [/\b(?:data|health|github_sync)_\w+ \(or (`wb-backup [^`]+`)\)/g, '$1'],
  [
    /Run the import with dry_run: true, show the user the plan, and if they agree call it again with the same clone_dir plus the confirm_token it returned \(CLI: ([^)]*)\)\./g,
    'Run it with --dry-run to see the plan, then again with $1.',
  ],
  [
    /Call github_sync_resolve with the same resolutions and dry_run: true, show the user the plan, and if they agree call it again with the confirm_token it returned \(CLI: ([^)]*)\)\./g,
    'Run it with --dry-run to see the plan, then again with $1.',
  ],
  [/\bCall github_sync_resolve without resolutions to list the conflicts \(database, table and key as shown\)/g, 'Run `wb-backup sync resolve` to list the conflicts (--db, --table and --key as shown)'],
  [/\bcall github_sync_resolve without resolutions to list what is still open/g, 'run `wb-backup sync resolve` to list what is still open'],
  [/ \(CLI: ([^)]*)\)/g, ' ($1)'],
  [/Walk the user through these steps, then verify\./g, 'Follow these steps, then verify.'],
  [/call again with inputs matching inputs_schema/g, 'run it again with --input <name>=<value> for each input listed'],
  [/([Rr])un a new dry run and use its confirm_token/g, '$1un the command again (with --dry-run first to see the new plan)'],
  [/ \(the confirm_token was used: run a new dry run first\)/g, ''],
  [/\bconfirm_token\b/g, 'confirmation'],
  [/\bdry_run: true\b/g, '--dry-run'],
  [/\bforce: true\b/g, '--force'],
  [/\(databases: \[\.\.\.\]\)/g, '(--db <name>)'],
  [/\binputs_schema\b/g, 'the inputs listed'],
  // "call health_status: x should be ok" -> "run `wb-backup health`: x should be ok"
  [/\b[Cc]all (?=(?:data|health|github_sync)_\w+)/g, (m: string) => (m[0] === 'C' ? 'Run ' : 'run ')],
];

/**
 * `text` as the CLI should say it: tool names become commands, tool arguments become flags, and
 * `<root>` becomes the data root when it is known. Text without such words is returned unchanged.
 */
export function cliText(text: string, root?: string): string {
  let t = text;
  for (const [re, to] of PHRASES) t = t.replace(re, to as string);
  t = t.replace(TOOL, (tool) => cmd(tool));
  // "`wb-backup list`" already in backquotes stays single-quoted.
  t = t.replace(/``(wb-backup [^`]+)``/g, '`$1`');
  if (root) t = t.replace(/<root>/g, root);
  return t;
}
