import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../core/durable-file.js';
import { WbError } from '../core/errors.js';
import { logger } from '../core/log.js';
import { rootLayout } from '../root/paths.js';

/*
 * Every tool result and resource an agent reads is bounded: each list (array) and each map (record)
 * in it, at any depth, shows a sample; `lists` comes first and gives, for each list that was cut,
 * its total, the slice shown and a cursor. The whole result is kept as JSON under the data root
 * (its path is returned), so paging reads that stored result: nothing is re-run, every item comes
 * exactly once, in the stored order, even if the data changes in between.
 */

/** Items shown per list unless the caller passes `limit`. */
export const SAMPLE_DEFAULT = 20;
export const LIMIT_MAX = 500;
/** Serialized structuredContent stays under this many bytes (samples shrink until it does). */
export const RESULT_BYTE_BUDGET = 24_000;
/** Longer strings inside list items are cut (the stored result keeps them whole). */
export const STRING_MAX = 1_000;
/** The text summary beside the structured result. */
export const SUMMARY_MAX = 2_000;
/** Stored results kept per data root (newest first); older cursors then expire. */
const KEEP_RESULTS = 50;

export const PagingInputShape = {
  cursor: z
    .string()
    .optional()
    .describe("a next_cursor from this tool's `lists` field: returns the next page of that list from the stored result; nothing is run again and the other arguments are ignored"),
  limit: z.number().int().min(1).max(LIMIT_MAX).optional().describe(`items per list page (default ${SAMPLE_DEFAULT}); fewer are returned when a page would be too large`),
};
const PagingInput = z.object(PagingInputShape);

export const CutListSchema = z.object({
  path: z.string().describe('where the list is in this result, e.g. conflicts or databases[0].rows'),
  total: z.number().describe('items in the whole list'),
  offset: z.number().describe('index of the first item shown'),
  shown: z.number().describe('items shown here'),
  next_cursor: z.string().nullable().describe('pass as `cursor` to this tool for the next page; null on the last page'),
});
export type CutList = z.infer<typeof CutListSchema>;

export const ListsInfoSchema = z
  .object({
    truncated: z.array(CutListSchema).describe('every list or map shown only in part, with its total'),
    strings_cut: z.number().describe(`values shortened: longer than ${STRING_MAX} characters in list items, ${4 * STRING_MAX} elsewhere (whole in result_file)`),
    result_file: z.string().nullable().describe('the whole result as JSON, under the data root; null (and no cursors) when it could not be stored, e.g. a read-only data root'),
  })
  .optional()
  .describe('present when this result was cut to stay small: counts first, then how to get the rest (page with next_cursor, or read result_file)');

/** The sentence every tool description ends with, so the model knows how to page. */
export const PAGING_NOTE =
  ` Long lists are cut to a sample: the result's \`lists\` field then gives each cut list's total and a next_cursor; call this tool again with cursor: <next_cursor> (plus any required arguments, which are ignored) for the next page, until next_cursor is null. The whole result is also in lists.result_file.`;

interface CursorData {
  v: 1;
  t: string; // tool
  r: string; // stored result id
  p: Array<string | number>; // path of the list
  o: number; // offset
}

const RESULT_ID_RE = /^[a-z0-9_]{1,64}-\d{13}-[0-9a-f]{12}$/;

function resultIdPrefix(tool: string): string {
  return tool.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 64);
}

function resultsDir(root: string): string {
  return rootLayout(root).mcpResultsDir;
}

function encodeCursor(c: CursorData): string {
  return Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');
}

function badCursor(why: string): WbError {
  return new WbError('invalid_input', `The cursor is not usable: ${why}.`, 'Call the tool again without cursor and page with the next_cursor values of that result.');
}

