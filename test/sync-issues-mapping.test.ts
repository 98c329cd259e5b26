// The task-row <-> issue mapping of the GitHub Issues transport: pure, unit and property tests.
import { describe, expect, it } from 'vitest';
import type { IssueTableMapping } from '../src/root/sync-issues-schema.js';
import { IssuesSyncSchema } from '../src/root/sync-issues-schema.js';
import {
  commentHash,
  issueView,
  MANAGED_LABEL,
  payloadHash,
  renderComment,
  renderIssue,
  rowView,
  splitHiddenBlock,
  viewColumns,
  viewLine,
  type IssueView,
} from '../src/sync/issues/mapping.js';
import type { SqlValue } from '../src/sync/rows.js';

const MAPPING: IssueTableMapping = {
  title: 'title',
  body: 'description',
  state: { column: 'status', closed: ['done', 'cancelled'], reopened: 'open' },
  priority: 'priority',
  type: 'kind',
  labels: 'tags',
  comments: { table: 'task_comments', parent: 'task_id', body: 'body' },
};
const META = { db: 'tasks', table: 'tasks', key: { id: 7 } };

describe('a task row as an issue', () => {
  it('puts the row key in a hidden block, the managed label first, prefixed labels, and closes done tasks', () => {
    const row: Record<string, SqlValue> = { id: 7n, title: 'Fix login', description: 'Steps:\n1. open', status: 'done', priority: 'high', kind: 'bug', tags: 'ui, auth,ui' };
    const issue = renderIssue(rowView(row, MAPPING), META, MAPPING);
    expect(issue).toEqual({
      title: 'Fix login',
      body: 'Steps:\n1. open\n\n<!-- wb:{"db":"tasks","table":"tasks","key":{"id":7}} -->',
      labels: [MANAGED_LABEL, 'state:done', 'priority:high', 'type:bug', 'auth', 'ui'],
      state: 'closed',
    });
    const back = issueView(issue, MAPPING);
    expect(back.meta).toEqual(META);
    expect(back.view).toEqual(rowView(row, MAPPING));
  });

  it('reads a person closing an issue as the first closed value, and reopening as the reopened value', () => {
    const open = renderIssue(rowView({ title: 't', status: 'in_progress' }, MAPPING), META, MAPPING);
    expect(issueView({ ...open, state: 'closed' }, MAPPING).view.state).toBe('done');
    const done = renderIssue(rowView({ title: 't', status: 'cancelled' }, MAPPING), META, MAPPING);
    expect(done.state).toBe('closed');
    expect(issueView({ ...done, state: 'open' }, MAPPING).view.state).toBe('open');
  });

  it('reads a label a person added last as the new priority, and unknown prefixes as plain labels', () => {
    const issue = renderIssue(rowView({ title: 't', priority: 'low' }, MAPPING), META, MAPPING);
    const edited = { ...issue, labels: [...issue.labels, 'priority:high', 'needs-review'] };
    const { view } = issueView(edited, MAPPING);
    expect(view.priority).toBe('high');
    expect(view.labels).toEqual(['needs-review']);
    const noPriority: IssueTableMapping = { title: 'title' };
    expect(issueView(edited, noPriority).view).toMatchObject({ priority: null, labels: [] });
  });

  it('writes back only the fields asked for, and a hand-written body without a block has no meta', () => {
    const view: IssueView = { title: 'New', body: 'b', state: 'done', priority: null, type: 'bug', labels: ['a', 'b'] };
    expect(viewColumns(view, ['title', 'labels', 'state'], MAPPING)).toEqual({ title: 'New', tags: 'a, b', status: 'done' });
    expect(splitHiddenBlock('made by hand')).toEqual({ body: 'made by hand', meta: null });
  });

  it('hashes what GitHub holds the same whatever the label order or line ends', () => {
    const a = { title: 't', body: 'x\r\ny', labels: ['b', 'a'], state: 'open' as const };
    const b = { title: 't', body: 'x\ny', labels: ['a', 'b'], state: 'open' as const };
    expect(payloadHash(a)).toBe(payloadHash(b));
    expect(payloadHash({ ...b, title: 'u' })).not.toBe(payloadHash(b));
    expect(commentHash('x\r\n')).toBe(commentHash('x\n'));
  });

  it('keeps a key holding "-->" inside the hidden block', () => {
    const meta = { db: 'd', table: 't', key: { id: 'a --> b' } };
    expect(splitHiddenBlock(renderComment('note', meta))).toEqual({ body: 'note', meta });
  });

  it('is configured by a zod schema that refuses an empty table map and fills defaults', () => {
    expect(IssuesSyncSchema.safeParse({ repo: 'o/r', tables: {} }).success).toBe(false);
    const ok = IssuesSyncSchema.parse({ repo: 'o/r', tables: { 'tasks.tasks': { title: 'title', state: { column: 'status', closed: ['done'] } } } });
    expect(ok).toMatchObject({ max_wait_seconds: 120, parallel: 1, tables: { 'tasks.tasks': { state: { reopened: 'open' } } } });
  });
});

/** A small seeded generator: the same cases every run, many shapes. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('round trip (property, 2,000 seeded cases)', () => {
  const ALPHABET = ['a', 'Z', ' ', '\n', '-', '>', '<', '!', ':', ',', 'é', '漢', '😀', '"', '\\', '{', '}', '`', '#', '\t'];
  it('row -> issue -> row gives the same view, and rendering that view again gives the same issue', () => {
    const r = rng(19);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const str = (max: number): string => Array.from({ length: Math.floor(r() * max) }, () => pick(ALPHABET)).join('');
    const word = (): string => Array.from({ length: 1 + Math.floor(r() * 8) }, () => pick(['a', 'b', 'x', '-', '_', '1', 'é'])).join('');
    for (let i = 0; i < 2000; i++) {
      const title = str(40).trim();
      const row: Record<string, SqlValue> = {
        title: title === '' || title === '(untitled)' ? 'x' : title,
        description: r() < 0.2 ? null : str(200),
        status: pick([null, 'open', 'in_progress', 'done', 'cancelled', word()]),
        priority: r() < 0.3 ? null : r() < 0.5 ? BigInt(Math.floor(r() * 4)) : word(),
        kind: r() < 0.3 ? null : word(),
        tags: r() < 0.3 ? null : Array.from({ length: Math.floor(r() * 4) }, word).join(pick([',', ', ', ' ,'])),
      };
      const view = rowView(row, MAPPING);
      const meta = { db: 'tasks', table: 'tasks', key: { id: i, name: str(10) } };
      const issue = renderIssue(view, meta, MAPPING);
      const back = issueView(issue, MAPPING);
      // A null status on an open issue stays null; everything else comes back as it went.
      expect(viewLine(back.view), JSON.stringify(row, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).toBe(viewLine(view));
      expect(back.meta).toEqual(meta);
      expect(payloadHash(renderIssue(back.view, meta, MAPPING))).toBe(payloadHash(issue));
    }
  });
});
