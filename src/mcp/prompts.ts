import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import matter from 'gray-matter';
import { z } from 'zod';
import { loadConfig } from '../root/config.js';
import { listSnapshots } from '../backup/list.js';
import { formatBytes } from '../core/size-format.js';
import { WbError, describeError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { packageRoot } from '../core/package-root.js';

/** One argument of a command, from its front matter `arguments:` list. */
export interface CommandArgument {
  name: string;
  description: string;
  required: boolean;
}

export interface SlashCommand {
  name: string;
  /** front matter `title`, else the description */
  title: string;
  description: string;
  argumentHint: string;
  arguments: CommandArgument[];
  body: string;
  file: string;
}

const FrontMatter = z.object({
  title: z.string().optional(),
  description: z.string().default(''),
  'argument-hint': z.string().default(''),
  arguments: z
    .array(z.object({ name: z.string().regex(/^[a-z][a-z0-9_]*$/), description: z.string().min(1), required: z.boolean().default(false) }))
    .default([]),
});

/** commands/ beside src/ (and beside dist/src/ when built): the same files serve Claude Code and MCP prompts. */
export function commandsDir(): string {
  return path.join(packageRoot(), 'commands');
}

/**
 * Every commands/*.md, sorted by name. Front matter: `description`, `argument-hint` (Claude Code),
 * and for MCP prompts `title` and `arguments: [{name, description, required?}]`.
 * A malformed front matter throws a WbError naming the file and field, or, when `skip` is given, is
 * passed to it and left out (the server still starts with the other prompts).
 */
export function loadSlashCommands(dir = commandsDir(), skip?: (err: WbError) => void): SlashCommand[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.md'))
    .sort()
    .flatMap((n): SlashCommand[] => {
      const parsed = matter(fs.readFileSync(path.join(dir, n), 'utf8'));
      const data = FrontMatter.safeParse(parsed.data);
      if (!data.success) {
        const issue = data.error.issues[0]!;
        const err = new WbError('invalid_input', `commands/${n}: front matter field ${issue.path.join('.') || '(root)'}: ${issue.message}.`, 'Fix the command file; each argument needs a snake_case name and a description.');
        if (!skip) throw err;
        skip(err);
        return [];
      }
      const d = data.data;
      return [{ name: n.replace(/\.md$/, ''), title: d.title ?? d.description, description: d.description, argumentHint: d['argument-hint'], arguments: d.arguments, body: parsed.content.trim(), file: path.join(dir, n) }];
    });
}

/**
 * An optional, completed argument. The SDK (1.32) enables completions when the optional's inner
 * type is completable, but looks the completer up on the field itself: mark both. It reads the
 * argument's description from the field too, so the optional carries it as well as the string.
 */
function optionalCompletable(schema: z.ZodString, complete: (value: string | undefined) => Promise<string[]>) {
  const described = completable(schema, complete).optional();
  return completable(schema.description ? described.describe(schema.description) : described, complete);
}

function userMessage(text: string) {
  return { messages: [{ role: 'user' as const, content: { type: 'text' as const, text } }] };
}

/** The snapshot ids an argument named snapshot_id completes to: "latest" and the real list. */
async function completeSnapshotId(root: string, value: string | undefined): Promise<string[]> {
  const { snapshots } = await listSnapshots(loadConfig(root), 'all');
  return ['latest', ...snapshots.map((s) => s.id)].filter((id) => id.startsWith(value ?? '')).slice(0, 100);
}

/** The snapshots available now, for a prompt whose snapshot_id was left empty (so the user can choose). */
async function snapshotListing(root: string): Promise<string> {
  const { snapshots } = await listSnapshots(loadConfig(root), 'all');
  const listing = snapshots.length
    ? snapshots.slice(0, 30).map((s) => `- ${s.id}  ${formatBytes(s.bytes)}${s.manual ? '  manual' : ''}${s.local ? '  local' : ''}${s.remote ? '  remote' : ''}`).join('\n') +
      (snapshots.length > 30 ? `\n(and ${snapshots.length - 30} older: page them with data_backup_list)` : '')
    : '(there are no snapshots yet)';
  return `\n\nThe snapshots available now, newest first:\n${listing}\n\nWhich one should be restored?`;
}

/**
 * Every commands/*.md as an MCP prompt of the same name (a new command file becomes a prompt with
 * no code change). Arguments and their descriptions come from the front matter; an argument named
 * snapshot_id is completed from the real snapshot list, and when left empty the prompt lists them.
 */
export function registerPrompts(server: McpServer, root: string, dir = commandsDir()): void {
  const skipped = (err: WbError) => logger().error({ code: err.code }, `prompt left out: ${describeError(err)}`);
  for (const command of loadSlashCommands(dir, skipped)) {
    const argsSchema: Record<string, z.ZodType<string | undefined>> = {};
    for (const arg of command.arguments) {
      const base = z.string().describe(arg.description);
      if (arg.name === 'snapshot_id') argsSchema[arg.name] = optionalCompletable(base, (v) => completeSnapshotId(root, v));
      else argsSchema[arg.name] = arg.required ? base : base.optional().describe(arg.description);
    }
    server.registerPrompt(
      command.name,
      { title: command.title, description: command.description, ...(command.arguments.length ? { argsSchema } : {}) },
      async (args: Record<string, string | undefined> = {}) => {
        const given = command.arguments.filter((a) => args[a.name]).map((a) => `${a.name}: ${args[a.name]}`);
        const text = command.body.replace(/\$ARGUMENTS/g, given.length ? given.join(', ') : command.arguments.length ? '(no arguments given)' : '');
        const wantsList = command.arguments.some((a) => a.name === 'snapshot_id') && !args.snapshot_id;
        return userMessage(wantsList ? text + (await snapshotListing(root)) : text);
      },
    );
  }
}
