import net from 'node:net';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, type Config } from '../../root/config.js';
import { WbError, describeError } from '../../core/errors.js';
import { addShutdownHook } from '../../core/shutdown.js';
import { rootOf } from '../root.js';
import { note } from '../output.js';

interface ServeOptions {
  http?: boolean;
  host?: string;
  port?: number;
  sidecar: boolean;
}

/** --port: a whole number 0-65535 (0 picks a free port), checked before anything starts. */
function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value.trim()) || Number(value) > 65535) throw new InvalidArgumentError('expected a port number from 0 to 65535 (0 picks a free one).');
  return Number(value);
}

/** --host: an IP address or a host name, checked before anything starts. */
function parseHost(value: string): string {
  if (net.isIP(value) || /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(value)) return value;
  throw new InvalidArgumentError('expected an IP address (e.g. 127.0.0.1 or ::1) or a host name.');
}

/** A listen failure in words: the port is taken, or binding it needs privileges. */
function listenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') return new WbError('invalid_input', `Port ${port} on ${host} is already in use.`, 'Stop the program using it, or pass --port with another port (0 picks a free one).');
  if (code === 'EACCES') return new WbError('invalid_input', `Binding port ${port} on ${host} needs privileges this user does not have.`, 'Pass --port with a port above 1023.');
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new WbError('invalid_input', `${host} is not an address of this machine.`, 'Pass --host with one of its addresses (127.0.0.1 by default).');
  return err;
}

/**
 * The configuration the server starts with. Every option and setting is checked before anything
 * starts, so a bad one never leaves a sidecar running behind a server that then fails.
 * @returns null when stdio serves despite an invalid configuration (each tool reports it)
 * @throws WbError `invalid_input` for --host/--port without --http; `config_invalid` under --http
 */
function checkServeOptions(root: string, opts: ServeOptions): Config | null {
  if ((opts.host !== undefined || opts.port !== undefined) && !opts.http) throw new WbError('invalid_input', '--host and --port apply to --http only.', 'Add --http, or leave them out for stdio.');
  try {
    return loadConfig(root);
  } catch (err) {
    // The HTTP server's address comes from the configuration: it does not guess one.
    if (opts.http || !(err instanceof WbError && err.code === 'config_invalid')) throw err;
    // stdio: the client would only see "Connection closed". Serve anyway; every tool, and
    // health_status, answers with this error until the file is fixed (each call reloads it).
    note(`${describeError(err)}\nServing anyway: every tool reports this configuration error until the file is fixed.`);
    return null;
  }
}

/** Starts the scheduled jobs in this process (unless --no-sidecar), stopped on shutdown. */
async function startSidecarHere(root: string, opts: ServeOptions): Promise<void> {
  if (!opts.sidecar) return;
  // Imported here: the server's modules (express, the MCP SDK) are not needed by `now` and `list`.
  const { startSidecar } = await import('../../sidecar/service.js');
  const runner = await startSidecar(root);
  addShutdownHook(() => runner.stop());
}

/**
 * Serves Streamable HTTP at <url>/mcp (address from the options or the configuration), then the sidecar.
 * @throws WbError `invalid_input` when the port is taken, privileged or the host not this machine's
 */
async function serveHttp(root: string, config: Config, opts: ServeOptions): Promise<void> {
  const token = process.env.WB_BACKUP_HTTP_TOKEN || undefined;
  const { startHttpServer, assertUsableToken } = await import('../../mcp/http.js');
  if (token !== undefined) assertUsableToken(token);
  const host = opts.host ?? config.http.host;
  const port = opts.port ?? config.http.port;
  let running: Awaited<ReturnType<typeof startHttpServer>>;
  try {
    running = await startHttpServer({ root, host, port, ...(token ? { token } : {}), ...(config.http.allowed_hosts ? { allowedHosts: config.http.allowed_hosts } : {}) });
  } catch (err) {
    throw listenError(err, host, port);
  }
  addShutdownHook(() => running.close());
  // The sidecar starts once the server listens: a port in use or a refused token leaves nothing running.
  await startSidecarHere(root, opts);
  // The one line a script needs to find the server; logs stay on stderr.
  process.stderr.write(`wb-backup: serving MCP at ${running.url}/mcp\n`);
}

/** `wb-backup serve`: the MCP server on stdio, or Streamable HTTP with --http; the sidecar beside it. */
export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the MCP server (stdio by default; --http for Streamable HTTP)')
    .option('--http', 'serve Streamable HTTP at /mcp instead of stdio')
    .option('--host <host>', 'address to bind with --http (default 127.0.0.1; others need WB_BACKUP_HTTP_TOKEN)', parseHost)
    .option('--port <port>', 'port with --http (default 8787; 0 picks a free one)', parsePort)
    .option('--no-sidecar', 'do not run the scheduled jobs (hourly snapshots) in this process')
    .action(async (opts: ServeOptions, cmd: Command) => {
      const root = rootOf(cmd);
      const config = checkServeOptions(root, opts);
      // Under --http the configuration loaded (checkServeOptions throws otherwise).
      if (opts.http) return serveHttp(root, config!, opts);
      await startSidecarHere(root, opts);
      const { serveStdio } = await import('../../mcp/stdio.js');
      const server = await serveStdio(root);
      addShutdownHook(() => server.close());
    });
}
