import { spawn, type ChildProcess } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CLI } from './fixtures.js';

/** The SDK's own client, talking to the built server over stdio, as an agent client would. */
export async function connectStdio(
  root: string,
  clientOptions: ConstructorParameters<typeof Client>[1] = {},
  extraEnv: Record<string, string> = {},
): Promise<{ client: Client; close(): Promise<void>; stderr(): string }> {
  let stderr = '';
  const transport = new StdioClientTransport({
    command: process.execPath,
    // The hourly sidecar would add snapshots of its own; tests that want it start it themselves.
    args: [CLI, 'serve', '--no-sidecar', '--root', root],
    env: { ...(process.env as Record<string, string>), WB_BACKUP_LOG_LEVEL: 'info', ...extraEnv },
    stderr: 'pipe',
  });
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'wb-backup-test', version: '1.0.0' }, clientOptions);
  await client.connect(transport);
  return { client, close: () => client.close(), stderr: () => stderr };
}

export interface HttpServerProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<number | null>;
}

/** `wb-backup serve --http --port 0` as a real process; resolves with the URL it printed. */
export async function startHttpServerProcess(root: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<HttpServerProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--http', '--no-sidecar', '--port', '0', '--root', root, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /serving MCP at (http:\/\/\S+)\/mcp/.exec(stderr);
      if (m?.[1]) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`server exited (${code}): ${stderr}`)));
  });
  return {
    url,
    child,
    stop: () =>
      new Promise((resolve) => {
        child.removeAllListeners('exit');
        child.on('exit', (code) => resolve(code));
        child.kill('SIGTERM');
      }),
  };
}

/**
 * connectStdio with a client that supports elicitation and answers every form with `confirm: true`
 * (accept) or declines, as `answer.next` says at the time; every message asked is kept in `asked`.
 */
export async function connectWithConsent(
  root: string,
  first: 'accept' | 'decline',
): Promise<{ client: Client; close(): Promise<void>; asked: string[]; answer: { next: 'accept' | 'decline' } }> {
  const { ElicitRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
  const answer = { next: first };
  const asked: string[] = [];
  const { client, close } = await connectStdio(root, { capabilities: { elicitation: {} } });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    asked.push(String(req.params.message));
    return answer.next === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
  });
  return { client, close, asked, answer };
}
