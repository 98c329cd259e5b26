import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import matter from 'gray-matter';
import { z } from 'zod';
import { loadConfig } from './config.js';
import { listSnapshots } from './snapshot-list.js';
import { formatBytes } from './size-format.js';

export interface SlashCommand {
  name: string;
  description: string;
  argumentHint: string;
  body: string;
  file: string;
}

/** commands/ beside src/ (and beside dist/src/ when built): the same files serve Claude Code and MCP prompts. */
export function commandsDir(): string {
  for (const rel of ['../commands/', '../../commands/']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (fs.existsSync(dir)) return dir;
  }
  return fileURLToPath(new URL('../commands/', import.meta.url));
}

export function loadSlashCommands(dir = commandsDir()): SlashCommand[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.md'))
    .sort()
    .map((n) => {
      const parsed = matter(fs.readFileSync(path.join(dir, n), 'utf8'));
      const data = parsed.data as { description?: string; 'argument-hint'?: string };
      return { name: n.replace(/\.md$/, ''), description: data.description ?? '', argumentHint: data['argument-hint'] ?? '', body: parsed.content.trim(), file: path.join(dir, n) };
    });
}

/**
 * An optional, completed argument. The SDK (1.32) enables completions when the optional's inner
 * type is completable, but looks the completer up on the field itself: mark both.
 */
function optionalCompletable(schema: z.ZodString, complete: (value: string | undefined) => Promise<string[]>) {
  return completable(completable(schema, complete).optional(), complete);
}

function userMessage(text: string) {
  return { messages: [{ role: 'user' as const, content: { type: 'text' as const, text } }] };
}

/** The slash commands as MCP prompts; snapshot_id is completed from the real snapshot list. */
export function registerPrompts(server: McpServer, root: string): void {
  const commands = new Map(loadSlashCommands().map((c) => [c.name, c]));
  const now = commands.get('wb-backup-now');
  if (now) {
    server.registerPrompt('wb-backup-now', { title: 'Back up now', description: now.description }, () => userMessage(now.body.replace(/\$ARGUMENTS/g, '')));
  }
  const restore = commands.get('wb-backup-restore');
  if (restore) {
    server.registerPrompt(
      'wb-backup-restore',
      {
        title: 'Restore from a snapshot',
        description: restore.description,
        argsSchema: {
          snapshot_id: optionalCompletable(z.string().describe('snapshot id, or "latest"; leave empty to choose from the list'), async (value) => {
            const { snapshots } = await listSnapshots(loadConfig(root), 'all');
            return ['latest', ...snapshots.map((s) => s.id)].filter((id) => id.startsWith(value ?? '')).slice(0, 100);
          }),
        },
      },
      async ({ snapshot_id }) => {
        if (snapshot_id) return userMessage(restore.body.replace(/\$ARGUMENTS/g, `snapshot ${snapshot_id}`));
        // No id: list what exists so the user can choose, as the command asks.
        const { snapshots } = await listSnapshots(loadConfig(root), 'all');
        const listing = snapshots.length
          ? snapshots.slice(0, 30).map((s) => `- ${s.id}  ${formatBytes(s.bytes)}${s.manual ? '  manual' : ''}${s.local ? '  local' : ''}${s.remote ? '  remote' : ''}`).join('\n') +
            (snapshots.length > 30 ? `\n(and ${snapshots.length - 30} older: page them with data_backup_list)` : '')
          : '(there are no snapshots yet)';
        return userMessage(`${restore.body.replace(/\$ARGUMENTS/g, '(no snapshot id given)')}\n\nThe snapshots available now, newest first:\n${listing}\n\nWhich one should be restored?`);
      },
    );
  }
}
