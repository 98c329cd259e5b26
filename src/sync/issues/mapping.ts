/**
 * Rows <-> GitHub issues, pure. A task row is seen through its "issue view" (the fields an issue
 * can carry: title, body, state, priority, type, plain labels), which is what the three-way merge
 * compares; an issue is rendered from a view and read back into one. The row's key travels in a
 * hidden block at the end of the body (`<!-- wb:{...} -->`); child rows become comments carrying
 * their key the same way. See docs/github-sync.md#issues for the mapping reference.
 */
import { createHash } from 'node:crypto';
import type { IssueTableMapping } from '../../root/sync-issues-schema.js';
import type { SqlValue } from '../rows.js';

/** The label every issue the transport manages carries: issues without it are never touched. */
export const MANAGED_LABEL = 'wb:managed';
/** Added when the row was deleted: the issue is closed, never deleted. */
export const DELETED_LABEL = 'wb:deleted';
/** GitHub refuses an empty title; an empty or null title column is shown as this. */
export const UNTITLED = '(untitled)';
/** GitHub's limits: a title of at most 256 characters, a label name of at most 50. */
export const MAX_TITLE = 256;
export const MAX_LABEL = 50;

export const PREFIX = { state: 'state:', priority: 'priority:', type: 'type:' } as const;

/** What an issue can say about a row; every field compares as text. */
export interface IssueView {
  title: string;
  body: string;
  /** null when the table maps no such column */
  state: string | null;
  priority: string | null;
  type: string | null;
  /** plain labels, sorted, without duplicates ([] when the table maps no labels column) */
  labels: string[];
}

export const VIEW_FIELDS = ['title', 'body', 'state', 'priority', 'type', 'labels'] as const;
export type ViewField = (typeof VIEW_FIELDS)[number];

/** Where a row or child row lives: its database, table and primary key (column -> value as JSON). */
export interface RowMeta {
  db: string;
  table: string;
  key: Record<string, unknown>;
}

/** What is sent to GitHub for one issue. */
export interface IssuePayload {
  title: string;
  body: string;
  labels: string[];
  state: 'open' | 'closed';
}

/** What is read from GitHub for one issue (the fields of GitHub's issue JSON the mapping uses). */
export interface IssueFields {
  title: string;
  body: string | null;
  labels: readonly string[];
  state: 'open' | 'closed';
}

function text(v: SqlValue | undefined): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return v.bytes.toString('utf8');
}

/** Line ends as GitHub's web editor leaves them: \r\n becomes \n on both sides, so it never reads as an edit. */
function normalizeBody(s: string): string {
  return s.replace(/\r\n/g, '\n');
}

/** A labels column: comma-separated, trimmed, deduplicated, sorted. */
export function splitLabels(v: string | null): string[] {
  if (!v) return [];
  return [...new Set(v.split(',').map((l) => l.trim()).filter(Boolean))].sort();
}

/** The issue view of a row (`row`: column -> value). */
export function rowView(row: Readonly<Record<string, SqlValue>>, m: IssueTableMapping): IssueView {
  return {
    title: text(row[m.title]) ?? '',
    body: normalizeBody(m.body ? (text(row[m.body]) ?? '') : ''),
    state: m.state ? text(row[m.state.column]) : null,
    priority: m.priority ? text(row[m.priority]) : null,
    type: m.type ? text(row[m.type]) : null,
    labels: m.labels ? splitLabels(text(row[m.labels])) : [],
  };
}

/** JSON inside an HTML comment: `>` escaped so the text can never close the comment early. */
function hiddenBlock(meta: RowMeta): string {
  return `<!-- wb:${JSON.stringify(meta).replace(/>/g, '\\u003e')} -->`;
}

const BLOCK = /<!-- wb:(\{.*?\}) -->\s*$/s;

/** `text` plus its hidden block, separated by a blank line (just the block when `text` is empty). */
export function withHiddenBlock(body: string, meta: RowMeta): string {
  return body === '' ? hiddenBlock(meta) : `${body}\n\n${hiddenBlock(meta)}`;
}

/** The visible text and the hidden block's meta (null when there is none or it does not parse). */
export function splitHiddenBlock(raw: string | null): { body: string; meta: RowMeta | null } {
  const s = normalizeBody(raw ?? '');
  const m = BLOCK.exec(s);
  if (!m) return { body: s, meta: null };
  let meta: RowMeta | null = null;
  try {
    const v = JSON.parse(m[1]!) as unknown;
    if (v && typeof v === 'object' && typeof (v as RowMeta).db === 'string' && typeof (v as RowMeta).table === 'string' && (v as RowMeta).key && typeof (v as RowMeta).key === 'object') meta = v as RowMeta;
  } catch {
    meta = null;
  }
  let body = s.slice(0, m.index);
  if (body.endsWith('\n\n')) body = body.slice(0, -2);
  return { body, meta };
}

