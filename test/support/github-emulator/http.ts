/**
 * Request context and response helpers shared by the REST, upload and GraphQL handlers, so every
 * answer carries GitHub's headers and error shape.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DOCS } from './hosts.js';
import type { Account, World } from './state.js';

/** Who is calling: the viewer (valid token), nobody (no token), or a bad token (already answered 401). */
export type Caller = { kind: 'viewer'; account: Account } | { kind: 'anonymous' };

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  world: World;
  method: string;
  /** Path inside the surface (GHES prefix removed), without query. */
  path: string;
  query: URLSearchParams;
  caller: Caller;
  /** Set by the GraphQL handler so the request log can show it. */
  note: { graphqlOperation?: string; unhandled?: boolean };
  /** A 'slow' fault's pace for asset bytes (see FaultAction), when one applies to this request. */
  bytesPerSecond?: number;
}

/** Wait as long as moving `bytes` takes at `ctx.bytesPerSecond` (nothing without a 'slow' fault). */
export async function pace(ctx: Ctx, bytes: number): Promise<void> {
  if (!ctx.bytesPerSecond) return;
  await new Promise((r) => setTimeout(r, (bytes / ctx.bytesPerSecond!) * 1000));
}

export interface GithubErrorBody {
  message: string;
  documentation_url: string;
  status?: string;
  errors?: Array<Record<string, string>>;
}

function baseHeaders(ctx: Ctx): Record<string, string> {
  const h: Record<string, string> = {
    'X-GitHub-Media-Type': 'github.v3; format=json',
    'X-GitHub-Request-Id': randomBytes(8).toString('hex').toUpperCase(),
    'X-RateLimit-Limit': '5000',
    'X-RateLimit-Remaining': '4999',
    'X-RateLimit-Reset': String(Math.floor(Date.now() / 1000) + 3600),
    'X-RateLimit-Used': '1',
    'X-RateLimit-Resource': 'core',
  };
  // gh auth status reads the token's scopes from this header (classic tokens only: GitHub sends
  // none for fine-grained ones).
  if (ctx.caller.kind === 'viewer' && ctx.world.scopes.length) {
    h['X-OAuth-Scopes'] = ctx.world.scopes.join(', ');
    h['X-Accepted-OAuth-Scopes'] = '';
  }
  return h;
}

export function sendJson(ctx: Ctx, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  ctx.res.writeHead(status, {
    ...baseHeaders(ctx),
    ...(text ? { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) } : {}),
    ...extra,
  });
  ctx.res.end(text);
}

export function sendNoContent(ctx: Ctx): void {
  ctx.res.writeHead(204, baseHeaders(ctx));
  ctx.res.end();
}

/** GitHub's error body: `message` + `documentation_url`, and since 2023 a string `status`. */
export function sendError(ctx: Ctx, status: number, message: string, docs = DOCS, errors?: Array<Record<string, string>>): void {
  const body: GithubErrorBody = { message, documentation_url: docs };
  if (errors) body.errors = errors;
  body.status = String(status);
  sendJson(ctx, status, body);
}

export const notFound = (ctx: Ctx, docs = DOCS): void => sendError(ctx, 404, 'Not Found', docs);

/** 422 "Validation Failed" with GitHub's `errors: [{resource, code, field}]` list. */
export function validationFailed(ctx: Ctx, docs: string, errors: Array<Record<string, string>>): void {
  sendError(ctx, 422, 'Validation Failed', docs, errors);
}

const MAX_JSON_BODY = 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_JSON_BODY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) throw new Error(`request body over ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

export type JsonObject = Record<string, unknown>;

/** Parses a JSON object body; on bad JSON answers 400 "Problems parsing JSON" like GitHub and returns undefined. */
export async function readJsonObject(ctx: Ctx): Promise<JsonObject | undefined> {
  const raw = (await readBody(ctx.req)).toString('utf8');
  if (raw.trim() === '') return {};
  try {
    const v: unknown = JSON.parse(raw);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as JsonObject;
  } catch {
    // fall through to the 400 below
  }
  sendError(ctx, 400, 'Problems parsing JSON');
  return undefined;
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function bool(v: unknown): boolean | undefined {
  return typeof v === 'boolean' ? v : undefined;
}

/** `page`/`per_page` as GitHub reads them: per_page defaults to 30, capped at 100; bad values fall back. */
export function pageParams(query: URLSearchParams): { page: number; perPage: number } {
  const perRaw = Number.parseInt(query.get('per_page') ?? '', 10);
  const pageRaw = Number.parseInt(query.get('page') ?? '', 10);
  const perPage = Number.isFinite(perRaw) && perRaw > 0 ? Math.min(perRaw, 100) : 30;
  const page = Number.isFinite(pageRaw) && pageRaw > 0 ? pageRaw : 1;
  return { page, perPage };
}

/**
 * Slices one page and builds the Link header. GitHub links to `/repositories/ID/...` rather than the
 * owner/name path, and gh's --paginate follows whatever it is given, so we do the same (and route it).
 */
export function paginate<T>(items: T[], query: URLSearchParams, linkBase: string): { page: T[]; link: string | undefined } {
  const { page, perPage } = pageParams(query);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const slice = items.slice((page - 1) * perPage, page * perPage);
  const url = (p: number): string => {
    const q = new URLSearchParams(query);
    q.set('per_page', String(perPage));
    q.set('page', String(p));
    return `<${linkBase}?${q.toString()}>`;
  };
  const rels: string[] = [];
  if (page > 1) rels.push(`${url(page - 1)}; rel="prev"`);
  if (page < last) rels.push(`${url(page + 1)}; rel="next"`, `${url(last)}; rel="last"`);
  if (page > 1) rels.push(`${url(1)}; rel="first"`);
  return { page: slice, link: rels.length ? rels.join(', ') : undefined };
}
