/**
 * The HTTP server gh talks to as its HTTP proxy. Requests arrive in proxy form (absolute URL in the
 * request line); the host picks the surface (API, uploads, object storage, web). Order per request,
 * as a client would meet them in reality: network faults first, then authentication, then routing.
 *
 * git reaches it as HTTPS_PROXY: a `CONNECT github.localhost:443` is answered here, TLS is
 * terminated on the tunnel (tls.ts), and the requests inside come back to the same handler with a
 * Host header instead of an absolute URL. git's smart HTTP paths go to git-http.ts.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { authenticate } from './access.js';
import { FaultQueue, faultBody } from './faults.js';
import { gitTarget, serveGit } from './git-http.js';
import { handleGraphQL, operationNameOf, readPayload } from './graphql/handler.js';
import { classify, DOCS, type Surface } from './hosts.js';
import { type Ctx, readBody, sendError, sendJson } from './http.js';
import { match, type Route } from './router.js';
import { assetRoutes, objectRoutes, uploadRoutes, webRoutes } from './rest-assets.js';
import { issueRoutes } from './rest-issues.js';
import { pullRoutes } from './rest-pulls.js';
import { releaseRoutes } from './rest-releases.js';
import { repoRoutes } from './rest-repos.js';
import type { World } from './state.js';
import { type Certificate, isTunnelTarget, terminateTunnel } from './tls.js';
import type { FaultAction, RequestLogEntry } from './types.js';

// git's smart HTTP on the web host is not a Route: see git-http.ts.
const ROUTES: Record<Surface, readonly Route[]> = {
  // Asset routes first: `/releases/assets/:id` must not be read as a release id.
  api: [...assetRoutes, ...releaseRoutes, ...pullRoutes, ...issueRoutes, ...repoRoutes],
  uploads: uploadRoutes,
  objects: objectRoutes,
  web: webRoutes,
};

export interface EmulatorServer {
  port: number;
  faults: FaultQueue;
  log: RequestLogEntry[];
  close(): Promise<void>;
}

/** Proxy form carries the target in the URL; direct requests (tests poking it) in the Host header. */
function target(req: IncomingMessage): { host: string; pathAndQuery: string } {
  const raw = req.url ?? '/';
  if (/^https?:\/\//i.test(raw)) {
    const u = new URL(raw);
    return { host: u.host, pathAndQuery: u.pathname + u.search };
  }
  return { host: req.headers.host ?? '', pathAndQuery: raw };
}

/** GitHub serves every repository route under /repositories/ID too (its Link headers use it). */
function resolveRepositoryId(world: World, path: string): string {
  const m = /^\/repositories\/(\d+)(\/.*)?$/.exec(path);
  if (!m) return path;
  const repo = world.findRepoById(Number(m[1]));
  return repo ? `/repos/${repo.owner.login}/${repo.name}${m[2] ?? ''}` : path;
}

/** Whether the request arrived through a TLS tunnel (see tls.ts). */
function overTls(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true;
}

/**
 * GitHub's rate-limit answers. Primary: the hourly quota is spent (`X-RateLimit-Remaining: 0`, reset
 * time in epoch seconds). Secondary: remaining quota, but too many requests too fast; GitHub
 * sometimes sends `Retry-After` (seconds).
 */