function decodeCursor(tool: string, cursor: string): CursorData {
  let c: CursorData;
  try {
    c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as CursorData;
  } catch {
    throw badCursor('it is not a cursor this server returned');
  }
  if (!c || c.v !== 1 || typeof c.r !== 'string' || !RESULT_ID_RE.test(c.r) || !Array.isArray(c.p) || !Number.isInteger(c.o) || c.o < 0) {
    throw badCursor('it is not a cursor this server returned');
  }
  if (c.t !== tool) throw badCursor(`it belongs to ${String(c.t)}, not ${tool}`);
  // The stored result must be this tool's too (its id starts with the tool's name, see storeResult):
  // another tool's result would not match this tool's output schema.
  if (!c.r.startsWith(`${resultIdPrefix(tool)}-`)) throw badCursor(`it names a result of another tool, not of ${tool}`);
  return c;
}

type Seg = string | number;

/** Peel wrappers (optional, default, nullable...) off a zod schema. */
function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  let s = schema as { _zod?: { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } } } | undefined;
  for (let i = 0; s?._zod && i < 20; i++) {
    const def = s._zod.def;
    if (def.innerType) s = def.innerType as never;
    else if (def.type === 'pipe' && def.in) s = def.in as never;
    else break;
  }
  return s as z.ZodType | undefined;
}

function kindOf(schema: z.ZodType | undefined, value: unknown): 'array' | 'record' | 'object' | 'other' {
  const def = (unwrap(schema) as { _zod?: { def: { type: string } } } | undefined)?._zod?.def;
  if (Array.isArray(value)) return 'array';
  if (value === null || typeof value !== 'object') return 'other';
  if (def?.type === 'record') return 'record';
  if (def?.type === 'object') return 'object';
  // No schema to go by (a union, unknown): an object is shown whole, its lists still bounded.
  return 'object';
}

function childSchema(schema: z.ZodType | undefined, kind: 'array' | 'record' | 'object', key: string): z.ZodType | undefined {
  const def = (unwrap(schema) as { _zod?: { def: Record<string, unknown> } } | undefined)?._zod?.def;
  if (!def) return undefined;
  if (kind === 'array') return def.element as z.ZodType | undefined;
  if (kind === 'record') return def.valueType as z.ZodType | undefined;
  return (def.shape as Record<string, z.ZodType> | undefined)?.[key];
}

function displayPathOf(segs: readonly Seg[]): string {
  return segs.map((s, i) => (typeof s === 'number' ? `[${s}]` : /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? `${i ? '.' : ''}${s}` : `[${JSON.stringify(s)}]`)).join('');
}

interface ShapeContext {
  tool: string;
  /** null: the whole result could not be stored, so there is nothing to page */
  resultId: string | null;
  sample: number;
  focus: { path: Seg[]; offset: number; limit: number } | null;
  cut: CutList[];
  stringsCut: number;
}

