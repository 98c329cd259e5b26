import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import type { Express, NextFunction, Request, Response } from 'express';
import { WbError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { mountHealthCard } from '../http/card-routes.js';
import { buildMcpServer } from './server.js';

export interface HttpOptions {
  root: string;
  host: string;
  port: number;
  /** required when host is not a loopback address */
  token?: string;
  allowedHosts?: string[];
}

export interface RunningHttpServer {
  url: string;
  app: Express;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

/** Browsers send Origin on cross-site requests: only pages served by this very server may call it. */
function originGuard(allowed: () => Set<string>) {
  return (req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    if (origin === undefined || allowed().has(origin)) return next();
    res.status(403).json({ error: { code: 'forbidden_origin', message: `Requests from origin ${origin} are not allowed.` } });
  };
}

/** Shortest bearer token accepted: 32 characters (`openssl rand -hex 32` makes 64). */
export const MIN_TOKEN_LENGTH = 32;

const MAKE_TOKEN_HINT = `Make one with \`openssl rand -hex 32\` (or \`node -p "require('node:crypto').randomBytes(32).toString('hex')"\`) and set WB_BACKUP_HTTP_TOKEN to it.`;

/**
 * Refuses a bearer token that is too short to resist guessing or that cannot travel in an HTTP
 * header (spaces, control or non-ASCII characters). Applies to every configured token: a token is
 * set because the server is meant to be protected.
 * @throws WbError `invalid_input` saying what is wrong and how to make a good token
 */
export function assertUsableToken(token: string): void {
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new WbError('invalid_input', `WB_BACKUP_HTTP_TOKEN is ${token.length} character(s) long; it must be at least ${MIN_TOKEN_LENGTH} random characters, or anyone could guess it.`, MAKE_TOKEN_HINT);
  }
  // Visible ASCII only: a space would split the Authorization header, other bytes are mangled by clients.
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new WbError('invalid_input', 'WB_BACKUP_HTTP_TOKEN contains a space, a control character or a non-ASCII character, which an Authorization header cannot carry reliably.', MAKE_TOKEN_HINT);
  }
}

/** The credentials of an `Authorization: Bearer <token>` header; the scheme is case-insensitive (RFC 7235 2.1, RFC 6750 2.1). */
export function bearerCredentials(header: string | undefined): string | null {
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) +(\S+) *$/.exec(header ?? '');
  return m && m[1]!.toLowerCase() === 'bearer' ? m[2]! : null;
}

// Digests have one length, so comparing them in constant time leaks neither the token nor its length.
const digest = (text: string) => createHash('sha256').update(text).digest();

function bearerGuard(token: string, publicPaths: Set<string>) {
  const expected = digest(token);
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method === 'GET' && publicPaths.has(req.path)) return next();
    const given = bearerCredentials(req.headers.authorization);
    if (given !== null && timingSafeEqual(digest(given), expected)) return next();
    // RFC 6750 3: say whether the token was missing or wrong.
    res.setHeader('WWW-Authenticate', given === null ? 'Bearer realm="wb-backup"' : 'Bearer realm="wb-backup", error="invalid_token"');
    const message =
      given === null
        ? 'This server needs its access token: send "Authorization: Bearer <token>" with the value of WB_BACKUP_HTTP_TOKEN it was started with.'
        : 'The access token was not accepted: send the value of WB_BACKUP_HTTP_TOKEN the server was started with.';
    res.status(401).json({ error: { code: given === null ? 'token_required' : 'token_invalid', message } });
  };
}

function jsonRpcError(res: Response, status: number, message: string): void {
  res.status(status).json({ jsonrpc: '2.0', error: { code: -32000, message }, id: null });
}

/**
 * Streamable HTTP MCP endpoint at /mcp, one MCP session per client. Binds loopback by default
 * with the SDK's DNS-rebinding protection; any other address requires a bearer token.
 */
export async function startHttpServer(opts: HttpOptions): Promise<RunningHttpServer> {
  if (!LOOPBACK.has(opts.host) && !opts.token) {
    throw new WbError(
      'invalid_input',
      `Refusing to serve on ${opts.host} without authentication: anyone who can reach it could read and restore your data.`,
      `Set WB_BACKUP_HTTP_TOKEN to a random secret of at least ${MIN_TOKEN_LENGTH} characters (make one with \`openssl rand -hex 32\`; clients then send "Authorization: Bearer <token>"), or bind 127.0.0.1.`,
    );
  }
  if (opts.token !== undefined) assertUsableToken(opts.token);
  const app = createMcpExpressApp({ host: opts.host, ...(opts.allowedHosts ? { allowedHosts: opts.allowedHosts } : {}) });
  // Naming the framework in every response only helps someone probing for its weaknesses.
  app.disable('x-powered-by');
  let allowedOrigins = new Set<string>();
  app.use(originGuard(() => allowedOrigins));
  if (opts.token) app.use(bearerGuard(opts.token, new Set(['/', '/card.js', '/card.css', '/favicon.ico'])));
  mountHealthCard(app, { root: opts.root, ownOrigins: () => allowedOrigins });

  const sessions = new Map<string, StreamableHTTPServerTransport>();

  app.post('/mcp', async (req, res) => {
    const sessionId = req.headers['mcp-session-id'];
    const existing = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (existing) return existing.handleRequest(req, res, req.body);
    if (sessionId !== undefined) return jsonRpcError(res, 404, 'Unknown MCP session; start a new one with initialize.');
    if (!isInitializeRequest(req.body)) return jsonRpcError(res, 400, 'Send initialize first (no MCP session id given).');
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, transport);
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    const server = await buildMcpServer({ root: opts.root });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });

  const sessionRequest = async (req: Request, res: Response) => {
    const sessionId = req.headers['mcp-session-id'];
    const transport = typeof sessionId === 'string' ? sessions.get(sessionId) : undefined;
    if (!transport) return jsonRpcError(res, 404, 'Unknown or missing MCP session id.');
    await transport.handleRequest(req, res);
  };
  app.get('/mcp', sessionRequest);
  app.delete('/mcp', sessionRequest);

  const httpServer: Server = await new Promise((resolve, reject) => {
    // Express 5 calls back with the listen error too (a port in use): it must not look like success.
    const s = app.listen(opts.port, opts.host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.on('error', reject);
  });
  const { port } = httpServer.address() as AddressInfo;
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${hostForUrl}:${port}`;
  allowedOrigins = new Set([url, `http://localhost:${port}`, `http://127.0.0.1:${port}`]);
  logger().info({ url: `${url}/mcp` }, 'MCP server listening (Streamable HTTP)');

  return {
    url,
    app,
    close: async () => {
      for (const transport of sessions.values()) await transport.close().catch(() => undefined);
      sessions.clear();
      const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeAllConnections();
      await closed;
    },
  };
}
