/**
 * git's smart HTTP protocol on github.localhost, served by the real `git http-backend` run as a CGI
 * over the repository's bare repository, with GitHub's authentication in front of it:
 *
 * - Basic auth, any username, the token as password (or the token as username, no password).
 * - No credentials: a public repository can be fetched; anything else (private or missing
 *   repository, any push) is 401 with `WWW-Authenticate: Basic realm="GitHub"`, so git asks its
 *   credential helper. GitHub never tells an anonymous caller whether a repository exists.
 * - Wrong or revoked token: 401 "Invalid username or token. Password authentication is not
 *   supported for Git operations."
 * - Authenticated, repository missing: 404 "Repository not found."
 * - Plain http answers 301 to https, as github.com does; the dumb protocol gets 403.
 *
 * After a push (receive-pack) the emulator re-reads the refs before finishing the response, so
 * when `git push` returns, the REST routes already see the new branches.
 */
import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticate } from './access.js';
import type { Caller } from './http.js';
import { WEB_HOST } from './hosts.js';
import type { World } from './state.js';

export type GitEndpoint = 'info/refs' | 'git-upload-pack' | 'git-receive-pack';

export interface GitTarget {
  owner: string;
  name: string;
  endpoint: GitEndpoint;
}

/** `/OWNER/NAME(.git)/info/refs|git-upload-pack|git-receive-pack`, or undefined for other paths. */
export function gitTarget(path: string): GitTarget | undefined {
  const m = /^\/([A-Za-z0-9-]+)\/([A-Za-z0-9._-]+?)(?:\.git)?\/(info\/refs|git-upload-pack|git-receive-pack)$/.exec(path);
  return m ? { owner: m[1]!, name: m[2]!, endpoint: m[3] as GitEndpoint } : undefined;
}

const BAD_CREDENTIALS = 'Invalid username or token. Password authentication is not supported for Git operations.\n';
const NOT_FOUND = 'Repository not found.\n';
const DUMB_HTTP = 'Please upgrade your git client.\nGitHub.com no longer supports git over dumb-http: https://github.com/blog/809-git-dumb-http-transport-to-be-turned-off-in-90-days\n';

/** Basic auth as GitHub reads it for git; `token`/`Bearer` headers as for the API. */
export function gitCaller(header: string | undefined, world: World): Caller | 'bad-credentials' {
  const m = /^basic\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return authenticate(header, world);
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon < 0 ? decoded : decoded.slice(0, colon);
  const pass = colon < 0 ? '' : decoded.slice(colon + 1);
  const ok = pass === world.token || (user === world.token && (pass === '' || pass === 'x-oauth-basic'));
  return ok && !world.tokenRevoked ? { kind: 'viewer', account: world.viewer } : 'bad-credentials';
}

function sendText(res: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), ...extra });
  res.end(text);
}

const askForCredentials = (res: ServerResponse, text = ''): void => sendText(res, 401, text, { 'WWW-Authenticate': 'Basic realm="GitHub"' });

export interface GitRequest {
  req: IncomingMessage;
  res: ServerResponse;
  world: World;
  /** Whether the request came through the TLS tunnel. */
  https: boolean;
  target: GitTarget;
  /** The raw query string, without '?'. */
  query: string;
  /** Path and query as requested (for the http -> https redirect). */
  pathAndQuery: string;
}

export async function serveGit(g: GitRequest): Promise<void> {
  const { req, res, world, target } = g;
  if (!g.https) {
    req.resume();
    res.writeHead(301, { Location: `https://${WEB_HOST}${g.pathAndQuery}`, 'Content-Length': '0' });
    res.end();
    return;
  }
  const service = target.endpoint === 'info/refs' ? new URLSearchParams(g.query).get('service') : target.endpoint;
  if (service !== 'git-upload-pack' && service !== 'git-receive-pack') {
    req.resume();
    return sendText(res, 403, DUMB_HTTP);
  }

  const caller = gitCaller(req.headers.authorization, world);
  if (caller === 'bad-credentials') {
    req.resume();
    return askForCredentials(res, BAD_CREDENTIALS);
  }
  const repo = world.findRepo(target.owner, target.name);
  const anonymous = caller.kind === 'anonymous';
  if (anonymous && (!repo || repo.private || service === 'git-receive-pack')) {
    req.resume();
    return askForCredentials(res);
  }
  if (!repo) {
    req.resume();
    return sendText(res, 404, NOT_FOUND);
  }

  const h = req.headers;
  const cgi: Record<string, string> = {
    GIT_PROJECT_ROOT: world.git.root,
    GIT_HTTP_EXPORT_ALL: '1',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_PROTOCOL: 'HTTP/1.1',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: `/${world.git.relPath(repo.owner.login, repo.name)}/${target.endpoint}`,
    QUERY_STRING: g.query,
    CONTENT_TYPE: h['content-type'] ?? '',
    REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
  };
  // Without CONTENT_LENGTH http-backend reads to EOF, which is what a chunked body needs.
  if (h['content-length'] !== undefined) cgi.CONTENT_LENGTH = h['content-length'];
  // git gzips large upload-pack requests; http-backend inflates them itself.
  if (typeof h['content-encoding'] === 'string') cgi.HTTP_CONTENT_ENCODING = h['content-encoding'];
  // Protocol v2 negotiation travels in this header.
  if (typeof h['git-protocol'] === 'string') cgi.HTTP_GIT_PROTOCOL = h['git-protocol'];
  // http-backend enables receive-pack only for an authenticated user.
  if (caller.kind === 'viewer') cgi.REMOTE_USER = caller.account.login;

  const child = spawn('git', ['http-backend'], { env: world.git.env(cgi), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => (stderr = (stderr + s).slice(-4096)));
  child.stdin.on('error', () => undefined); // http-backend may exit before reading everything
  req.pipe(child.stdin);
  res.on('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });

  let head = Buffer.alloc(0);
  let headersSent = false;
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const end = headerEnd(head);
    if (!end) return;
    child.stdout.pause();
    child.stdout.off('data', onData);
    const { status, headers } = parseCgiHeaders(head.subarray(0, end.at).toString('latin1'));
    headersSent = true;
    res.writeHead(status, headers);
    const rest = head.subarray(end.at + end.length);
    if (rest.length) res.write(rest);
    child.stdout.pipe(res, { end: false });
  };
  child.stdout.on('data', onData);

  const [code] = await new Promise<[number | null]>((resolve) => {
    child.on('error', (err) => {
      stderr += String(err);
      resolve([null]);
    });
    child.on('close', (c) => resolve([c]));
  });
  if (service === 'git-receive-pack' && req.method === 'POST') world.syncRefs(repo);
  if (!headersSent) {
    if (!res.headersSent && !res.destroyed) sendText(res, 500, `github-emulator: git http-backend exited ${String(code)} without a response\n${stderr}`);
    return;
  }
  res.end();
}

function headerEnd(b: Buffer): { at: number; length: number } | undefined {
  const crlf = b.indexOf('\r\n\r\n');
  const lf = b.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf <= lf)) return { at: crlf, length: 4 };
  if (lf >= 0) return { at: lf, length: 2 };
  return undefined;
}

/** CGI response headers: `Status: 404 Not Found` sets the status, the rest pass through. */
export function parseCgiHeaders(text: string): { status: number; headers: Record<string, string> } {
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const name = line.slice(0, i).trim();
    const value = line.slice(i + 1).trim();
    if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
    else headers[name] = value;
  }
  return { status, headers };
}