function rateLimitAnswer(f: Extract<FaultAction, { kind: 'rate_limit' }>): { status: number; headers: Record<string, string>; text: string } {
  const now = Math.floor(Date.now() / 1000);
  const requestId = randomBytes(8).toString('hex').toUpperCase();
  const headers: Record<string, string> = { 'X-GitHub-Request-Id': requestId, 'X-RateLimit-Limit': '5000', 'X-RateLimit-Resource': 'core' };
  if (f.limit === 'primary') {
    Object.assign(headers, { 'X-RateLimit-Remaining': '0', 'X-RateLimit-Used': '5000', 'X-RateLimit-Reset': String(now + (f.resetInSeconds ?? 60)) });
    const message = `API rate limit exceeded for user ID 1000. If you reach out to GitHub Support for help, please include the request ID ${requestId}.`;
    return { status: f.status ?? 403, headers, text: JSON.stringify({ message, documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api', status: String(f.status ?? 403) }) };
  }
  Object.assign(headers, { 'X-RateLimit-Remaining': '4900', 'X-RateLimit-Used': '100', 'X-RateLimit-Reset': String(now + 3600) });
  if (f.retryAfterSeconds !== undefined) headers['Retry-After'] = String(f.retryAfterSeconds);
  const message = `You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID ${requestId}.`;
  return {
    status: f.status ?? 403,
    headers,
    text: JSON.stringify({ message, documentation_url: 'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits', status: String(f.status ?? 403) }),
  };
}

/** `cert` is what https://github.localhost is served with; without one (openssl failed) every CONNECT is refused. */
export async function startServer(world: World, cert: Certificate | undefined): Promise<EmulatorServer> {
  const faults = new FaultQueue();
  const log: RequestLogEntry[] = [];
  const sockets = new Set<Socket>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const { host, pathAndQuery } = target(req);
    const https = overTls(req);
    const entry: RequestLogEntry = { method, host: host.replace(https ? /:443$/ : /:80$/, ''), path: pathAndQuery, status: 0 };
    if (https) entry.scheme = 'https';
    log.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));

    const where = classify(host, pathAndQuery.split('?')[0] ?? '/');
    if (!where) {
      // Not a GitHub host we emulate: answer like a proxy that cannot reach it.
      entry.unhandled = true;
      res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(`github-emulator: no route to host ${host}\n`);
      return;
    }
    const url = new URL(`http://x${pathAndQuery}`);
    const isGraphQL = where.surface === 'api' && where.path === '/graphql' && method === 'POST';
    // GraphQL bodies are small and hold the operation name faults may match on: read them first.
    const payload = isGraphQL ? readPayload(await readBody(req)) : undefined;
    if (payload) entry.graphqlOperation = operationNameOf(payload);

    const fault = faults.take({ method, host: entry.host, path: pathAndQuery, ...(entry.graphqlOperation ? { graphqlOperation: entry.graphqlOperation } : {}) });
    if (fault) entry.fault = fault.kind;
    if (fault?.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'status') {
      const { contentType, text } = faultBody(fault.status, fault.body);
      req.resume(); // discard an upload body instead of leaving the client blocked on it
      res.writeHead(fault.status, { 'Content-Type': contentType, 'Content-Length': String(Buffer.byteLength(text)) });
      res.end(text);
      return;
    }
    if (fault?.kind === 'rate_limit') {
      req.resume();
      const { status, headers, text } = rateLimitAnswer(fault);
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
      res.end(text);
      return;
    }
    if (fault?.kind === 'lose_response') {
      // The request is handled (its change takes effect) but the answer never leaves: the socket
      // is destroyed where the response would have been written.
      res.writeHead = (() => res) as unknown as typeof res.writeHead;
      res.end = (() => {
        req.socket.destroy();
        return res;
      }) as unknown as typeof res.end;
    }
    if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));

    const git = where.surface === 'web' ? gitTarget(where.path) : undefined;
    if (git) {
      await serveGit({ req, res, world, https, target: git, query: url.search.slice(1), pathAndQuery });
      return;
    }

    const ctx: Ctx = { req, res, world, method, path: resolveRepositoryId(world, where.path), query: url.searchParams, caller: { kind: 'anonymous' }, note: {} };
    if (fault?.kind === 'slow') ctx.bytesPerSecond = fault.bytesPerSecond;
    // Object storage and the web host do not take API tokens (signed URLs / browser sessions).
    if (where.surface === 'api' || where.surface === 'uploads') {
      const caller = authenticate(req.headers.authorization, world);
      if (caller === 'bad-credentials') {
        req.resume();
        return sendError(ctx, 401, 'Bad credentials', isGraphQL ? 'https://docs.github.com/graphql' : DOCS);
      }
      ctx.caller = caller;
    }

    if (isGraphQL) {
      handleGraphQL(ctx, payload);
    } else {
      const found = match(ROUTES[where.surface], method, ctx.path);
      if (found) await found.handler(ctx, found.params);
      else {
        ctx.note.unhandled = true;
        req.resume();
        sendJson(ctx, 404, { message: 'Not Found', documentation_url: DOCS, status: '404' });
      }
    }
    if (ctx.note.unhandled) entry.unhandled = true;
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A client that went away mid-upload lands here; anything else is an emulator bug worth seeing.
      if (res.headersSent || req.destroyed) return;
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message: `github-emulator internal error: ${String(err)}`, documentation_url: DOCS }));
    });
  });
  // A CONNECT to github.localhost:443 is git over https: terminate TLS here. gh uses plain http, so
  // any other tunnel is refused visibly (and logged) rather than opened anywhere.
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (cert && isTunnelTarget(req.url)) {
      log.push({ method: 'CONNECT', host: req.url ?? '', path: '', status: 200 });
      terminateTunnel(server, socket, head, cert);
      return;
    }
    log.push({ method: 'CONNECT', host: req.url ?? '', path: '', status: 502, unhandled: true });
    socket.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Uploads of several MB must not hit Node's default request timeout on a slow machine.
  server.requestTimeout = 0;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    faults,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