function prefixed(prefix: string, value: string | null): string[] {
  return value === null || value === '' ? [] : [`${prefix}${value}`.slice(0, MAX_LABEL)];
}

/** Whether a state value means the issue is closed. */
export function isClosedValue(m: IssueTableMapping, state: string | null): boolean {
  return Boolean(m.state && state !== null && m.state.closed.includes(state));
}

/** The issue for a row's view: title, body with the hidden key, labels (wb:managed first), open or closed. */
export function renderIssue(view: IssueView, meta: RowMeta, m: IssueTableMapping): IssuePayload {
  const labels = [MANAGED_LABEL, ...prefixed(PREFIX.state, view.state), ...prefixed(PREFIX.priority, view.priority), ...prefixed(PREFIX.type, view.type), ...view.labels.map((l) => l.slice(0, MAX_LABEL))];
  return {
    title: (view.title === '' ? UNTITLED : view.title).slice(0, MAX_TITLE),
    body: withHiddenBlock(view.body, meta),
    labels: [...new Set(labels)],
    state: isClosedValue(m, view.state) ? 'closed' : 'open',
  };
}

/**
 * The view an issue shows (what a person made of it on GitHub), and its hidden meta. A prefixed
 * label for a column the table does not map is a plain label; with several labels of one prefix
 * the last one set wins (the one a person just added). Open/closed overrides a state label that
 * disagrees: closing gives the first closed value, reopening `reopened`.
 */
export function issueView(issue: IssueFields, m: IssueTableMapping): { view: IssueView; meta: RowMeta | null } {
  const { body, meta } = splitHiddenBlock(issue.body);
  let state: string | null = null;
  let priority: string | null = null;
  let type: string | null = null;
  const plain: string[] = [];
  for (const l of issue.labels) {
    if (l.startsWith('wb:')) continue;
    if (m.state && l.startsWith(PREFIX.state)) state = l.slice(PREFIX.state.length);
    else if (m.priority && l.startsWith(PREFIX.priority)) priority = l.slice(PREFIX.priority.length);
    else if (m.type && l.startsWith(PREFIX.type)) type = l.slice(PREFIX.type.length);
    else plain.push(l);
  }
  if (m.state) {
    if (issue.state === 'closed' && !isClosedValue(m, state)) state = m.state.closed[0]!;
    else if (issue.state === 'open' && isClosedValue(m, state)) state = m.state.reopened;
  }
  return {
    view: {
      title: issue.title === UNTITLED ? '' : issue.title,
      body,
      state,
      priority,
      type,
      labels: m.labels ? [...new Set(plain)].sort() : [],
    },
    meta,
  };
}

/** A view as one comparable string (the three-way merge compares these). */
export function viewLine(view: IssueView): string {
  return JSON.stringify(VIEW_FIELDS.map((f) => view[f]));
}

/** One field as comparable text. */
export function fieldText(view: IssueView, f: ViewField): string {
  return JSON.stringify(view[f]);
}

/**
 * The column values that carry `fields` of `view` back into a row (only those fields: the others
 * keep their exact value, e.g. a NULL body stays NULL while the title changes).
 */
export function viewColumns(view: IssueView, fields: readonly ViewField[], m: IssueTableMapping): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const f of fields) {
    if (f === 'title') out[m.title] = view.title;
    else if (f === 'body' && m.body) out[m.body] = view.body;
    else if (f === 'state' && m.state) out[m.state.column] = view.state;
    else if (f === 'priority' && m.priority) out[m.priority] = view.priority;
    else if (f === 'type' && m.type) out[m.type] = view.type;
    else if (f === 'labels' && m.labels) out[m.labels] = view.labels.length ? view.labels.join(', ') : null;
  }
  return out;
}

/** sha256 of what was written to (or read from) GitHub for an issue: equal hashes, nothing changed there. */
export function payloadHash(p: IssuePayload | IssueFields): string {
  const labels = [...p.labels].filter((l) => l !== DELETED_LABEL).sort();
  return createHash('sha256')
    .update(JSON.stringify([p.title, normalizeBody(p.body ?? ''), labels, p.state]))
    .digest('hex');
}

/** sha256 of a comment's text. */
export function commentHash(body: string): string {
  return createHash('sha256').update(normalizeBody(body)).digest('hex');
}

/** The comment for a child row: its text and its key in a hidden block. */
export function renderComment(body: string | null, meta: RowMeta): string {
  return withHiddenBlock(normalizeBody(body ?? ''), meta);
}

/** The primary key of a row as its JSON object (the same `{"id":5}` form conflicts report). */
export function keyObject(pk: readonly string[], values: readonly unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  pk.forEach((c, i) => (out[c] = values[i]));
  return out;
}

export function keyText(key: Record<string, unknown>): string {
  return JSON.stringify(key);
}
