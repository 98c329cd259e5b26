import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { logger } from '../core/log.js';
import { requestShutdown } from '../core/shutdown.js';
import { recoverOnStart } from '../restore/startup.js';
import { buildMcpServer } from './server.js';
import { describeError } from '../core/errors.js';

/** MCP over stdin/stdout. Nothing else may write to stdout in this mode. */
export async function serveStdio(root: string): Promise<McpServer> {
  // When recovery cannot finish, the server still starts: each tool that touches the databases
  // runs recovery again and reports what is where.
  await recoverOnStart(root).catch((err: unknown) => logger().error({ err: describeError(err) }, 'an interrupted restore needs attention'));
  const server = await buildMcpServer({ root });
  const transport = new StdioServerTransport();
  await server.connect(transport);
  // The client went away: finish what is running (cleanly), then exit.
  process.stdin.on('end', () => requestShutdown('stdin closed', 0));
  logger().info('MCP server ready on stdio');
  return server;
}
