/**
 * POST /graphql. The body was already read by the server (faults can match on the operation name);
 * here: authentication, operation allow-list, parse, execute.
 */
import type { Ctx } from '../http.js';
import { sendJson } from '../http.js';
import { execute } from './execute.js';
import { GraphQLSyntaxError, parseDocument } from './parse.js';
import { schema } from './schema.js';

/**
 * Operations observed from gh 2.23 and answered by the schema. Anything else is refused with 400 so
 * a command that needs more coverage fails loudly instead of getting a plausible but wrong answer.
 */
export const KNOWN_OPERATIONS: ReadonlySet<string> = new Set([
  'UserCurrent', // gh auth status (viewer login)
  'RepositoryInfo', // gh repo view --json …, repo resolution
  'RepositoryReleaseList', // gh release list
  'RepositoryReleaseByTag', // gh release view/upload/download/delete: tag -> databaseId, isDraft
  'RepositoryCreate', // gh repo create without --add-readme/--license/--gitignore
  'RepositoryList', // gh repo list OWNER
]);

export interface GraphQLPayload {
  query: string;
  variables: Record<string, unknown>;
  operationName?: string;
}

/** Parses the JSON envelope; undefined if it is not a GraphQL request body. */
export function readPayload(raw: Buffer): GraphQLPayload | undefined {
  try {
    const v = JSON.parse(raw.toString('utf8')) as unknown;
    if (!v || typeof v !== 'object') return undefined;
    const o = v as Record<string, unknown>;
    if (typeof o.query !== 'string') return undefined;
    const variables = o.variables && typeof o.variables === 'object' ? (o.variables as Record<string, unknown>) : {};
    return { query: o.query, variables, ...(typeof o.operationName === 'string' ? { operationName: o.operationName } : {}) };
  } catch {
    return undefined;
  }
}

/** The operation name without a full parse, for the request log and fault matching. */
export function operationNameOf(p: GraphQLPayload): string | undefined {
  return p.operationName ?? /^\s*(?:query|mutation)\s+([_A-Za-z][_0-9A-Za-z]*)/.exec(p.query)?.[1];
}

export function handleGraphQL(ctx: Ctx, payload: GraphQLPayload | undefined): void {
  if (ctx.caller.kind !== 'viewer') {
    return sendJson(ctx, 401, {
      message: 'This endpoint requires you to be authenticated.',
      documentation_url: 'https://docs.github.com/graphql/guides/forming-calls-with-graphql#authenticating-with-graphql',
    });
  }
  if (!payload) {
    return sendJson(ctx, 400, { message: 'Problems parsing JSON', documentation_url: 'https://docs.github.com/graphql' });
  }
  let doc;
  try {
    doc = parseDocument(payload.query);
  } catch (e) {
    if (!(e instanceof GraphQLSyntaxError)) throw e;
    return sendJson(ctx, 200, { errors: [{ message: e.message, locations: [e.loc] }] });
  }
  const op = payload.operationName ? doc.operations.find((o) => o.name === payload.operationName) : doc.operations.length === 1 ? doc.operations[0] : undefined;
  if (!op) {
    return sendJson(ctx, 200, { errors: [{ message: payload.operationName ? `No operation named "${payload.operationName}"` : 'An operation name is required' }] });
  }
  if (!op.name || !KNOWN_OPERATIONS.has(op.name)) {
    ctx.note.unhandled = true;
    return sendJson(ctx, 400, {
      message: `github-emulator: GraphQL operation ${op.name ?? '(anonymous)'} is not emulated. Add it to KNOWN_OPERATIONS (and the schema if needed). Query: ${payload.query}`,
      documentation_url: 'https://docs.github.com/graphql',
    });
  }
  sendJson(ctx, 200, execute(schema, doc, op, payload.variables, { world: ctx.world, caller: ctx.caller }));
}
