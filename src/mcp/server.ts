import { monotonicSink } from '../core/progress.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ElicitResultSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Capability, CapabilityContext, ElicitAnswer, ElicitSchema } from '../capability/capability.js';
import { loadConfig } from '../root/config.js';
import { healthStatus, invalidateHealth } from '../health/service.js';
import { listSnapshots } from '../backup/list.js';
import { registerPrompts } from './prompts.js';
import { WbError, describeError, errorSurfaces } from '../core/errors.js';
import { logger } from '../core/log.js';
import { loadCapabilities } from '../capability/load.js';
import { toolVersion } from '../backup/provenance.js';
import { shutdownSignal, track } from '../core/shutdown.js';
import { ListsInfoSchema, PAGING_NOTE, PagingInputShape, boundErrorText, boundResult, boundSummary, pageResult, pagingOf } from './bounded.js';
import { SnapshotListSchema } from '../backup/list.js';
import { ComponentReportSchema } from '../health/evaluate.js';
import { z } from 'zod';

export interface ServerOptions {
  root: string;
}

/** An MCP server with every capability in capabilities/ registered as a tool. */
export async function buildMcpServer(opts: ServerOptions): Promise<McpServer> {
  const capabilities = await loadCapabilities();
  const server = new McpServer({ name: 'wb-backup', version: toolVersion() }, { instructions: serverInstructions(capabilities) });
  for (const capability of capabilities) registerCapability(server, capability, opts);
  registerResources(server, opts);
  registerPrompts(server, opts.root);
  return server;
}

/**
 * The server instructions: what wb-backup is for, then one line per loaded tool (its title), so a
 * new capability file is named here with no other change.
 */
export function serverInstructions(capabilities: readonly Capability[]): string {
  return [
    'wb-backup keeps the local SQLite databases safe: snapshots, restores with consent, an off-machine copy, and a readable mirror in git.',
    'Take a snapshot with data_backup (a manual anchor by default) before any risky change to the data. Start with health_status to see what is set up and health_fix to set up the rest.',
    'Tools:',
    ...capabilities.map((c) => `- ${c.name}: ${c.title}.`),
    'Prompts mirror the slash commands in commands/; failures come back as isError results that say what to do.',
  ].join('\n');
}

function registerCapability(server: McpServer, capability: Capability, opts: ServerOptions): void {
  // Every tool pages the same way (src/mcp/bounded.ts): `cursor`/`limit` in, `lists` out.
  const output = capability.output.extend({ lists: ListsInfoSchema });
  server.registerTool(
    capability.name,
    {
      title: capability.title,
      description: capability.description + PAGING_NOTE,
      inputSchema: capability.input.extend(PagingInputShape),
      outputSchema: output,
      annotations: capability.annotations,
    },
    async (args: unknown, extra): Promise<CallToolResult> => {
      const progressToken = extra._meta?.progressToken;
      const clientCaps = server.server.getClientCapabilities();
      const ctx: CapabilityContext = {
        root: opts.root,
        loadConfig: () => loadConfig(opts.root),
        signal: AbortSignal.any([extra.signal, shutdownSignal]),
        // The spec wants `progress` to increase with each notification: the guard drops any that does not.
        progress: monotonicSink((done, total, message) => {
          if (progressToken === undefined) return;
          extra
            .sendNotification({ method: 'notifications/progress', params: { progressToken, progress: done, ...(total !== undefined ? { total } : {}), message } })
            .catch(() => undefined);
        }),
        ...(clientCaps?.elicitation
          ? {
              elicit: async (message: string, requestedSchema: ElicitSchema): Promise<ElicitAnswer> => {
                const answer = await extra.sendRequest(
                  { method: 'elicitation/create', params: { mode: 'form', message, requestedSchema } },
                  ElicitResultSchema,
                );
                return answer.action === 'accept' ? { action: 'accept', content: (answer.content ?? {}) as Record<string, unknown> } : { action: answer.action };
              },
            }
          : {}),
      };
      try {
        const paging = pagingOf(args);
        if (paging.cursor) {
          // A later page of a stored result: the tool does not run again.
          const page = pageResult(opts.root, capability.name, output, paging.cursor, paging.limit);
          return { content: [{ type: 'text', text: boundSummary(`A page of an earlier ${capability.name} result; nothing was run again.`, page) }], structuredContent: page.result };
        }
        const input = capability.input.parse(args ?? {});
        let outcome;
        try {
          outcome = await track(capability.run(input, ctx));
        } finally {
          // A tool that changes things (a snapshot, a push, a setting) makes the cached health stale.
          if (!capability.annotations.readOnlyHint) invalidateHealth(opts.root);
        }
        const { result, summary, isError } = outcome;
        const bounded = boundResult(opts.root, capability.name, output, result, paging.limit);
        // A failure that still has a result (health_fix failed, a refused push) keeps it as structured content.
        return { ...(isError ? { isError: true } : {}), content: [{ type: 'text', text: boundSummary(summary, bounded) }], structuredContent: bounded.result };
      } catch (err) {
        const text = describeError(err);
        // isError and the log level come from the one table of codes (src/core/errors.ts).
        const { mcp } = errorSurfaces(err);
        const logged = boundErrorText(text);
        if (!(err instanceof WbError)) logger().error({ tool: capability.name, err: logged }, 'tool failed unexpectedly');
        else if (mcp.input) logger().info({ tool: capability.name, code: err.code }, logged);
        else logger().warn({ tool: capability.name, code: err.code }, logged);
        return { ...(mcp.isError ? { isError: true } : {}), content: [{ type: 'text', text: boundErrorText(err instanceof WbError ? text : `${capability.name} failed: ${text}`) }] };
      }
    },
  );
}

const HealthOutput = z.object({ components: z.array(ComponentReportSchema), lists: ListsInfoSchema });
const SnapshotsOutput = SnapshotListSchema.extend({ lists: ListsInfoSchema });

/**
 * The health graph and the snapshot list as JSON resources, for clients that read rather than call.
 * Bounded like the tools; their cursors page through the tool of the same content.
 */
function registerResources(server: McpServer, opts: ServerOptions): void {
  const PAGE = ' Long lists are cut to a sample; `lists` gives totals and cursors to pass to';
  server.registerResource(
    'health-components',
    'health://components',
    { title: 'Backup health graph', description: `Components, requirements, fixers and checks (same as health_status).${PAGE} health_status.`, mimeType: 'application/json' },
    async (uri) => {
      const bounded = boundResult(opts.root, 'health_status', HealthOutput, { components: await healthStatus({ root: opts.root }) });
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(bounded.result) }] };
    },
  );
  server.registerResource(
    'backup-snapshots',
    'backups://snapshots',
    { title: 'Backup snapshots', description: `Local and remote snapshots, newest first (same as data_backup_list).${PAGE} data_backup_list.`, mimeType: 'application/json' },
    async (uri) => {
      const bounded = boundResult(opts.root, 'data_backup_list', SnapshotsOutput, await listSnapshots(loadConfig(opts.root), 'all'));
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(bounded.result) }] };
    },
  );
}
