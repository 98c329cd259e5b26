import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { logger } from '../log.js';
import { requestShutdown } from '../shutdown.js';
import { recoverOnStart } from '../startup.js';
import { buildMcpServer } from './server.js';

/** MCP over stdin/stdout. Nothing else may write to stdout in this mode. */
export async function serveStdio(root: string): Promise<McpServer> {
  await recoverOnStart(root);
  const server = await buildMcpServer({ root });
  const transport = new StdioServerTransport();
  await server.connect(transport);
  // The client went away: finish what is running (cleanly), then exit.
  process.stdin.on('end', () => requestShutdown('stdin closed', 0));
  logger().info('MCP server ready on stdio');
  return server;
}