function samePath(a: readonly Seg[], b: readonly Seg[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

/** The slice of a list shown at `at`: the page asked for, the one item on the way to it, or a sample. */
function windowFor(ctx: ShapeContext, at: Seg[], keys: readonly Seg[]): { start: number; end: number } {
  const f = ctx.focus;
  if (f && samePath(f.path, at)) return { start: Math.min(f.offset, keys.length), end: Math.min(f.offset + f.limit, keys.length) };
  if (f && f.path.length > at.length && samePath(f.path.slice(0, at.length), at)) {
    const k = keys.indexOf(f.path[at.length]!);
    if (k >= 0) return { start: k, end: k + 1 };
  }
  return { start: 0, end: Math.min(ctx.sample, keys.length) };
}

function shape(value: unknown, schema: z.ZodType | undefined, at: Seg[], inList: boolean, ctx: ShapeContext): unknown {
  if (typeof value === 'string') {
    // Fields outside lists (messages, tokens, ids) get a looser cap: they are few.
    const max = inList ? STRING_MAX : 4 * STRING_MAX;
    if (value.length <= max) return value;
    ctx.stringsCut++;
    return `${value.slice(0, max)}… [${value.length - max} more characters in lists.result_file]`;
  }
  const kind = kindOf(schema, value);
  if (kind === 'other') return value;
  if (kind === 'object') {
    const obj = value as Record<string, unknown>;
    return Object.fromEntries(Object.keys(obj).map((k) => [k, shape(obj[k], childSchema(schema, kind, k), [...at, k], inList, ctx)]));
  }
  const keys: Seg[] = kind === 'array' ? (value as unknown[]).map((_, i) => i) : Object.keys(value as object);
  const w = windowFor(ctx, at, keys);
  const item = (k: Seg): unknown => shape((value as Record<string | number, unknown>)[k], childSchema(schema, kind, String(k)), [...at, k], true, ctx);
  const shown = keys.slice(w.start, w.end);
  if (w.start > 0 || w.end < keys.length) {
    ctx.cut.push({
      path: displayPathOf(at),
      total: keys.length,
      offset: w.start,
      shown: shown.length,
      next_cursor: w.end < keys.length && ctx.resultId ? encodeCursor({ v: 1, t: ctx.tool, r: ctx.resultId, p: at, o: w.end }) : null,
    });
  }
  // Keys are data too (a table name can be any length): a long one is cut like a string in a list
  // item, with its position so two keys with one beginning never become one.
  const shownKey = (k: Seg, i: number): Seg => {
    if (typeof k !== 'string' || k.length <= STRING_MAX) return k;
    ctx.stringsCut++;
    return `${k.slice(0, STRING_MAX)}… [${k.length - STRING_MAX} more characters in lists.result_file; item ${w.start + i}]`;
  };
  return kind === 'array' ? shown.map(item) : Object.fromEntries(shown.map((k, i) => [shownKey(k, i), item(k)]));
}

export interface Bounded {
  /** the structured result to send: `lists` first when something was cut */
  result: Record<string, unknown>;
  /** what was cut (empty: the whole result fits) */
  cut: CutList[];
  resultFile: string | null;
}

/**
 * Cut `full` until its serialized form (with the `lists` section) fits RESULT_BYTE_BUDGET: every
 * list's sample and the page size halve until it does, or until one item each is left.
 */
function render(full: Record<string, unknown>, schema: z.ZodType, tool: string, resultId: string | null, file: string | null, limit: number, focus: ShapeContext['focus']): { ctx: ShapeContext; bounded: Bounded } {
  for (let sample = limit, pageLimit = focus?.limit ?? limit; ; ) {
    const ctx: ShapeContext = { tool, resultId, sample, focus: focus ? { ...focus, limit: pageLimit } : null, cut: [], stringsCut: 0 };
    const body = shape(full, schema, [], false, ctx) as Record<string, unknown>;
    const bounded = withLists(ctx, body, file);
    if (Buffer.byteLength(JSON.stringify(bounded.result)) <= RESULT_BYTE_BUDGET || (sample <= 1 && pageLimit <= 1)) return { ctx, bounded };
    sample = Math.max(1, Math.floor(sample / 2));
    pageLimit = Math.max(1, Math.floor(pageLimit / 2));
  }
}

function withLists(ctx: ShapeContext, body: Record<string, unknown>, file: string | null): Bounded {
  if (!ctx.cut.length && !ctx.stringsCut) return { result: body, cut: [], resultFile: null };
  // A list of lists can cut many: only so many cursors are listed; the whole is in the file.
  const cut = ctx.cut.slice(0, 50);
  return { result: { lists: { truncated: cut, strings_cut: ctx.stringsCut, result_file: file }, ...body }, cut, resultFile: file };
}

function storeResult(root: string, tool: string, full: unknown): { id: string; file: string } {
  const dir = resultsDir(root);
  // Results hold rows of the user's data (a pull's conflicts): readable by the owner only.
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const id = `${resultIdPrefix(tool)}-${Date.now()}-${randomBytes(6).toString('hex')}`;
  const file = path.join(dir, `${id}.json`);
  writeFileAtomic(file, JSON.stringify(full));
  // Keep the newest few: a cursor into a pruned result says so and how to get a fresh one.
  const stored = fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.json') && RESULT_ID_RE.test(n.slice(0, -5)))
    .sort((a, b) => Number(b.split('-').at(-2)) - Number(a.split('-').at(-2)));
  for (const old of stored.slice(KEEP_RESULTS)) fs.rmSync(path.join(dir, old), { force: true });
  return { id, file };
}

/**
 * Bound one tool result (or resource body): lists and maps at any depth are cut to `limit` items
 * (default SAMPLE_DEFAULT; fewer if the result would pass RESULT_BYTE_BUDGET bytes), long strings
 * in list items to STRING_MAX characters. When anything was cut, the whole result is stored under
 * <root>/mcp-results/ and the returned result starts with `lists` (ListsInfoSchema). `schema` is
 * the tool's output schema: it tells a map (record) from a fixed object.
 */
export function boundResult(root: string, tool: string, schema: z.ZodType, result: unknown, limit = SAMPLE_DEFAULT): Bounded {
  // Paging reads the stored JSON, so the first page is cut from the same JSON form.
  const full = JSON.parse(JSON.stringify(result)) as Record<string, unknown>;
  const trial = render(full, schema, tool, 'x-0000000000000-000000000000', '', limit, null);
  if (!trial.ctx.cut.length && !trial.ctx.stringsCut) return trial.bounded;
  let stored: { id: string; file: string } | null = null;
  try {
    stored = storeResult(root, tool, full);
  } catch (err) {
    // The operation already ran: its (cut) result must still reach the agent.
    logger().warn({ tool, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message }, 'could not store the whole result; returning a sample without cursors');
  }
  return render(full, schema, tool, stored?.id ?? null, stored?.file ?? null, limit, null).bounded;
}

/**
 * A later page of a result `boundResult` stored: the list the cursor names, from its offset, inside
 * the same result shape (so it matches the tool's output schema); other lists show their sample.
 * Throws WbError invalid_input for a cursor that is malformed, of another tool, or expired.
 */
export function pageResult(root: string, tool: string, schema: z.ZodType, cursor: string, limit = SAMPLE_DEFAULT): Bounded {
  const c = decodeCursor(tool, cursor);
  const file = path.join(resultsDir(root), `${c.r}.json`);
  let full: Record<string, unknown>;
  try {
    full = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    throw badCursor(`the result it pages was removed (only the newest ${KEEP_RESULTS} are kept)`);
  }
  const { ctx, bounded } = render(full, schema, tool, c.r, file, limit, { path: c.p, offset: c.o, limit });
  // A page past offset 0 is always reported as cut; no entry means the path names no list.
  if (c.o > 0 && !ctx.cut.some((l) => l.path === displayPathOf(c.p))) throw badCursor('it names no list of that result');
  return bounded;
}

/** Split a tool call's arguments into the paging part and the rest. */
export function pagingOf(args: unknown): { cursor?: string | undefined; limit?: number | undefined } {
  const { cursor, limit } = PagingInput.parse(args ?? {});
  return { cursor, limit };
}

/**
 * An error's text capped at SUMMARY_MAX characters (an error may echo a huge input back): head and
 * tail kept, with how much was cut in between.
 */
export function boundErrorText(text: string): string {
  if (text.length <= SUMMARY_MAX) return text;
  const tail = Math.floor(SUMMARY_MAX / 4);
  return `${text.slice(0, SUMMARY_MAX - tail)} … (${text.length - SUMMARY_MAX} characters cut) … ${text.slice(-tail)}`;
}

/** The summary text, capped, with a line on what was cut so a model reading only text knows too. */
export function boundSummary(summary: string, bounded: Bounded): string {
  // Head and tail: what to do next (a confirm token, a hint) usually ends the summary.
  const tail = Math.floor(SUMMARY_MAX / 4);
  let text = summary.length > SUMMARY_MAX ? `${summary.slice(0, SUMMARY_MAX - tail)} … (${summary.length - SUMMARY_MAX} characters cut; the structured result has them) … ${summary.slice(-tail)}` : summary;
  if (bounded.cut.length) {
    const lists = bounded.cut.slice(0, 5).map((l) => `${l.path} ${l.offset + 1}-${l.offset + l.shown} of ${l.total}`);
    text += `\nShown in part: ${lists.join(', ')}${bounded.cut.length > 5 ? `, and ${bounded.cut.length - 5} more` : ''}. Page with the next_cursor values in lists.truncated.`;
  }
  return text;
}
